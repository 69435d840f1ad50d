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

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;

pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// The shared SDK configuration from the environment (`AWS_ENDPOINT_URL` points it at the
/// local emulator), with the timeouts above.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// A function cannot start without this environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not set")]
pub struct MissingEnv(pub String);

/// An environment variable a function cannot start without.
pub fn required_env(name: &str) -> Result<String, MissingEnv> {
    std::env::var(name).map_err(|_| MissingEnv(name.to_owned()))
}
