//! The bridge's outbound HTTP, as adapters of the core's ports: WeChat's server API
//! ([`WechatClient`]), partners' webhooks ([`HttpWebhookSender`]) and partners' images
//! ([`Downloader`], public addresses only).

pub mod addresses;
pub mod images;
pub mod webhooks;
pub mod wechat;

pub use images::Downloader;
pub use webhooks::HttpWebhookSender;
pub use wechat::WechatClient;

use std::sync::{Arc, OnceLock};
use wxbridge_core::ports::wechat::ApiError;

/// An HTTP client built on its first use: a function that never calls out (the partner
/// API never posts a webhook) never pays for loading TLS roots at start.
#[derive(Clone)]
pub(crate) struct LazyClient {
    client: Arc<OnceLock<reqwest::Client>>,
    build: Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
}

impl LazyClient {
    pub(crate) fn new(build: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            build: Arc::new(build),
        }
    }

    pub(crate) fn get(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            // reqwest brings rustls without a crypto library: ring, as the SDK's client
            // has (an error only says one was installed first).
            let _ = rustls::crypto::ring::default_provider().install_default();
            (self.build)()
                .build()
                .expect("an HTTP client of fixed settings builds")
        })
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyClient")
    }
}

/// Reads a body, refusing one over `max_bytes` without reading it all.
pub async fn read_at_most(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(ApiError::TooLarge(max_bytes));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(wechat::unanswered)? {
        if bytes.len() + chunk.len() > max_bytes {
            return Err(ApiError::TooLarge(max_bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
