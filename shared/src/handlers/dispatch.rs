//! The `dispatch` function: batches from `outbound.fifo` (group = conversation), in order
//! per conversation. Every settled message — sent, held, window closed, failed and
//! reported — is done; a transient failure is retried with backoff (see [`super::fifo`]).
//! Report jobs (a `message.status` webhook not delivered at once) sit in groups of their
//! own and are retried the same way until the partner takes them or refuses them for good.

use super::fifo::{read_body, FifoConsumer, RecordOutcome};
use crate::dispatch::{Dispatch, DispatchOutcome, OutboundRef};
use crate::media::MediaCache;
use crate::queue::{OutboundQueue, Parking};
use crate::store::Store;
use crate::token::TokenStore;
use crate::webhook::WebhookSender;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

pub struct DispatchHandler<S, T, W, Q, P> {
    dispatch: Dispatch<S, T, W, Q>,
    consumer: FifoConsumer<P>,
}

impl<S: Store + MediaCache, T: TokenStore, W: WebhookSender, Q: OutboundQueue, P: Parking>
    DispatchHandler<S, T, W, Q, P>
{
    pub fn new(dispatch: Dispatch<S, T, W, Q>, parking: P) -> Self {
        Self {
            dispatch,
            consumer: FifoConsumer::new(parking),
        }
    }

    pub fn dispatch(&self) -> &Dispatch<S, T, W, Q> {
        &self.dispatch
    }

    pub async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        let dispatch = &self.dispatch;
        self.consumer
            .handle(&event, deadline_ms, |record| {
                let target = read_body::<OutboundRef>(record);
                async move {
                    let target = match target {
                        Ok(target) => target,
                        Err(reason) => return RecordOutcome::Park(reason),
                    };
                    match dispatch.process(&target).await {
                        DispatchOutcome::Retry(reason) => RecordOutcome::Retry(reason),
                        DispatchOutcome::Failed(reason) if reason == "no such message" => {
                            RecordOutcome::Park(reason)
                        }
                        _ => RecordOutcome::Done,
                    }
                }
            })
            .await
    }
}
