//! Order per user under load, through the event source mapping and the functions' FIFO
//! consumer on the local AWS emulator (`$AWS_ENDPOINT_URL`): 20 users × 10 messages go
//! through two FIFO queues shaped as the template's (`inbound.fifo` → `inbound` →
//! `outbound.fifo` → `dispatch`), each fed by its own mapping, polling at once. Failures
//! are injected at both stages: a record to retry, after which the consumer backs off
//! every later record of its group in the batch (several records backed off at once, the
//! case in which the emulator hands a group out from its last record), and invocations
//! that fail whole (the batch comes back after the visibility timeout). Every user must
//! get every message once, in order. Backoffs are cut to 1 s and the visibility timeout
//! to 2 s, so the run takes seconds.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use aws_lambda_events::event::sqs::SqsMessage;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wxbridge_core::ports::queue::{Parking, QueueError};
use wxbridge_core::services::settlement::Settlement;
use wxbridge_lambda::sqs::fifo::FifoConsumer;
use wxbridge_testkit_aws::emulator::{self, create_fifo_queues_timed, FifoQueues, QueueTiming};
use wxbridge_testkit_aws::event_source::{EventSourceMapping, Invocation};

const USERS: usize = 20;
const MESSAGES: usize = 10;
/// How many messages of one user are queued in a row.
const RUN: usize = 5;
/// A guard against a run that would never end, not a measure: the run takes seconds.
const DEADLINE: Duration = Duration::from_secs(120);

const TIMING: QueueTiming = QueueTiming {
    visibility_timeout_secs: 2,
    max_receive_count: 50,
};

/// The functions' backoff (30 s, doubling), cut to 1 s: what the consumer asks for is kept.
#[derive(Clone)]
struct QuickBackoff {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    parked: Arc<Mutex<Vec<String>>>,
}

impl Parking for QuickBackoff {
    async fn park(&self, body: &str, _: &str, _: &str, reason: &str) -> Result<(), QueueError> {
        self.parked
            .lock()
            .unwrap()
            .push(format!("{body}: {reason}"));
        Ok(())
    }

    async fn delay(&self, receipt_handle: &str, _seconds: i32) -> Result<(), QueueError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(1)
            .send()
            .await
            .map_err(|e| QueueError(Box::new(e)))?;
        Ok(())
    }
}

/// One stage: a queue, its mapping, the consumer, and what the stage did.
struct Stage {
    name: &'static str,
    queues: FifoQueues,
    mapping: EventSourceMapping,
    consumer: FifoConsumer<QuickBackoff>,
    /// Each user's messages in the order this stage finished them.
    finished: Mutex<BTreeMap<String, Vec<usize>>>,
    invocations: AtomicUsize,
    /// Batches in which two or more records of one group were backed off together.
    group_backoffs: AtomicUsize,
    returned_out_of_order: AtomicUsize,
    parked: Arc<Mutex<Vec<String>>>,
}

impl Stage {
    async fn new(sqs: &aws_sdk_sqs::Client, name: &'static str) -> Self {
        let queues = create_fifo_queues_timed(sqs, name, TIMING).await;
        let parked = Arc::default();
        let consumer = FifoConsumer::new(QuickBackoff {
            sqs: sqs.clone(),
            queue_url: queues.queue_url.clone(),
            parked: Arc::clone(&parked),
        });
        Self {
            name,
            mapping: queues.event_source(name),
            queues,
            consumer,
            finished: Mutex::default(),
            invocations: AtomicUsize::new(0),
            group_backoffs: AtomicUsize::new(0),
            returned_out_of_order: AtomicUsize::new(0),
            parked,
        }
    }

    /// Whether this stage fails `user`'s message `n` the first time it sees it (about one
    /// in five, different ones at each stage).
    fn fails(&self, user: usize, n: usize) -> bool {
        let salt = if self.name == "inbound" { 0 } else { 2 };
        (user * 3 + n * 7 + salt).is_multiple_of(5)
    }

    /// Whether the `invocation`th invocation fails whole, before any record is handled
    /// (every 7th at the second stage).
    fn crashes(&self, invocation: usize) -> bool {
        self.name == "dispatch" && invocation % 7 == 3
    }

    /// Polls until `stop`: each batch handled in process by the FIFO consumer, `next` (the
    /// next stage's queue, if any) sent every record finished.
    async fn run(&self, sqs: &aws_sdk_sqs::Client, next: Option<&str>, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            let polled = self
                .mapping
                .poll(sqs, Duration::from_millis(500), |event| async move {
                    let invocation = self.invocations.fetch_add(1, Ordering::SeqCst);
                    if self.crashes(invocation) {
                        return Invocation::FunctionError("injected".into());
                    }
                    let response = self
                        .consumer
                        .handle(&event, None, |record| self.settle(sqs, next, record))
                        .await;
                    let mut backed_off: HashMap<String, usize> = HashMap::new();
                    for failure in &response.batch_item_failures {
                        let record = event
                            .records
                            .iter()
                            .find(|r| r.message_id.as_deref() == Some(&failure.item_identifier))
                            .expect("a record of the batch");
                        *backed_off.entry(user_of(record).0).or_default() += 1;
                    }
                    if backed_off.values().any(|&n| n >= 2) {
                        self.group_backoffs.fetch_add(1, Ordering::SeqCst);
                    }
                    Invocation::answered(&response)
                })
                .await
                .expect("poll");
            self.returned_out_of_order
                .fetch_add(polled.returned_out_of_order, Ordering::SeqCst);
        }
    }

    fn settle(
        &self,
        sqs: &aws_sdk_sqs::Client,
        next: Option<&str>,
        record: &SqsMessage,
    ) -> impl std::future::Future<Output = Settlement> + '_ {
        let (user, n) = user_of(record);
        let first_time = record
            .attributes
            .get("ApproximateReceiveCount")
            .is_some_and(|count| count == "1");
        let body = record.body.clone().unwrap_or_default();
        let (sqs, next) = (sqs.clone(), next.map(str::to_owned));
        async move {
            let index: usize = user.trim_start_matches('u').parse().unwrap();
            if first_time && self.fails(index, n) {
                return Settlement::Retry("injected".into());
            }
            if let Some(next) = next {
                sqs.send_message()
                    .queue_url(next)
                    .message_body(&body)
                    .message_group_id(&user)
                    .message_deduplication_id(&body)
                    .send()
                    .await
                    .expect("send to the next stage");
            }
            self.finished
                .lock()
                .unwrap()
                .entry(user)
                .or_default()
                .push(n);
            Settlement::Done
        }
    }

    fn finished(&self) -> BTreeMap<String, Vec<usize>> {
        self.finished.lock().unwrap().clone()
    }

    fn finished_count(&self) -> usize {
        self.finished.lock().unwrap().values().map(Vec::len).sum()
    }
}

/// `"u7:3"` (user 7's message 3) as `("u7", 3)`.
fn user_of(record: &SqsMessage) -> (String, usize) {
    let body = record.body.as_deref().unwrap_or_default();
    let (user, n) = body.split_once(':').expect("user:n");
    (user.to_owned(), n.parse().expect("n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_user_gets_every_message_once_in_order_under_load() {
    let started = Instant::now();
    let sqs = emulator::sqs_client().await;
    let (inbound, dispatch) = (
        Stage::new(&sqs, "inbound").await,
        Stage::new(&sqs, "dispatch").await,
    );
    // Every message queued before either mapping polls, in a fixed order: the users take
    // turns, five messages at a time (u0:0–4, u1:0–4, …, u19:0–4, u0:5–9, …). So the first
    // batch holds u0:0–4 and u1:0–4, and u0:0 and u1:1 fail the first time: the consumer
    // backs off the rest of their runs, several records of a group at once, whatever the
    // machine's speed. (Sent while the mapping polled, a slow machine's batches held one
    // record a group and provoked nothing.)
    for round in 0..MESSAGES / RUN {
        for user in 0..USERS {
            for n in round * RUN..(round + 1) * RUN {
                let body = format!("u{user}:{n}");
                sqs.send_message()
                    .queue_url(&inbound.queues.queue_url)
                    .message_body(&body)
                    .message_group_id(format!("u{user}"))
                    .message_deduplication_id(&body)
                    .send()
                    .await
                    .expect("send");
            }
        }
    }
    let stop = AtomicBool::new(false);
    let total = USERS * MESSAGES;
    let watch = async {
        while dispatch.finished_count() < total && started.elapsed() < DEADLINE {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(
        inbound.run(&sqs, Some(&dispatch.queues.queue_url), &stop),
        dispatch.run(&sqs, None, &stop),
        watch,
    );

    let in_order: Vec<usize> = (0..MESSAGES).collect();
    for stage in [&inbound, &dispatch] {
        let finished = stage.finished();
        let out_of_order: Vec<_> = finished
            .iter()
            .filter(|(_, got)| **got != in_order)
            .collect();
        assert!(
            out_of_order.is_empty() && finished.len() == USERS,
            "{}: users whose messages were not finished once each in order: {out_of_order:?} ({} of {USERS} users finished anything)",
            stage.name,
            finished.len()
        );
        assert!(stage.parked.lock().unwrap().is_empty(), "nothing parked");
    }
    // What the run was to provoke: the first stage's first batch backs off several records
    // of a group at once (the order the messages were queued in sees to it); the second
    // stage's batches may or may not.
    assert!(
        inbound.group_backoffs.load(Ordering::SeqCst) > 0,
        "several records of a group backed off at once"
    );
    assert!(
        dispatch.invocations.load(Ordering::SeqCst) > 3,
        "an invocation failed whole"
    );
    eprintln!(
        "{total} messages of {USERS} users in order through two queues in {:.1} s; \
         batches backing off several records of a group: {} and {}; records the emulator \
         handed out ahead of their group, returned by the mapping: {} and {}",
        started.elapsed().as_secs_f64(),
        inbound.group_backoffs.load(Ordering::SeqCst),
        dispatch.group_backoffs.load(Ordering::SeqCst),
        inbound.returned_out_of_order.load(Ordering::SeqCst),
        dispatch.returned_out_of_order.load(Ordering::SeqCst),
    );
    for stage in [&inbound, &dispatch] {
        // Drained: nothing left on either queue, nothing in its dead-letter queue.
        for url in [&stage.queues.queue_url, &stage.queues.dlq_url] {
            let left = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .send()
                .await
                .expect("receive")
                .messages
                .unwrap_or_default();
            assert!(left.is_empty(), "{}: {url} holds {left:?}", stage.name);
        }
    }
}
