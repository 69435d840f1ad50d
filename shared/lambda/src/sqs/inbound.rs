//! The `inbound` function: batches from `inbound.fifo`, in order per user.
//!
//! Each record is processed by [`Inbound`]; what is delivered, or was settled before, is
//! done. A refused record is parked in the dead-letter queue and counts as done, so it is
//! not retried. A record to retry is reported as a batch item failure and kept away for a
//! backoff that doubles with each receive — and, FIFO, so is every later record of its
//! group in the batch, so a user's order is never broken. A record retried `max_receives`
//! times is parked too, with its reason, before SQS's own redrive would move it silently.
//! Records the invocation has no time left for are returned untouched.

use super::fifo::FifoConsumer;
use crate::bootstrap::BatchHandler;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use wxbridge_core::metrics;
use wxbridge_core::model::{inbound_message_id, InboundMessage};
use wxbridge_core::ports::queue::Parking;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::inbound::{Inbound, Outcome};

pub use super::fifo::DEFAULT_MAX_RECEIVES;

/// A handled message in the function's metrics: `delivered`, or `failed` because refused.
fn count(outcome: &Outcome) {
    match outcome {
        Outcome::Delivered => metrics::count("delivered"),
        Outcome::Refused(_) => metrics::count_because("failed", "refused"),
        _ => {}
    }
}

pub struct InboundHandler<P: Ports, K> {
    inbound: Inbound<P>,
    consumer: FifoConsumer<K>,
}

impl<P: Ports, K: Parking> InboundHandler<P, K> {
    pub fn new(inbound: Inbound<P>, parking: K) -> Self {
        Self {
            inbound,
            consumer: FifoConsumer::new(parking),
        }
    }

    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.consumer = self.consumer.with_max_receives(max_receives);
        self
    }

    pub fn inbound(&self) -> &Inbound<P> {
        &self.inbound
    }

    async fn handle_batch(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        let inbound = &self.inbound;
        let now_ms = self.consumer.now_ms();
        self.consumer
            .handle_bodies(&event, deadline_ms, |message: InboundMessage| async move {
                let outcome = inbound.process(&message, now_ms).await;
                tracing::info!(
                    channel = %message.channel,
                    message_id = %inbound_message_id(&message.dedupe_key),
                    ?outcome,
                    "inbound record handled"
                );
                count(&outcome);
                outcome
            })
            .await
    }
}

impl<P: Ports, K: Parking + 'static> BatchHandler for InboundHandler<P, K> {
    /// Handles a batch; `deadline_ms` is when the invocation must have answered.
    async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        self.handle_batch(event, deadline_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxbridge_core::clock::system_clock_ms;
    use wxbridge_core::config::BridgeConfig;
    use wxbridge_core::ports::store::MessageStore;
    use wxbridge_testkit::{Memory, MemoryParking, MemoryPorts};
    use wxbridge_wechat::event::{CallbackEvent, EventKind};

    /// The handler on memory adapters, with a partner that never answers.
    fn handler() -> (
        InboundHandler<MemoryPorts, MemoryParking>,
        Memory,
        MemoryParking,
    ) {
        let config = BridgeConfig::from_json(
            r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
            "partners":[{"id":"platform","display_name":"Desk","webhook_url":"http://desk/p","signing_secret":"platform-secret-0123"}],
            "dialog":{"mode":"merged","default_partner":"platform"}}"#,
        )
        .unwrap();
        let memory = Memory::default();
        memory.webhooks.go_down(true);
        let parking = MemoryParking::default();
        let inbound = Inbound::new(
            memory.bridge(config, system_clock_ms()),
            memory.outbound.clone(),
        );
        let handler = InboundHandler::new(inbound, parking.clone()).with_max_receives(3);
        (handler, memory, parking)
    }

    /// Records of `openid`'s texts as Lambda hands them over, received `receives` times.
    fn batch(openid: &str, count: usize, receives: u32) -> SqsEvent {
        let records: Vec<serde_json::Value> = (0..count)
            .map(|n| {
                let event = CallbackEvent {
                    to_user_name: "gh_1".into(),
                    from_user_name: openid.into(),
                    create_time: 1_764_150_000,
                    business_id: None,
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
        let (handler, _, parking) = handler();
        let response = handler.handle(batch("o1", 3, 2), None).await;
        assert_eq!(failures(&response), ["o1-0", "o1-1", "o1-2"]);
        let delays = parking.delays();
        assert_eq!(delays.len(), 3);
        assert!(
            delays.iter().all(|(_, seconds)| *seconds == 60),
            "{delays:?}"
        );
        assert!(parking.parked().is_empty());
    }

    #[tokio::test]
    async fn a_record_out_of_retries_is_parked_with_its_reason() {
        let (handler, _, parking) = handler();
        let response = handler.handle(batch("o1", 1, 3), None).await;
        assert!(failures(&response).is_empty(), "parked counts as done");
        let parked = parking.parked();
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
        let (handler, memory, _) = handler();
        let deadline = system_clock_ms() + 1_000;
        let response = handler.handle(batch("o1", 2, 1), Some(deadline)).await;
        assert_eq!(failures(&response), ["o1-0", "o1-1"]);
        assert!(memory
            .store
            .history("mp:o1:platform", 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_body_that_is_no_inbound_message_is_parked_without_quoting_it() {
        let (handler, _, parking) = handler();
        let mut event = batch("o1", 1, 1);
        event.records[0].body = Some(r#"{"secret words": 1}"#.into());
        let response = handler.handle(event, None).await;
        assert!(failures(&response).is_empty());
        let parked = parking.parked();
        assert!(parked[0].1.starts_with("unreadable record"), "{parked:?}");
        assert!(!parked[0].1.contains("secret"), "{parked:?}");
    }
}
