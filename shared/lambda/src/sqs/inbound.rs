//! The `inbound` function: batches from `inbound.fifo`, in order per user.
//!
//! Each record is processed by [`Inbound`]; what is delivered, or was settled before, is
//! done. A refused record is parked in the dead-letter queue and counts as done, so it is
//! not retried. A record to retry is reported as a batch item failure and kept away for a
//! backoff that doubles with each receive — and, FIFO, so is every later record of its
//! group in the batch, so a user's order is never broken. A record retried `max_receives`
//! times is parked too, with its reason, before SQS's own redrive would move it silently.
//! Records the invocation has no time left for are returned untouched.

use super::fifo::{FifoConsumer, RecordOutcome};
use crate::inbound::{Inbound, Outcome};
use crate::metrics;
use crate::queue::{InboundMessage, OutboundQueue, Parking};
use crate::store::Store;
use crate::webhook::WebhookSender;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

pub use super::fifo::DEFAULT_MAX_RECEIVES;

pub struct InboundHandler<S, W, Q, P> {
    inbound: Inbound<S, W, Q>,
    consumer: FifoConsumer<P>,
}

impl<S: Store, W: WebhookSender, Q: OutboundQueue, P: Parking> InboundHandler<S, W, Q, P> {
    pub fn new(inbound: Inbound<S, W, Q>, parking: P) -> Self {
        Self {
            inbound,
            consumer: FifoConsumer::new(parking),
        }
    }

    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.consumer = self.consumer.with_max_receives(max_receives);
        self
    }

    pub fn inbound(&self) -> &Inbound<S, W, Q> {
        &self.inbound
    }

    /// Handles a batch; `deadline_ms` is when the invocation must have answered.
    pub async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        let inbound = &self.inbound;
        let now_ms = self.consumer.now_ms();
        self.consumer
            .handle_bodies(&event, deadline_ms, |message: InboundMessage| async move {
                let outcome = inbound.process(&message, now_ms).await;
                tracing::info!(
                    channel = %message.channel,
                    message_id = %crate::store::keys::inbound_message_id(&message.dedupe_key),
                    ?outcome,
                    "inbound record handled"
                );
                match outcome {
                    Outcome::Delivered => {
                        metrics::count("delivered");
                        RecordOutcome::Done
                    }
                    Outcome::AlreadyDone => RecordOutcome::Done,
                    Outcome::Refused(reason) => {
                        metrics::count_because("failed", "refused");
                        RecordOutcome::Park(reason)
                    }
                    Outcome::Retry(reason) => RecordOutcome::Retry(reason),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BridgeConfig;
    use crate::event::{CallbackEvent, EventKind};
    use crate::queue::{MemoryOutboundQueue, QueueError};
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

    fn handler() -> InboundHandler<MemoryStore, Down, MemoryOutboundQueue, Recorded> {
        let config = BridgeConfig::from_json(
            r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
            "partners":[{"id":"platform","display_name":"Desk","webhook_url":"http://desk/p","signing_secret":"platform-secret-0123"}],
            "dialog":{"mode":"merged","default_partner":"platform"}}"#,
        )
        .unwrap();
        InboundHandler::new(
            Inbound::new(
                config,
                MemoryStore::default(),
                Down,
                MemoryOutboundQueue::default(),
            ),
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
        let delays = handler.consumer.parking.delays.lock().unwrap().clone();
        assert_eq!(delays.len(), 3);
        assert!(
            delays.iter().all(|(_, seconds)| *seconds == 60),
            "{delays:?}"
        );
        assert!(handler.consumer.parking.parked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_record_out_of_retries_is_parked_with_its_reason() {
        let handler = handler();
        let response = handler.handle(batch("o1", 1, 3), None).await;
        assert!(failures(&response).is_empty(), "parked counts as done");
        let parked = handler.consumer.parking.parked.lock().unwrap().clone();
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
        let parked = handler.consumer.parking.parked.lock().unwrap().clone();
        assert!(parked[0].1.starts_with("unreadable record"), "{parked:?}");
        assert!(!parked[0].1.contains("secret"), "{parked:?}");
    }
}
