//! A partner's desk: receives the bridge's signed webhooks and checks them as a partner's
//! endpoint must (signature over the raw body, timestamp within 5 minutes), and sends
//! signed requests to the partner API.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::services::partner::auth::{self as api_auth, SignedRequest};
use wxbridge_core::services::webhook;

/// How far a webhook's timestamp may be from now, as the README asks partners to check.
pub const TOLERANCE_SECS: u64 = 300;

/// One webhook as the desk received it (a line of the desk's log).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceivedWebhook {
    pub partner: String,
    pub verified: bool,
    pub event: String,
    pub delivery: String,
    pub received_at_ms: i64,
    /// A delivery id seen before (a retry the partner should drop).
    pub repeat: bool,
    pub body: Value,
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Checks a webhook for `partner` against its signing secret.
pub fn check(
    config: &BridgeConfig,
    partner: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Option<ReceivedWebhook> {
    let secret = &config.partner(partner)?.signing_secret;
    let verified = header(headers, webhook::TIMESTAMP_HEADER)
        .parse::<i64>()
        .is_ok_and(|timestamp| {
            webhook::verify(
                secret,
                timestamp,
                body,
                &header(headers, webhook::SIGNATURE_HEADER),
                now_secs,
                TOLERANCE_SECS,
            )
        });
    Some(ReceivedWebhook {
        partner: partner.to_owned(),
        verified,
        event: header(headers, webhook::EVENT_HEADER),
        delivery: header(headers, webhook::DELIVERY_HEADER),
        received_at_ms: crate::now_ms(),
        repeat: false,
        body: serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
    })
}

/// What the receiver shares between requests.
pub struct Receiver {
    pub config: BridgeConfig,
    pub log: PathBuf,
    seen: Mutex<std::collections::HashSet<String>>,
    /// Webhooks arrive together: each line is written whole, one writer at a time, so no
    /// two land on one line of the log.
    log_writes: Mutex<()>,
    quiet: bool,
}

impl Receiver {
    pub fn new(config: BridgeConfig, log: PathBuf, quiet: bool) -> Arc<Self> {
        Arc::new(Self {
            config,
            log,
            seen: Mutex::default(),
            log_writes: Mutex::default(),
            quiet,
        })
    }

    /// One `write` of the whole line, newline included (`writeln!` writes the line and its
    /// newline apart, and two webhooks then share a line), under the receiver's lock.
    fn append_to_log(&self, received: &ReceivedWebhook) -> std::io::Result<()> {
        let mut line = serde_json::to_string(received).unwrap_or_default();
        line.push('\n');
        let _one_writer = self.log_writes.lock().expect("log lock");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?
            .write_all(line.as_bytes())
    }
}

/// `POST /hooks/{partner}`: verified webhooks are logged and answered 200; a bad signature
/// or stale timestamp is logged and answered 401; an unknown partner 404.
/// `GET /avatars/{file}`: a partner's avatar, for registering its sub-merchant locally.
pub fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/hooks/{partner}", post(receive))
        .route("/avatars/{file}", get(avatar))
        .with_state(receiver)
}

async fn avatar() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "image/png")],
        crate::PNG,
    )
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(partner): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now_secs = crate::now_ms() / 1000;
    let Some(mut received) = check(&receiver.config, &partner, &headers, &body, now_secs) else {
        eprintln!("[desk] webhook for unknown partner {partner}: 404");
        return StatusCode::NOT_FOUND;
    };
    if received.verified {
        let mut seen = receiver.seen.lock().expect("seen lock");
        received.repeat = !seen.insert(received.delivery.clone());
    }
    if !receiver.quiet {
        println!("{}", describe_webhook(&received));
    }
    let written = receiver.append_to_log(&received);
    if let Err(error) = written {
        eprintln!("[desk] cannot log to {}: {error}", receiver.log.display());
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if received.verified {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// Every webhook the desk logged, oldest first.
pub fn read_log(path: &std::path::Path) -> Vec<ReceivedWebhook> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// One line for a webhook, as the desk shows it.
pub fn describe_webhook(received: &ReceivedWebhook) -> String {
    let body = &received.body;
    let mark = match (received.verified, received.repeat) {
        (false, _) => "✗ BAD SIGNATURE",
        (true, true) => "✓ (repeat)",
        (true, false) => "✓",
    };
    let what = match received.event.as_str() {
        "message.status" => format!(
            "message {} is {}{}",
            body["message"]["id"].as_str().unwrap_or("?"),
            body["message"]["status"].as_str().unwrap_or("?"),
            body["message"]["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        "push.status" => format!(
            "push {} is {}{}{}",
            body["push"]["id"].as_str().unwrap_or("?"),
            body["push"]["status"].as_str().unwrap_or("?"),
            body["push"]["path"]
                .as_str()
                .map(|p| format!(" by {p}"))
                .unwrap_or_default(),
            body["push"]["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        "conversation.handed_over" => format!(
            "{} handed {} over{}; context: {} message(s){}",
            body["from"]["partner"].as_str().unwrap_or("?"),
            body["user"]["openid"].as_str().unwrap_or("?"),
            body["note"]
                .as_str()
                .map(|n| format!(" — note: \"{n}\""))
                .unwrap_or_default(),
            body["context"].as_array().map_or(0, Vec::len),
            body["context"]
                .as_array()
                .and_then(|c| c.last())
                .map(|m| format!(", the last: {}", crate::describe_content(&m["content"])))
                .unwrap_or_default()
        ),
        "conversation.closed" => format!(
            "closed ({})",
            body["closed"]["reason"].as_str().unwrap_or("?")
        ),
        _ if body["message"]["content"].is_object() => {
            format!(
                "{}{}: {}",
                body["user"]["openid"].as_str().unwrap_or("?"),
                body["user"]["app_user_id"]
                    .as_str()
                    .map(|u| format!(" (app user {u})"))
                    .unwrap_or_default(),
                crate::describe_content(&body["message"]["content"])
            ) + &body["message"]["media"]["status"]
                .as_str()
                .map(|status| format!(" (copy {status})"))
                .unwrap_or_default()
        }
        _ => body.to_string(),
    };
    format!(
        "[{}] {mark} {} · {} · conversation {}",
        received.partner,
        received.event,
        what,
        body["conversation"]["id"].as_str().unwrap_or("-")
    )
}

/// A partner's client of the bridge's API, signing every request.
pub struct PartnerClient {
    pub client: reqwest::Client,
    /// The API's base URL, without `/v1`.
    pub api_url: String,
    pub partner: String,
    pub secret: wxbridge_core::config::Secret,
}

impl PartnerClient {
    pub fn new(config: &BridgeConfig, api_url: &str, partner: &str) -> Result<Self, String> {
        let found = config.partner(partner).ok_or_else(|| {
            let known: Vec<&str> = config.partners.iter().map(|p| p.id.as_str()).collect();
            format!("no partner {partner} (partners: {})", known.join(", "))
        })?;
        Ok(Self {
            client: reqwest::Client::new(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            partner: partner.to_owned(),
            secret: found.signing_secret.clone(),
        })
    }

    /// Sends a signed request; answers the status and the body (JSON, or the text).
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
    ) -> Result<(u16, Value), String> {
        let (status, _, bytes) = self.request_raw(method, path_and_query, body).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Sends a signed request; answers the status, the content type and the body's bytes.
    pub async fn request_raw(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
    ) -> Result<(u16, String, Vec<u8>), String> {
        let signed = SignedRequest {
            method,
            path_and_query,
            body: body.as_bytes(),
        };
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let headers = api_auth::sign(
            &self.partner,
            &self.secret,
            &signed,
            crate::now_ms() / 1000,
            &nonce,
        );
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("not an HTTP method: {method}"))?;
        let mut request = self
            .client
            .request(method, format!("{}{path_and_query}", self.api_url));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("the API did not answer: {e}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.unwrap_or_default().to_vec();
        Ok((status, content_type, bytes))
    }

    /// The conversation's latest image message, once its copy is no longer `pending` (or
    /// `wait` is over): a line on its copy, on the kept copy as the API serves it (written
    /// to `out`, if given), and, for a user's image, on WeChat's own copy. `true` when the
    /// kept copy was served.
    pub async fn latest_image(
        &self,
        conversation_path: &str,
        channel: &str,
        wait: std::time::Duration,
        out: Option<&std::path::Path>,
    ) -> Result<(bool, Vec<String>), String> {
        let history = format!("/v1/conversations/{conversation_path}/messages?limit=100");
        let deadline = std::time::Instant::now() + wait;
        let message = loop {
            let (status, page) = self.request("GET", &history, "").await?;
            if status != 200 {
                return Err(format!("GET {history} → {status} {page}"));
            }
            let latest = page["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["media"].is_object()).cloned())
                .ok_or("the conversation has no image message")?;
            if latest["media"]["status"] != "pending" || std::time::Instant::now() >= deadline {
                break latest;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        };
        let media = &message["media"];
        let mut lines = vec![format!(
            "image message {} ({}): copy {}{}",
            message["id"].as_str().unwrap_or("?"),
            message["direction"].as_str().unwrap_or("?"),
            media["status"].as_str().unwrap_or("?"),
            media["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )];
        let path = media["path"].as_str().unwrap_or_default();
        let (status, content_type, bytes) = self.request_raw("GET", path, "").await?;
        let kept = status == 200;
        lines.push(match kept {
            true => format!(
                "kept copy: {content_type}, {} bytes (GET {path})",
                bytes.len()
            ),
            false => format!(
                "kept copy: not served, {status} {}",
                String::from_utf8_lossy(&bytes)
            ),
        });
        if let (true, Some(out)) = (kept, out) {
            std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        if let Some(media_id) = message["content"]["media_id"].as_str() {
            let wechat = format!("/v1/media/{channel}/{media_id}");
            let (status, answer) = self.request("GET", &wechat, "").await?;
            lines.push(match status {
                200 => format!("WeChat's copy: still there (GET {wechat})"),
                _ => format!(
                    "WeChat's copy: gone ({status} {})",
                    answer["error"].as_str().unwrap_or("?")
                ),
            });
        }
        Ok((kept, lines))
    }
}
