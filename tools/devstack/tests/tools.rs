//! The simulator's pushes are what the bridge's callback accepts, in every mode and format,
//! and its actions reach the WeChat fake; the desk verifies real webhooks, refuses tampered
//! ones, and its API requests carry signatures the bridge accepts.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use std::sync::Arc;
use wxbridge_core::config::{BridgeConfig, Secret};
use wxbridge_core::model::session_from::SessionFrom;
use wxbridge_core::services::partner::auth::{self as api_auth, SignedRequest};
use wxbridge_devstack::desk::{read_log, router, PartnerClient, Receiver};
use wxbridge_devstack::user::{self, pick_channel, Simulator, UserInput};
use wxbridge_lambda::callback::CallbackService;
use wxbridge_testkit::MemoryQueue;
use wxbridge_testkit::MemoryStore;

const APP: &str = "wx00000000000000d1";
const APP_SECRET: &str = "devstack-app-secret";
const SESSION_SECRET: &str = "session-from-secret-1";

fn config(fake_url: &str, desk_url: &str) -> BridgeConfig {
    let mut channels = Vec::new();
    for mode in ["plaintext", "compatible", "safe"] {
        for format in ["json", "xml"] {
            channels.push(json!({
                "id": format!("{mode}-{format}"), "app_id": APP, "original_id": "gh_devstack",
                "token": "devstack-token", "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                "mode": mode, "push_format": format, "app_secret": APP_SECRET
            }));
        }
    }
    BridgeConfig::from_json(
        &json!({
            "channels": channels,
            "partners": [
                {"id": "platform", "display_name": "Trip Service", "webhook_url": format!("{desk_url}/hooks/platform"), "signing_secret": "platform-secret-0123"},
                {"id": "hotel-9", "display_name": "Hotel Lotus", "webhook_url": format!("{desk_url}/hooks/hotel-9"), "signing_secret": "hotel-secret-456789"}
            ],
            "dialog": {"mode": "merged", "default_partner": "platform"},
            "session_from_secret": SESSION_SECRET,
            "wechat_api_base": fake_url
        })
        .to_string(),
    )
    .unwrap()
}

fn inputs() -> Vec<UserInput> {
    vec![
        UserInput::Text("Is breakfast included? <b>&]]></b>".into()),
        UserInput::Image {
            pic_url: "http://127.0.0.1/_fake/media/m1".into(),
            media_id: "m1".into(),
        },
        UserInput::Card {
            title: "Order 42".into(),
            page_path: "pages/order?id=42".into(),
            thumb_url: "http://127.0.0.1/thumb".into(),
            thumb_media_id: "thumb".into(),
        },
        UserInput::Enter {
            session_from: user::signed_session_from(
                &Secret::new(SESSION_SECRET),
                "hotel-9",
                Some("u-42"),
                "oSimUser",
                Some("42"),
                1_764_150_000,
            ),
        },
        UserInput::Subscribe {
            template_id: "tpl-order".into(),
            accept: true,
        },
        UserInput::Subscribe {
            template_id: "tpl-order".into(),
            accept: false,
        },
    ]
}

#[tokio::test]
async fn every_push_the_simulator_builds_is_accepted_by_the_callback_in_every_mode_and_format() {
    let config = config("http://127.0.0.1:1", "http://127.0.0.1:2");
    let service = CallbackService::new(&config, MemoryQueue::default());
    let now_secs = wxbridge_devstack::now_ms() / 1000;
    let mut expected = Vec::new();
    for channel_config in &config.channels {
        let channel = pick_channel(&config, Some(&channel_config.id)).unwrap();
        for input in inputs() {
            let event = user::event(&channel, "oSimUser", &input, now_secs);
            let push = user::push(&channel, &event, now_secs);
            if channel_config.id.starts_with("safe") {
                assert!(
                    !push.body.contains("oSimUser"),
                    "safe mode carries only ciphertext"
                );
            }
            let request = wxbridge_lambda::http::event_request(
                &wxbridge_testkit::events::push_event(&push, &channel_config.id),
            );
            let response = service.handle(request).await;
            let body = String::from_utf8(response.body().to_vec()).unwrap();
            assert_eq!(
                (response.status().as_u16(), body.as_str()),
                (200, "success"),
                "{} {input:?}",
                channel_config.id
            );
            expected.push((channel_config.id.clone(), event));
        }
    }
    let queued: Vec<_> = service
        .queue()
        .sent()
        .into_iter()
        .map(|m| (m.channel, m.event))
        .collect();
    assert_eq!(queued, expected, "every push lands once, as built");
}

#[test]
fn a_signed_session_from_vouches_for_the_partner_and_app_user() {
    let secret = Secret::new(SESSION_SECRET);
    let raw = user::signed_session_from(
        &secret,
        "hotel-9",
        Some("u 42"),
        "oSimUser",
        Some("42"),
        1_764_150_000,
    );
    let read = SessionFrom::read(&raw, Some(&secret), 1_764_150_060);
    let vouched = read.vouched.clone().expect("vouched");
    assert_eq!(vouched.partner, "hotel-9");
    assert_eq!(vouched.app_user_id.as_deref(), Some("u 42"));
    assert_eq!(read.get("order"), Some("42"));
    assert_eq!(read.get("openid"), Some("oSimUser"), "binds only this user");
    assert!(raw.len() < 1000, "fits WeChat's session-from limit");
}

fn url_pairs(query: &str) -> std::collections::HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The callback handler behind a loopback HTTP server, as its function URL serves it.
async fn serve_callback(service: Arc<CallbackService<MemoryQueue>>) -> String {
    async fn forward(
        State(service): State<Arc<CallbackService<MemoryQueue>>>,
        request: axum::extract::Request,
    ) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let request = lambda_http::Request::from_parts(
            parts,
            lambda_http::Body::Text(String::from_utf8(bytes.to_vec()).unwrap()),
        );
        // What the Lambda runtime reads from the event's queryStringParameters.
        let query: std::collections::HashMap<String, String> =
            request.uri().query().map(url_pairs).unwrap_or_default();
        let request = lambda_http::RequestExt::with_query_string_parameters(request, query);
        let response = service.handle(request).await;
        let (parts, body) = response.into_parts();
        axum::response::Response::from_parts(parts, axum::body::Body::from(body.to_vec()))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/wechat/{channel}", axum::routing::post(forward))
        .with_state(service);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn the_simulator_tells_the_fake_pushes_over_http_and_shows_what_the_user_received() {
    let fake = wechat_fake::Fake::default();
    fake.add_app(APP, APP_SECRET);
    let fake_url = fake.start().await;
    let config = config(&fake_url, "http://127.0.0.1:2");
    let service = Arc::new(CallbackService::new(&config, MemoryQueue::default()));
    let callback_url = serve_callback(Arc::clone(&service)).await;
    let sim = Simulator {
        client: reqwest::Client::new(),
        callback_url: format!("{callback_url}/wechat"),
        fake_url: fake_url.clone(),
        channel: pick_channel(&config, Some("safe-json")).unwrap(),
        openid: "oSimUser".into(),
        business_id: None,
    };
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{fake_url}/cgi-bin/stable_token"))
        .json(&json!({"grant_type": "client_credential", "appid": APP, "secret": APP_SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let send = |path: &'static str, body: Value| {
        let client = client.clone();
        let url = format!("{fake_url}/cgi-bin/message/{path}?access_token={token}");
        async move {
            let answer: Value = client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["errcode"].as_i64().unwrap()
        }
    };
    let text =
        json!({"touser": "oSimUser", "msgtype": "text", "text": {"content": "【Hotel Lotus】Yes"}});
    assert_eq!(
        send("custom/send", text.clone()).await,
        40003,
        "WeChat knows no such user yet"
    );

    let answer = sim
        .act(&UserInput::Text("Is breakfast included?".into()))
        .await
        .unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "success"));
    assert_eq!(
        send("custom/send", text.clone()).await,
        0,
        "the user's message opened the window"
    );

    let subscribe = json!({"touser": "oSimUser", "template_id": "tpl", "data": {"thing1": {"value": "Room ready"}}});
    assert_eq!(send("subscribe/send", subscribe.clone()).await, 43101);
    sim.act(&UserInput::Subscribe {
        template_id: "tpl".into(),
        accept: true,
    })
    .await
    .unwrap();
    assert_eq!(
        send("subscribe/send", subscribe).await,
        0,
        "the accepted pop-up granted one"
    );

    let (media_id, pic_url) = sim
        .upload_image("image/png", b"\x89PNG\r\n\x1a\nimage".to_vec())
        .await
        .unwrap();
    sim.act(&UserInput::Image {
        pic_url,
        media_id: media_id.clone(),
    })
    .await
    .unwrap();
    assert!(
        fake.media(&media_id).is_some(),
        "the partner can fetch what the user sent"
    );

    sim.close_window().await.unwrap();
    assert_eq!(send("custom/send", text).await, 45015, "time passed");

    let received: Vec<String> = sim
        .received()
        .await
        .unwrap()
        .iter()
        .map(user::describe_received)
        .collect();
    assert_eq!(
        received,
        [
            "【Hotel Lotus】Yes",
            "[subscribe message tpl] thing1: Room ready"
        ]
    );
    let kinds: Vec<&str> = service
        .queue()
        .sent()
        .iter()
        .map(|m| match &m.event.kind {
            wxbridge_wechat::event::EventKind::Text { .. } => "text",
            wxbridge_wechat::event::EventKind::SubscribePopup { .. } => "subscribe",
            wxbridge_wechat::event::EventKind::Image { .. } => "image",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["text", "subscribe", "image"]);
}

/// A webhook to the desk at `desk`, signed with `secret` as the bridge signs it.
fn signed_webhook(
    desk: &str,
    partner: &str,
    secret: &str,
    delivery: &str,
    body: String,
    timestamp: i64,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> {
    let signature = wxbridge_core::services::webhook::signature(
        &Secret::new(secret),
        timestamp,
        body.as_bytes(),
    );
    reqwest::Client::new()
        .post(format!("{desk}/hooks/{partner}"))
        .header("x-wxbridge-timestamp", timestamp.to_string())
        .header("x-wxbridge-signature", signature)
        .header("x-wxbridge-delivery", delivery)
        .header("x-wxbridge-event", "message.received")
        .body(body)
        .send()
}

/// A desk on a free port, logging to a fresh file: its URL and its log.
async fn start_desk(config: &BridgeConfig) -> (String, std::path::PathBuf) {
    let log = std::env::temp_dir().join(format!("desk-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let desk = format!("http://{}", listener.local_addr().unwrap());
    let app = router(Receiver::new(config.clone(), log.clone(), true));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (desk, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_arriving_together_are_logged_one_per_line() {
    let config = config("http://127.0.0.1:1", "http://127.0.0.1:2");
    let (desk, log) = start_desk(&config).await;
    let now = wxbridge_devstack::now_ms() / 1000;
    let deliveries: Vec<String> = (0..200).map(|i| format!("in_{i}")).collect();
    let mut sends = tokio::task::JoinSet::new();
    for delivery in deliveries.clone() {
        let desk = desk.clone();
        sends.spawn(async move {
            let body = json!({"type": "message.received", "delivery_id": delivery,
                "message": {"id": delivery, "content": {"type": "text", "content": "x".repeat(2000)}}})
            .to_string();
            signed_webhook(&desk, "hotel-9", "hotel-secret-456789", &delivery, body, now).await
        });
    }
    while let Some(answer) = sends.join_next().await {
        assert_eq!(answer.unwrap().unwrap().status(), 200);
    }
    let raw = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), deliveries.len(), "one line per webhook");
    assert!(lines
        .iter()
        .all(|line| serde_json::from_str::<Value>(line).is_ok()));
    let mut logged: Vec<String> = read_log(&log).into_iter().map(|w| w.delivery).collect();
    let mut expected = deliveries.clone();
    logged.sort();
    expected.sort();
    assert_eq!(logged, expected);
    let _ = std::fs::remove_file(log);
}

#[tokio::test]
async fn the_desk_logs_verified_webhooks_and_refuses_tampered_ones() {
    let config = config("http://127.0.0.1:1", "http://127.0.0.1:2");
    let (desk, log) = start_desk(&config).await;

    let body = json!({
        "type": "message.received", "delivery_id": "in_1",
        "message": {"id": "in_1", "content": {"type": "text", "content": "Hello"}},
        "conversation": {"id": "mp:oSimUser:hotel-9"}, "user": {"openid": "oSimUser"}
    })
    .to_string();
    let now = wxbridge_devstack::now_ms() / 1000;
    let post = |partner: &str, secret: &str, body: String, timestamp: i64| {
        signed_webhook(&desk, partner, secret, "in_1", body, timestamp)
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            post("hotel-9", "hotel-secret-456789", body.clone(), now)
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            post("hotel-9", "hotel-secret-456789", body.clone(), now)
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            post("hotel-9", "platform-secret-0123", body.clone(), now)
                .await
                .unwrap()
        ),
        401,
        "another partner's secret"
    );
    assert_eq!(
        status(
            post("hotel-9", "hotel-secret-456789", body.clone(), now - 600)
                .await
                .unwrap()
        ),
        401,
        "stale"
    );
    let signature = wxbridge_core::services::webhook::signature(
        &Secret::new("hotel-secret-456789"),
        now,
        body.as_bytes(),
    );
    let tampered = reqwest::Client::new()
        .post(format!("{desk}/hooks/hotel-9"))
        .header("x-wxbridge-timestamp", now.to_string())
        .header("x-wxbridge-signature", signature)
        .body(body.replace("Hello", "Hellp"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    assert_eq!(status(post("nobody", "x", body, now).await.unwrap()), 404);

    let logged = read_log(&log);
    let verdicts: Vec<(bool, bool)> = logged.iter().map(|w| (w.verified, w.repeat)).collect();
    assert_eq!(
        verdicts,
        [
            (true, false),
            (true, true),
            (false, false),
            (false, false),
            (false, false)
        ]
    );
    let line = wxbridge_devstack::desk::describe_webhook(&logged[0]);
    assert!(line.contains("oSimUser: \"Hello\""), "{line}");
    let _ = std::fs::remove_file(log);
}

#[tokio::test]
async fn the_desk_signs_api_requests_as_the_bridge_checks_them() {
    let config = Arc::new(config("http://127.0.0.1:1", "http://127.0.0.1:2"));
    let nonces = Arc::new(MemoryStore::default());
    async fn check(
        State((config, nonces)): State<(Arc<BridgeConfig>, Arc<MemoryStore>)>,
        method: axum::http::Method,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> String {
        let path_and_query = uri.path_and_query().unwrap().as_str().to_owned();
        let request = SignedRequest {
            method: method.as_str(),
            path_and_query: &path_and_query,
            body: &body,
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        match api_auth::authenticate(
            &config,
            nonces.as_ref(),
            &request,
            header,
            wxbridge_devstack::now_ms() / 1000,
        )
        .await
        {
            Ok(partner) => json!({"partner": partner}).to_string(),
            Err(error) => json!({"error": error.to_string()}).to_string(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(check)
        .with_state((Arc::clone(&config), nonces));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let desk = PartnerClient::new(&config, &api, "hotel-9").unwrap();
    let (_, answer) = desk
        .request("POST", "/v1/messages", r#"{"conversation_id":"c","client_message_id":"d-1","content":{"type":"text","text":"Yes"}}"#)
        .await
        .unwrap();
    assert_eq!(answer, json!({"partner": "hotel-9"}));
    let (_, answer) = desk
        .request("GET", "/v1/conversations?channel=mp&openid=o%201", "")
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"partner": "hotel-9"}),
        "the query is signed as sent"
    );
    assert!(PartnerClient::new(&config, &api, "nobody").is_err());
}
