//! AWS SDK configuration for the functions.
//!
//! How long an AWS call may take depends on who waits for the function ([`CallBudget`]).
//! The callback answers WeChat within 5 seconds or WeChat retries, and a partner waits on the
//! API: one attempt may take 1 s, all attempts with their backoff 3 s, and a call that runs
//! out answers 503 for the caller's retry. Nobody waits on the SQS consumers and the
//! schedule, which have 60–90 s: one attempt may take 3 s, all four of them 10 s, so that a
//! slow or throttled store under a burst is ridden out inside the invocation rather than a
//! record given back (each record is started only with 30 s or more left).
//!
//! Retries are the SDK's standard mode (the latest behavior version), for throttling,
//! transient errors and HTTP 500, 502, 503 and 504 — a DynamoDB `InternalServerError`
//! included. A retried `TransactWriteItems` carries the same `ClientRequestToken`, so
//! DynamoDB applies it once (shared/aws/tests/store_faults.rs).

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;

/// How long a function's AWS calls may take, by who waits for the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallBudget {
    /// Someone waits on the answer (`callback`: WeChat, 5 s; `api`: a partner).
    Answering,
    /// Nobody waits (the SQS consumers, the schedule).
    Consuming,
}

impl CallBudget {
    pub fn attempt_timeout(self) -> Duration {
        match self {
            Self::Answering => Duration::from_secs(1),
            Self::Consuming => Duration::from_secs(3),
        }
    }

    pub fn operation_timeout(self) -> Duration {
        match self {
            Self::Answering => Duration::from_secs(3),
            Self::Consuming => Duration::from_secs(10),
        }
    }

    pub fn max_attempts(self) -> u32 {
        match self {
            Self::Answering => 3,
            Self::Consuming => 4,
        }
    }

    /// The SDK's standard retries, up to [`Self::max_attempts`].
    pub fn retry_config(self) -> RetryConfig {
        RetryConfig::standard().with_max_attempts(self.max_attempts())
    }

    /// Each attempt's and the whole call's timeout.
    pub fn timeout_config(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_attempt_timeout(self.attempt_timeout())
            .operation_timeout(self.operation_timeout())
            .build()
    }
}

/// The shared SDK configuration from the environment (`AWS_ENDPOINT_URL` points it at the
/// local emulator), with `budget`'s timeouts and attempts.
///
/// Lambda puts the execution role's credentials and the region in the environment, so the
/// default chains (profiles, SSO, web identity with an STS client, container and instance
/// metadata, each built at start) are built only where they are not: two thirds of a
/// function's init went there (`make coldstart`).
pub async fn load_sdk_config(budget: CallBudget) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(budget.retry_config())
        .timeout_config(budget.timeout_config());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures the functions' answers rely on: the callback answers WeChat within its
    /// 5 s, a consumer rides a slow store out.
    #[tokio::test]
    async fn each_budget_sets_its_timeouts_and_attempts() {
        for (budget, attempt, operation, attempts) in [
            (CallBudget::Answering, 1, 3, 3),
            (CallBudget::Consuming, 3, 10, 4),
        ] {
            let sdk = load_sdk_config(budget).await;
            let timeouts = sdk.timeout_config().expect("timeouts set");
            assert_eq!(
                timeouts.operation_attempt_timeout(),
                Some(Duration::from_secs(attempt))
            );
            assert_eq!(
                timeouts.operation_timeout(),
                Some(Duration::from_secs(operation))
            );
            let retries = sdk.retry_config().expect("retries set");
            assert_eq!(retries.max_attempts(), attempts);
        }
    }
}
