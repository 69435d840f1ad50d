//! Where the partner API remembers the nonces of signed requests, so a replay is refused.

use std::future::Future;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NonceError {
    #[error("nonce store unavailable: {0}")]
    Unavailable(String),
}

/// Remembers nonces: `claim` is `true` the first time a partner uses one.
pub trait NonceStore: Send + Sync {
    fn claim(
        &self,
        partner: &str,
        nonce: &str,
        expires_at_secs: i64,
    ) -> impl Future<Output = Result<bool, NonceError>> + Send;
}
