//! The local stack's side of Lambda's SQS event source mapping (the mapping itself is
//! `wxbridge_testkit_aws::event_source`, shared with the integration tests): the template's
//! functions and their sources as `scripts/local_aws.py functions` prints them, the events
//! of scheduled functions, and invocations through the local Lambda runner's invoke API.

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use wxbridge_testkit_aws::event_source::{EventSourceMapping, Invocation, SqsSource};

/// A function of the template as `scripts/local_aws.py functions` prints it; only what the
/// event source mapping needs (the rest of each entry is ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateFunction {
    pub name: String,
    #[serde(default)]
    pub sqs_sources: Vec<SqsSource>,
    /// Its schedules (EventBridge `rate(…)`), each as its period.
    #[serde(default)]
    pub schedules: Vec<ScheduleSource>,
}

/// A function invoked on a schedule.
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleSource {
    pub every_secs: u64,
}

/// The event EventBridge hands a scheduled function.
pub fn scheduled_event(function: &str, now_ms: i64) -> Value {
    serde_json::json!({
        "version": "0",
        "id": format!("{function}-{now_ms}"),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": now_ms / 1000,
        "resources": [format!("arn:aws:events:local:000000000000:rule/{function}")],
        "detail": {},
    })
}

/// One mapping for each SQS source of each function.
pub fn mappings(functions: &[TemplateFunction], region: &str) -> Vec<EventSourceMapping> {
    functions
        .iter()
        .flat_map(|function| {
            function
                .sqs_sources
                .iter()
                .map(|source| EventSourceMapping::new(&function.name, source, region))
        })
        .collect()
}

/// Invokes functions through Lambda's invoke API as the local Lambda runner serves it
/// (`POST {base}/2015-03-31/functions/{name}/invocations`), and reads the answer as the
/// event source mapping must: what counts as a function error, what as no runtime at all.
#[derive(Debug, Clone)]
pub struct HttpInvoker {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl HttpInvoker {
    /// Invocations at `base` (the runner's address), each given up after
    /// `timeout` as a function error.
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client with a timeout"),
            base: base.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    /// Where `function` is invoked.
    pub fn invocations_url(&self, function: &str) -> String {
        format!("{}/2015-03-31/functions/{function}/invocations", self.base)
    }

    /// Invokes `function` with `event`. A function error is: a non-2xx answer, an
    /// `X-Amz-Function-Error` header, an answer that is `{"errorType", "errorMessage"}`,
    /// an answer that is not JSON, or no answer within the timeout. Only the error's type
    /// is kept, never its message, which could quote a record.
    pub async fn invoke(&self, function: &str, event: &impl serde::Serialize) -> Invocation {
        let sent = self
            .client
            .post(self.invocations_url(function))
            .json(event)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return self.timed_out(),
            Err(error) => return Invocation::Unreachable(error_chain(&error)),
        };
        let status = response.status();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let payload = match response.bytes().await {
            Ok(payload) => payload,
            Err(error) if error.is_timeout() => return self.timed_out(),
            Err(_) => return Invocation::FunctionError("answer cut short".to_owned()),
        };
        let answer: Option<Value> = if payload.trim_ascii().is_empty() {
            Some(Value::Object(Default::default()))
        } else {
            serde_json::from_slice(&payload).ok()
        };
        let error_type = answer
            .as_ref()
            .filter(|a| a.get("errorMessage").is_some())
            .and_then(|a| a.get("errorType"))
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| t.to_string())
            });
        let with_type = |what: String| match &error_type {
            Some(error_type) => format!("{what}, {error_type}"),
            None => what,
        };
        if !status.is_success() {
            return Invocation::FunctionError(with_type(format!("HTTP {}", status.as_u16())));
        }
        if let Some(kind) = function_error {
            return Invocation::FunctionError(with_type(format!("X-Amz-Function-Error {kind}")));
        }
        match (answer, error_type) {
            (None, _) => Invocation::FunctionError("unreadable answer".to_owned()),
            (Some(_), Some(error_type)) => Invocation::FunctionError(error_type),
            (Some(answer), None) => Invocation::Answered(answer),
        }
    }

    fn timed_out(&self) -> Invocation {
        Invocation::FunctionError(format!("no answer within {} s", self.timeout.as_secs()))
    }
}

/// An error and its causes on one line (reqwest's own says only "error sending request").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        line.push_str(": ");
        line.push_str(&inner.to_string());
        cause = inner.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_template_functions_are_read_as_local_aws_prints_them() {
        let functions: Vec<TemplateFunction> = serde_json::from_value(json!([
            {"logical_id": "CallbackFunction", "name": "callback", "timeout": 10, "env": {},
             "http_routes": [{"method": "POST", "path": "/wechat/{channel}"}], "sqs_sources": []},
            {"logical_id": "InboundFunction", "name": "inbound", "timeout": 90, "env": {}, "http_routes": [],
             "sqs_sources": [{"queue_url": "http://q/s-inbound.fifo", "queue_arn": "arn:inbound",
                              "batch_size": 10, "report_batch_item_failures": true}]},
            {"name": "push", "sqs_sources": [{"queue_url": "http://q/s-push.fifo", "queue_arn": "arn:push"}]}
        ]))
        .unwrap();
        let mappings = mappings(&functions, "us-east-1");
        assert_eq!(mappings.len(), 2);
        assert_eq!(
            (mappings[0].function.as_str(), mappings[0].queue_name()),
            ("inbound", "s-inbound.fifo")
        );
        assert_eq!(
            (
                mappings[1].batch_size,
                mappings[1].report_batch_item_failures
            ),
            (10, false),
            "Lambda's defaults"
        );
    }
}
