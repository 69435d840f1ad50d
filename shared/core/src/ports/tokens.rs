//! Where access tokens and their refresh leases are kept, shared by every function
//! instance (protocol notes §4.2).

use std::future::Future;
use thiserror::Error;

/// Tokens are refreshed this long before they expire.
pub const REFRESH_MARGIN_MS: i64 = 5 * 60_000;
/// How long a refresh lease lasts: the holder fetches and saves a token within it.
pub const LEASE_MS: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub value: String,
    pub expires_at_ms: i64,
}

impl CachedToken {
    /// Still good at `now_ms`, with a margin before it expires.
    pub fn fresh(&self, now_ms: i64) -> bool {
        self.expires_at_ms - REFRESH_MARGIN_MS > now_ms
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenStoreError {
    #[error("token store unavailable: {0}")]
    Unavailable(String),
    #[error("stored token is malformed: {0}")]
    Malformed(String),
}

/// Where tokens and refresh leases are kept.
pub trait TokenStore: Send + Sync {
    fn cached(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<Option<CachedToken>, TokenStoreError>> + Send;
    /// Takes the refresh lease if nobody holds it (or it ran out) and no fresh token is
    /// saved (the last holder may have saved one since it was read); `true` when taken.
    fn try_lease(
        &self,
        appid: &str,
        owner: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, TokenStoreError>> + Send;
    /// Saves a fetched token and releases the lease.
    fn save(
        &self,
        appid: &str,
        token: &CachedToken,
    ) -> impl Future<Output = Result<(), TokenStoreError>> + Send;
    /// Expires the cached token if it is still `failed`.
    fn expire_if(
        &self,
        appid: &str,
        failed: &str,
    ) -> impl Future<Output = Result<(), TokenStoreError>> + Send;
}
