//! The `media` function: copy jobs from `media.fifo` (one group per job), each copying a
//! message's image from WeChat into the bucket. A copy that fails for now is retried with
//! the FIFO consumer's backoff (30 s doubling to 15 min) until WeChat's three days are over,
//! when the service records it `unavailable`; an unreadable job is parked.

use super::fifo::FifoConsumer;
use crate::bootstrap::BatchHandler;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use wxbridge_core::metrics;
use wxbridge_core::model::MediaJob;
use wxbridge_core::ports::queue::Parking;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::media::{CopyOutcome, MediaKeeper};

/// Receives before a job is parked: at 15 min apart, longer than WeChat keeps media, so the
/// service gives a copy up (by WeChat's three days) before the consumer would.
pub const MEDIA_MAX_RECEIVES: u32 = 300;

/// What one job may take at worst: a token (6 s), WeChat's download and the bucket's
/// write (15 s each), the store's writes.
const RECORD_BUDGET_MS: i64 = 40_000;

pub struct MediaHandler<P: Ports, K> {
    keeper: MediaKeeper<P>,
    consumer: FifoConsumer<K>,
}

impl<P: Ports, K: Parking> MediaHandler<P, K> {
    pub fn new(keeper: MediaKeeper<P>, parking: K) -> Self {
        Self {
            keeper,
            consumer: FifoConsumer::new(parking)
                .with_record_budget_ms(RECORD_BUDGET_MS)
                .with_max_receives(MEDIA_MAX_RECEIVES),
        }
    }

    pub fn keeper(&self) -> &MediaKeeper<P> {
        &self.keeper
    }
}

impl<P: Ports, K: Parking + 'static> BatchHandler for MediaHandler<P, K> {
    async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        let keeper = &self.keeper;
        self.consumer
            .handle_bodies(&event, deadline_ms, |job: MediaJob| async move {
                let outcome = keeper.copy(&job).await;
                tracing::info!(message_id = %job.message.message_id, ?outcome, "image copy handled");
                match outcome {
                    CopyOutcome::Stored => metrics::count("stored"),
                    CopyOutcome::Unavailable(_) => metrics::count("unavailable"),
                    _ => {}
                }
                outcome
            })
            .await
    }
}
