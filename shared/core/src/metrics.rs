//! The metric events the bridge records: counts and timings, each with an optional
//! low-cardinality `reason` (an errcode, a status class, a refusal code) — never content.
//! Services record them here; how they are written is the edge's business: the Lambda
//! edge installs a [`Recorder`] that writes CloudWatch's embedded metric format after each
//! invocation (`wxbridge_lambda::emf`). With none installed (tests, tools) they are dropped.
//!
//! Metrics: `received`, `refused` (callback); `delivered`, `failed` (inbound);
//! `sent`, `held`, `window_closed`, `fell_back`, `failed` (dispatch); `pushed` (by path),
//! `undeliverable`, `expired` (push); `replies_accepted`,
//! `requests_refused` (api); `token_refreshes`; `webhooks` and `webhook_latency` (ms).
//! `failed`, `refused`, `requests_refused` and `webhooks` carry the `reason`.

use std::sync::OnceLock;

/// The port metric events go to.
pub trait Recorder: Send + Sync {
    /// One event named `name` (with its reason).
    fn count(&self, name: &'static str, reason: Option<&str>);
    /// A duration in milliseconds.
    fn millis(&self, name: &'static str, reason: Option<&str>, value: f64);
}

static RECORDER: OnceLock<&'static dyn Recorder> = OnceLock::new();

/// Sends this process's metric events to `recorder`; the first one installed stays.
pub fn install(recorder: &'static dyn Recorder) {
    let _ = RECORDER.set(recorder);
}

/// Counts one event.
pub fn count(name: &'static str) {
    if let Some(recorder) = RECORDER.get() {
        recorder.count(name, None);
    }
}

/// Counts one event with its reason.
pub fn count_because(name: &'static str, reason: &str) {
    if let Some(recorder) = RECORDER.get() {
        recorder.count(name, Some(reason));
    }
}

/// Records a duration in milliseconds.
pub fn millis(name: &'static str, value: f64) {
    if let Some(recorder) = RECORDER.get() {
        recorder.millis(name, None, value);
    }
}
