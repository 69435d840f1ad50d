//! Where the partner API remembers the nonces of signed requests, so a replay is refused.

use std::future::Future;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NonceError {
    #[error("nonce store unavailable: {0}")]
    Unavailable(String),
}

/// Remembers nonces: `claim` is `true` the first time a partner uses one, and again for the
/// same `claimant` — one handling of one request, whose claim may be sent twice (the store's
/// client retries a write whose answer it lost) — but `false` for any other: a replay of
/// the request is handled anew, as another claimant.
pub trait NonceStore: Send + Sync {
    fn claim(
        &self,
        partner: &str,
        nonce: &str,
        claimant: &str,
        expires_at_secs: i64,
    ) -> impl Future<Output = Result<bool, NonceError>> + Send;
}
