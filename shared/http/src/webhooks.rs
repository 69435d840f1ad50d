//! Partners' webhooks over HTTPS: no redirects followed, 5 seconds to answer.

use crate::LazyClient;
use wxbridge_core::ports::webhook::WebhookSender;
use wxbridge_core::services::webhook::WEBHOOK_TIMEOUT;

/// Webhooks over HTTPS.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: LazyClient,
}

impl HttpWebhookSender {
    pub fn new() -> Self {
        let client = LazyClient::new(|| {
            reqwest::Client::builder()
                .timeout(WEBHOOK_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
        });
        Self { client }
    }
}

impl Default for HttpWebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookSender for HttpWebhookSender {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Option<u16> {
        let mut request = self
            .client
            .get()
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) => Some(response.status().as_u16()),
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "webhook not answered");
                None
            }
        }
    }
}
