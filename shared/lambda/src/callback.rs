//! The `callback` function: WeChat's message-push endpoint, `/wechat/{channel}`.
//!
//! GET answers URL verification with `echostr`. POST verifies, opens and parses the push,
//! sends one message to `inbound.fifo` and answers `success` — one AWS request per push,
//! well inside WeChat's 5 seconds. Every refusal is a 4xx with a reason and a log line
//! that names the channel and the reason, never the content.

use crate::http::{error_response, text_response};
use lambda_http::{Body, Request, RequestExt, Response};
use std::sync::Arc;
use wxbridge_core::clock::{Clock, SharedClock, SystemClock};
use wxbridge_core::config::{BridgeConfig, Channels};
use wxbridge_core::metrics;
use wxbridge_core::model::InboundMessage;
use wxbridge_core::ports::queue::InboundQueue;
use wxbridge_wechat::callback::{open_push, verify_url, CallbackError, Freshness, PushQuery};
use wxbridge_wechat::endpoint::PushEndpoint;

pub struct CallbackService<Q> {
    channels: Channels,
    queue: Q,
    tolerance_secs: Option<u64>,
    max_body_bytes: usize,
    clock: SharedClock,
}

/// The HTTP status a refusal answers with: 401 when the request is not WeChat's (or no
/// longer fresh), 413 when it is too large, 400 when it is malformed or does not match the
/// channel's settings. Every refusal is the request's fault: 5xx is kept for the bridge's
/// own (a queue out of reach).
pub fn status_of(error: &CallbackError) -> u16 {
    match error {
        CallbackError::BadSignature
        | CallbackError::StaleTimestamp
        | CallbackError::EncryptionRequired => 401,
        CallbackError::BodyTooLarge(_) => 413,
        _ => 400,
    }
}

impl<Q: InboundQueue> CallbackService<Q> {
    pub fn new(config: &BridgeConfig, queue: Q) -> Self {
        Self {
            channels: Channels::new(config),
            queue,
            tolerance_secs: config.timestamp_tolerance_secs,
            max_body_bytes: config.max_body_bytes,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock, for tests.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
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
            request
                .query_string_parameters_ref()
                .into_iter()
                .flat_map(|q| q.iter()),
        );
        let now_ms = self.clock.now_ms();
        let freshness = Freshness {
            now_secs: now_ms.div_euclid(1000),
            tolerance_secs: self.tolerance_secs,
        };
        match *request.method() {
            http::Method::GET => match verify_url(channel, &query, freshness) {
                Ok(echostr) => {
                    tracing::info!(channel = %channel_id, "URL verification answered");
                    text_response(echostr)
                }
                Err(error) => refuse(&channel_id, &error),
            },
            http::Method::POST => {
                self.accept_push(channel, &query, request.body(), freshness, now_ms)
                    .await
            }
            _ => error_response(405, "method_not_allowed", "use GET or POST"),
        }
    }

    async fn accept_push(
        &self,
        channel: &PushEndpoint,
        query: &PushQuery,
        body: &Body,
        freshness: Freshness,
        now_ms: i64,
    ) -> Response<Body> {
        let channel_id = channel.name.as_str();
        let bytes: &[u8] = body.as_ref();
        if bytes.len() > self.max_body_bytes {
            return refuse(
                channel_id,
                &CallbackError::BodyTooLarge(self.max_body_bytes),
            );
        }
        let event = match open_push(channel, query, bytes, freshness) {
            Ok(event) => event,
            Err(error) => return refuse(channel_id, &error),
        };
        let message = InboundMessage::new(channel_id, event, now_ms);
        match self.queue.enqueue(&message).await {
            Ok(()) => {
                metrics::count("received");
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
                error_response(
                    503,
                    "queue_unavailable",
                    "push not stored; WeChat will retry",
                )
            }
        }
    }
}

fn refuse(channel: &str, error: &CallbackError) -> Response<Body> {
    let reason = error.reason();
    tracing::warn!(channel, code = error.code(), %reason, "push refused");
    metrics::count_because("refused", error.code());
    tracing::debug!(channel, detail = %error, "push refused");
    error_response(status_of(error), error.code(), &reason)
}

/// The `{channel}` of `/wechat/{channel}`: from API Gateway's path parameters, or from the
/// raw path where none are set (function URLs, as the local stack serves them too).
fn channel_of(request: &Request) -> Option<String> {
    if let Some(channel) = request
        .path_parameters_ref()
        .and_then(|p| p.first("channel"))
    {
        return Some(channel.to_owned());
    }
    let path = request.raw_http_path();
    let path = if path.is_empty() {
        request.uri().path()
    } else {
        path
    };
    let rest = path.trim_end_matches('/').rsplit_once("/wechat/")?.1;
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxbridge_testkit::events::http_api_event;
    use wxbridge_testkit::MemoryQueue;
    use wxbridge_wechat::encode::seal;
    use wxbridge_wechat::event::{CallbackEvent, EventKind};
    use wxbridge_wechat::vectors::*;

    const NOW_MS: i64 = 1_714_112_445_000;

    fn service() -> CallbackService<MemoryQueue> {
        let document = format!(
            r#"{{"channels":[{{"id":"mp","app_id":"{MP_APPID}","original_id":"{MP_ORIGINAL_ID}","token":"{MP_TOKEN}",
            "encoding_aes_key":"{MP_ENCODING_AES_KEY}","mode":"safe","push_format":"json"}}],"max_body_bytes":4096}}"#
        );
        CallbackService::new(
            &BridgeConfig::from_json(&document).unwrap(),
            MemoryQueue::default(),
        )
        .with_clock(|| NOW_MS)
    }

    fn request(method: &str, channel: &str, query: &[(&str, &str)], body: Option<&str>) -> Request {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::http::event_request(&http_api_event(method, channel, &query, body))
    }

    fn safe_vector(body: &str) -> Request {
        request("POST", "mp", &MP_SAFE_QUERY, Some(body))
    }

    fn text_of(response: &Response<Body>) -> String {
        String::from_utf8(response.body().as_ref().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn get_answers_echostr_raw_or_401() {
        let service = service();
        let good = [
            ("signature", MP_GET_SIGNATURE),
            ("timestamp", MP_GET_TIMESTAMP),
            ("nonce", MP_GET_NONCE),
            ("echostr", MP_GET_ECHOSTR),
        ];
        let service = service.with_clock(|| 1_714_036_504_000);
        let response = service.handle(request("GET", "mp", &good, None)).await;
        assert_eq!(
            (response.status().as_u16(), text_of(&response)),
            (200, MP_GET_ECHOSTR.to_owned())
        );
        let mut forged = good;
        forged[0].1 = MP_PLAIN_SIGNATURE;
        let response = service.handle(request("GET", "mp", &forged, None)).await;
        assert_eq!(response.status(), 401);
        assert!(!text_of(&response).contains(MP_GET_ECHOSTR));
    }

    #[tokio::test]
    async fn a_push_sent_three_times_is_enqueued_once() {
        let service = service();
        for _ in 0..3 {
            let response = service.handle(safe_vector(MP_SAFE_BODY)).await;
            assert_eq!(
                (response.status().as_u16(), text_of(&response)),
                (200, "success".to_owned())
            );
        }
        // Each attempt is sent with the same group and deduplication id, which is what
        // makes SQS collapse them (the integration tests show it on a real FIFO queue).
        let attempts = service.queue().attempts();
        assert_eq!(attempts.len(), 3);
        for attempt in &attempts {
            assert_eq!(attempt.group_id(), format!("mp:{MP_OPENID}"));
            assert_eq!(attempt.deduplication_id(), attempts[0].deduplication_id());
            assert_eq!(attempt.received_at_ms, NOW_MS);
        }
        assert!(attempts[0]
            .dedupe_key
            .starts_with(&format!("mp:evt:{MP_OPENID}:1714112445:debug_demo:")));
        assert_eq!(service.queue().sent().len(), 1);
    }

    #[tokio::test]
    async fn refusals_carry_status_and_reason_but_never_content() {
        let service = service();
        let forged = MP_SAFE_BODY.replace("+qdx", "+qdy");
        let response = service.handle(safe_vector(&forged)).await;
        assert_eq!(response.status(), 401);
        assert!(text_of(&response).contains("bad_signature"));

        let response = service
            .handle(request("POST", "nope", &[], Some("{}")))
            .await;
        assert_eq!(response.status(), 404);

        let oversized = format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000));
        let response = service.handle(safe_vector(&oversized)).await;
        assert_eq!(response.status(), 413);

        for method in ["PUT", "OPTIONS", "DELETE", "PATCH"] {
            let response = service.handle(request(method, "mp", &[], Some("{}"))).await;
            assert_eq!(response.status(), 405, "{method}");
            assert!(
                text_of(&response).contains("method_not_allowed"),
                "{method}"
            );
        }
        assert!(service.queue().sent().is_empty());
    }

    #[tokio::test]
    async fn a_fresh_text_push_is_enqueued_with_its_content_and_the_answer_does_not_echo_it() {
        let service = service();
        let channel = service.channels.get("mp").unwrap().clone();
        let event = CallbackEvent {
            to_user_name: MP_ORIGINAL_ID.into(),
            from_user_name: "o_user".into(),
            create_time: NOW_MS / 1000,
            business_id: None,
            kind: EventKind::Text {
                msg_id: "99".into(),
                content: "secret words".into(),
            },
        };
        let push = seal(&channel, &event, NOW_MS / 1000, "n");
        let response = service
            .handle(crate::http::event_request(
                &wxbridge_testkit::events::push_event(&push, "mp"),
            ))
            .await;
        assert_eq!(response.status(), 200);
        assert!(!text_of(&response).contains("secret"));
        assert_eq!(service.queue().sent()[0].event, event);
    }

    #[tokio::test]
    async fn a_queue_failure_answers_503_so_wechat_retries() {
        let service = service();
        service.queue().fail(true);
        let response = service.handle(safe_vector(MP_SAFE_BODY)).await;
        assert_eq!(response.status(), 503);
        service.queue().fail(false);
        let response = service.handle(safe_vector(MP_SAFE_BODY)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(service.queue().sent().len(), 1);
    }

    #[tokio::test]
    async fn the_channel_comes_from_the_raw_path_when_no_path_parameters_are_set() {
        let service = service();
        let mut event: serde_json::Value =
            serde_json::from_str(&http_api_event("GET", "mp", &[], None).to_string()).unwrap();
        event.as_object_mut().unwrap().remove("pathParameters");
        let response = service.handle(crate::http::event_request(&event)).await;
        // Known channel, missing parameters: 400, not 404.
        assert_eq!(response.status(), 400);
    }

    #[tokio::test]
    async fn a_binary_body_that_is_not_utf8_is_a_malformed_push() {
        let mut event = http_api_event("POST", "mp", &[], None);
        event["body"] = serde_json::json!("//4=");
        event["isBase64Encoded"] = serde_json::json!(true);
        let query: Vec<(String, String)> = MP_SAFE_QUERY
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let with_query = http_api_event("POST", "mp", &query, None);
        event["rawQueryString"] = with_query["rawQueryString"].clone();
        event["queryStringParameters"] = with_query["queryStringParameters"].clone();
        let response = service().handle(crate::http::event_request(&event)).await;
        assert_eq!(response.status(), 400);
        assert!(text_of(&response).contains("malformed_body"));
    }

    #[tokio::test]
    async fn an_encrypted_push_to_a_plaintext_channel_is_the_requests_fault() {
        let document = format!(
            r#"{{"channels":[{{"id":"plain","app_id":"{MP_APPID}","original_id":"{MP_ORIGINAL_ID}","token":"{MP_TOKEN}",
            "mode":"plaintext","push_format":"json"}}]}}"#
        );
        let service = CallbackService::new(
            &BridgeConfig::from_json(&document).unwrap(),
            MemoryQueue::default(),
        )
        .with_clock(|| NOW_MS);
        let response = service
            .handle(request("POST", "plain", &MP_SAFE_QUERY, Some(MP_SAFE_BODY)))
            .await;
        assert_eq!(response.status(), 400);
        assert!(text_of(&response).contains("encryption_not_configured"));
        assert!(service.queue().sent().is_empty());
    }

    /// One refusal of each kind the callback answers. The match has no wildcard, so a new
    /// kind cannot be added without being listed (and documented) here.
    fn every_refusal() -> Vec<CallbackError> {
        use wxbridge_wechat::crypto::CryptoError;
        use wxbridge_wechat::event::EventError;
        use wxbridge_wechat::xml::XmlError;
        let all = vec![
            CallbackError::MissingParameter("nonce"),
            CallbackError::BadSignature,
            CallbackError::BadTimestamp,
            CallbackError::StaleTimestamp,
            CallbackError::EncryptionRequired,
            CallbackError::NoKey,
            CallbackError::BodyTooLarge(1),
            CallbackError::BodyNotUtf8,
            CallbackError::UnknownFormat,
            CallbackError::Json(String::new()),
            CallbackError::Xml(XmlError::Doctype),
            CallbackError::Crypto(CryptoError::BadBase64),
            CallbackError::Crypto(CryptoError::AppIdMismatch),
            CallbackError::Event(EventError::NotAnObject),
            CallbackError::WrongRecipient,
        ];
        for error in &all {
            match error {
                CallbackError::MissingParameter(_)
                | CallbackError::BadSignature
                | CallbackError::BadTimestamp
                | CallbackError::StaleTimestamp
                | CallbackError::EncryptionRequired
                | CallbackError::NoKey
                | CallbackError::BodyTooLarge(_)
                | CallbackError::BodyNotUtf8
                | CallbackError::UnknownFormat
                | CallbackError::Json(_)
                | CallbackError::Xml(_)
                | CallbackError::Crypto(_)
                | CallbackError::Event(_)
                | CallbackError::WrongRecipient => {}
            }
        }
        all
    }

    #[test]
    fn the_answer_table_lists_every_status_and_code_the_callback_gives() {
        let docs = include_str!("../../../docs/architecture.md");
        let mut rows: Vec<(u16, &str)> = every_refusal()
            .iter()
            .map(|error| (status_of(error), error.code()))
            .collect();
        rows.extend([
            (404, "not_found"),
            (404, "unknown_channel"),
            (405, "method_not_allowed"),
            (503, "queue_unavailable"),
        ]);
        for (status, code) in rows {
            assert!(
                docs.contains(&format!("| {status} `{code}` |")),
                "docs/architecture.md does not list {status} {code}"
            );
            assert!(
                status < 500 || code == "queue_unavailable",
                "{code} is the request's fault"
            );
        }
    }
}
