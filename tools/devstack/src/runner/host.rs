//! One function's instance and its invocations, supervised as Lambda supervises them:
//!
//! - one instance per function, started on the first invocation (a cold start);
//!   invocations of a function wait their turn (a reserved concurrency of 1);
//! - an instance whose process ends (a crash, a kill, an exit) is replaced at the next
//!   invocation; an invocation in flight when it ends is a function error
//!   (`Runtime.ExitError`), while one the instance never took (it died idle) goes to a
//!   new instance;
//! - an invocation past the function's `Timeout` is a function error (`Sandbox.Timedout`)
//!   and its instance is stopped and replaced;
//! - a rebuilt binary is picked up by the next invocation, on a new instance.
//!
//! The timeout runs from the moment the invocation is handed to an instance, a cold start
//! included.

use super::clock::epoch_ms;
use super::instance::{Exit, Instance};
use super::runtime_api::{Delivery, RuntimeAnswer};
use super::{log, FunctionSpec, InvocationReport, RunnerContext};
use axum::body::Bytes;
use axum::http::HeaderValue;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::{oneshot, Mutex};

/// A function error: what Lambda's Invoke answers with `X-Amz-Function-Error: Unhandled`
/// (`{"errorType", "errorMessage"}`, or what the runtime reported).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    pub error_type: String,
    pub payload: Bytes,
}

impl FunctionError {
    /// `{"errorType": error_type, "errorMessage": message}`.
    pub fn new(error_type: &str, message: &str) -> Self {
        Self {
            error_type: error_type.to_owned(),
            payload: Bytes::from(
                json!({ "errorType": error_type, "errorMessage": message }).to_string(),
            ),
        }
    }

    /// What a runtime posted to `…/error` or `…/init/error`: its JSON kept as it is (as
    /// Lambda passes it on); anything else wrapped as an error message.
    pub fn from_runtime(payload: &[u8], error_type_header: Option<&str>) -> Self {
        let reported: Option<Value> = serde_json::from_slice(payload).ok();
        let reported_type = reported
            .as_ref()
            .and_then(|error| error.get("errorType"))
            .and_then(Value::as_str);
        match (reported.as_ref(), reported_type) {
            (Some(Value::Object(_)), Some(error_type)) => Self {
                error_type: error_type.to_owned(),
                payload: Bytes::copy_from_slice(payload),
            },
            _ => Self::new(
                error_type_header.unwrap_or("Runtime.Unknown"),
                &String::from_utf8_lossy(payload),
            ),
        }
    }
}

/// How an invocation ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The function's response payload.
    Response(Bytes),
    Failed(FunctionError),
}

/// An invocation as the invoke API or a function URL asks for it.
#[derive(Debug)]
pub(crate) struct InvokeRequest {
    pub request_id: String,
    pub payload: Bytes,
    pub client_context: Option<HeaderValue>,
    pub cognito_identity: Option<HeaderValue>,
}

/// A function, its instance (if one runs) and its queue of invocations.
pub(crate) struct FunctionHost {
    pub spec: FunctionSpec,
    context: Arc<RunnerContext>,
    /// Held by one invocation at a time: the others wait their turn (tokio's mutex is
    /// fair, so in the order they came).
    instance: Mutex<Option<Instance>>,
}

/// What ended the wait for an answer.
enum Ended {
    Answered(RuntimeAnswer),
    InitFailed(FunctionError),
    Exited(Exit),
    TimedOut,
}

impl FunctionHost {
    pub fn new(spec: FunctionSpec, context: Arc<RunnerContext>) -> Self {
        Self {
            spec,
            context,
            instance: Mutex::new(None),
        }
    }

    /// Runs one invocation to its end, whatever becomes of the instance.
    pub async fn invoke(&self, request: InvokeRequest) -> Outcome {
        let mut slot = self.instance.lock().await;
        let name = &self.spec.name;
        let started = Instant::now();
        let deadline = started + self.spec.timeout;
        let (answer, mut answered) = oneshot::channel();
        let mut delivery = Delivery {
            deadline_ms: epoch_ms(SystemTime::now()) + self.spec.timeout.as_millis() as u64,
            function_arn: self.context.function_arn(name),
            trace_id: trace_id(),
            request_id: request.request_id,
            payload: request.payload,
            client_context: request.client_context,
            cognito_identity: request.cognito_identity,
            answer,
        };
        let request_id = delivery.request_id.clone();
        loop {
            let instance = match self.ready(&mut slot).await {
                Ok(instance) => instance,
                Err(error) => return self.failed(error),
            };
            let (id, pid, mailbox) = (instance.id, instance.pid, Arc::clone(&instance.mailbox));
            let was_warm = mailbox.has_taken_any();
            let exited = instance.exited();
            let mut init_errors = mailbox.init_errors();
            mailbox.offer(delivery);
            let ended = tokio::select! {
                // An answer posted just before the process ended still counts.
                biased;
                answer = &mut answered => match answer {
                    Ok(answer) => Ended::Answered(answer),
                    Err(_) => Ended::Exited("the instance went away".to_owned()),
                },
                error = async {
                    init_errors.wait_for(Option::is_some).await.ok().and_then(|e| e.clone())
                } => match error {
                    Some(error) => Ended::InitFailed(error),
                    None => Ended::Exited("the instance went away".to_owned()),
                },
                exit = exited => Ended::Exited(exit),
                () = tokio::time::sleep_until(deadline.into()) => Ended::TimedOut,
            };
            // Lambda reports (and bills) an answered invocation, and a timed-out one for its
            // whole Timeout.
            let reported_error = match &ended {
                Ended::Answered(RuntimeAnswer::Response(_)) => Some(None),
                Ended::Answered(RuntimeAnswer::Error(error)) => {
                    Some(Some(error.error_type.clone()))
                }
                Ended::TimedOut => Some(Some("Sandbox.Timedout".to_owned())),
                _ => None,
            };
            if let Some(error) = reported_error {
                let (duration, init) = mailbox.timings(!was_warm);
                let duration = match ended {
                    Ended::TimedOut => self.spec.timeout,
                    _ => duration,
                };
                let mut report = InvocationReport::new(
                    name,
                    &request_id,
                    duration,
                    init,
                    self.spec.memory_mb,
                    pid,
                );
                report.error = error;
                self.context.report(&report);
            }
            match ended {
                Ended::Answered(RuntimeAnswer::Response(payload)) => {
                    return Outcome::Response(payload)
                }
                Ended::Answered(RuntimeAnswer::Error(error)) => return self.failed(error),
                Ended::InitFailed(error) => {
                    *slot = None;
                    log(
                        name,
                        format!(
                            "instance {id} (pid {pid}) failed to start ({}); stopped",
                            error.error_type
                        ),
                    );
                    return self.failed(error);
                }
                Ended::TimedOut => {
                    *slot = None;
                    let secs = self.spec.timeout.as_secs_f64();
                    log(
                        name,
                        format!("timed out after {secs:.2} s: instance {id} (pid {pid}) stopped; the next invocation starts a new one"),
                    );
                    return self.failed(FunctionError::new(
                        "Sandbox.Timedout",
                        &format!(
                            "RequestId: {request_id} Error: Task timed out after {secs:.2} seconds"
                        ),
                    ));
                }
                Ended::Exited(exit) => {
                    let untaken = mailbox.retract();
                    *slot = None;
                    match untaken {
                        // It died while idle, before it could take this invocation:
                        // Lambda would simply use another instance.
                        Some(again) if was_warm => {
                            delivery = again;
                            continue;
                        }
                        _ => {
                            return self.failed(FunctionError::new(
                                "Runtime.ExitError",
                                &format!(
                                "RequestId: {request_id} Error: Runtime exited with error: {exit}"
                            ),
                            ))
                        }
                    }
                }
            }
        }
    }

    /// The function's instance, ready to be handed an invocation: the one running, or a
    /// new one when there is none, it has ended, or its binary was rebuilt.
    async fn ready<'a>(
        &self,
        slot: &'a mut Option<Instance>,
    ) -> Result<&'a Instance, FunctionError> {
        let name = &self.spec.name;
        // An ended instance's exit was logged when it happened.
        slot.take_if(|instance| instance.exit().is_some());
        if let Some(old) = slot.take_if(|instance| instance.binary_changed(&self.spec)) {
            log(
                name,
                format!(
                    "{} was rebuilt: instance {} (pid {}) stopped",
                    self.spec.binary.display(),
                    old.id,
                    old.pid
                ),
            );
        }
        let instance = match slot.take() {
            Some(instance) => instance,
            None => {
                let instance = Instance::start(&self.spec, &self.context)
                    .await
                    .map_err(|why| {
                        log(name, &why);
                        FunctionError::new("Runtime.InvalidEntrypoint", &why)
                    })?;
                log(
                    name,
                    format!(
                        "cold start: instance {} (pid {})",
                        instance.id, instance.pid
                    ),
                );
                instance
            }
        };
        Ok(slot.insert(instance))
    }

    /// Logs a function error by its type only (its message could quote the event).
    fn failed(&self, error: FunctionError) -> Outcome {
        log(
            &self.spec.name,
            format!("function error: {}", error.error_type),
        );
        Outcome::Failed(error)
    }
}

/// An X-Ray trace header, as Lambda hands one to each invocation (not sampled: no X-Ray
/// here).
fn trace_id() -> String {
    let root = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    let secs = epoch_ms(SystemTime::now()) / 1000;
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &root[..24],
        &parent[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtimes_error_is_passed_on_as_it_reported_it() {
        let reported = br#"{"errorType":"&str","errorMessage":"no"}"#;
        let error = FunctionError::from_runtime(reported, Some("Runtime.Other"));
        assert_eq!(error.error_type, "&str");
        assert_eq!(error.payload.as_ref(), reported);

        let error = FunctionError::from_runtime(b"plain words", Some("Custom.Kind"));
        assert_eq!(error.error_type, "Custom.Kind");
        let payload: Value = serde_json::from_slice(&error.payload).unwrap();
        assert_eq!(
            payload,
            json!({"errorType": "Custom.Kind", "errorMessage": "plain words"})
        );

        let error = FunctionError::from_runtime(b"[1]", None);
        assert_eq!(error.error_type, "Runtime.Unknown");
    }

    #[test]
    fn a_trace_header_has_xrays_shape() {
        let header = trace_id();
        let (root, parent) = header.split_once(";Parent=").unwrap();
        let root = root.strip_prefix("Root=1-").unwrap();
        let (time, id) = root.split_once('-').unwrap();
        assert_eq!((time.len(), id.len()), (8, 24));
        assert_eq!(parent, &format!("{};Sampled=0", &parent[..16]));
    }
}
