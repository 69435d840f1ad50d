//! Where signed webhooks to partners go out, and what came of one.

use std::future::Future;

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The partner did not take it now (busy, down, not answering in time): try again later.
    Retry(String),
    /// The partner refuses this delivery for good (its answer's status): retrying cannot
    /// help.
    Refused(u16),
}

impl Delivery {
    /// The outcome as a metric reason.
    pub fn name(&self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Retry(_) => "retry",
            Delivery::Refused(_) => "refused",
        }
    }
}

/// The port deliveries go through: POST `body` with `headers` to `url`, and say what the
/// partner's answer (or its absence) means for the delivery.
pub trait WebhookSender: Send + Sync {
    fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> impl Future<Output = Delivery> + Send;
}
