//! The `push` function: batches from `push.fifo` (group = conversation), in order per
//! conversation, on the shared FIFO consumer. A settled push — sent, undeliverable, expired
//! and reported — is done; a transient failure (WeChat busy or silent, the store or the
//! partner's webhook unavailable) is retried with backoff (see [`super::fifo`]); a record
//! naming no stored push is parked with its reason. Report jobs (a `push.status` webhook
//! not delivered at once) sit in groups of their own.

use super::fifo::FifoConsumer;
use crate::bootstrap::BatchHandler;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use wxbridge_core::metrics;
use wxbridge_core::model::{OutboundRef, PushPath};
use wxbridge_core::ports::queue::Parking;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::push::{Push, PushOutcome};

/// A settled push in the function's metrics: `pushed` by path, `undeliverable`, `expired`.
fn count(outcome: &PushOutcome) {
    match outcome {
        PushOutcome::Sent(path) => metrics::count_because(
            "pushed",
            match path {
                PushPath::CustomerService => "customer_service",
                PushPath::Subscribe => "subscribe",
                PushPath::Inbox => "inbox",
            },
        ),
        PushOutcome::Undeliverable(_) => metrics::count("undeliverable"),
        PushOutcome::Expired => metrics::count("expired"),
        PushOutcome::Uncertain => metrics::count("uncertain"),
        _ => {}
    }
}

pub struct PushHandler<P: Ports, K> {
    push: Push<P>,
    consumer: FifoConsumer<K>,
}

impl<P: Ports, K: Parking> PushHandler<P, K> {
    pub fn new(push: Push<P>, parking: K) -> Self {
        Self {
            push,
            consumer: FifoConsumer::new(parking),
        }
    }

    pub fn push(&self) -> &Push<P> {
        &self.push
    }

    async fn handle_batch(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        let push = &self.push;
        self.consumer
            .handle_bodies(&event, deadline_ms, |target: OutboundRef| async move {
                let outcome = push.process(&target).await;
                count(&outcome);
                tracing::info!(
                    conversation_id = %target.conversation_id,
                    message_id = %target.message_id,
                    ?outcome,
                    "push record handled"
                );
                outcome
            })
            .await
    }
}

impl<P: Ports, K: Parking + 'static> BatchHandler for PushHandler<P, K> {
    /// Handles a batch; `deadline_ms` is when the invocation must have answered.
    async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        self.handle_batch(event, deadline_ms).await
    }
}
