//! The event source mapping against real FIFO queues on the local AWS emulator
//! (`$AWS_ENDPOINT_URL`, started by `scripts/test.sh`), with a stand-in for the runner's
//! invoke API that answers as it is told: what Lambda deletes, leaves and returns,
//! and the `event-source` binary the local stack runs.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wxbridge_devstack::event_source::HttpInvoker;
use wxbridge_testkit_aws::emulator::{
    self, create_fifo_queues, create_fifo_queues_timed, FifoQueues, QueueTiming, REGION,
};
use wxbridge_testkit_aws::event_source::{
    EventSourceMapping, Invocation, Outcome, Polled, SqsSource,
};

/// What the stand-in runtime answers an event with: status, headers, body.
type Answer = (u16, Vec<(&'static str, &'static str)>, Vec<u8>);
type Answering = Arc<dyn Fn(&Value) -> Answer + Send + Sync>;

/// A stand-in for the runner's invoke API: records each event with the path it was
/// posted to; answers with what it is told (200 `{}` until told otherwise), after the
/// delay it is told (none until told otherwise).
#[derive(Clone)]
struct Runtime {
    url: String,
    events: Arc<Mutex<Vec<(String, Value)>>>,
    answering: Arc<Mutex<Answering>>,
    delay: Arc<Mutex<Duration>>,
}

fn json_answer(status: u16, headers: Vec<(&'static str, &'static str)>, body: Value) -> Answer {
    (status, headers, body.to_string().into_bytes())
}

impl Runtime {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime");
        let runtime = Self {
            url: format!("http://{}", listener.local_addr().unwrap()),
            events: Arc::default(),
            answering: Arc::new(Mutex::new(Arc::new(|_: &Value| {
                json_answer(200, vec![], json!({}))
            }))),
            delay: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(invoked)
            .with_state(runtime.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        runtime
    }

    fn answer(&self, answering: impl Fn(&Value) -> Answer + Send + Sync + 'static) {
        *self.answering.lock().unwrap() = Arc::new(answering);
    }

    fn delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    fn events(&self) -> Vec<(String, Value)> {
        self.events.lock().unwrap().clone()
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.events()
            .iter()
            .map(|(_, event)| event["Records"].as_array().unwrap().len())
            .collect()
    }
}

async fn invoked(State(runtime): State<Runtime>, uri: Uri, body: Bytes) -> Response {
    let event: Value = serde_json::from_slice(&body).expect("the event is JSON");
    let answering = Arc::clone(&runtime.answering.lock().unwrap());
    let (status, headers, body) = answering(&event);
    let delay = *runtime.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    runtime
        .events
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), event));
    let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

fn bodies(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_owned())
        .collect()
}

fn message_ids_where(event: &Value, body: &str) -> Vec<Value> {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["body"] == body)
        .map(|r| json!({"itemIdentifier": r["messageId"]}))
        .collect()
}

/// A queue whose records come back after 1 s and go to the dead-letter queue on their
/// third receive, so a test sees a retry and SQS's redrive in seconds.
const QUICK: QueueTiming = QueueTiming {
    visibility_timeout_secs: 1,
    max_receive_count: 2,
};

/// Long enough past `QUICK`'s visibility timeout for a record to be visible again.
const PAST_VISIBILITY: Duration = Duration::from_millis(1200);

struct Setup {
    sqs: aws_sdk_sqs::Client,
    queues: FifoQueues,
    runtime: Runtime,
}

async fn setup(timing: QueueTiming) -> Setup {
    let sqs = emulator::sqs_client().await;
    let queues = if timing == QueueTiming::TEMPLATE {
        create_fifo_queues(&sqs, "esm").await
    } else {
        create_fifo_queues_timed(&sqs, "esm", timing).await
    };
    Setup {
        sqs,
        queues,
        runtime: Runtime::start().await,
    }
}

impl Setup {
    /// `inbound` fed from the test's queue.
    fn mapping(&self, batch_size: i32, report_batch_item_failures: bool) -> EventSourceMapping {
        let source = SqsSource {
            queue_url: self.queues.queue_url.clone(),
            queue_arn: self.queues.queue_arn.clone(),
            batch_size,
            report_batch_item_failures,
        };
        EventSourceMapping::new("inbound", &source, REGION)
    }

    async fn send(&self, bodies_and_groups: &[(&str, &str)]) {
        for (body, group) in bodies_and_groups {
            self.sqs
                .send_message()
                .queue_url(&self.queues.queue_url)
                .message_body(*body)
                .message_group_id(*group)
                .message_deduplication_id(*body)
                .send()
                .await
                .expect("send");
        }
    }

    /// One poll, invoking over HTTP as the `event-source` binary does, at `invoke_url`.
    async fn poll_at(&self, mapping: &EventSourceMapping, invoke_url: &str) -> Polled {
        let invoker = HttpInvoker::new(invoke_url, Duration::from_secs(10));
        mapping
            .poll(&self.sqs, Duration::ZERO, |event| {
                let invoker = &invoker;
                async move { invoker.invoke(&mapping.function, &event).await }
            })
            .await
            .expect("poll")
    }

    async fn poll(&self, mapping: &EventSourceMapping) -> Polled {
        self.poll_at(mapping, &self.runtime.url).await
    }

    /// What a queue still holds, once everything in flight is visible again.
    async fn left(&self, queue_url: &str) -> Vec<String> {
        tokio::time::sleep(PAST_VISIBILITY).await;
        let mut found = Vec::new();
        for _ in 0..5 {
            let messages = self.receive_now(queue_url).await;
            if messages.is_empty() {
                break;
            }
            found.extend(messages);
        }
        found.sort();
        found
    }

    /// The bodies of what is visible in a queue now, without waiting.
    async fn receive_now(&self, queue_url: &str) -> Vec<String> {
        self.sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.body.unwrap_or_default())
            .collect()
    }
}

#[tokio::test]
async fn partial_batch_failures_delete_the_rest_and_keep_failing_records_until_redrive() {
    let s = setup(QUICK).await;
    s.send(&[("a", "user-1"), ("b", "user-2"), ("c", "user-3")])
        .await;
    s.runtime.answer(|event| {
        json_answer(
            200,
            vec![],
            json!({"batchItemFailures": message_ids_where(event, "b")}),
        )
    });
    let mapping = s.mapping(10, true);
    let first = s.poll(&mapping).await;
    assert_eq!(first.records, 3);
    let (path, event) = s.runtime.events()[0].clone();
    assert_eq!(path, "/2015-03-31/functions/inbound/invocations");
    let mut received = bodies(&event);
    received.sort();
    assert_eq!(received, ["a", "b", "c"]);
    let record = &event["Records"][0];
    assert_eq!(record["eventSource"], "aws:sqs");
    assert_eq!(record["eventSourceARN"], s.queues.queue_arn.as_str());
    assert_eq!(record["awsRegion"], REGION);
    assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
    assert!(["user-1", "user-2", "user-3"]
        .contains(&record["attributes"]["MessageGroupId"].as_str().unwrap()));
    assert!(!record["receiptHandle"].as_str().unwrap().is_empty());

    // b comes back after the visibility timeout, with its receive count, and fails again.
    tokio::time::sleep(PAST_VISIBILITY).await;
    assert_eq!(s.poll(&mapping).await.records, 1);
    let retried = s.runtime.events()[1].1.clone();
    assert_eq!(bodies(&retried), ["b"]);
    assert_eq!(
        retried["Records"][0]["attributes"]["ApproximateReceiveCount"],
        "2"
    );
    // Past maxReceiveCount, SQS moves it to the dead-letter queue.
    tokio::time::sleep(PAST_VISIBILITY).await;
    s.poll(&mapping).await;
    assert!(s.left(&s.queues.queue_url).await.is_empty());
    assert_eq!(s.left(&s.queues.dlq_url).await, ["b"]);
    let line = first.to_string();
    assert!(line.contains("[inbound] 3 record(s)"), "{line}");
    assert!(line.contains("1 left for a retry"), "{line}");
}

#[tokio::test]
async fn a_function_error_leaves_the_whole_batch() {
    let s = setup(QUICK).await;
    s.send(&[("a", "g1"), ("b", "g2")]).await;
    s.runtime.answer(|_| {
        json_answer(
            200,
            vec![("X-Amz-Function-Error", "Unhandled")],
            json!({"errorType": "Boom", "errorMessage": "x"}),
        )
    });
    let first = s.poll(&s.mapping(10, true)).await;
    assert_eq!(
        first.outcome,
        Outcome::FunctionError("X-Amz-Function-Error Unhandled, Boom".into())
    );
    s.runtime.answer(|_| {
        json_answer(
            500,
            vec![],
            json!({"errorType": "Runtime", "errorMessage": "crashed"}),
        )
    });
    tokio::time::sleep(PAST_VISIBILITY).await;
    let second = s.poll(&s.mapping(10, true)).await;
    assert_eq!((second.deleted, second.left), (0, 2));
    assert_eq!(s.runtime.batch_sizes(), [2, 2]);
    // Received twice, neither deleted: past maxReceiveCount (2) SQS redrives them.
    let mut left = s.left(&s.queues.queue_url).await;
    left.extend(s.left(&s.queues.dlq_url).await);
    assert_eq!(left, ["a", "b"]);
    assert!(
        !second.to_string().contains("crashed"),
        "the log names the kind of error, not its message"
    );
}

#[tokio::test]
async fn an_unknown_item_identifier_fails_the_whole_batch() {
    let s = setup(QUICK).await;
    s.send(&[("a", "g1"), ("b", "g2")]).await;
    s.runtime.answer(|_| {
        json_answer(
            200,
            vec![],
            json!({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}),
        )
    });
    s.poll(&s.mapping(10, true)).await;
    assert_eq!(s.left(&s.queues.queue_url).await, ["a", "b"]);
}

#[tokio::test]
async fn without_report_batch_item_failures_a_success_deletes_everything() {
    let s = setup(QUICK).await;
    s.send(&[("a", "g1"), ("b", "g2")]).await;
    s.runtime.answer(|event| {
        json_answer(
            200,
            vec![],
            json!({"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}),
        )
    });
    s.poll(&s.mapping(10, false)).await;
    assert!(s.left(&s.queues.queue_url).await.is_empty());
}

#[tokio::test]
async fn batches_keep_to_the_batch_size() {
    let s = setup(QUICK).await;
    let sent: Vec<(String, String)> = (0..5).map(|i| (format!("m{i}"), format!("g{i}"))).collect();
    let sent: Vec<(&str, &str)> = sent.iter().map(|(b, g)| (b.as_str(), g.as_str())).collect();
    s.send(&sent).await;
    let mapping = s.mapping(2, true);
    while s.poll(&mapping).await.records > 0 {}
    let sizes = s.runtime.batch_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), 5);
    assert!(sizes.iter().all(|&size| size <= 2), "{sizes:?}");
    assert!(s.left(&s.queues.queue_url).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_runtime_returns_the_batch_at_once() {
    // The template's 540 s visibility timeout: only a batch returned at once is visible.
    let s = setup(QueueTiming::TEMPLATE).await;
    s.send(&[("a", "g1")]).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let polled = s.poll_at(&s.mapping(10, true), &closed).await;
    assert!(matches!(polled.outcome, Outcome::Returned(_)), "{polled:?}");
    assert_eq!(
        s.receive_now(&s.queues.queue_url).await,
        ["a"],
        "visible again without waiting for the timeout"
    );
}

/// A queue whose records come back after 1 s, redriven only after many receives: room for
/// the receive the mapping adds when it returns a record the emulator handed out early.
const QUICK_MANY_RECEIVES: QueueTiming = QueueTiming {
    visibility_timeout_secs: 1,
    max_receive_count: 10,
};

/// SQS hands a group out in order when several of its records become visible together;
/// moto hands out the last one first (scripts/tests/test_emulator.py pins it). The mapping
/// returns it and hands the group over in order.
#[tokio::test]
async fn a_group_left_whole_comes_back_in_order() {
    let s = setup(QUICK_MANY_RECEIVES).await;
    s.send(&[
        ("a0", "g1"),
        ("a1", "g1"),
        ("b0", "g2"),
        ("a2", "g1"),
        ("a3", "g1"),
    ])
    .await;
    // Every record of g1 fails: all four are left, and come back together after 1 s.
    s.runtime.answer(|event| {
        let failed: Vec<Value> = ["a0", "a1", "a2", "a3"]
            .iter()
            .flat_map(|body| message_ids_where(event, body))
            .collect();
        json_answer(200, vec![], json!({ "batchItemFailures": failed }))
    });
    let mapping = s.mapping(10, true);
    let first = s.poll(&mapping).await;
    assert_eq!((first.records, first.deleted, first.left), (5, 1, 4));
    assert_eq!(
        bodies(&s.runtime.events()[0].1),
        ["a0", "a1", "b0", "a2", "a3"]
    );

    tokio::time::sleep(PAST_VISIBILITY).await;
    s.runtime.answer(|_| json_answer(200, vec![], json!({})));
    let second = s.poll(&mapping).await;
    assert_eq!(bodies(&s.runtime.events()[1].1), ["a0", "a1", "a2", "a3"]);
    assert_eq!(second.deleted, 4);
    assert_eq!(
        second.returned_out_of_order, 1,
        "moto handed out a3 first (if it no longer does, the workaround can go)"
    );
    assert!(second
        .to_string()
        .contains("1 record(s) handed out ahead of their group returned"));
    assert!(s.left(&s.queues.queue_url).await.is_empty());
}

/// Counts the ReceiveMessage requests a client sends, with the wait each asks for.
#[derive(Debug, Clone, Default)]
struct ReceiveWaits(Arc<Mutex<Vec<Option<i32>>>>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for ReceiveWaits {
    fn name(&self) -> &'static str {
        "ReceiveWaits"
    }

    fn read_before_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(receive) = context
            .input()
            .downcast_ref::<aws_sdk_sqs::operation::receive_message::ReceiveMessageInput>(
        ) {
            self.0.lock().unwrap().push(receive.wait_time_seconds);
        }
        Ok(())
    }
}

/// A receive that waits for a first record never has the emulator wait (moto spins through
/// a long poll while a group is held: scripts/tests/test_emulator.py); it receives without
/// a wait and pauses between receives itself.
#[tokio::test]
async fn the_mapping_waits_for_records_itself() {
    let s = setup(QueueTiming::TEMPLATE).await;
    s.send(&[("a0", "g1"), ("a1", "g1")]).await;
    let waits = ReceiveWaits::default();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&emulator::sdk_config().await)
            .interceptor(waits.clone())
            .build(),
    );
    // a0 in flight (until the template's visibility timeout): a1 is held behind it.
    let held = s.mapping(1, true);
    assert_eq!(
        bodies(&serde_json::to_value(held.receive(&sqs, Duration::ZERO).await.unwrap()).unwrap()),
        ["a0"]
    );
    let started = std::time::Instant::now();
    let event = s
        .mapping(10, true)
        .receive(&sqs, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(event.records.is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    let waits = waits.0.lock().unwrap().clone();
    assert!(
        waits.len() >= 4,
        "a receive every {:?}: {waits:?}",
        wxbridge_testkit_aws::event_source::RECEIVE_PAUSE
    );
    assert!(waits.iter().all(|wait| *wait == Some(0)), "{waits:?}");
}

/// Each kind of function error is told apart from an answer, over HTTP (no queue needed).
#[tokio::test]
async fn every_kind_of_function_error_is_read_as_one() {
    let runtime = Runtime::start().await;
    let event = &aws_lambda_events::event::sqs::SqsEvent::default();
    let invoke = |timeout| {
        let invoker = HttpInvoker::new(&runtime.url, timeout);
        async move { invoker.invoke("inbound", event).await }
    };
    // Ample for an answer (these are not the timeout case, at the end).
    let seconds = Duration::from_secs(60);

    runtime.answer(|_| json_answer(200, vec![], json!({"batchItemFailures": []})));
    assert_eq!(
        invoke(seconds).await,
        Invocation::Answered(json!({"batchItemFailures": []}))
    );
    runtime.answer(|_| (200, vec![], vec![]));
    assert_eq!(
        invoke(seconds).await,
        Invocation::Answered(json!({})),
        "nothing returned is an empty answer"
    );
    runtime.answer(|_| {
        json_answer(
            200,
            vec![],
            json!({"errorType": "Panic", "errorMessage": "user said: secret"}),
        )
    });
    assert_eq!(
        invoke(seconds).await,
        Invocation::FunctionError("Panic".into())
    );
    runtime.answer(|_| (200, vec![], b"not json".to_vec()));
    assert_eq!(
        invoke(seconds).await,
        Invocation::FunctionError("unreadable answer".into())
    );
    runtime.answer(|_| (502, vec![], b"Bad Gateway".to_vec()));
    assert_eq!(
        invoke(seconds).await,
        Invocation::FunctionError("HTTP 502".into())
    );
    runtime.answer(|_| json_answer(200, vec![], json!({})));
    runtime.delay(Duration::from_millis(1500));
    assert_eq!(
        invoke(Duration::from_secs(1)).await,
        Invocation::FunctionError("no answer within 1 s".into())
    );
}

/// The binary the local stack runs: its start line, one line per batch, a mapping whose
/// queue cannot be polled logged and retried without stopping the others, and a clean
/// stop on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_feeds_each_function_from_its_queue_until_told_to_stop() {
    let s = setup(QueueTiming::TEMPLATE).await;
    s.send(&[("hello", "g1")]).await;
    let missing_queue = format!(
        "{}-missing.fifo",
        s.queues.queue_url.trim_end_matches(".fifo")
    );
    let functions = json!([
        {"name": "callback", "sqs_sources": [], "http_routes": [{"method": "POST", "path": "/wechat/{channel}"}]},
        {"name": "inbound", "sqs_sources": [{"queue_url": s.queues.queue_url, "queue_arn": s.queues.queue_arn,
                                             "batch_size": 10, "report_batch_item_failures": true}]},
        {"name": "dispatch", "sqs_sources": [{"queue_url": missing_queue, "queue_arn": "arn:aws:sqs:us-east-1:123456789012:missing.fifo",
                                              "batch_size": 10, "report_batch_item_failures": true}]}
    ]);
    let file = std::env::temp_dir().join(format!("{}.json", emulator::unique_name("functions")));
    std::fs::write(&file, functions.to_string()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_event-source"))
        .arg(&s.runtime.url)
        .arg(&file)
        .env("AWS_ENDPOINT_URL", emulator::endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("event-source starts");
    // Its lines as it prints them, so that the test waits for what it looks for (however
    // long the machine takes), not for a guess of how long that takes.
    let printed: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let (stdout, printed) = (child.stdout.take().unwrap(), Arc::clone(&printed));
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                printed.lock().unwrap().push(line.unwrap());
            }
        })
    };
    let failed_polls = |printed: &[String]| {
        printed
            .iter()
            .filter(|l| l.starts_with("[dispatch] poll failed: ReceiveMessage"))
            .count()
    };
    // Until inbound was invoked and the failing mapping logged a failure and tried again
    // (within 60 s: a guard, not a measure).
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while (s.runtime.events().is_empty() || failed_polls(&printed.lock().unwrap()) < 2)
        && std::time::Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.runtime.events().len(), 1, "the binary invoked inbound");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    reader.join().unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(status.success(), "{status:?}");
    let stdout = printed.lock().unwrap().join("\n");
    let queue = s.queues.queue_url.rsplit('/').next().unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("event source mapping: {queue} → inbound (batch 10, partial batch failures)"),
            "event source mapping: ".to_owned()
                + missing_queue.rsplit('/').next().unwrap()
                + " → dispatch (batch 10, partial batch failures)",
        ],
        "{stdout}"
    );
    assert!(
        lines.contains(&format!("[inbound] 1 record(s) from {queue}: 1 done").as_str()),
        "{stdout}"
    );
    assert!(
        failed_polls(&printed.lock().unwrap()) >= 2,
        "polls go on after a failure: {stdout}"
    );
    assert!(!stdout.contains("hello"), "no message content in the log");
    assert!(s.left(&s.queues.queue_url).await.is_empty());
}
