//! The local Lambda runner (`wxbridge_devstack::runner`, the `lambda-runner` binary) with
//! real function processes: this crate's `lambda-test-function`, built on the same runtime
//! crates as the bridge's functions (`lambda_runtime`, `lambda_http`). Each test starts
//! its own runner on a free port; none needs the AWS emulator.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wxbridge_devstack::event_source::HttpInvoker;
use wxbridge_devstack::runner::{read_reports, FunctionSpec, Runner};
use wxbridge_testkit_aws::event_source::Invocation;

const TEST_FUNCTION: &str = env!("CARGO_BIN_EXE_lambda-test-function");

/// A function of JSON events (the test function's default kind) with `timeout`.
fn json_function(name: &str, timeout: Duration) -> FunctionSpec {
    let mut spec = FunctionSpec::new(name, TEST_FUNCTION);
    spec.timeout = timeout;
    spec
}

/// The test function as another kind (`TEST_FUNCTION_KIND`).
fn function_of_kind(name: &str, kind: &str) -> FunctionSpec {
    let mut spec = json_function(name, Duration::from_secs(5));
    spec.env.insert("TEST_FUNCTION_KIND".into(), kind.into());
    spec
}

async fn start(functions: Vec<FunctionSpec>) -> Runner {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Runner::start(listener, functions, None).unwrap()
}

/// What the invoke API answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    function_error: Option<String>,
    request_id: Option<String>,
    body: Value,
}

impl Answer {
    /// The function's answer; fails the test on a function error.
    fn ok(self) -> Value {
        assert_eq!(
            (self.status, self.function_error.as_deref()),
            (200, None),
            "{}",
            self.body
        );
        self.body
    }

    /// The function error's type; fails the test when there is none.
    fn error_type(&self) -> &str {
        assert_eq!(self.status, 200, "a function error is a 200: {}", self.body);
        assert_eq!(
            self.function_error.as_deref(),
            Some("Unhandled"),
            "{}",
            self.body
        );
        self.body["errorType"].as_str().expect("an errorType")
    }

    fn error_message(&self) -> &str {
        self.body["errorMessage"].as_str().unwrap_or_default()
    }
}

async fn invoke(runner: &Runner, function: &str, event: Value) -> Answer {
    invoke_with(runner, function, event, &[]).await
}

async fn invoke_with(
    runner: &Runner,
    function: &str,
    event: Value,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/2015-03-31/functions/{function}/invocations",
            runner.url()
        ))
        .body(event.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, function_error, request_id) = (
        response.status().as_u16(),
        header("x-amz-function-error"),
        header("x-amzn-requestid"),
    );
    let body = response.json().await.unwrap();
    Answer {
        status,
        function_error,
        request_id,
        body,
    }
}

fn pid_of(answer: &Value) -> u32 {
    answer["pid"].as_u64().expect("the function's pid") as u32
}

fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits until `pid` is gone, reaped by the runner (up to 60 s: a guard, not a measure).
async fn gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(60);
    while alive(pid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

#[tokio::test]
async fn an_idle_instance_keeps_waiting_for_its_next_invocation_past_any_timeout() {
    let runner = start(vec![json_function("idle", Duration::from_secs(1))]).await;
    let first = invoke(&runner, "idle", json!({})).await.ok();
    // Idle for three times the function's own timeout: `cargo lambda watch` answered the
    // runtime's waiting `…/next` with 408 once its --timeout had passed, and the function
    // died of it; Lambda (and the runner) keep it waiting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(alive(pid_of(&first)), "the idle instance is still there");
    let second = invoke(&runner, "idle", json!({})).await.ok();
    assert_eq!(
        pid_of(&second),
        pid_of(&first),
        "the same instance answered, without a restart"
    );
    runner.stop().await;
}

#[tokio::test]
async fn a_killed_instance_is_replaced_by_a_new_one_at_the_next_invocation() {
    let runner = start(vec![json_function("victim", Duration::from_secs(5))]).await;
    let first = pid_of(&invoke(&runner, "victim", json!({})).await.ok());
    // Invoked at once, before the runner may have seen the death: the invocation must not
    // be lost to the dead instance.
    kill_9(first);
    let second = pid_of(&invoke(&runner, "victim", json!({})).await.ok());
    assert_ne!(second, first, "a new instance answered");
    assert!(gone(first).await);
    // And once the runner has seen it die.
    kill_9(second);
    assert!(gone(second).await);
    let third = pid_of(&invoke(&runner, "victim", json!({})).await.ok());
    assert!(third != first && third != second);
    runner.stop().await;
}

#[tokio::test]
async fn a_crash_mid_invocation_is_a_function_error_and_the_next_invocation_starts_anew() {
    let runner = start(vec![json_function("crash", Duration::from_secs(10))]).await;
    let exited = invoke(&runner, "crash", json!({"action": "exit", "code": 3})).await;
    assert_eq!(exited.error_type(), "Runtime.ExitError");
    assert!(
        exited
            .error_message()
            .contains("Runtime exited with error: exit status: 3"),
        "{}",
        exited.body
    );
    let pid = pid_of(&invoke(&runner, "crash", json!({})).await.ok());

    // Killed while it works on an invocation: once it has said so (the file it creates
    // when it starts sleeping), however long the invocation took to reach it.
    let working = std::env::temp_dir().join(format!("runner-working-{}", uuid::Uuid::new_v4()));
    let slow = {
        let url = runner.url().to_owned();
        let event = json!({"action": "sleep", "ms": 30_000, "started_file": working});
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/2015-03-31/functions/crash/invocations"))
                .body(event.to_string())
                .send()
                .await
                .unwrap()
        })
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !working.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(working.exists(), "the instance took the invocation");
    kill_9(pid);
    std::fs::remove_file(&working).unwrap();
    let killed = slow.await.unwrap();
    assert_eq!(killed.status(), 200);
    assert_eq!(killed.headers()["x-amz-function-error"], "Unhandled");
    let error: Value = killed.json().await.unwrap();
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(error["errorMessage"]
        .as_str()
        .unwrap()
        .contains("signal: 9"));

    let after = pid_of(&invoke(&runner, "crash", json!({})).await.ok());
    assert_ne!(after, pid);
    runner.stop().await;
}

#[tokio::test]
async fn an_invocation_past_its_timeout_is_a_sandbox_timeout_and_its_instance_is_replaced() {
    let runner = start(vec![json_function("slow", Duration::from_secs(1))]).await;
    let pid = pid_of(&invoke(&runner, "slow", json!({})).await.ok());
    let started = Instant::now();
    let timed_out = invoke(&runner, "slow", json!({"action": "sleep", "ms": 30_000})).await;
    let took = started.elapsed();
    assert_eq!(timed_out.error_type(), "Sandbox.Timedout");
    assert!(
        timed_out
            .error_message()
            .ends_with("Task timed out after 1.00 seconds"),
        "{}",
        timed_out.body
    );
    // At its timeout, not after the 30 s it would sleep (how soon after the timeout is the
    // machine's speed).
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(20),
        "answered after {took:?}"
    );
    assert!(gone(pid).await, "the instance that timed out is stopped");
    let next = invoke(&runner, "slow", json!({"action": "sleep", "ms": 100}))
        .await
        .ok();
    assert_ne!(pid_of(&next), pid, "a new instance answered");
    runner.stop().await;
}

#[tokio::test]
async fn a_function_url_request_round_trips_through_the_http_runtime() {
    let runner = start(vec![function_of_kind("web", "http")]).await;
    let client = reqwest::Client::new();
    // Every byte value: not UTF-8.
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    let response = client
        .put(format!(
            "{}/lambda-url/web/files/a%20b/?x=1&y=two&x=3",
            runner.url()
        ))
        .header("content-type", "application/octet-stream")
        .header("x-custom", "hello")
        .header("cookie", "c1=v1; c2=v2")
        .header("x-test-status", "201")
        .body(binary.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["set-cookie"], "session=abc; Path=/");
    let seen: Value = serde_json::from_str(headers["x-echo-request"].to_str().unwrap()).unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/files/a%20b/");
    assert_eq!(seen["raw_path"], "/files/a%20b/");
    assert_eq!(seen["query"], "x=1&y=two&x=3");
    assert_eq!(seen["custom"], "hello");
    assert_eq!(seen["cookie"], "c1=v1; c2=v2");
    assert_eq!(response.bytes().await.unwrap().to_vec(), binary);

    // No path after the function's name, no body.
    let bare = client
        .get(format!("{}/lambda-url/web", runner.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 200);
    let seen: Value =
        serde_json::from_str(bare.headers()["x-echo-request"].to_str().unwrap()).unwrap();
    assert_eq!(
        (&seen["method"], &seen["path"]),
        (&json!("GET"), &json!("/"))
    );
    assert!(bare.bytes().await.unwrap().is_empty());

    let unknown = client
        .get(format!("{}/lambda-url/nope/x", runner.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    runner.stop().await;
}

#[tokio::test]
async fn a_function_url_passes_plain_json_on_and_answers_a_function_error_with_a_502() {
    let runner = start(vec![json_function("plain", Duration::from_secs(5))]).await;
    let client = reqwest::Client::new();
    // A function that does not answer with a response event: its JSON is the body.
    let answered = client
        .post(format!("{}/lambda-url/plain/", runner.url()))
        .header("content-type", "application/json")
        .body(r#"{"action": "echo"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.headers()["content-type"], "application/json");
    let echoed: Value = answered.json().await.unwrap();
    assert_eq!(echoed["event"]["rawPath"], "/");
    assert_eq!(echoed["event"]["body"], r#"{"action": "echo"}"#);

    let failed = client
        .post(format!("{}/lambda-url/plain/", runner.url()))
        .header("content-type", "application/json")
        .body(r#"{"action": "fail"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 502);
    assert_eq!(failed.text().await.unwrap(), "Internal Server Error");
    runner.stop().await;
}

fn sqs_event(body: &str) -> SqsEvent {
    let mut record = SqsMessage::default();
    record.message_id = Some("m1".into());
    record.body = Some(body.into());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    event
}

#[tokio::test]
async fn the_event_sources_invoker_reads_the_runners_function_errors_as_function_errors() {
    let runner = start(vec![json_function("worker", Duration::from_secs(1))]).await;
    let invoker = HttpInvoker::new(runner.url(), Duration::from_secs(10));

    let Invocation::Answered(answer) = invoker.invoke("worker", &sqs_event("echo")).await else {
        panic!("an answer");
    };
    assert_eq!(answer["event"]["Records"][0]["body"], "echo");

    for (body, error_type) in [
        ("fail", ""),
        ("exit", "Runtime.ExitError"),
        ("sleep", "Sandbox.Timedout"),
    ] {
        match invoker.invoke("worker", &sqs_event(body)).await {
            Invocation::FunctionError(reason) => {
                assert!(
                    reason.starts_with("X-Amz-Function-Error Unhandled")
                        && reason.contains(error_type),
                    "{body}: {reason}"
                );
            }
            other => panic!("{body}: a function error, not {other:?}"),
        }
    }
    match invoker.invoke("elsewhere", &sqs_event("echo")).await {
        Invocation::FunctionError(reason) => assert_eq!(reason, "HTTP 404"),
        other => panic!("an unknown function: {other:?}"),
    }
    runner.stop().await;
}

#[tokio::test]
async fn each_instance_has_lambdas_context_and_environment_and_its_own_variables() {
    let mut spec = json_function("ctx", Duration::from_secs(7));
    spec.memory_mb = 256;
    spec.env
        .insert("TEST_VALUE".into(), "from the template".into());
    let runner = start(vec![spec]).await;
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let before_ms = now_ms();
    let answer = invoke_with(
        &runner,
        "ctx",
        json!({"action": "echo", "n": 1}),
        // {"custom":{"k":"v"}}, base64, as Lambda's Invoke takes a client context.
        &[("x-amz-client-context", "eyJjdXN0b20iOnsiayI6InYifX0=")],
    )
    .await;
    let request_id = answer.request_id.clone();
    let answer = answer.ok();
    assert_eq!(answer["event"], json!({"action": "echo", "n": 1}));
    assert_eq!(answer["request_id"].as_str(), request_id.as_deref());
    let after_ms = now_ms();
    let deadline = answer["deadline_ms"].as_u64().unwrap();
    // Handed the invocation between before_ms and after_ms, however long that took.
    assert!(
        deadline >= before_ms + 7_000 && deadline <= after_ms + 7_000,
        "the deadline is the function's timeout away: {deadline} vs {before_ms}..{after_ms}"
    );
    let arn = answer["function_arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:lambda:") && arn.ends_with(":123456789012:function:ctx"),
        "{arn}"
    );
    assert!(answer["trace_id"].as_str().unwrap().starts_with("Root=1-"));
    assert_eq!(answer["client_context"], json!({"k": "v"}));
    let env = &answer["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "ctx");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/ctx");
    assert_eq!(env["TEST_VALUE"], "from the template");
    let runtime_api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap();
    assert!(
        runtime_api.starts_with(&format!("{}/.rt/ctx/", runner.url())),
        "{runtime_api}"
    );
    runner.stop().await;
}

#[tokio::test]
async fn invocations_of_one_function_wait_their_turn_on_its_one_instance() {
    let runner = start(vec![json_function("queue", Duration::from_secs(3))]).await;
    let started = Instant::now();
    let event = json!({"action": "sleep", "ms": 600});
    let (a, b) = tokio::join!(
        invoke(&runner, "queue", event.clone()),
        invoke(&runner, "queue", event.clone())
    );
    let (a, b) = (a.ok(), b.ok());
    assert_eq!(pid_of(&a), pid_of(&b), "one instance");
    assert!(
        started.elapsed() >= Duration::from_millis(1_200),
        "one after the other, each within its own timeout"
    );
    runner.stop().await;
}

/// A copy of the test function in a directory of its own, to rebuild.
fn own_copy() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runner-rebuild-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("rebuilt");
    std::fs::copy(TEST_FUNCTION, &binary).unwrap();
    binary
}

/// Writes a new build over `binary` as cargo does: a new file in its place.
fn rebuild(binary: &Path) {
    let fresh = binary.with_extension("new");
    std::fs::copy(TEST_FUNCTION, &fresh).unwrap();
    std::fs::rename(&fresh, binary).unwrap();
}

#[tokio::test]
async fn a_rebuilt_binary_is_picked_up_by_the_next_invocation() {
    let binary = own_copy();
    let mut spec = FunctionSpec::new("rebuilt", &binary);
    spec.timeout = Duration::from_secs(5);
    let runner = start(vec![spec]).await;
    let before = pid_of(&invoke(&runner, "rebuilt", json!({})).await.ok());
    let unchanged = pid_of(&invoke(&runner, "rebuilt", json!({})).await.ok());
    assert_eq!(unchanged, before, "no rebuild, no restart");
    rebuild(&binary);
    let after = pid_of(&invoke(&runner, "rebuilt", json!({})).await.ok());
    assert_ne!(after, before, "a new instance, from the new binary");
    assert!(gone(before).await, "the old instance is stopped");
    runner.stop().await;
    let _ = std::fs::remove_dir_all(binary.parent().unwrap());
}

#[tokio::test]
async fn a_start_that_fails_is_a_function_error_and_the_runner_stays_up() {
    let runner = start(vec![
        FunctionSpec::new("unbuilt", "/nonexistent/unbuilt"),
        function_of_kind("dies", "exit-at-start"),
        function_of_kind("refuses", "init-error"),
        json_function("fine", Duration::from_secs(5)),
    ])
    .await;
    let unbuilt = invoke(&runner, "unbuilt", json!({})).await;
    assert_eq!(unbuilt.error_type(), "Runtime.InvalidEntrypoint");
    let dies = invoke(&runner, "dies", json!({})).await;
    assert_eq!(dies.error_type(), "Runtime.ExitError");
    assert!(
        dies.error_message().contains("exit status: 4"),
        "{}",
        dies.body
    );
    let refuses = invoke(&runner, "refuses", json!({})).await;
    assert_eq!(refuses.error_type(), "Test.InitError");
    assert_eq!(refuses.error_message(), "cannot start");
    // Each is tried again at its next invocation.
    let dies_again = invoke(&runner, "dies", json!({})).await;
    assert_eq!(dies_again.error_type(), "Runtime.ExitError");
    invoke(&runner, "fine", json!({})).await.ok();
    runner.stop().await;
}

#[tokio::test]
async fn what_is_not_an_invocation_is_answered_as_lambda_answers_it() {
    let runner = start(vec![json_function("known", Duration::from_secs(5))]).await;
    let client = reqwest::Client::new();
    let url = runner.url();

    let index = client.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(index.status(), 200);

    let unknown = client
        .post(format!("{url}/2015-03-31/functions/nope/invocations"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["x-amzn-errortype"],
        "ResourceNotFoundException"
    );
    let body: Value = unknown.json().await.unwrap();
    assert!(body["Message"]
        .as_str()
        .unwrap()
        .ends_with(":function:nope"));

    let not_json = client
        .post(format!("{url}/2015-03-31/functions/known/invocations"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        not_json.headers()["x-amzn-errortype"],
        "InvalidRequestContentException"
    );

    // No payload: the function gets `{}`.
    let empty = invoke_with(&runner, "known", Value::Null, &[]).await;
    assert_eq!(empty.body["event"], Value::Null, "`null` is a payload");
    let bare = client
        .post(format!("{url}/2015-03-31/functions/known/invocations"))
        .send()
        .await
        .unwrap();
    let answer: Value = bare.json().await.unwrap();
    assert_eq!(answer["event"], json!({}));

    // Asynchronous invocations are accepted at once.
    let queued = client
        .post(format!("{url}/2015-03-31/functions/known/invocations"))
        .header("x-amz-invocation-type", "Event")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    runner.stop().await;
}

#[tokio::test]
async fn a_malformed_runtime_api_call_gets_a_4xx() {
    let runner = start(vec![json_function("rt", Duration::from_secs(5))]).await;
    let answer = invoke(&runner, "rt", json!({})).await.ok();
    let base = answer["env"]["AWS_LAMBDA_RUNTIME_API"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let status = |response: reqwest::Response| response.status().as_u16();
    // An answer to an invocation the instance does not have in hand.
    let stray = client
        .post(format!(
            "{base}/2018-06-01/runtime/invocation/not-an-id/response"
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(status(stray), 400);
    // An instance that is not a number, one that does not exist, a path the API lacks.
    for path in [
        "/.rt/rt/x/2018-06-01/runtime/invocation/next",
        "/.rt/rt/999/2018-06-01/runtime/invocation/next",
        "/.rt/other/1/2018-06-01/runtime/invocation/next",
    ] {
        let response = client
            .get(format!("{}{path}", runner.url()))
            .send()
            .await
            .unwrap();
        let code = status(response);
        assert!((400..500).contains(&code), "{path}: {code}");
    }
    let wrong = client
        .post(format!("{base}/2018-06-01/runtime/invocation/next"))
        .send()
        .await
        .unwrap();
    assert!((400..500).contains(&status(wrong)));
    // init/error once the runtime has taken an invocation.
    let late = client
        .post(format!("{base}/2018-06-01/runtime/init/error"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(status(late), 403);
    // The instance still works.
    let again = invoke(&runner, "rt", json!({})).await.ok();
    assert_eq!(pid_of(&again), pid_of(&answer));
    runner.stop().await;
}

#[tokio::test]
async fn stopping_the_runner_stops_its_instances() {
    let runner = start(vec![json_function("stopped", Duration::from_secs(5))]).await;
    let pid = pid_of(&invoke(&runner, "stopped", json!({})).await.ok());
    runner.stop().await;
    assert!(gone(pid).await, "no instance outlives the runner");
}

#[tokio::test]
async fn each_invocation_is_reported_with_its_duration_billing_and_a_cold_starts_init() {
    let reports =
        std::env::temp_dir().join(format!("wxbridge-reports-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&reports);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut spec = json_function("reported", Duration::from_secs(5));
    spec.memory_mb = 128;
    let short = json_function("short", Duration::from_secs(1));
    let runner = Runner::start(listener, vec![spec, short], Some(&reports)).unwrap();
    let cold = invoke(&runner, "reported", json!({"action": "sleep", "ms": 120})).await;
    let cold_id = cold.request_id.clone().unwrap();
    cold.ok();
    let warm = invoke(&runner, "reported", json!({"action": "echo"})).await;
    let warm_id = warm.request_id.clone().unwrap();
    warm.ok();
    let failed = invoke(&runner, "reported", json!({"action": "fail"})).await;
    let failed_type = failed.error_type().to_owned();
    let timed_out = invoke(&runner, "short", json!({"action": "sleep", "ms": 3_000})).await;
    assert_eq!(timed_out.error_type(), "Sandbox.Timedout");
    runner.stop().await;

    let reports_read = read_reports(&reports);
    let _ = std::fs::remove_file(&reports);
    assert_eq!(reports_read.len(), 4, "{reports_read:?}");
    let [first, second, third, fourth] = &reports_read[..] else {
        unreachable!()
    };
    assert_eq!(
        (first.request_id.as_str(), second.request_id.as_str()),
        (cold_id.as_str(), warm_id.as_str())
    );
    assert!(
        first.duration_ms >= 120.0,
        "the sleep is in the duration: {first:?}"
    );
    let init = first.init_ms.expect("the first invocation is a cold start");
    assert!(init > 0.0);
    assert_eq!(first.billed_ms, (first.duration_ms + init).ceil() as u64);
    assert_eq!(second.init_ms, None, "a warm invocation has no init");
    assert!(second.duration_ms < first.duration_ms);
    assert_eq!(second.billed_ms, second.duration_ms.ceil().max(1.0) as u64);
    assert_eq!(first.memory_size_mb, 128);
    assert!(second.max_memory_used_mb.is_some_and(|mb| mb > 0));
    assert_eq!(third.error.as_deref(), Some(failed_type.as_str()));
    assert_eq!(
        (fourth.function.as_str(), fourth.error.as_deref()),
        ("short", Some("Sandbox.Timedout"))
    );
    assert!(
        fourth.billed_ms >= 1_000,
        "billed for the whole Timeout: {fourth:?}"
    );
}
