//! Consuming a FIFO queue the way the SQS functions do, in order per group.
//!
//! A record that is done (settled, or parked in the dead-letter queue with its reason)
//! leaves the queue. A record to retry is reported as a batch item failure and kept away
//! for a backoff that doubles with each receive — and, FIFO, so is every later record of
//! its group in the batch, so a group's order is never broken. A record retried
//! `max_receives` times is parked, with its reason, before SQS's own redrive would move it
//! silently. Records the invocation has no time left for are returned untouched.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use thiserror::Error;
use wxbridge_core::clock::{system_clock_ms, Clock, SharedClock};
use wxbridge_core::metrics;
use wxbridge_core::ports::queue::Parking;

/// Backoff before a retried record is seen again: 30 s, doubling per receive, at most 15 min.
pub fn backoff_secs(receive_count: u32) -> i32 {
    let doubled = 30i64 << receive_count.saturating_sub(1).min(5);
    doubled.min(900) as i32
}

/// What one record may take at worst: a partner's or WeChat's timeout and the store's calls.
pub const DEFAULT_RECORD_BUDGET_MS: i64 = 10_000;

/// Deadlines before this (September 2001, in ms) are not points in time: `cargo lambda
/// watch` sends the invocation's time budget in ms where Lambda (and the local stack's
/// runner) send the deadline, so such a value is read as time left from the start of the
/// batch.
const EARLIEST_DEADLINE_MS: i64 = 1_000_000_000_000;

/// Receives before a retried record is parked (`maxReceiveCount` of the queue is higher,
/// so the bridge parks it with its reason first).
pub const DEFAULT_MAX_RECEIVES: u32 = 100;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Done,
    /// Cannot succeed: to the dead-letter queue, with the reason.
    Park(String),
    Retry(String),
}

pub struct FifoConsumer<P> {
    parking: P,
    clock: SharedClock,
    max_receives: u32,
    record_budget_ms: i64,
}

fn receives(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

impl<P: Parking> FifoConsumer<P> {
    pub fn new(parking: P) -> Self {
        Self {
            parking,
            clock: Arc::new(system_clock_ms),
            max_receives: DEFAULT_MAX_RECEIVES,
            record_budget_ms: DEFAULT_RECORD_BUDGET_MS,
        }
    }

    /// A record is started only while this much time is left before the deadline.
    pub fn with_record_budget_ms(mut self, budget_ms: i64) -> Self {
        self.record_budget_ms = budget_ms;
        self
    }

    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.max_receives = max_receives.max(1);
        self
    }

    /// Replaces the clock, for tests.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Handles a batch whose bodies are JSON `T`: an unreadable body is parked, the others
    /// go to `settle`.
    pub async fn handle_bodies<T, F, Fut>(
        &self,
        event: &SqsEvent,
        deadline_ms: Option<i64>,
        mut settle: F,
    ) -> SqsBatchResponse
    where
        T: serde::de::DeserializeOwned,
        F: FnMut(T) -> Fut,
        Fut: Future<Output = RecordOutcome>,
    {
        self.handle(event, deadline_ms, |record| {
            let body = read_body::<T>(record).map(&mut settle);
            async move {
                match body {
                    Ok(settling) => settling.await,
                    Err(unreadable) => RecordOutcome::Park(unreadable.to_string()),
                }
            }
        })
        .await
    }

    /// Handles a batch with `settle` for each record; `deadline_ms` is when the invocation
    /// must have answered.
    pub async fn handle<F, Fut>(
        &self,
        event: &SqsEvent,
        deadline_ms: Option<i64>,
        mut settle: F,
    ) -> SqsBatchResponse
    where
        F: FnMut(&SqsMessage) -> Fut,
        Fut: Future<Output = RecordOutcome>,
    {
        let deadline_ms = self.deadline(deadline_ms);
        let mut failed_groups: HashSet<String> = HashSet::new();
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            let out_of_time =
                deadline_ms.is_some_and(|d| self.now_ms() + self.record_budget_ms > d);
            let done = if failed_groups.contains(&group) || out_of_time {
                // Waits behind its group's failure (or for another invocation) as long as
                // the failed record does.
                self.back_off(record).await;
                false
            } else {
                let outcome = settle(record).await;
                self.conclude(record, &group, outcome).await
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

    /// The runtime's deadline as a point in time (see [`EARLIEST_DEADLINE_MS`]).
    fn deadline(&self, deadline_ms: Option<i64>) -> Option<i64> {
        deadline_ms.map(|d| {
            if (0..EARLIEST_DEADLINE_MS).contains(&d) {
                self.now_ms() + d
            } else {
                d
            }
        })
    }

    /// `true` when the record is done with.
    async fn conclude(&self, record: &SqsMessage, group: &str, outcome: RecordOutcome) -> bool {
        match outcome {
            RecordOutcome::Done => true,
            RecordOutcome::Park(reason) => self.park(record, group, &reason).await,
            RecordOutcome::Retry(reason) if receives(record) >= self.max_receives => {
                let reason = format!(
                    "retries exhausted after {} receives: {reason}",
                    self.max_receives
                );
                self.park(record, group, &reason).await
            }
            RecordOutcome::Retry(reason) => {
                let message_id = record.message_id.as_deref().unwrap_or_default();
                tracing::warn!(message_id, receives = receives(record), %reason, "record will be retried");
                metrics::count("retried");
                self.back_off(record).await;
                false
            }
        }
    }

    async fn back_off(&self, record: &SqsMessage) {
        if let Some(receipt) = record.receipt_handle.as_deref() {
            if let Err(error) = self
                .parking
                .delay(receipt, backoff_secs(receives(record)))
                .await
            {
                tracing::warn!(%error, "no backoff; retried after the visibility timeout");
            }
        }
    }

    async fn park(&self, record: &SqsMessage, group: &str, reason: &str) -> bool {
        let body = record.body.as_deref().unwrap_or_default();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        tracing::warn!(message_id, %reason, "record parked in the dead-letter queue");
        metrics::count("parked");
        match self.parking.park(body, group, message_id, reason).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(message_id, %error, "could not park; it will be retried");
                false
            }
        }
    }
}

/// A record whose body is not what its queue carries. The parser's message may quote the
/// body, so only where it failed is kept.
#[derive(Debug, Error)]
#[error("unreadable record ({category:?} error at line {line} column {column})")]
pub struct UnreadableRecord {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

/// A record's body as `T`.
pub fn read_body<T: serde::de::DeserializeOwned>(
    record: &SqsMessage,
) -> Result<T, UnreadableRecord> {
    serde_json::from_str(record.body.as_deref().unwrap_or_default()).map_err(|error| {
        UnreadableRecord {
            category: error.classify(),
            line: error.line(),
            column: error.column(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_budget_in_place_of_a_deadline_counts_from_now() {
        let consumer = FifoConsumer::new(wxbridge_testkit::MemoryParking::default());
        let now = consumer.now_ms();
        let budget = consumer.deadline(Some(600_000)).unwrap();
        assert!((now + 600_000..now + 601_000).contains(&budget));
        assert_eq!(consumer.deadline(Some(now + 5_000)), Some(now + 5_000));
        assert_eq!(consumer.deadline(None), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<i32> = (1..=8).map(backoff_secs).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(backoff_secs(0), 30);
    }
}
