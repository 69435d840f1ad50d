//! Lambda's runtime API, one for each instance: the function's runtime asks
//! `GET …/runtime/invocation/next` for its next event and answers it with
//! `POST …/invocation/{id}/response` or `…/error`; `POST …/init/error` reports a start that
//! failed.
//!
//! Each instance gets its own base, `http://127.0.0.1:PORT/.rt/{function}/{instance}`
//! (`AWS_LAMBDA_RUNTIME_API`; the runtime client keeps a base's path), so a request from
//! an instance that was replaced never takes an invocation meant for its successor.
//!
//! `…/next` waits for as long as it takes, as Lambda's does: an instance that stays idle
//! keeps waiting, it is never answered with a timeout.

use super::host::FunctionError;
use super::RunnerState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Notify};

/// Where the runtime API of every instance lives, under the runner's own address.
pub(crate) const PREFIX: &str = "/.rt";

/// The largest response or error a runtime may post: Lambda's synchronous payload limit.
pub(crate) const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// One invocation, handed to an instance.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub trace_id: String,
    pub client_context: Option<HeaderValue>,
    pub cognito_identity: Option<HeaderValue>,
    /// Where the runtime's answer goes.
    pub answer: oneshot::Sender<RuntimeAnswer>,
}

/// What the runtime answered an invocation with.
#[derive(Debug)]
pub(crate) enum RuntimeAnswer {
    Response(Bytes),
    Error(FunctionError),
}

/// The invocation an instance's runtime has taken and not yet answered.
#[derive(Debug)]
struct InFlight {
    request_id: String,
    answer: oneshot::Sender<RuntimeAnswer>,
}

/// What passes between an instance's runtime (through the routes below) and the
/// invocation that holds the instance (`host`): at most one invocation offered, at most
/// one taken.
#[derive(Debug)]
pub(crate) struct Mailbox {
    offered: Mutex<Option<Delivery>>,
    in_flight: Mutex<Option<InFlight>>,
    /// Wakes a waiting `…/next` when an invocation is offered or the instance retired.
    changed: Notify,
    closed: AtomicBool,
    /// How many invocations the runtime has taken: none means it is still starting.
    taken: AtomicU64,
    /// When the instance started, and when its runtime took the last invocation: the
    /// init phase and the invocation's duration for its report.
    opened_at: Instant,
    taken_at: Mutex<Option<Instant>>,
    init_error: watch::Sender<Option<FunctionError>>,
}

impl Mailbox {
    fn new() -> Self {
        Self {
            offered: Mutex::new(None),
            in_flight: Mutex::new(None),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            taken: AtomicU64::new(0),
            opened_at: Instant::now(),
            taken_at: Mutex::new(None),
            init_error: watch::channel(None).0,
        }
    }

    /// Offers `delivery` to the runtime's next `…/next`.
    pub fn offer(&self, delivery: Delivery) {
        *lock(&self.offered) = Some(delivery);
        self.changed.notify_waiters();
    }

    /// Takes back the invocation offered, if the runtime has not taken it.
    pub fn retract(&self) -> Option<Delivery> {
        lock(&self.offered).take()
    }

    /// Whether the runtime has asked for an invocation before: a runtime past its start.
    pub fn has_taken_any(&self) -> bool {
        self.taken.load(Ordering::SeqCst) > 0
    }

    /// How long the invocation in hand has run, and (on the instance's first) how long
    /// the instance took to ask for it: Lambda's duration and init duration.
    pub fn timings(&self, first: bool) -> (Duration, Option<Duration>) {
        let taken_at = lock(&self.taken_at).unwrap_or(self.opened_at);
        let init = first.then(|| taken_at.duration_since(self.opened_at));
        (taken_at.elapsed(), init)
    }

    /// The init error the runtime reports, when it reports one.
    pub fn init_errors(&self) -> watch::Receiver<Option<FunctionError>> {
        self.init_error.subscribe()
    }

    /// The instance is retired: a waiting `…/next` gives up.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits for the next invocation; `None` once the instance is retired.
    async fn next(&self) -> Option<Delivery> {
        loop {
            // Registered before looking, so an offer between the look and the wait still
            // wakes this one.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(delivery) = lock(&self.offered).take() {
                *lock(&self.taken_at) = Some(Instant::now());
                self.taken.fetch_add(1, Ordering::SeqCst);
                return Some(delivery);
            }
            changed.await;
        }
    }

    fn start(&self, request_id: &str, answer: oneshot::Sender<RuntimeAnswer>) {
        *lock(&self.in_flight) = Some(InFlight {
            request_id: request_id.to_owned(),
            answer,
        });
    }

    /// Hands the runtime's answer to the invocation `request_id`; false when that is not
    /// the invocation the runtime has in hand (never given, or answered already).
    fn answer(&self, request_id: &str, answer: RuntimeAnswer) -> bool {
        let mut in_flight = lock(&self.in_flight);
        match in_flight.take() {
            Some(current) if current.request_id == request_id => {
                // The invocation may have ended meanwhile (a timeout): nobody to tell.
                let _ = current.answer.send(answer);
                true
            }
            other => {
                *in_flight = other;
                false
            }
        }
    }
}

/// A lock that a panic elsewhere does not make unusable: what it guards is only moved in
/// and out whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The mailboxes of the live instances, by instance number.
#[derive(Debug, Default)]
pub(crate) struct Mailboxes(Mutex<HashMap<u64, (String, Arc<Mailbox>)>>);

impl Mailboxes {
    /// A mailbox for instance `instance` of `function`.
    pub fn open(&self, function: &str, instance: u64) -> Arc<Mailbox> {
        let mailbox = Arc::new(Mailbox::new());
        lock(&self.0).insert(instance, (function.to_owned(), Arc::clone(&mailbox)));
        mailbox
    }

    /// Retires instance `instance`'s mailbox.
    pub fn close(&self, instance: u64) {
        if let Some((_, mailbox)) = lock(&self.0).remove(&instance) {
            mailbox.close();
        }
    }

    fn find(&self, function: &str, instance: u64) -> Option<Arc<Mailbox>> {
        lock(&self.0)
            .get(&instance)
            .filter(|(owner, _)| owner == function)
            .map(|(_, mailbox)| Arc::clone(mailbox))
    }
}

pub(crate) fn routes() -> Router<Arc<RunnerState>> {
    const BASE: &str = "/.rt/{function}/{instance}/2018-06-01/runtime";
    Router::new()
        .route(&format!("{BASE}/invocation/next"), get(next))
        .route(
            &format!("{BASE}/invocation/{{request_id}}/response"),
            post(response),
        )
        .route(
            &format!("{BASE}/invocation/{{request_id}}/error"),
            post(error),
        )
        .route(&format!("{BASE}/init/error"), post(init_error))
}

/// A runtime API error, shaped as Lambda's: `{"errorType", "errorMessage"}`.
fn refuse(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errorType": error_type, "errorMessage": message })),
    )
        .into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({ "status": "OK" }))).into_response()
}

/// A runtime of an instance the runner has replaced or stopped: it should exit.
fn retired() -> Response {
    refuse(
        StatusCode::GONE,
        "InstanceRetired",
        "this instance was replaced or stopped; its runtime should exit",
    )
}

async fn next(
    State(state): State<Arc<RunnerState>>,
    Path((function, instance)): Path<(String, u64)>,
) -> Response {
    let Some(mailbox) = state.context.mailboxes.find(&function, instance) else {
        return retired();
    };
    let Some(delivery) = mailbox.next().await else {
        return retired();
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &delivery.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &delivery.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        &delivery.function_arn,
    );
    set("lambda-runtime-trace-id", &delivery.trace_id);
    set("content-type", "application/json");
    if let Some(context) = delivery.client_context {
        headers.insert("lambda-runtime-client-context", context);
    }
    if let Some(identity) = delivery.cognito_identity {
        headers.insert("lambda-runtime-cognito-identity", identity);
    }
    mailbox.start(&delivery.request_id, delivery.answer);
    (StatusCode::OK, headers, delivery.payload).into_response()
}

/// The body a runtime posts, up to [`MAX_PAYLOAD`]; `None` when it is larger.
async fn read_payload(body: Body) -> Option<Bytes> {
    axum::body::to_bytes(body, MAX_PAYLOAD).await.ok()
}

async fn response(
    State(state): State<Arc<RunnerState>>,
    Path((function, instance, request_id)): Path<(String, u64, String)>,
    body: Body,
) -> Response {
    let Some(mailbox) = state.context.mailboxes.find(&function, instance) else {
        return retired();
    };
    let (answer, too_large) = match read_payload(body).await {
        Some(payload) => (RuntimeAnswer::Response(payload), false),
        None => (
            RuntimeAnswer::Error(FunctionError::new(
                "Function.ResponseSizeTooLarge",
                &format!(
                    "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."
                ),
            )),
            true,
        ),
    };
    if !mailbox.answer(&request_id, answer) {
        return unknown_request(&request_id);
    }
    if too_large {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "the response is larger than Lambda's payload limit",
        );
    }
    accepted()
}

async fn error(
    State(state): State<Arc<RunnerState>>,
    Path((function, instance, request_id)): Path<(String, u64, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(mailbox) = state.context.mailboxes.find(&function, instance) else {
        return retired();
    };
    let payload = read_payload(body).await.unwrap_or_default();
    let error = FunctionError::from_runtime(&payload, error_type_header(&headers));
    if !mailbox.answer(&request_id, RuntimeAnswer::Error(error)) {
        return unknown_request(&request_id);
    }
    accepted()
}

async fn init_error(
    State(state): State<Arc<RunnerState>>,
    Path((function, instance)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(mailbox) = state.context.mailboxes.find(&function, instance) else {
        return retired();
    };
    if mailbox.has_taken_any() {
        return refuse(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "init/error after the runtime asked for an invocation",
        );
    }
    let payload = read_payload(body).await.unwrap_or_default();
    let error = FunctionError::from_runtime(&payload, error_type_header(&headers));
    mailbox.init_error.send_replace(Some(error));
    accepted()
}

fn error_type_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
}

fn unknown_request(request_id: &str) -> Response {
    refuse(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("no invocation {request_id} in progress on this instance"),
    )
}
