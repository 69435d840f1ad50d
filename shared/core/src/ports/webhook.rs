//! Where signed webhooks to partners go out.

use std::future::Future;

/// The port deliveries go through: POST `body` with `headers`; the answer's status, or
/// `None` when there was no answer in time.
pub trait WebhookSender: Send + Sync {
    fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> impl Future<Output = Option<u16>> + Send;
}
