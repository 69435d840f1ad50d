//! The `push` function: batches from `push.fifo` (group = conversation), in order per
//! conversation, on the shared FIFO consumer. A settled push — sent, undeliverable, expired
//! and reported — is done; a transient failure (WeChat busy or silent, the store or the
//! partner's webhook unavailable) is retried with backoff (see [`super::fifo`]); a record
//! naming no stored push is parked with its reason. Report jobs (a `push.status` webhook
//! not delivered at once) sit in groups of their own.

use super::fifo::{FifoConsumer, RecordOutcome};
use crate::dispatch::OutboundRef;
use crate::metrics;
use crate::push::{Push, PushOutcome, PushPath};
use crate::queue::{OutboundQueue, Parking};
use crate::store::Store;
use crate::token::TokenStore;
use crate::webhook::WebhookSender;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

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
        _ => {}
    }
}

pub struct PushHandler<S, T, W, Q, P> {
    push: Push<S, T, W, Q>,
    consumer: FifoConsumer<P>,
}

impl<S: Store, T: TokenStore, W: WebhookSender, Q: OutboundQueue, P: Parking>
    PushHandler<S, T, W, Q, P>
{
    pub fn new(push: Push<S, T, W, Q>, parking: P) -> Self {
        Self {
            push,
            consumer: FifoConsumer::new(parking),
        }
    }

    pub fn push(&self) -> &Push<S, T, W, Q> {
        &self.push
    }

    pub async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
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
                match outcome {
                    PushOutcome::Retry(reason) => RecordOutcome::Retry(reason),
                    PushOutcome::Unusable(reason) => RecordOutcome::Park(reason),
                    _ => RecordOutcome::Done,
                }
            })
            .await
    }
}
