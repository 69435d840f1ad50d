//! The partner API end to end: a user writes through the real `callback` and `inbound`
//! handlers, the partner answers through the real `api` handler, the real `dispatch`
//! handler sends from a real `outbound.fifo`, and the local WeChat fake records what the
//! user got. DynamoDB and SQS are the emulator's.

use lambda_http::{Body, Request};
use serde_json::{json, Value};
use std::sync::Arc;
use wechat_fake::{Fake, UserAction};
use wxbridge_aws::{DynamoNonceStore, SqsFifoQueue, SqsParking, Table};
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::{BridgeConfig, Channels};
use wxbridge_core::ports::store::{HandoverStore, UserStore};
use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_core::services::inbound::Inbound;
use wxbridge_core::services::partner::PartnerApi;
use wxbridge_integration::*;
use wxbridge_lambda::api::{router, ApiState};
use wxbridge_lambda::bootstrap::BatchHandler;
use wxbridge_lambda::callback::CallbackService;
use wxbridge_lambda::sqs::dispatch::DispatchHandler;
use wxbridge_lambda::sqs::inbound::InboundHandler;
use wxbridge_wechat::encode::seal;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const APP: &str = "wx0000000000000088";
const APP_SECRET: &str = "the-app-secret";
const SESSION_SECRET: &str = "session-from-secret-1";

struct Partner {
    id: &'static str,
    secret: &'static str,
}

const HOTEL: Partner = Partner {
    id: "hotel-9",
    secret: "hotel-secret-456789",
};
const AIRLINE: Partner = Partner {
    id: "air-3",
    secret: "air-secret-0123456",
};

impl Partner {
    /// A request signed now with `nonce`, as a partner's client sends it.
    fn signed(&self, method: &str, path: &str, body: &str, nonce: &str) -> Request {
        signed_request((self.id, self.secret), method, path, body, nonce)
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Request {
        self.signed(
            method,
            path,
            body,
            &uuid::Uuid::new_v4().simple().to_string(),
        )
    }
}

struct Bridge {
    fake: Fake,
    channels: Channels,
    sqs: aws_sdk_sqs::Client,
    inbound_queues: FifoQueues,
    outbound_queues: FifoQueues,
    callback: CallbackService<SqsFifoQueue>,
    inbound: InboundHandler<AwsPorts, SqsParking>,
    api: axum::Router,
    dispatch: DispatchHandler<AwsPorts, SqsParking>,
    hotel: WebhookReceiver,
    airline: WebhookReceiver,
    config: BridgeConfig,
    table: Table,
}

/// The partner API on `table`, sending to `outbound`.
fn api_on(config: &BridgeConfig, table: &Table, outbound: SqsFifoQueue) -> axum::Router {
    router(Arc::new(ApiState::<AwsPorts, DynamoNonceStore> {
        api: PartnerApi::new(bridge_on(config, table), outbound),
        nonces: table.nonces(),
    }))
}

async fn bridge() -> Bridge {
    let fake = Fake::default();
    fake.add_app(APP, APP_SECRET);
    let fake_url = fake.start().await;
    let hotel = WebhookReceiver::start().await;
    let airline = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_mp","token":"mp-token","mode":"plaintext","push_format":"json","app_secret":"{APP_SECRET}"}}],
          "partners":[
            {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"{}","can_bind":true,
              "welcome":[{{"type":"text","text":"Welcome to Hotel Lotus!"}}]}},
            {{"id":"air-3","display_name":"Blue Air","webhook_url":"{}/hooks","signing_secret":"{}"}},
            {{"id":"rail-1","display_name":"Rail Co","webhook_url":"{}/rail","signing_secret":"rail-secret-0123456"}}],
          "dialog":{{"mode":"merged","default_partner":"hotel-9"}},
          "session_from_secret":"{SESSION_SECRET}",
          "wechat_api_base":"{fake_url}"}}"#,
        hotel.url, HOTEL.secret, airline.url, AIRLINE.secret, airline.url
    ))
    .unwrap();
    let sqs = sqs_client().await;
    let inbound_queues = create_inbound_queues(&sqs).await;
    let outbound_queues = create_fifo_queues(&sqs, "outbound").await;
    let table = new_table().await;
    let outbound = fifo_queue(&sqs, &outbound_queues.queue_url);
    Bridge {
        channels: Channels::new(&config),
        callback: CallbackService::new(&config, fifo_queue(&sqs, &inbound_queues.queue_url)),
        inbound: InboundHandler::new(
            Inbound::new(bridge_on(&config, &table), outbound.clone()),
            parking(&sqs, &inbound_queues),
        ),
        api: api_on(&config, &table, outbound.clone()),
        dispatch: DispatchHandler::new(
            Dispatch::new(
                bridge_on(&config, &table),
                images_on(&config, &table),
                outbound,
            ),
            parking(&sqs, &outbound_queues),
        ),
        fake,
        sqs,
        inbound_queues,
        outbound_queues,
        hotel,
        airline,
        config: config.clone(),
        table,
    }
}

impl Bridge {
    /// The user writes in WeChat: the fake opens its window, the push goes through the
    /// callback and the inbound function.
    async fn user_writes(&self, openid: &str, msg_id: u64, text: &str) {
        self.fake.user_acts(APP, openid, UserAction::Message);
        let kind = EventKind::Text {
            msg_id: msg_id.to_string(),
            content: text.into(),
        };
        self.user_pushes(openid, kind).await;
    }

    /// WeChat pushes what the user did through the callback and the inbound function.
    async fn user_pushes(&self, openid: &str, kind: EventKind) {
        let event = CallbackEvent {
            to_user_name: "gh_mp".into(),
            from_user_name: openid.into(),
            create_time: system_clock_ms() / 1000,
            business_id: None,
            kind,
        };
        let push = seal(
            self.channels.get("mp").unwrap(),
            &event,
            event.create_time,
            "n0nce",
        );
        assert_eq!(
            self.callback
                .handle(push_request(&push, "mp"))
                .await
                .status(),
            200
        );
        let source = self.inbound_queues.event_source("inbound");
        let (_, response) = poll_handler(&self.sqs, &source, &self.inbound).await;
        assert!(response.batch_item_failures.is_empty());
    }

    async fn call(&self, request: Request) -> (u16, Value) {
        api_answer(&self.api, request).await
    }

    /// One batch of outbound.fifo through the dispatch function.
    async fn dispatch(&self) -> usize {
        let source = self.outbound_queues.event_source("dispatch");
        let (batch, _) = poll_handler(&self.sqs, &source, &self.dispatch).await;
        batch.records.len()
    }
}

#[tokio::test]
async fn a_partners_answer_through_the_api_reaches_the_user() {
    let bridge = bridge().await;
    bridge
        .user_writes("o_alice", 1, "Is breakfast included?")
        .await;
    let webhook = bridge.hotel.received()[0].json();
    let conversation_id = webhook["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(conversation_id, "mp:o_alice:hotel-9");

    let reply = json!({"conversation_id": conversation_id, "client_message_id": "desk-1",
                       "content": {"type": "text", "text": "Breakfast is included."}})
    .to_string();
    let (status, accepted) = bridge
        .call(HOTEL.request("POST", "/v1/messages", &reply))
        .await;
    assert_eq!(
        (status, accepted["status"].as_str()),
        (202, Some("queued")),
        "{accepted}"
    );
    // The desk retries its call: the same answer, one message.
    let (status, again) = bridge
        .call(HOTEL.request("POST", "/v1/messages", &reply))
        .await;
    assert_eq!((status, &again), (202, &accepted));

    assert_eq!(bridge.dispatch().await, 1, "one message in outbound.fifo");
    let sent = bridge.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].touser, "o_alice");
    assert_eq!(
        sent[0].body["text"]["content"],
        "【Hotel Lotus】Breakfast is included."
    );

    // One history: the user's message and the reply, newest first, the reply sent.
    let path = format!("/v1/conversations/{conversation_id}/messages");
    let (status, page) = bridge.call(HOTEL.request("GET", &path, "")).await;
    assert_eq!(status, 200, "{page}");
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (messages[0]["id"].as_str(), messages[0]["status"].as_str()),
        (accepted["message_id"].as_str(), Some("sent"))
    );
    assert_eq!(messages[1]["direction"], "in");
    let statuses: Vec<String> = bridge
        .hotel
        .received()
        .iter()
        .filter(|w| w.json()["type"] == "message.status")
        .map(|w| w.json()["message"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["sent"]);
}

#[tokio::test]
async fn a_replay_is_refused_and_a_partner_sees_only_its_conversations() {
    let bridge = bridge().await;
    bridge.user_writes("o_bob", 2, "Hello").await;
    let path = "/v1/conversations/mp:o_bob:hotel-9/messages";
    let nonce = "replayed-nonce-1";
    assert_eq!(
        bridge.call(HOTEL.signed("GET", path, "", nonce)).await.0,
        200
    );
    let (status, refusal) = bridge.call(HOTEL.signed("GET", path, "", nonce)).await;
    assert_eq!(
        (status, refusal["reason"].as_str()),
        (401, Some("this nonce was used before"))
    );

    let (status, _) = bridge.call(AIRLINE.request("GET", path, "")).await;
    assert_eq!(
        status, 404,
        "the airline cannot read the hotel's conversation"
    );
    let reply = json!({"conversation_id": "mp:o_bob:hotel-9", "client_message_id": "a-1",
                       "content": {"type": "text", "text": "x"}})
    .to_string();
    assert_eq!(
        bridge
            .call(AIRLINE.request("POST", "/v1/messages", &reply))
            .await
            .0,
        404
    );
    let (status, listed) = bridge
        .call(AIRLINE.request("GET", "/v1/conversations?channel=mp&openid=o_bob", ""))
        .await;
    assert_eq!(
        (status, listed["conversations"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (_, listed) = bridge
        .call(HOTEL.request("GET", "/v1/conversations?channel=mp&openid=o_bob", ""))
        .await;
    assert_eq!(listed["conversations"][0]["id"], "mp:o_bob:hotel-9");
}

#[tokio::test]
async fn bound_app_users_are_found_and_written_to() {
    let bridge = bridge().await;
    bridge.user_writes("o_carol", 3, "Where is my order?").await;
    let (status, bound) = bridge
        .call(HOTEL.request(
            "PUT",
            "/v1/bindings/mp/o_carol",
            r#"{"app_user_id":"app-carol"}"#,
        ))
        .await;
    assert_eq!(status, 200, "{bound}");
    let (status, listed) = bridge
        .call(HOTEL.request("GET", "/v1/conversations?app_user_id=app-carol", ""))
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["conversations"][0]["openid"], "o_carol");
    assert_eq!(listed["conversations"][0]["app_user_id"], "app-carol");
    let reply = json!({"to": {"app_user_id": "app-carol"}, "client_message_id": "order-7",
                       "content": {"type": "text", "text": "It ships today."}})
    .to_string();
    let (status, accepted) = bridge
        .call(HOTEL.request("POST", "/v1/messages", &reply))
        .await;
    assert_eq!(
        (status, accepted["conversation_id"].as_str()),
        (202, Some("mp:o_carol:hotel-9"))
    );
    bridge.dispatch().await;
    assert_eq!(bridge.fake.sent()[0].touser, "o_carol");
}

#[tokio::test]
async fn typing_and_media_go_through_wechat() {
    let bridge = bridge().await;
    bridge.user_writes("o_dan", 4, "Here is my ticket").await;
    let (status, answer) = bridge
        .call(HOTEL.request("POST", "/v1/conversations/mp:o_dan:hotel-9/typing", ""))
        .await;
    assert_eq!(status, 200, "{answer}");
    let typing = bridge.fake.sent();
    assert_eq!(
        (typing[0].api, typing[0].touser.as_str()),
        ("typing", "o_dan")
    );
    assert_eq!(typing[0].body["command"], "Typing");

    // An image the user sent: WeChat holds it under a media id, which the store records
    // with the message.
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[7u8; 64]].concat();
    let media_id = bridge.fake.add_media("image/png", png.clone());
    let image = EventKind::Image {
        msg_id: "5".into(),
        pic_url: "http://mmbiz.example/pic".into(),
        media_id: media_id.clone(),
    };
    bridge.user_pushes("o_dan", image).await;
    let fetch = |partner: &Partner| partner.request("GET", &format!("/v1/media/mp/{media_id}"), "");
    let response = wxbridge_lambda::api::answer(&bridge.api, fetch(&HOTEL)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), png.as_slice());
    // Another partner's user's image is answered as one nobody sent.
    let absent = bridge
        .call(HOTEL.request("GET", "/v1/media/mp/no-such-media", ""))
        .await;
    assert_eq!(absent.0, 404);
    assert_eq!(absent.1["error"], "not_found");
    assert_eq!(bridge.call(fetch(&AIRLINE)).await, absent);
}

/// The README's curl recipe (`scripts/partner_request.sh`) signs as the API checks.
#[tokio::test]
async fn the_documented_curl_script_signs_requests_the_api_accepts() {
    let bridge = bridge().await;
    bridge.user_writes("o_erin", 5, "Hi").await;
    let body = json!({"to": {"channel": "mp", "openid": "o_erin"}, "client_message_id": "curl-1",
                      "content": {"type": "text", "text": "Hello from the desk"}})
    .to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/partner_request.sh");
    let signed = |path: &str, body: &str| {
        let output = std::process::Command::new(script)
            .args(["POST", path, body])
            .env("WXBRIDGE_DRY_RUN", "1")
            .env("WXBRIDGE_PARTNER", HOTEL.id)
            .env("WXBRIDGE_SECRET", HOTEL.secret)
            .output()
            .expect("the script runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri(path);
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let (name, value) = line.split_once(": ").unwrap();
            builder = builder.header(name, value);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    };
    let (status, accepted) = bridge.call(signed("/v1/messages", &body)).await;
    assert_eq!(status, 202, "{accepted}");
    // Signed for one path, sent to another: refused.
    let mut moved = signed("/v1/messages", &body);
    *moved.uri_mut() = "/v1/messages?x=1".parse().unwrap();
    assert_eq!(bridge.call(moved).await.0, 401);
}

/// What a reply through the API costs in AWS requests: claiming the nonce, reading the
/// conversation, storing the message with its client id and conversation, enqueueing; and
/// for the 202's forecast (`will_hold`, `window`), reading the user and, while the window
/// runs with sends left, the conversation's latest messages.
#[tokio::test]
async fn aws_requests_per_api_reply_stay_within_six() {
    let bridge = bridge().await;
    bridge.user_writes("o_ivy", 9, "Hi").await;
    let (dynamodb, dynamodb_requests) = counted_dynamodb_client().await;
    let (sqs, sqs_requests) = counted_sqs_client().await;
    let table = Table::new(dynamodb, bridge.table.name());
    let counted = api_on(
        &bridge.config,
        &table,
        fifo_queue(&sqs, &bridge.outbound_queues.queue_url),
    );
    let replies = 5u64;
    for n in 0..replies {
        let body =
            json!({"conversation_id": "mp:o_ivy:hotel-9", "client_message_id": format!("cost-{n}"),
                          "content": {"type": "text", "text": format!("reply {n}")}})
            .to_string();
        let (status, answer) =
            api_answer(&counted, HOTEL.request("POST", "/v1/messages", &body)).await;
        assert_eq!(status, 202, "{answer}");
    }
    let (dynamodb, sqs) = (dynamodb_requests.count(), sqs_requests.count());
    let per_reply = (dynamodb + sqs) as f64 / replies as f64;
    println!("AWS requests per API reply: {per_reply:.2} (DynamoDB {dynamodb}, SQS {sqs}, {replies} replies)");
    assert_eq!(sqs as u64, replies, "one enqueue each");
    assert!(per_reply <= 6.0, "{per_reply}");
}

fn reply_body(n: u32) -> String {
    json!({"conversation_id": "mp:o_win:hotel-9", "client_message_id": format!("win-{n}"),
           "content": {"type": "text", "text": format!("reply {n}")}})
    .to_string()
}

#[tokio::test]
async fn the_window_a_partner_sees_follows_the_users_message_and_the_sends() {
    let bridge = bridge().await;
    bridge.user_writes("o_win", 1, "Hello").await;
    let hook = bridge.hotel.received()[0].json();
    assert_eq!(
        hook["window"]["sends_left"], 5,
        "the webhook carries the window"
    );
    let path = "/v1/conversations/mp:o_win:hotel-9";
    let (status, view) = bridge.call(HOTEL.request("GET", path, "")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (
            view["status"].as_str(),
            view["window"]["sends_left"].as_u64()
        ),
        (Some("open"), Some(5))
    );
    assert!(view["window"]["last_user_message_at_ms"].as_i64().is_some());

    for n in 1..=5 {
        let (status, accepted) = bridge
            .call(HOTEL.request("POST", "/v1/messages", &reply_body(n)))
            .await;
        assert_eq!(
            (status, accepted["will_hold"].as_bool()),
            (202, Some(false)),
            "{accepted}"
        );
        while bridge.dispatch().await > 0 {}
    }
    assert_eq!(bridge.fake.sent().len(), 5, "WeChat took all five");
    let (_, view) = bridge.call(HOTEL.request("GET", path, "")).await;
    let window = &view["window"];
    assert_eq!(
        (window["open"].as_bool(), window["sends_left"].as_u64()),
        (Some(false), Some(0))
    );
    assert!(
        window["open_until_ms"].as_i64().is_some(),
        "used up, not over"
    );
    let (status, held) = bridge
        .call(HOTEL.request("POST", "/v1/messages", &reply_body(6)))
        .await;
    assert_eq!(
        (status, held["will_hold"].as_bool()),
        (202, Some(true)),
        "{held}"
    );
}

#[tokio::test]
async fn a_hand_over_sends_the_users_next_message_to_the_receiving_partner() {
    let bridge = bridge().await;
    bridge
        .user_writes("o_ho", 1, "I need to change my flight")
        .await;
    let from = "/v1/conversations/mp:o_ho:hotel-9/handover";
    let body = json!({"handover_id": "ho-1", "to": "air-3",
        "note_to_user": "Blue Air will help you with the flight.",
        "note_to_partner": "Order 42, wants an earlier flight."})
    .to_string();
    let (status, refused) = bridge.call(AIRLINE.request("POST", from, &body)).await;
    assert_eq!(status, 404, "not the airline's conversation: {refused}");
    let (status, done) = bridge.call(HOTEL.request("POST", from, &body)).await;
    assert_eq!(status, 200, "{done}");
    let handed = bridge.airline.received();
    let handed = handed.last().unwrap().json();
    assert_eq!(handed["type"], "conversation.handed_over");
    assert_eq!(handed["note"], "Order 42, wants an earlier flight.");
    assert_eq!(
        handed["context"][0]["content"]["content"],
        "I need to change my flight"
    );
    while bridge.dispatch().await > 0 {}
    let notes: Vec<String> = bridge
        .fake
        .sent()
        .iter()
        .map(|s| {
            s.body["text"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        notes,
        ["【Hotel Lotus】Blue Air will help you with the flight."]
    );

    bridge
        .user_writes("o_ho", 2, "Any flight before noon?")
        .await;
    let next = bridge.airline.received().last().unwrap().json();
    assert_eq!(
        (next["type"].as_str(), next["conversation"]["id"].as_str()),
        (Some("message.received"), Some("mp:o_ho:air-3"))
    );
}

#[tokio::test]
async fn a_hand_over_the_configuration_does_not_allow_is_refused_naming_the_rule() {
    let bridge = bridge().await;
    bridge.user_writes("o_rule", 1, "Hello").await;
    bridge.user_writes("o_rule", 2, "#air-3").await;
    let path = "/v1/conversations/mp:o_rule:air-3/handover";
    let hand = |id: &str, to: &str| json!({"handover_id": id, "to": to}).to_string();
    let routing = || async {
        let user = bridge.table.store().user("mp", "o_rule").await.unwrap();
        user.unwrap().routing
    };
    let before = routing().await;
    // The airline is not the platform's default partner and lists no handover_to: it
    // hands users back to the default partner only.
    let (status, refused) = bridge
        .call(AIRLINE.request("POST", path, &hand("r-1", "rail-1")))
        .await;
    assert_eq!(
        (status, refused["error"].as_str(), refused["reason"].as_str()),
        (
            403,
            Some("forbidden"),
            Some("a partner hands users over only back to the default partner unless its partners[].handover_to lists others")
        )
    );
    let (status, refused) = bridge
        .call(AIRLINE.request("POST", path, &hand("r-2", "nobody")))
        .await;
    assert_eq!(
        (status, refused["reason"].as_str()),
        (400, Some("to: names no partner"))
    );
    assert_eq!(routing().await, before, "a refusal moves nobody");
    let (status, done) = bridge
        .call(AIRLINE.request("POST", path, &hand("r-3", "hotel-9")))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(routing().await.active.unwrap().partner, "hotel-9");
}

#[tokio::test]
async fn only_the_partner_the_user_talks_to_hands_them_over_and_its_id_is_kept_in_the_table() {
    let bridge = bridge().await;
    let path = "/v1/conversations/mp:o_nap:air-3/handover";
    let hand = |id: &str| json!({"handover_id": id, "to": "hotel-9"}).to_string();
    let talks_to = || async {
        let user = bridge.table.store().user("mp", "o_nap").await.unwrap();
        user.unwrap().routing.active.unwrap().partner
    };
    bridge.user_writes("o_nap", 1, "#air-3").await;
    bridge.user_writes("o_nap", 2, "#Hotel Lotus").await;
    let (status, refused) = bridge
        .call(AIRLINE.request("POST", path, &hand("nap-1")))
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("not_active_partner")),
        "{refused}"
    );

    bridge.user_writes("o_nap", 3, "#air-3").await;
    let (status, done) = bridge
        .call(AIRLINE.request("POST", path, &hand("nap-2")))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(talks_to().await, "hotel-9");
    let kept = bridge
        .table
        .store()
        .handover("air-3", "nap-2")
        .await
        .unwrap();
    assert_eq!(kept.map(|k| k.to).as_deref(), Some("hotel-9"));
    // The user moves on; a late repeat answers as the first and moves nobody.
    bridge.user_writes("o_nap", 4, "#air-3").await;
    let (status, again) = bridge
        .call(AIRLINE.request("POST", path, &hand("nap-2")))
        .await;
    assert_eq!((status, &again), (200, &done));
    assert_eq!(talks_to().await, "air-3");
}

#[tokio::test]
async fn the_welcome_is_sent_once_when_the_entry_is_redelivered() {
    let bridge = bridge().await;
    let now = system_clock_ms() / 1000;
    let from = wxbridge_core::model::session_from::sign(
        &format!("partner=hotel-9&openid=o_wel&ts={now}"),
        &wxbridge_core::config::Secret::new(SESSION_SECRET),
    );
    bridge
        .fake
        .user_acts(APP, "o_wel", UserAction::EnterSession);
    let event = CallbackEvent {
        to_user_name: "gh_mp".into(),
        from_user_name: "o_wel".into(),
        create_time: now,
        business_id: None,
        kind: EventKind::UserEnterTempSession { session_from: from },
    };
    let push = seal(bridge.channels.get("mp").unwrap(), &event, now, "n0nce");
    // WeChat sends it three times (its retries), SQS keeps one...
    for _ in 0..3 {
        let answer = bridge.callback.handle(push_request(&push, "mp")).await;
        assert_eq!(answer.status(), 200);
    }
    let source = bridge.inbound_queues.event_source("inbound");
    let (batch, response) = poll_handler(&bridge.sqs, &source, &bridge.inbound).await;
    assert_eq!(
        (batch.records.len(), response.batch_item_failures.len()),
        (1, 0)
    );
    // ...and hands the same record over again (a redelivery after a lost answer).
    let again = bridge.inbound.handle(batch, None).await;
    assert!(again.batch_item_failures.is_empty());
    while bridge.dispatch().await > 0 {}
    let welcomes: Vec<Value> = bridge
        .fake
        .sent()
        .iter()
        .map(|s| s.body["text"]["content"].clone())
        .collect();
    assert_eq!(welcomes, [json!("【Hotel Lotus】Welcome to Hotel Lotus!")]);
}

#[tokio::test]
async fn a_closed_conversation_reopens_with_the_users_next_message() {
    let bridge = bridge().await;
    bridge.user_writes("o_cl", 1, "Thanks, that is all").await;
    let close = "/v1/conversations/mp:o_cl:hotel-9/close";
    let body =
        json!({"closing_text": "Have a good stay!", "client_message_id": "bye-1"}).to_string();
    let (status, view) = bridge.call(HOTEL.request("POST", close, &body)).await;
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("closed")),
        "{view}"
    );
    let closed = bridge.hotel.received().last().unwrap().json();
    assert_eq!(
        (closed["type"].as_str(), closed["closed"]["reason"].as_str()),
        (Some("conversation.closed"), Some("agent"))
    );
    while bridge.dispatch().await > 0 {}
    assert_eq!(
        bridge.fake.sent()[0].body["text"]["content"],
        "【Hotel Lotus】Have a good stay!"
    );

    bridge.user_writes("o_cl", 2, "One more question").await;
    let reopened = bridge.hotel.received().last().unwrap().json();
    assert_eq!(reopened["type"], "conversation.reopened");
    let (_, view) = bridge
        .call(HOTEL.request("GET", "/v1/conversations/mp:o_cl:hotel-9", ""))
        .await;
    assert_eq!(view["status"], "open");
}

#[tokio::test]
async fn the_window_after_entering_is_the_entry_allowance_and_after_48_hours_closed() {
    let bridge = bridge().await;
    bridge
        .fake
        .user_acts(APP, "o_enter", UserAction::EnterSession);
    let entered = EventKind::UserEnterTempSession {
        session_from: String::new(),
    };
    bridge.user_pushes("o_enter", entered).await;
    let path = "/v1/conversations/mp:o_enter:hotel-9";
    let (status, view) = bridge.call(HOTEL.request("GET", path, "")).await;
    assert_eq!(status, 200, "{view}");
    let window = &view["window"];
    assert_eq!(
        (
            window["sends_left"].as_u64(),
            window["entry_allowance"].as_bool()
        ),
        (Some(2), Some(true))
    );
    let until = window["entry_allowance_until_ms"].as_i64().unwrap();
    assert!(
        (until - system_clock_ms() - 60_000).abs() < 5_000,
        "a minute from the entry"
    );

    // 48 hours on (the stored window moved back, as time passing would leave it).
    let store = bridge.table.store();
    let mut user = store.user("mp", "o_enter").await.unwrap().unwrap();
    let window = user.window.as_mut().unwrap();
    window.closes_at_ms = system_clock_ms() - 1;
    store.put_user(&user).await.unwrap();
    let (_, view) = bridge.call(HOTEL.request("GET", path, "")).await;
    let window = &view["window"];
    assert_eq!(
        (
            window["open"].as_bool(),
            window["open_until_ms"].is_null(),
            window["entry_allowance"].as_bool()
        ),
        (Some(false), true, Some(false))
    );
}
