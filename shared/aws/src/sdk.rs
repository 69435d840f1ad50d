//! AWS SDK configuration for the functions.
//!
//! The callback answers WeChat within 5 seconds or WeChat retries, so SDK calls get a hard
//! budget: one attempt may take 1 s, all attempts with their backoff 3 s. A call that runs
//! out answers 503 and WeChat's retry tries again.
//!
//! Retries are the SDK's standard mode (the latest behavior version): up to 3 attempts,
//! for throttling, transient errors and HTTP 500, 502, 503 and 504 — a DynamoDB
//! `InternalServerError` included. A retried `TransactWriteItems` carries the same
//! `ClientRequestToken`, so DynamoDB applies it once (tests/tests/store_retries.rs).

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;

pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// The shared SDK configuration from the environment (`AWS_ENDPOINT_URL` points it at the
/// local emulator), with the timeouts above.
///
/// Lambda puts the execution role's credentials and the region in the environment, so the
/// default chains (profiles, SSO, web identity with an STS client, container and instance
/// metadata, each built at start) are built only where they are not: two thirds of a
/// function's init went there (`make coldstart`).
pub async fn load_sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    let in_environment = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if in_environment("AWS_ACCESS_KEY_ID") && in_environment("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(region) = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    {
        loader = loader.region(Region::new(region));
    }
    loader.load().await
}

/// The SDK's HTTPS client, for every service client of a process (one connection pool, the
/// root certificates read once): rustls on ring, the crypto reqwest uses in the bridge too,
/// so a function carries one TLS stack and one crypto library.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// A function cannot start without this environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not set")]
pub struct MissingEnv(pub String);

/// An environment variable a function cannot start without.
pub fn required_env(name: &str) -> Result<String, MissingEnv> {
    std::env::var(name).map_err(|_| MissingEnv(name.to_owned()))
}
