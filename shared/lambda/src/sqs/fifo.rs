//! Consuming a FIFO queue the way the SQS functions do, in order per group.
//!
//! Every consumer's service answers in its own outcome, which converts into the one
//! [`Settlement`] (done, park, retry, retry soon); this is the one place a settlement
//! becomes the batch response, a backoff or a parked record. A record that is done (settled, or parked in the dead-letter queue with its reason)
//! leaves the queue. A record to retry is reported as a batch item failure and kept away
//! for a backoff that doubles with each receive — and, FIFO, so is every later record of
//! its group in the batch, so a group's order is never broken. A record retried
//! `max_receives` times is parked, with its reason, before SQS's own redrive would move it
//! silently. Records the invocation has no time left for are made visible again at once,
//! for another invocation.
//!
//! Two kinds of retry have their own budgets. A partner or WeChat that failed
//! ([`Settlement::Retry`]) is given time: 30 s, doubling to 15 min. A blip
//! ([`Settlement::RetrySoon`]: the bridge's own store or queue that did not answer — a
//! throttle, a timeout under a burst — or WeChat's "system busy", -1) is tried again inside
//! the invocation after a jittered pause (a few hundred ms, then about a second) and then
//! kept away briefly: 5 s, doubling to 1 min, for its first 8 receives (about 5 minutes) —
//! a user never waits minutes for a reply the bridge already has because the store
//! hiccuped — and as long as a partner after that, so an outage of the store still takes
//! about a day to exhaust `max_receives`.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use thiserror::Error;
use wxbridge_core::clock::{system_clock_ms, Clock, SharedClock};
use wxbridge_core::metrics;
use wxbridge_core::ports::queue::Parking;
use wxbridge_core::services::settlement::Settlement;

/// Backoff before a retried record is seen again: 30 s, doubling per receive, at most 15 min.
pub fn backoff_secs(receive_count: u32) -> i32 {
    doubling(30, 900, receive_count)
}

/// Receives of a record retried soon (a blip) that get the short backoff.
const QUICK_RECEIVES: u32 = 8;

/// Backoff after a blip: 5 s, doubling per receive, at most 1 min, for
/// [`QUICK_RECEIVES`] receives; then the long backoff.
pub fn store_backoff_secs(receive_count: u32) -> i32 {
    if receive_count <= QUICK_RECEIVES {
        doubling(5, 60, receive_count)
    } else {
        backoff_secs(receive_count - QUICK_RECEIVES)
    }
}

fn doubling(first: i64, cap: i64, receive_count: u32) -> i32 {
    let doubled = first << receive_count.saturating_sub(1).min(8);
    doubled.min(cap) as i32
}

/// The pauses before each new try, inside one invocation, of a record retried soon; each
/// is jittered by ±50% so that a burst's records do not retry together.
const STORE_RETRY_PAUSES_MS: [u64; 2] = [250, 1_000];

/// What one record may take at worst: a partner's or WeChat's timeout, the store's calls
/// (10 s each at worst, `CallBudget::Consuming`) and the tries again inside the invocation
/// (each of which is started only while this much time is left).
pub const DEFAULT_RECORD_BUDGET_MS: i64 = 30_000;

/// Time kept back at the deadline for what follows a record: its backoff or parking (one
/// queue call, 10 s at worst) and the answer. A record still running then is stopped and
/// handed back to be tried again soon: a timed-out invocation would keep its whole batch
/// away for the queue's visibility timeout (9 minutes as deployed).
const CLOSING_MS: i64 = 12_000;

/// Deadlines before this (September 2001, in ms) are not points in time: `cargo lambda
/// watch` sends the invocation's time budget in ms where Lambda (and the local stack's
/// runner) send the deadline, so such a value is read as time left from the start of the
/// batch.
const EARLIEST_DEADLINE_MS: i64 = 1_000_000_000_000;

/// Receives before a retried record is parked (`maxReceiveCount` of the queue is higher,
/// so the bridge parks it with its reason first).
pub const DEFAULT_MAX_RECEIVES: u32 = 100;

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
    /// go to `settle`, whose outcome (a service's own) says what becomes of the record.
    pub async fn handle_bodies<T, O, F, Fut>(
        &self,
        event: &SqsEvent,
        deadline_ms: Option<i64>,
        mut settle: F,
    ) -> SqsBatchResponse
    where
        T: serde::de::DeserializeOwned,
        O: Into<Settlement>,
        F: FnMut(T) -> Fut,
        Fut: Future<Output = O>,
    {
        self.handle(event, deadline_ms, |record| {
            let body = read_body::<T>(record).map(&mut settle);
            async move {
                match body {
                    Ok(settling) => settling.await.into(),
                    Err(unreadable) => Settlement::Park(unreadable.to_string()),
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
        Fut: Future<Output = Settlement>,
    {
        let deadline_ms = self.deadline(deadline_ms);
        // Each failed group, and how long its records are kept away.
        let mut failed_groups: HashMap<String, i32> = HashMap::new();
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            let held = match failed_groups.get(&group) {
                // Waits behind its group's failure as long as the failed record does.
                Some(secs) => Some(*secs),
                // Left for another invocation, at once.
                None if !self.has_time(deadline_ms) => Some(0),
                None => None,
            };
            let kept_away = match held {
                Some(secs) => {
                    self.delay(record, secs).await;
                    Some(secs)
                }
                None => {
                    let mut outcome = self
                        .before_closing(deadline_ms, Box::pin(settle(record)))
                        .await;
                    for pause in STORE_RETRY_PAUSES_MS {
                        let Settlement::RetrySoon(reason) = &outcome else {
                            break;
                        };
                        tokio::time::sleep(jittered(pause)).await;
                        if !self.has_time(deadline_ms) {
                            break;
                        }
                        let message_id = record.message_id.as_deref().unwrap_or_default();
                        tracing::warn!(message_id, %reason, "a blip (store, queue or WeChat busy); trying again now");
                        metrics::count("retried_in_invocation");
                        outcome = self
                            .before_closing(deadline_ms, Box::pin(settle(record)))
                            .await;
                    }
                    self.conclude(record, &group, outcome).await
                }
            };
            if let Some(secs) = kept_away {
                failed_groups.insert(group, secs);
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// A record's outcome, or `RetrySoon` when the invocation's closing time comes first
    /// (the record's work stops where it is: every step of it is safe to do again, as after
    /// a crash).
    /// The record's work comes boxed: held inline, the timeout's state and the handlers'
    /// large futures overflow a test thread's stack in debug builds.
    async fn before_closing(
        &self,
        deadline_ms: Option<i64>,
        settling: Pin<Box<impl Future<Output = Settlement>>>,
    ) -> Settlement {
        let Some(deadline_ms) = deadline_ms else {
            return settling.await;
        };
        let left_ms = (deadline_ms - CLOSING_MS - self.now_ms()).max(0) as u64;
        match tokio::time::timeout(std::time::Duration::from_millis(left_ms), settling).await {
            Ok(outcome) => outcome,
            Err(_) => {
                metrics::count("stopped_at_deadline");
                Settlement::RetrySoon("stopped before the invocation's deadline".into())
            }
        }
    }

    /// Whether a record may still be started before `deadline_ms`.
    fn has_time(&self, deadline_ms: Option<i64>) -> bool {
        deadline_ms.is_none_or(|d| self.now_ms() + self.record_budget_ms <= d)
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

    /// `None` when the record is done with; else how long it is kept away.
    async fn conclude(&self, record: &SqsMessage, group: &str, outcome: Settlement) -> Option<i32> {
        let (reason, secs) = match outcome {
            Settlement::Done => return None,
            Settlement::Park(reason) => return self.park(record, group, &reason).await,
            Settlement::Retry(reason) => (reason, backoff_secs(receives(record))),
            Settlement::RetrySoon(reason) => (reason, store_backoff_secs(receives(record))),
        };
        if receives(record) >= self.max_receives {
            let reason = format!(
                "retries exhausted after {} receives: {reason}",
                self.max_receives
            );
            return self.park(record, group, &reason).await;
        }
        let message_id = record.message_id.as_deref().unwrap_or_default();
        tracing::warn!(message_id, receives = receives(record), backoff_secs = secs, %reason, "record will be retried");
        metrics::count("retried");
        self.delay(record, secs).await;
        Some(secs)
    }

    async fn delay(&self, record: &SqsMessage, secs: i32) {
        if let Some(receipt) = record.receipt_handle.as_deref() {
            if let Err(error) = self.parking.delay(receipt, secs).await {
                tracing::warn!(%error, "no backoff; retried after the visibility timeout");
            }
        }
    }

    async fn park(&self, record: &SqsMessage, group: &str, reason: &str) -> Option<i32> {
        let body = record.body.as_deref().unwrap_or_default();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        tracing::warn!(message_id, %reason, "record parked in the dead-letter queue");
        metrics::count("parked");
        match self.parking.park(body, group, message_id, reason).await {
            Ok(()) => None,
            Err(error) => {
                tracing::error!(message_id, %error, "could not park; it will be retried");
                let secs = store_backoff_secs(receives(record));
                self.delay(record, secs).await;
                Some(secs)
            }
        }
    }
}

/// `pause` give or take half of it.
fn jittered(pause_ms: u64) -> std::time::Duration {
    let factor: f64 = rand::random::<f64>() + 0.5;
    std::time::Duration::from_millis((pause_ms as f64 * factor) as u64)
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

    fn record(id: &str, group: &str) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record.receipt_handle = Some(format!("receipt-{id}"));
        record.attributes = HashMap::from([
            ("MessageGroupId".to_owned(), group.to_owned()),
            ("ApproximateReceiveCount".to_owned(), "1".to_owned()),
        ]);
        record
    }

    #[tokio::test]
    async fn a_store_that_did_not_answer_is_tried_again_soon_and_a_partner_later() {
        let parking = wxbridge_testkit::MemoryParking::default();
        let consumer = FifoConsumer::new(parking.clone());
        let mut event = SqsEvent::default();
        event.records = vec![
            record("hiccup", "user-1"),     // the store answers at the second try
            record("store-down", "user-2"), // the store never answers
            record("behind", "user-2"),     // waits behind its group
            record("partner-down", "user-3"),
        ];
        let tries: std::sync::Mutex<HashMap<String, usize>> = Default::default();
        let response = consumer
            .handle(&event, None, |record| {
                let id = record.message_id.clone().unwrap();
                let attempt = {
                    let mut tries = tries.lock().unwrap();
                    let n = tries.entry(id.clone()).or_default();
                    *n += 1;
                    *n
                };
                async move {
                    match id.as_str() {
                        "hiccup" if attempt == 1 => Settlement::RetrySoon("timeout".into()),
                        "store-down" => Settlement::RetrySoon("timeout".into()),
                        "partner-down" => Settlement::Retry("partner answered 503".into()),
                        _ => Settlement::Done,
                    }
                }
            })
            .await;
        let tries = tries.into_inner().unwrap();
        assert_eq!(tries["hiccup"], 2, "tried again inside the invocation");
        assert_eq!(tries["store-down"], 1 + STORE_RETRY_PAUSES_MS.len());
        assert_eq!(
            tries.get("behind"),
            None,
            "never started ahead of its group"
        );
        assert_eq!(tries["partner-down"], 1, "a partner is not hammered");
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["store-down", "behind", "partner-down"]);
        assert_eq!(
            parking.delays(),
            [
                ("receipt-store-down".to_owned(), 5),
                ("receipt-behind".to_owned(), 5),
                ("receipt-partner-down".to_owned(), 30),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_still_running_near_the_deadline_is_stopped_and_handed_back() {
        let parking = wxbridge_testkit::MemoryParking::default();
        let started = tokio::time::Instant::now();
        let now = move || 1_800_000_000_000 + started.elapsed().as_millis() as i64;
        let consumer = FifoConsumer::new(parking.clone()).with_clock(now);
        let mut event = SqsEvent::default();
        event.records = vec![record("stuck", "user-1"), record("next", "user-2")];
        let deadline = now() + 90_000;
        let response = consumer
            .handle(&event, Some(deadline), |record| {
                let stuck = record.message_id.as_deref() == Some("stuck");
                async move {
                    if stuck {
                        // A store call that never answers.
                        std::future::pending::<()>().await;
                    }
                    Settlement::Done
                }
            })
            .await;
        let took = started.elapsed().as_millis() as i64;
        assert!(
            took <= 90_000 - CLOSING_MS + 2_000,
            "answered after {took} ms"
        );
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        // Too late to start the next one: handed back at once, for another invocation.
        assert_eq!(failed, ["stuck", "next"]);
        assert_eq!(
            parking.delays(),
            [
                ("receipt-stuck".to_owned(), 5),
                ("receipt-next".to_owned(), 0)
            ]
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<i32> = (1..=8).map(backoff_secs).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(backoff_secs(0), 30);
        let store: Vec<i32> = (1..=11).map(store_backoff_secs).collect();
        assert_eq!(store, [5, 10, 20, 40, 60, 60, 60, 60, 30, 60, 120]);
    }
}
