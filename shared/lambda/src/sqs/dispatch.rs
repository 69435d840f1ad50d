//! The `dispatch` function: batches from `outbound.fifo` (group = conversation), in order
//! per conversation. Every settled message — sent, held, window closed, failed and
//! reported — is done; a transient failure is retried with backoff (see [`super::fifo`]).
//! Report jobs (a `message.status` webhook not delivered at once) sit in groups of their
//! own and are retried the same way until the partner takes them or refuses them for good.

use super::fifo::FifoConsumer;
use crate::bootstrap::BatchHandler;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use wxbridge_core::metrics;
use wxbridge_core::model::OutboundRef;
use wxbridge_core::ports::queue::Parking;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome};

pub struct DispatchHandler<P: Ports, K> {
    dispatch: Dispatch<P>,
    consumer: FifoConsumer<K>,
}

/// What one outbound record may take at worst: an image waits for a token (6 s), downloads
/// (5 s), uploads and sends (5 s each, and again after a stale token or a lost media id),
/// then reports (5 s). The function's timeout is 90 s.
const RECORD_BUDGET_MS: i64 = 45_000;

/// A settled message in the function's metrics; failures by WeChat's errcode.
fn count(outcome: &DispatchOutcome) {
    match outcome {
        DispatchOutcome::Sent => metrics::count("sent"),
        DispatchOutcome::Held => metrics::count("held"),
        DispatchOutcome::WindowClosed => metrics::count("window_closed"),
        DispatchOutcome::FellBack => metrics::count("fell_back"),
        DispatchOutcome::Uncertain => metrics::count("uncertain"),
        DispatchOutcome::Failed(failure) => match failure.errcode() {
            Some(errcode) => metrics::count_because("failed", &errcode.to_string()),
            None => metrics::count_because("failed", "other"),
        },
        _ => {}
    }
}

impl<P: Ports, K: Parking> DispatchHandler<P, K> {
    pub fn new(dispatch: Dispatch<P>, parking: K) -> Self {
        Self {
            dispatch,
            consumer: FifoConsumer::new(parking).with_record_budget_ms(RECORD_BUDGET_MS),
        }
    }

    pub fn dispatch(&self) -> &Dispatch<P> {
        &self.dispatch
    }

    async fn handle_batch(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        let dispatch = &self.dispatch;
        self.consumer
            .handle_bodies(&event, deadline_ms, |target: OutboundRef| async move {
                let outcome = dispatch.process(&target).await;
                count(&outcome);
                tracing::info!(
                    conversation_id = %target.conversation_id,
                    message_id = %target.message_id,
                    ?outcome,
                    "outbound record handled"
                );
                outcome
            })
            .await
    }
}

impl<P: Ports, K: Parking + 'static> BatchHandler for DispatchHandler<P, K> {
    /// Handles a batch; `deadline_ms` is when the invocation must have answered.
    async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        self.handle_batch(event, deadline_ms).await
    }
}
