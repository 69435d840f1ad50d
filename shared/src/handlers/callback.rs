//! The `callback` function: WeChat's message-push endpoint, `/wechat/{channel}`.
//!
//! GET answers URL verification with `echostr`. POST verifies, opens and parses the push,
//! sends one message to `inbound.fifo` and answers `success` — one AWS request per push,
//! well inside WeChat's 5 seconds. Every refusal is a 4xx with a reason and a log line
//! that names the channel and the reason, never the content.

use super::{error_response, text_response};
use crate::callback::{open_push, verify_url, CallbackError, Freshness, PushQuery};
use crate::config::{BridgeConfig, Channel, Channels};
use crate::queue::{InboundMessage, InboundQueue};
use lambda_http::{Body, Request, RequestExt, Response};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct CallbackService<Q> {
    channels: Channels,
    queue: Q,
    tolerance_secs: Option<u64>,
    max_body_bytes: usize,
    clock: fn() -> i64,
}

/// Milliseconds since the epoch.
pub fn system_clock_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl<Q: InboundQueue> CallbackService<Q> {
    pub fn new(config: &BridgeConfig, queue: Q) -> Self {
        Self {
            channels: Channels::new(config),
            queue,
            tolerance_secs: config.timestamp_tolerance_secs,
            max_body_bytes: config.max_body_bytes,
            clock: system_clock_ms,
        }
    }

    /// Replaces the clock (milliseconds since the epoch), for tests.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let Some(channel_id) = channel_of(&request) else {
            return error_response(404, "not_found", "expected /wechat/{channel}");
        };
        let Some(channel) = self.channels.get(&channel_id) else {
            tracing::warn!(channel = %channel_id, "push for an unknown channel");
            return error_response(404, "unknown_channel", "no channel with this id");
        };
        let query = PushQuery::from_pairs(
            request.query_string_parameters_ref().into_iter().flat_map(|q| q.iter()),
        );
        let now_ms = (self.clock)();
        let freshness = Freshness { now_secs: now_ms.div_euclid(1000), tolerance_secs: self.tolerance_secs };
        match *request.method() {
            http::Method::GET => match verify_url(channel, &query, freshness) {
                Ok(echostr) => {
                    tracing::info!(channel = %channel_id, "URL verification answered");
                    text_response(echostr)
                }
                Err(error) => refuse(&channel_id, &error),
            },
            http::Method::POST => self.accept_push(channel, &query, request.body(), freshness, now_ms).await,
            _ => error_response(405, "method_not_allowed", "use GET or POST"),
        }
    }

    async fn accept_push(
        &self,
        channel: &Channel,
        query: &PushQuery,
        body: &Body,
        freshness: Freshness,
        now_ms: i64,
    ) -> Response<Body> {
        let channel_id = channel.config.id.as_str();
        let bytes: &[u8] = body.as_ref();
        if bytes.len() > self.max_body_bytes {
            return refuse(channel_id, &CallbackError::BodyTooLarge(self.max_body_bytes));
        }
        let event = match open_push(channel, query, bytes, freshness) {
            Ok(event) => event,
            Err(error) => return refuse(channel_id, &error),
        };
        let message = InboundMessage::new(channel_id, event, now_ms);
        match self.queue.enqueue(&message).await {
            Ok(()) => {
                tracing::info!(
                    channel = channel_id,
                    msg_type = message.event.msg_type(),
                    event = message.event.event_name().unwrap_or(""),
                    "push accepted"
                );
                tracing::debug!(channel = channel_id, dedupe_key = %message.dedupe_key, "push enqueued");
                text_response("success")
            }
            Err(error) => {
                // Not answering success makes WeChat retry the push: nothing is lost.
                tracing::error!(channel = channel_id, %error, "push not enqueued");
                error_response(503, "queue_unavailable", "push not stored; WeChat will retry")
            }
        }
    }
}

fn refuse(channel: &str, error: &CallbackError) -> Response<Body> {
    tracing::warn!(channel, code = error.code(), reason = %error, "push refused");
    error_response(error.status(), error.code(), &error.to_string())
}

/// The `{channel}` of `/wechat/{channel}`: from API Gateway's path parameters, or from the
/// raw path where none are set (function URLs, `cargo lambda watch`).
fn channel_of(request: &Request) -> Option<String> {
    if let Some(channel) = request.path_parameters_ref().and_then(|p| p.first("channel")) {
        return Some(channel.to_owned());
    }
    let path = request.raw_http_path();
    let path = if path.is_empty() { request.uri().path() } else { path };
    let rest = path.trim_end_matches('/').rsplit_once("/wechat/")?.1;
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
}
