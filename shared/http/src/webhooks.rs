//! Partners' webhooks over HTTPS: no redirects followed, 5 seconds to answer.

use crate::LazyClient;
use wxbridge_core::ports::webhook::{Delivery, WebhookSender};
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
    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> Delivery {
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
            Ok(response) => classify(Some(response.status().as_u16())),
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "webhook not answered");
                classify(None)
            }
        }
    }
}

/// What a partner's HTTP answer means for a delivery (`None`: a timeout or no connection):
/// 2xx delivered; 5xx, 408, 425, 429, a redirect, no answer: try again later; any other 4xx:
/// refused for good.
pub fn classify(status: Option<u16>) -> Delivery {
    match status {
        Some(200..=299) => Delivery::Delivered,
        Some(status @ (408 | 425 | 429)) => {
            Delivery::Retry(format!("partner asked to retry ({status})"))
        }
        Some(status @ 400..=499) => Delivery::Refused(status),
        Some(status) => Delivery::Retry(format!("partner answered {status}")),
        None => Delivery::Retry("no answer from the partner".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(Some(200)), Delivery::Delivered);
        assert_eq!(classify(Some(204)), Delivery::Delivered);
        assert!(matches!(classify(Some(500)), Delivery::Retry(_)));
        assert!(matches!(classify(Some(503)), Delivery::Retry(_)));
        assert!(matches!(classify(Some(429)), Delivery::Retry(_)));
        assert!(matches!(classify(None), Delivery::Retry(_)));
        assert_eq!(classify(Some(400)), Delivery::Refused(400));
        assert_eq!(classify(Some(404)), Delivery::Refused(404));
        assert!(matches!(classify(Some(408)), Delivery::Retry(_)));
        assert!(matches!(classify(Some(425)), Delivery::Retry(_)));
        assert!(
            matches!(classify(Some(301)), Delivery::Retry(_)),
            "a redirect is not a refusal"
        );
    }
}
