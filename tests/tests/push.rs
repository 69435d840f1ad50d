//! Push delivery end to end: the partner pushes through the real `api` handler, the real
//! `push` handler delivers from a real `push.fifo` (the emulator's, as is the table) to the
//! local WeChat fake; the user's messages and subscribe answers go through the real
//! `inbound`; a reply whose window closed goes from the real `dispatch` handler on through
//! the push chain.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::{Body, Request};
use serde_json::{json, Value};
use std::sync::Arc;
use wechat_fake::{Fake, UserAction};
use wxbridge_aws::{DynamoNonceStore, DynamoStore, SqsParking};
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::{BridgeConfig, Secret};
use wxbridge_core::model::{ChannelUser, InboundMessage};
use wxbridge_core::ports::queue::OutboundQueue;
use wxbridge_core::ports::store::UserStore;
use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::partner::auth::{self as api_auth, SignedRequest};
use wxbridge_core::services::partner::PartnerApi;
use wxbridge_core::services::push::Push;
use wxbridge_integration::*;
use wxbridge_lambda::api::{router, ApiState};
use wxbridge_lambda::sqs::dispatch::DispatchHandler;
use wxbridge_lambda::sqs::push::PushHandler;
use wxbridge_wechat::event::{CallbackEvent, EventKind, SubscribeDecision};

const APP: &str = "wx0000000000000099";
const APP_SECRET: &str = "the-app-secret";
const HOTEL_SECRET: &str = "hotel-secret-456789";

struct Bridge {
    fake: Fake,
    sqs: aws_sdk_sqs::Client,
    outbound_queues: FifoQueues,
    push_queues: FifoQueues,
    store: DynamoStore,
    inbound: Inbound<AwsPorts>,
    api: axum::Router,
    dispatch: DispatchHandler<AwsPorts, SqsParking>,
    push: PushHandler<AwsPorts, SqsParking>,
    hotel: WebhookReceiver,
    events: std::sync::atomic::AtomicU64,
}

async fn bridge() -> Bridge {
    let fake = Fake::default();
    fake.add_app(APP, APP_SECRET);
    let fake_url = fake.start().await;
    let hotel = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_mp","token":"mp-token","mode":"plaintext","push_format":"json","app_secret":"{APP_SECRET}"}}],
          "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"{HOTEL_SECRET}",
            "subscribe_templates":["tpl-order"],"can_bind":true,
            "reply_fallback":{{"template_id":"tpl-reply","field":"thing2","data":{{"name1":"{{partner}}"}},"page":"pages/chat/index"}}}}],
          "dialog":{{"mode":"merged","default_partner":"hotel-9"}},
          "wechat_api_base":"{fake_url}"}}"#,
        hotel.url
    ))
    .unwrap();
    let sqs = sqs_client().await;
    let outbound_queues = create_fifo_queues(&sqs, "outbound").await;
    let push_queues = create_fifo_queues(&sqs, "push").await;
    let table = new_table().await;
    let store = table.store();
    let outbound = fifo_queue(&sqs, &outbound_queues.queue_url);
    let pushes = fifo_queue(&sqs, &push_queues.queue_url);
    Bridge {
        inbound: Inbound::new(bridge_on(&config, &table), outbound.clone()),
        api: router(Arc::new(ApiState::<AwsPorts, DynamoNonceStore> {
            api: PartnerApi::new(bridge_on(&config, &table), outbound.clone())
                .with_push_queue(pushes.clone()),
            nonces: table.nonces(),
        })),
        dispatch: DispatchHandler::new(
            Dispatch::new(
                bridge_on(&config, &table),
                images_on(&config, &table),
                outbound,
            )
            .with_push_queue(pushes.clone()),
            parking(&sqs, &outbound_queues),
        ),
        push: PushHandler::new(
            Push::new(bridge_on(&config, &table), pushes),
            parking(&sqs, &push_queues),
        ),
        fake,
        sqs,
        outbound_queues,
        push_queues,
        store,
        hotel,
        events: std::sync::atomic::AtomicU64::new(1),
    }
}

impl Bridge {
    /// The hotel calls the API, signed now.
    async fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let signed = SignedRequest {
            method,
            path_and_query: path,
            body: body.as_bytes(),
        };
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let now = system_clock_ms() / 1000;
        let mut builder = lambda_http::http::Request::builder()
            .method(method)
            .uri(path);
        for (name, value) in
            api_auth::sign("hotel-9", &Secret::new(HOTEL_SECRET), &signed, now, &nonce)
        {
            builder = builder.header(name, value);
        }
        let request: Request = builder.body(Body::Text(body.to_owned())).unwrap();
        api_answer(&self.api, request).await
    }

    async fn push(&self, body: Value) -> Value {
        let (status, answer) = self.call("POST", "/v1/pushes", &body.to_string()).await;
        assert_eq!(status, 202, "{answer}");
        answer
    }

    /// A push from the user reaches the real `inbound`.
    async fn user_event(&self, openid: &str, kind: EventKind) {
        let now = system_clock_ms();
        let event = CallbackEvent {
            to_user_name: "gh_mp".into(),
            from_user_name: openid.into(),
            create_time: now / 1000,
            business_id: None,
            kind,
        };
        let message = InboundMessage::new("mp", event, now);
        assert_eq!(
            self.inbound.process(&message, now).await,
            Outcome::Delivered
        );
    }

    /// The user writes: WeChat opens the window, the bridge records it.
    async fn user_writes(&self, openid: &str) {
        self.fake.user_acts(APP, openid, UserAction::Message);
        let n = self
            .events
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.user_event(
            openid,
            EventKind::Text {
                msg_id: format!("{openid}-{n}"),
                content: "hello".into(),
            },
        )
        .await;
    }

    /// The user answers the subscribe pop-up for `template`: the bridge records a grant
    /// (or none), and WeChat grants one only if `at_wechat`.
    async fn user_subscribes(&self, openid: &str, template: &str, accept: bool, at_wechat: bool) {
        if at_wechat {
            self.fake.grant(APP, openid, template);
        }
        let status = if accept { "accept" } else { "reject" };
        self.user_event(
            openid,
            EventKind::SubscribePopup {
                entries: vec![SubscribeDecision {
                    template_id: template.into(),
                    status: status.into(),
                    popup_scene: Some(0),
                }],
            },
        )
        .await;
    }

    async fn user(&self, openid: &str) -> ChannelUser {
        self.store.user("mp", openid).await.unwrap().unwrap()
    }

    /// One batch of a queue through its handler, settled as Lambda does.
    async fn poll_pushes(&self) -> (SqsEvent, SqsBatchResponse) {
        let source = self.push_queues.event_source("push");
        poll_handler(&self.sqs, &source, &self.push).await
    }

    async fn poll_outbound(&self) -> (SqsEvent, SqsBatchResponse) {
        let source = self.outbound_queues.event_source("dispatch");
        poll_handler(&self.sqs, &source, &self.dispatch).await
    }

    /// The status webhooks (`push.status` or `message.status`) the hotel received.
    fn status_hooks(&self, kind: &str) -> Vec<Value> {
        self.hotel
            .received()
            .into_iter()
            .filter(|h| h.header("x-wxbridge-event") == kind)
            .map(|h| h.json())
            .collect()
    }

    /// The stored message, as the API's history shows it.
    async fn history(&self, conversation_id: &str) -> Vec<Value> {
        let (status, page) = self
            .call(
                "GET",
                &format!("/v1/conversations/{conversation_id}/messages"),
                "",
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["messages"].as_array().unwrap().clone()
    }
}

fn order_push(openid: &str, push_id: &str) -> Value {
    json!({
        "to": {"channel": "mp", "openid": openid},
        "push_id": push_id,
        "content": {"type": "text", "text": "Your order 42 is confirmed."},
        "subscribe": {"template_id": "tpl-order", "data": {"thing1": {"value": "Order 42 confirmed"}}, "page": "pages/order?id=42", "lang": "en_US"}
    })
}

#[tokio::test]
async fn an_open_window_takes_the_push_as_a_customer_service_message_once() {
    let b = bridge().await;
    b.user_writes("o_amy").await;
    let first = b.push(order_push("o_amy", "order-42")).await;
    let again = b.push(order_push("o_amy", "order-42")).await;
    assert_eq!(first, again, "the same push_id answers the first push");
    assert_eq!(first["conversation_id"], "mp:o_amy:hotel-9");

    let (event, response) = b.poll_pushes().await;
    assert!(!event.records.is_empty());
    assert!(response.batch_item_failures.is_empty());
    assert!(b.poll_pushes().await.0.records.is_empty());
    let sent = b.fake.sent();
    assert_eq!(sent.len(), 1, "one delivery");
    assert_eq!((sent[0].api, sent[0].touser.as_str()), ("custom", "o_amy"));
    assert_eq!(
        sent[0].body["text"]["content"],
        "【Hotel Lotus】Your order 42 is confirmed."
    );
    assert_eq!(b.user("o_amy").await.window.unwrap().remaining, 4);

    let hooks = b.status_hooks("push.status");
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0]["delivery_id"],
        format!("{}:sent", first["message_id"].as_str().unwrap())
    );
    assert_eq!(hooks[0]["push"]["id"], "order-42");
    assert_eq!(hooks[0]["push"]["status"], "sent");
    assert_eq!(hooks[0]["push"]["path"], "customer_service");

    let history = b.history("mp:o_amy:hotel-9").await;
    assert_eq!(history[0]["direction"], "push");
    assert_eq!(history[0]["status"], "sent");
    assert_eq!(history[0]["push"]["attempts"][0]["outcome"], "sent");

    // A third request after delivery: the same answer, nothing sent again.
    let (status, late) = b
        .call(
            "POST",
            "/v1/pushes",
            &order_push("o_amy", "order-42").to_string(),
        )
        .await;
    assert_eq!(
        (status, late["message_id"].clone()),
        (202, first["message_id"].clone())
    );
    assert_eq!(late["status"], "sent");
    assert!(b.poll_pushes().await.0.records.is_empty());
    assert_eq!(b.fake.sent().len(), 1);
}

#[tokio::test]
async fn a_closed_window_and_a_grant_give_a_subscribe_message_and_use_the_grant() {
    let b = bridge().await;
    b.user_subscribes("o_ben", "tpl-order", true, true).await;
    assert_eq!(b.user("o_ben").await.grants.get("tpl-order"), Some(&1));
    let accepted = b.push(order_push("o_ben", "order-43")).await;
    let (_, response) = b.poll_pushes().await;
    assert!(response.batch_item_failures.is_empty());
    let sent = b.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].api, sent[0].touser.as_str()),
        ("subscribe", "o_ben")
    );
    assert_eq!(sent[0].body["template_id"], "tpl-order");
    assert_eq!(
        sent[0].body["data"]["thing1"]["value"],
        "Order 42 confirmed"
    );
    assert_eq!(sent[0].body["page"], "pages/order?id=42");
    assert_eq!(sent[0].body["lang"], "en_US");
    assert!(
        b.user("o_ben").await.grants.is_empty(),
        "the grant is used in the store"
    );
    let hooks = b.status_hooks("push.status");
    assert_eq!(hooks[0]["push"]["status"], "sent");
    assert_eq!(hooks[0]["push"]["path"], "subscribe");
    let attempts = hooks[0]["push"]["attempts"].as_array().unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a["path"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("customer_service", "skipped"), ("subscribe", "sent")]
    );
    assert_eq!(
        hooks[0]["push"]["message_id"], accepted["message_id"],
        "the partner can match the report"
    );

    // A second push finds no grant left: the inbox.
    b.push(
        json!({"to": {"channel": "mp", "openid": "o_ben"}, "push_id": "order-44",
        "content": {"type": "text", "text": "x"},
        "subscribe": {"template_id": "tpl-order", "data": {"thing1": {"value": "x"}}}}),
    )
    .await;
    b.poll_pushes().await;
    assert_eq!(b.fake.sent().len(), 1);
    assert_eq!(
        b.status_hooks("push.status")[1]["push"]["status"],
        "undeliverable"
    );
}

#[tokio::test]
async fn no_grant_keeps_the_push_in_the_app_inbox_and_reports_it_undeliverable() {
    let b = bridge().await;
    b.user_subscribes("o_cat", "tpl-order", false, false).await;
    let accepted = b.push(order_push("o_cat", "order-45")).await;
    let (_, response) = b.poll_pushes().await;
    assert!(response.batch_item_failures.is_empty());
    assert!(b.fake.sent().is_empty(), "nothing sent");
    let hooks = b.status_hooks("push.status");
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0]["delivery_id"],
        format!("{}:undeliverable", accepted["message_id"].as_str().unwrap())
    );
    assert_eq!(hooks[0]["push"]["status"], "undeliverable");
    assert_eq!(hooks[0]["push"]["path"], "inbox");
    assert_eq!(
        hooks[0]["push"]["reason"],
        "customer service: the reply window is closed; subscribe: no grant for template tpl-order"
    );
    // The app reads it from the history: its inbox item.
    let history = b.history("mp:o_cat:hotel-9").await;
    assert_eq!(history[0]["status"], "undeliverable");
    assert_eq!(history[0]["content"]["text"], "Your order 42 is confirmed.");
}

#[tokio::test]
async fn a_grant_wechat_no_longer_has_is_cleared_and_the_push_goes_to_the_inbox() {
    let b = bridge().await;
    // The bridge saw an acceptance; WeChat knows the user (a grant for another template)
    // but has none for this one (used elsewhere, or cancelled).
    b.fake.grant(APP, "o_dan", "tpl-other");
    b.user_subscribes("o_dan", "tpl-order", true, false).await;
    b.push(order_push("o_dan", "order-46")).await;
    let (_, response) = b.poll_pushes().await;
    assert!(response.batch_item_failures.is_empty());
    assert!(b.fake.sent().is_empty());
    assert!(b.user("o_dan").await.grants.is_empty(), "43101 cleared it");
    let hooks = b.status_hooks("push.status");
    assert_eq!(hooks[0]["push"]["status"], "undeliverable");
    let attempts = hooks[0]["push"]["attempts"].as_array().unwrap();
    assert_eq!(attempts[1]["path"], "subscribe");
    assert_eq!(attempts[1]["outcome"], "refused");
    assert_eq!(attempts[1]["errcode"], 43101);
    assert_eq!(attempts[2]["path"], "inbox");
}

#[tokio::test]
async fn an_expired_push_is_not_sent() {
    let b = bridge().await;
    b.user_writes("o_eve").await;
    let mut push = order_push("o_eve", "order-47");
    push["expires_at_ms"] = json!(system_clock_ms() - 1);
    b.push(push).await;
    b.poll_pushes().await;
    assert!(b.fake.sent().is_empty());
    let hooks = b.status_hooks("push.status");
    assert_eq!(hooks[0]["push"]["status"], "expired");
    assert_eq!(b.user("o_eve").await.window.unwrap().remaining, 5);
}

#[tokio::test]
async fn a_reply_that_finds_the_window_closed_falls_back_to_a_subscribe_message() {
    let b = bridge().await;
    b.user_subscribes("o_fay", "tpl-reply", true, true).await;
    let (status, accepted) = b
        .call(
            "POST",
            "/v1/messages",
            &json!({"to": {"channel": "mp", "openid": "o_fay"}, "client_message_id": "desk-1",
                    "content": {"type": "text", "text": "Breakfast is included and served from 7 to 10."}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let (_, response) = b.poll_outbound().await;
    assert!(response.batch_item_failures.is_empty());
    assert!(b.fake.sent().is_empty(), "no customer-service send");
    let (event, response) = b.poll_pushes().await;
    assert_eq!(event.records.len(), 1, "handed to the push chain");
    assert!(response.batch_item_failures.is_empty());
    let sent = b.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].api, "subscribe");
    assert_eq!(sent[0].body["template_id"], "tpl-reply");
    assert_eq!(
        sent[0].body["data"],
        json!({"name1": {"value": "Hotel Lotus"}, "thing2": {"value": "Breakfast is includ…"}})
    );
    assert_eq!(sent[0].body["page"], "pages/chat/index");
    let hooks = b.status_hooks("message.status");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["message"]["id"], accepted["message_id"]);
    assert_eq!(hooks[0]["message"]["status"], "sent");
    assert_eq!(hooks[0]["message"]["path"], "subscribe");
    assert!(b.user("o_fay").await.grants.is_empty());
    let history = b.history("mp:o_fay:hotel-9").await;
    assert_eq!(history[0]["direction"], "out");
    assert_eq!(history[0]["status"], "sent");
    assert_eq!(history[0]["push"]["fallback"], true);
    // The reply redelivered to both functions (new deduplication ids): nothing more is sent.
    let reply = wxbridge_core::model::OutboundRef::new(
        "mp:o_fay:hotel-9",
        accepted["created_at_ms"].as_i64().unwrap(),
        accepted["message_id"].as_str().unwrap(),
    );
    for queue in [&b.outbound_queues.queue_url, &b.push_queues.queue_url] {
        fifo_queue(&b.sqs, queue)
            .enqueue(&reply, "redelivered")
            .await
            .unwrap();
    }
    assert_eq!(b.poll_outbound().await.0.records.len(), 1);
    assert_eq!(b.poll_pushes().await.0.records.len(), 1);
    assert_eq!(b.fake.sent().len(), 1);
    assert_eq!(b.status_hooks("message.status").len(), 1);
}

#[tokio::test]
async fn a_push_for_an_app_user_reaches_only_whom_they_are_bound_to_now() {
    let b = bridge().await;
    b.user_writes("o_gus").await;
    let (status, bound) = b
        .call(
            "PUT",
            "/v1/bindings/mp/o_gus",
            r#"{"app_user_id":"app-gus"}"#,
        )
        .await;
    assert_eq!(status, 200, "{bound}");
    let accepted = b
        .push(json!({"to": {"app_user_id": "app-gus"}, "push_id": "gus-1",
                     "content": {"type": "text", "text": "Your order shipped."}}))
        .await;
    assert_eq!(accepted["status"], "queued", "{accepted}");
    // Before it is delivered, that WeChat user is bound to another app user.
    let (status, _) = b
        .call(
            "PUT",
            "/v1/bindings/mp/o_gus",
            r#"{"app_user_id":"app-hal","replace":true}"#,
        )
        .await;
    assert_eq!(status, 200);
    let (_, response) = b.poll_pushes().await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        b.fake.sent().is_empty(),
        "not sent to someone else's WeChat"
    );
    let hooks = b.status_hooks("push.status");
    assert_eq!(hooks[0]["push"]["status"], "undeliverable", "{hooks:?}");
}
