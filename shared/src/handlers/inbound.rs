//! The `inbound` function: batches from `inbound.fifo`, in order per user.
//!
//! Each record is processed by [`Inbound`]; what is delivered, or was settled before, is
//! done. A refused record is parked in the dead-letter queue and counts as done, so it is
//! not retried. A record to retry is reported as a batch item failure and kept away for a
//! backoff that doubles with each receive — and, FIFO, so is every later record of its
//! group in the batch, so a user's order is never broken.

use crate::inbound::{Inbound, Outcome};
use crate::queue::{InboundMessage, Parking};
use crate::store::Store;
use crate::webhook::WebhookSender;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::HashSet;

/// Backoff before a retried record is seen again: 30 s, doubling per receive, at most 15 min.
pub fn backoff_secs(receive_count: u32) -> i32 {
    let doubled = 30i64 << receive_count.saturating_sub(1).min(5);
    doubled.min(900) as i32
}

pub struct InboundHandler<S, W, P> {
    inbound: Inbound<S, W>,
    parking: P,
    clock: fn() -> i64,
}

impl<S: Store, W: WebhookSender, P: Parking> InboundHandler<S, W, P> {
    pub fn new(inbound: Inbound<S, W>, parking: P) -> Self {
        Self {
            inbound,
            parking,
            clock: super::callback::system_clock_ms,
        }
    }

    pub fn inbound(&self) -> &Inbound<S, W> {
        &self.inbound
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failed_groups: HashSet<String> = HashSet::new();
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            let done = !failed_groups.contains(&group) && self.settle(record, &group).await;
            if !done {
                failed_groups.insert(group);
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Processes one record; `true` when it is done with (delivered, settled or parked).
    async fn settle(&self, record: &SqsMessage, group: &str) -> bool {
        let body = record.body.as_deref().unwrap_or_default();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let outcome = match serde_json::from_str::<InboundMessage>(body) {
            Ok(message) => self.inbound.process(&message, (self.clock)()).await,
            Err(error) => Outcome::Refused(format!("not an inbound message: {error}")),
        };
        match outcome {
            Outcome::Delivered | Outcome::AlreadyDone => true,
            Outcome::Refused(reason) => {
                tracing::warn!(message_id, %reason, "inbound message refused; parked in the dead-letter queue");
                match self.parking.park(body, group, message_id, &reason).await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::error!(message_id, %error, "could not park; it will be retried");
                        false
                    }
                }
            }
            Outcome::Retry(reason) => {
                let receives: u32 = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                tracing::warn!(message_id, receives, %reason, "inbound message will be retried");
                if let Some(receipt) = record.receipt_handle.as_deref() {
                    if let Err(error) = self.parking.delay(receipt, backoff_secs(receives)).await {
                        tracing::warn!(message_id, %error, "no backoff; retried after the visibility timeout");
                    }
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<i32> = (1..=8).map(backoff_secs).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(backoff_secs(0), 30);
    }
}
