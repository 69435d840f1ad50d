//! The `inbound` function: batches from `inbound.fifo`, in order per user.
//!
//! Each record is processed by [`Inbound`]; what is delivered, or was settled before, is
//! done. A refused record is parked in the dead-letter queue and counts as done, so it is
//! not retried. A record to retry is reported as a batch item failure and kept away for a
//! backoff that doubles with each receive — and, FIFO, so is every later record of its
//! group in the batch, so a user's order is never broken. A record retried `max_receives`
//! times is parked too, with its reason, before SQS's own redrive would move it silently.
//! Records the invocation has no time left for are returned untouched.

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

/// What one record may take at worst: the webhook's timeout and the store's calls.
const RECORD_BUDGET_MS: i64 = 10_000;

/// Receives before a retried record is parked (`maxReceiveCount` of the queue is higher,
/// so the bridge parks it with its reason first).
pub const DEFAULT_MAX_RECEIVES: u32 = 100;

pub struct InboundHandler<S, W, P> {
    inbound: Inbound<S, W>,
    parking: P,
    clock: fn() -> i64,
    max_receives: u32,
}

impl<S: Store, W: WebhookSender, P: Parking> InboundHandler<S, W, P> {
    pub fn new(inbound: Inbound<S, W>, parking: P) -> Self {
        Self {
            inbound,
            parking,
            clock: super::callback::system_clock_ms,
            max_receives: DEFAULT_MAX_RECEIVES,
        }
    }

    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.max_receives = max_receives.max(1);
        self
    }

    pub fn inbound(&self) -> &Inbound<S, W> {
        &self.inbound
    }

    /// Handles a batch; `deadline_ms` is when the invocation must have answered.
    pub async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        let mut failed_groups: HashSet<String> = HashSet::new();
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            let out_of_time = deadline_ms.is_some_and(|d| (self.clock)() + RECORD_BUDGET_MS > d);
            let done = if failed_groups.contains(&group) || out_of_time {
                // Waits behind its group's failure (or for another invocation) as long as
                // the failed record does.
                self.back_off(record).await;
                false
            } else {
                self.settle(record, &group).await
            };
            if !done {
                failed_groups.insert(group);
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    fn receives(record: &SqsMessage) -> u32 {
        record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1)
    }

    async fn back_off(&self, record: &SqsMessage) {
        if let Some(receipt) = record.receipt_handle.as_deref() {
            let delay = backoff_secs(Self::receives(record));
            if let Err(error) = self.parking.delay(receipt, delay).await {
                tracing::warn!(%error, "no backoff; retried after the visibility timeout");
            }
        }
    }

    async fn park(&self, record: &SqsMessage, group: &str, reason: &str) -> bool {
        let body = record.body.as_deref().unwrap_or_default();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        tracing::warn!(message_id, %reason, "inbound message parked in the dead-letter queue");
        match self.parking.park(body, group, message_id, reason).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(message_id, %error, "could not park; it will be retried");
                false
            }
        }
    }

    /// Processes one record; `true` when it is done with (delivered, settled or parked).
    async fn settle(&self, record: &SqsMessage, group: &str) -> bool {
        let body = record.body.as_deref().unwrap_or_default();
        let outcome = match serde_json::from_str::<InboundMessage>(body) {
            Ok(message) => self.inbound.process(&message, (self.clock)()).await,
            // The parser's message may quote the body: only where it failed is kept.
            Err(error) => Outcome::Refused(format!(
                "not an inbound message ({:?} error at line {} column {})",
                error.classify(),
                error.line(),
                error.column()
            )),
        };
        match outcome {
            Outcome::Delivered | Outcome::AlreadyDone => true,
            Outcome::Refused(reason) => self.park(record, group, &reason).await,
            Outcome::Retry(reason) if Self::receives(record) >= self.max_receives => {
                let reason = format!(
                    "retries exhausted after {} receives: {reason}",
                    self.max_receives
                );
                self.park(record, group, &reason).await
            }
            Outcome::Retry(reason) => {
                let message_id = record.message_id.as_deref().unwrap_or_default();
                tracing::warn!(message_id, receives = Self::receives(record), %reason, "inbound message will be retried");
                self.back_off(record).await;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BridgeConfig;
    use crate::event::{CallbackEvent, EventKind};
    use crate::queue::QueueError;
    use crate::store::memory::MemoryStore;
    use std::sync::Mutex;

    /// A partner that never answers.
    struct Down;

    impl WebhookSender for Down {
        async fn post(&self, _: &str, _: &[(&'static str, String)], _: Vec<u8>) -> Option<u16> {
            None
        }
    }

    #[derive(Default)]
    struct Recorded {
        parked: Mutex<Vec<(String, String)>>,
        delays: Mutex<Vec<(String, i32)>>,
    }

    impl Parking for Recorded {
        async fn park(&self, _: &str, _: &str, id: &str, reason: &str) -> Result<(), QueueError> {
            self.parked
                .lock()
                .unwrap()
                .push((id.to_owned(), reason.to_owned()));
            Ok(())
        }

        async fn delay(&self, receipt: &str, seconds: i32) -> Result<(), QueueError> {
            self.delays
                .lock()
                .unwrap()
                .push((receipt.to_owned(), seconds));
            Ok(())
        }
    }

    fn handler() -> InboundHandler<MemoryStore, Down, Recorded> {
        let config = BridgeConfig::from_json(
            r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
            "partners":[{"id":"platform","display_name":"Desk","webhook_url":"http://desk/p","signing_secret":"platform-secret-0123"}],
            "dialog":{"mode":"merged","default_partner":"platform"}}"#,
        )
        .unwrap();
        InboundHandler::new(
            Inbound::new(config, MemoryStore::default(), Down),
            Recorded::default(),
        )
        .with_max_receives(3)
    }

    /// Records of `openid`'s texts as Lambda hands them over, received `receives` times.
    fn batch(openid: &str, count: usize, receives: u32) -> SqsEvent {
        let records: Vec<serde_json::Value> = (0..count)
            .map(|n| {
                let event = CallbackEvent {
                    to_user_name: "gh_1".into(),
                    from_user_name: openid.into(),
                    create_time: 1_764_150_000,
                    kind: EventKind::Text { msg_id: n.to_string(), content: format!("m{n}") },
                };
                let message = InboundMessage::new("mp", event, 1_764_150_000_000);
                serde_json::json!({
                    "messageId": format!("{openid}-{n}"),
                    "receiptHandle": format!("receipt-{openid}-{n}"),
                    "body": serde_json::to_string(&message).unwrap(),
                    "attributes": {"MessageGroupId": message.group_id(), "ApproximateReceiveCount": receives.to_string()}
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    fn failures(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn a_retry_holds_back_its_group_and_every_held_record_waits_as_long() {
        let handler = handler();
        let response = handler.handle(batch("o1", 3, 2), None).await;
        assert_eq!(failures(&response), ["o1-0", "o1-1", "o1-2"]);
        let delays = handler.parking.delays.lock().unwrap().clone();
        assert_eq!(delays.len(), 3);
        assert!(
            delays.iter().all(|(_, seconds)| *seconds == 60),
            "{delays:?}"
        );
        assert!(handler.parking.parked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_record_out_of_retries_is_parked_with_its_reason() {
        let handler = handler();
        let response = handler.handle(batch("o1", 1, 3), None).await;
        assert!(failures(&response).is_empty(), "parked counts as done");
        let parked = handler.parking.parked.lock().unwrap().clone();
        assert_eq!(parked.len(), 1);
        assert!(
            parked[0]
                .1
                .starts_with("retries exhausted after 3 receives"),
            "{parked:?}"
        );
    }

    #[tokio::test]
    async fn records_without_time_left_are_returned_untouched() {
        let handler = handler();
        let deadline = super::super::callback::system_clock_ms() + 1_000;
        let response = handler.handle(batch("o1", 2, 1), Some(deadline)).await;
        assert_eq!(failures(&response), ["o1-0", "o1-1"]);
        assert!(handler
            .inbound
            .store()
            .history("mp:o1:platform", 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_body_that_is_no_inbound_message_is_parked_without_quoting_it() {
        let handler = handler();
        let mut event = batch("o1", 1, 1);
        event.records[0].body = Some(r#"{"secret words": 1}"#.into());
        let response = handler.handle(event, None).await;
        assert!(failures(&response).is_empty());
        let parked = handler.parking.parked.lock().unwrap().clone();
        assert!(
            parked[0].1.starts_with("not an inbound message"),
            "{parked:?}"
        );
        assert!(!parked[0].1.contains("secret"), "{parked:?}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<i32> = (1..=8).map(backoff_secs).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(backoff_secs(0), 30);
    }
}
