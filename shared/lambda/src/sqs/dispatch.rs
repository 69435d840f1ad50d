//! The `dispatch` function: batches from `outbound.fifo` (group = conversation), in order
//! per conversation. Every settled message — sent, held, window closed, failed and
//! reported — is done; a transient failure is retried with backoff (see [`super::fifo`]).
//! Report jobs (a `message.status` webhook not delivered at once) sit in groups of their
//! own and are retried the same way until the partner takes them or refuses them for good.

use super::fifo::{FifoConsumer, RecordOutcome};
use crate::dispatch::{Dispatch, DispatchOutcome, OutboundRef};
use crate::media::MediaCache;
use crate::metrics;
use crate::queue::{OutboundQueue, Parking};
use crate::store::Store;
use crate::token::TokenStore;
use crate::webhook::WebhookSender;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

pub struct DispatchHandler<S, T, W, Q, P> {
    dispatch: Dispatch<S, T, W, Q>,
    consumer: FifoConsumer<P>,
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
        DispatchOutcome::Failed(reason) => {
            metrics::count_because("failed", errcode_of(reason).unwrap_or("other"))
        }
        _ => {}
    }
}

/// The errcode in a reason such as "WeChat answered errcode 45047: …".
fn errcode_of(reason: &str) -> Option<&str> {
    let rest = reason.split_once("errcode ")?.1;
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

impl<S: Store + MediaCache, T: TokenStore, W: WebhookSender, Q: OutboundQueue, P: Parking>
    DispatchHandler<S, T, W, Q, P>
{
    pub fn new(dispatch: Dispatch<S, T, W, Q>, parking: P) -> Self {
        Self {
            dispatch,
            consumer: FifoConsumer::new(parking).with_record_budget_ms(RECORD_BUDGET_MS),
        }
    }

    pub fn dispatch(&self) -> &Dispatch<S, T, W, Q> {
        &self.dispatch
    }

    pub async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
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
                match outcome {
                    DispatchOutcome::Retry(reason) => RecordOutcome::Retry(reason),
                    DispatchOutcome::Failed(reason) if reason == "no such message" => {
                        RecordOutcome::Park(reason)
                    }
                    _ => RecordOutcome::Done,
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failures_are_counted_by_wechats_errcode() {
        assert_eq!(
            super::errcode_of("WeChat answered errcode 45047: out of response count limit"),
            Some("45047")
        );
        assert_eq!(
            super::errcode_of("WeChat answered errcode -1: busy"),
            Some("-1")
        );
        assert_eq!(super::errcode_of("image over 2 MiB"), None);
        assert_eq!(super::errcode_of("errcode x"), None);
    }
}
