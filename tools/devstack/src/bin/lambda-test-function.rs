//! A Lambda function for the runner's tests (`tests/runner.rs`), on the same runtime
//! crates as the bridge's functions. What it is depends on `TEST_FUNCTION_KIND`:
//!
//! - unset: a function of JSON events that does what the event's `action` says (or, for
//!   an SQS event, its first record's body; for a function URL event, its JSON body's
//!   `action`): `echo` (the default) answers with its pid, the
//!   invocation's context and environment and the event; `sleep` sleeps `ms` first (after
//!   creating the file `started_file`, if given); `fail`
//!   returns an error; `exit` exits with `code` mid-invocation;
//! - `http`: an HTTP function (`lambda_http`, as the bridge's are) that answers with the
//!   request's body and describes the request in `x-echo-*` headers; the status is the
//!   request's `x-test-status` header (200 without);
//! - `exit-at-start`: exits with status 4 before its runtime starts;
//! - `init-error`: reports an init error to the runtime API, then exits.

use lambda_http::{Body, RequestExt, Response};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    match std::env::var("TEST_FUNCTION_KIND").as_deref() {
        Ok("http") => lambda_http::run(lambda_http::service_fn(echo_request)).await,
        Ok("exit-at-start") => std::process::exit(4),
        Ok("init-error") => {
            report_init_error().await?;
            std::process::exit(1)
        }
        _ => lambda_runtime::run(service_fn(act)).await,
    }
}

async fn act(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    // A function URL event carries the action in its JSON body.
    let url_body: Value = payload["body"]
        .as_str()
        .and_then(|body| serde_json::from_str(body).ok())
        .unwrap_or_default();
    let action = payload["action"]
        .as_str()
        .or_else(|| payload["Records"][0]["body"].as_str())
        .or_else(|| url_body["action"].as_str())
        .unwrap_or("echo")
        .to_owned();
    match action.as_str() {
        "fail" => return Err("asked to fail".into()),
        "exit" => std::process::exit(payload["code"].as_i64().unwrap_or(3) as i32),
        "sleep" => {
            // A test waits for this file to know the invocation reached the instance.
            if let Some(file) = payload["started_file"].as_str() {
                std::fs::write(file, b"")?;
            }
            let ms = payload["ms"].as_u64().unwrap_or(60_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        _ => {}
    }
    let env = |name: &str| std::env::var(name).ok();
    Ok(json!({
        "pid": std::process::id(),
        "request_id": context.request_id,
        "deadline_ms": context.deadline,
        "function_arn": context.invoked_function_arn,
        "trace_id": context.xray_trace_id,
        "client_context": context.client_context.map(|c| c.custom),
        "env": {
            "AWS_LAMBDA_FUNCTION_NAME": env("AWS_LAMBDA_FUNCTION_NAME"),
            "AWS_LAMBDA_FUNCTION_VERSION": env("AWS_LAMBDA_FUNCTION_VERSION"),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "AWS_LAMBDA_LOG_GROUP_NAME": env("AWS_LAMBDA_LOG_GROUP_NAME"),
            "AWS_LAMBDA_RUNTIME_API": env("AWS_LAMBDA_RUNTIME_API"),
            "TEST_VALUE": env("TEST_VALUE"),
        },
        "event": payload,
    }))
}

async fn echo_request(request: lambda_http::Request) -> Result<Response<Body>, Error> {
    let context = request.lambda_context();
    let described = json!({
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "raw_path": request.raw_http_path(),
        "query": request.uri().query(),
        "custom": request.headers().get("x-custom").and_then(|v| v.to_str().ok()),
        "cookie": request.headers().get("cookie").and_then(|v| v.to_str().ok()),
        "request_id": context.request_id,
        "pid": std::process::id(),
    });
    let status = request
        .headers()
        .get("x-test-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(200);
    let body = request.body().as_ref().to_vec();
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/octet-stream")
        .header("x-echo-request", described.to_string())
        .header("set-cookie", "session=abc; Path=/")
        .body(Body::Binary(body))?)
}

async fn report_init_error() -> Result<(), Error> {
    let base = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    reqwest::Client::new()
        .post(format!("{base}/2018-06-01/runtime/init/error"))
        .header("lambda-runtime-function-error-type", "Test.InitError")
        .body(r#"{"errorType":"Test.InitError","errorMessage":"cannot start"}"#)
        .send()
        .await?;
    Ok(())
}
