//! The partner API's routes on memory adapters: signed requests, answers and refusals.

use super::*;
use crate::api::error::ApiError;
use axum::body::to_bytes;
use lambda_http::{Body, Request};
use serde_json::{json, Value};
use wxbridge_core::config::{BridgeConfig, DialogMode, Secret};
use wxbridge_core::model::routing::{conversation_id, ActiveBecause};
use wxbridge_core::model::{ChannelUser, Conversation, Direction, MessageStatus, StoredMessage};
use wxbridge_core::ports::store::{ConversationStore, MessageStore, SubMerchantStore, UserStore};
use wxbridge_core::services::partner::auth::{self as api_auth, SignedRequest};
use wxbridge_testkit::{Memory, MemoryPorts, MemoryStore};

const NOW_MS: i64 = 1_764_150_000_000;

/// The API on memory adapters, and the adapters to look into.
struct Service {
    router: Router,
    memory: Memory,
}

/// Two partners; in separate mode the one channel is the hotel's. Both may bind.
fn config(mode: &str) -> BridgeConfig {
    BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","partner":"hotel-9","app_secret":"s"}}],
        "partners":[
          {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://h/h","signing_secret":"hotel-secret-456789","can_bind":true,"subscribe_templates":["tpl-order"]}},
          {{"id":"air-3","display_name":"Blue Air","webhook_url":"http://a/a","signing_secret":"air-secret-0123456","can_bind":{}}}],
        "dialog":{{"mode":"{mode}","default_partner":"hotel-9"}}}}"#,
        mode == "separate"
    ))
    .unwrap()
}

async fn service() -> Service {
    service_in("merged").await
}

/// Alice wrote to the hotel.
async fn service_in(mode: &str) -> Service {
    let store = MemoryStore::default();
    let mode_of = if mode == "separate" {
        DialogMode::Separate
    } else {
        DialogMode::Merged
    };
    wrote(&store, mode_of, "o_alice").await;
    let memory = Memory {
        store,
        ..Memory::default()
    };
    let api = PartnerApi::new(memory.bridge(config(mode), NOW_MS), memory.outbound.clone())
        .with_push_queue(memory.pushes.clone());
    serving(api, memory)
}

/// The API's router over `api`, with a nonce store of its own.
fn serving(api: PartnerApi<MemoryPorts>, memory: Memory) -> Service {
    let state = Arc::new(ApiState::<MemoryPorts, MemoryStore> {
        api,
        nonces: MemoryStore::default(),
    });
    Service {
        router: router(state),
        memory,
    }
}

/// `openid` wrote to the hotel: their message stored in their conversation.
async fn wrote(store: &MemoryStore, mode: DialogMode, openid: &str) {
    let id = conversation_id(mode, "mp", openid, "hotel-9");
    let conversation = Conversation::new(&id, "mp", openid, "hotel-9", NOW_MS - 60_000);
    let message = StoredMessage {
        id: format!("in_{openid}"),
        conversation_id: conversation.id.clone(),
        channel: "mp".into(),
        openid: openid.into(),
        partner: "hotel-9".into(),
        direction: Direction::In,
        status: MessageStatus::Delivered,
        status_reason: None,
        created_at_ms: NOW_MS - 60_000,
        dedupe_key: Some(format!("mp:{openid}")),
        wechat_msg_id: None,
        content: json!({"MsgType": "text", "Content": "hi"}),
        released: Vec::new(),
        reported: None,
        push: None,
        media: None,
    };
    store
        .record_inbound(&message, &conversation, &ChannelUser::new("mp", openid))
        .await
        .unwrap();
}

fn request(partner: &str, method: &str, path: &str, body: &str, nonce: &str) -> Request {
    let secret = match partner {
        "air-3" => "air-secret-0123456",
        _ => "hotel-secret-456789",
    };
    let signed = SignedRequest {
        method,
        path_and_query: path,
        body: body.as_bytes(),
    };
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in
        api_auth::sign(partner, &Secret::new(secret), &signed, NOW_MS / 1000, nonce)
    {
        builder = builder.header(name, value);
    }
    builder.body(Body::Text(body.to_owned())).unwrap()
}

async fn call(service: &Service, request: Request) -> (u16, Value) {
    let response = answer(&service.router, request).await;
    let status = response.status().as_u16();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn reply(client_id: &str, text: &str) -> String {
    json!({"conversation_id": "mp:o_alice:hotel-9", "client_message_id": client_id,
           "content": {"type": "text", "text": text}})
    .to_string()
}

#[tokio::test]
async fn a_reply_is_stored_queued_and_enqueued_once_per_client_id() {
    let service = service().await;
    let body = reply("c-1", "Breakfast is included.");
    let (status, first) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &body, "nonce-0001"),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["status"], "queued");
    let (status, again) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &body, "nonce-0002"),
    )
    .await;
    assert_eq!((status, &again), (202, &first), "same answer");
    let history = service
        .memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "one reply stored");
    let sent = service.memory.outbound.sent();
    assert!(sent
        .iter()
        .all(|(target, dedup)| target.message_id == first["message_id"]
            && dedup == &target.message_id));
    assert!(!sent.is_empty());

    let other = reply("c-1", "Something else");
    let (status, refusal) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &other, "nonce-0003"),
    )
    .await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (409, Some("client_message_id_reused"))
    );
}

#[tokio::test]
async fn a_reply_whose_write_answer_was_lost_is_still_accepted_and_enqueued() {
    let service = service().await;
    service.memory.store.lose_next_answer();
    let (status, accepted) = call(
        &service,
        request(
            "hotel-9",
            "POST",
            "/v1/messages",
            &reply("c-lost", "Late checkout is fine."),
            "nonce-lost-1",
        ),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let sent = service.memory.outbound.sent();
    assert_eq!(sent.len(), 1, "enqueued once: {sent:?}");
    assert_eq!(sent[0].0.message_id, accepted["message_id"]);
    let history = service
        .memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "the reply stored once");
}

#[tokio::test]
async fn a_push_whose_write_answer_was_lost_is_still_accepted_and_enqueued() {
    let service = service().await;
    service.memory.store.lose_next_answer();
    let body = json!({"to": {"channel": "mp", "openid": "o_alice"}, "push_id": "order-lost",
        "content": {"type": "text", "text": "Your order shipped."}})
    .to_string();
    let (status, accepted) = call(
        &service,
        request("hotel-9", "POST", "/v1/pushes", &body, "nonce-lost-2"),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let queued = service.memory.pushes.sent();
    assert_eq!(queued.len(), 1, "enqueued once: {queued:?}");
    assert_eq!(queued[0].0.message_id, accepted["message_id"]);
}

#[tokio::test]
async fn a_push_may_use_only_its_partners_subscribe_templates() {
    let service = service().await;
    let push = |template: &str, text: &str| {
        json!({"to": {"channel": "mp", "openid": "o_alice"}, "push_id": format!("p-{template}-{}", text.len()),
            "content": {"type": "text", "text": text},
            "subscribe": {"template_id": template, "data": {"thing1": {"value": "x"}}}})
        .to_string()
    };
    // The airline may not spend grants for the hotel's template.
    let (status, refusal) = call(
        &service,
        request(
            "air-3",
            "POST",
            "/v1/pushes",
            &push("tpl-order", "hi"),
            "nonce-tpl-1",
        ),
    )
    .await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (403, Some("forbidden"))
    );
    // Nor may a push text overflow with the sender's name.
    let long = "x".repeat(wxbridge_core::model::MAX_TEXT_BYTES - 3);
    let (status, refusal) = call(
        &service,
        request(
            "hotel-9",
            "POST",
            "/v1/pushes",
            &push("tpl-order", &long),
            "nonce-tpl-2",
        ),
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    assert!(refusal["reason"]
        .as_str()
        .unwrap()
        .starts_with("content.text:"));
}

#[tokio::test]
async fn a_push_is_stored_in_the_conversation_and_queued_once_per_push_id() {
    let service = service().await;
    let body = json!({"to": {"channel": "mp", "openid": "o_alice"}, "push_id": "order-42",
        "content": {"type": "text", "text": "Your order is confirmed."},
        "subscribe": {"template_id": "tpl-order", "data": {"thing1": {"value": "Order 42 confirmed"}}, "page": "pages/order?id=42"},
        "expires_at_ms": NOW_MS + 3_600_000})
    .to_string();
    let (status, first) = call(
        &service,
        request("hotel-9", "POST", "/v1/pushes", &body, "nonce-push-1"),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["push_id"], "order-42");
    assert_eq!(first["status"], "queued");
    assert_eq!(first["conversation_id"], "mp:o_alice:hotel-9");
    let (status, again) = call(
        &service,
        request("hotel-9", "POST", "/v1/pushes", &body, "nonce-push-2"),
    )
    .await;
    assert_eq!((status, &again), (202, &first), "same answer");
    let history = service
        .memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(
        history.len(),
        2,
        "one push stored beside the user's message"
    );
    assert_eq!(history[0].direction, Direction::Push);
    let record = history[0].push.as_ref().unwrap();
    assert_eq!(record.push_id.as_deref(), Some("order-42"));
    assert_eq!(record.subscribe.as_ref().unwrap().template_id, "tpl-order");
    let queued = service.memory.pushes.sent();
    assert!(!queued.is_empty());
    assert!(queued
        .iter()
        .all(|(target, dedup)| target.message_id == first["message_id"]
            && *dedup == target.message_id));
    assert!(
        service.memory.outbound.sent().is_empty(),
        "not on outbound.fifo"
    );

    let other = body.replace("order is confirmed", "order is shipped");
    let (status, refusal) = call(
        &service,
        request("hotel-9", "POST", "/v1/pushes", &other, "nonce-push-3"),
    )
    .await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (409, Some("push_id_reused"))
    );

    let (status, page) = call(
        &service,
        request(
            "hotel-9",
            "GET",
            "/v1/conversations/mp:o_alice:hotel-9/messages",
            "",
            "nonce-push-4",
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"][0]["direction"], "push");
    assert_eq!(page["messages"][0]["push"]["push_id"], "order-42");
}

#[tokio::test]
async fn bad_pushes_name_what_is_wrong() {
    let service = service().await;
    let to = json!({"channel": "mp", "openid": "o_alice"});
    let cases = [
        (
            json!({"to": to, "push_id": "p1", "content": {"type": "image", "url": "https://i/x.png"}}),
            400,
            "content.type:",
        ),
        (
            json!({"to": to, "content": {"type": "text", "text": "a"}}),
            400,
            "body: missing field `push_id`",
        ),
        (
            json!({"to": to, "push_id": "p 1", "content": {"type": "text", "text": "a"}}),
            400,
            "push_id:",
        ),
        (
            json!({"to": to, "push_id": "p1", "content": {"type": "text", "text": "a"}, "subscribe": {"template_id": "t", "data": {}}}),
            400,
            "subscribe.data:",
        ),
        (
            json!({"to": to, "push_id": "p1", "content": {"type": "text", "text": "a"}, "subscribe": {"template_id": "t", "data": {"thing1": "x"}}}),
            400,
            "subscribe.data.thing1:",
        ),
        (
            json!({"to": to, "push_id": "p1", "content": {"type": "text", "text": "a"}, "subscribe": {"template_id": "t", "data": {"thing1": {"value": "x"}}, "lang": "fr"}}),
            400,
            "subscribe.lang:",
        ),
        (
            json!({"to": to, "push_id": "p1", "content": {"type": "text", "text": "a"}, "expires_at_ms": 0}),
            400,
            "expires_at_ms:",
        ),
        (
            json!({"to": {"channel": "mp"}, "push_id": "p1", "content": {"type": "text", "text": "a"}}),
            400,
            "to:",
        ),
        (
            json!({"to": {"channel": "mp", "openid": "o_nobody"}, "push_id": "p1", "content": {"type": "text", "text": "a"}}),
            404,
            "no such user",
        ),
        (
            json!({"to": {"app_user_id": "u-none"}, "push_id": "p1", "content": {"type": "text", "text": "a"}}),
            404,
            "no such user bound",
        ),
    ];
    for (n, (body, status, reason)) in cases.into_iter().enumerate() {
        let body = body.to_string();
        let (got, answer) = call(
            &service,
            request(
                "hotel-9",
                "POST",
                "/v1/pushes",
                &body,
                &format!("nonce-badpush-{n}"),
            ),
        )
        .await;
        assert_eq!(got, status, "{body}: {answer}");
        let said = answer["reason"].as_str().unwrap_or_default();
        assert!(said.contains(reason), "{body}: {said}");
    }
}

#[tokio::test]
async fn a_replayed_request_is_refused() {
    let service = service().await;
    let body = reply("c-2", "Hello");
    let (status, _) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &body, "nonce-0004"),
    )
    .await;
    assert_eq!(status, 202);
    let (status, refusal) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &body, "nonce-0004"),
    )
    .await;
    assert_eq!(
        (status, refusal["reason"].as_str()),
        (401, Some("this nonce was used before"))
    );
}

#[tokio::test]
async fn another_partners_conversation_is_not_found() {
    let service = service().await;
    let path = "/v1/conversations/mp:o_alice:hotel-9/messages";
    let (status, _) = call(&service, request("air-3", "GET", path, "", "nonce-0005")).await;
    assert_eq!(status, 404);
    let body = reply("c-3", "I am the airline");
    let (status, _) = call(
        &service,
        request("air-3", "POST", "/v1/messages", &body, "nonce-0006"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, page) = call(&service, request("hotel-9", "GET", path, "", "nonce-0007")).await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    // Once Alice enters from the airline's page, the airline may start its own
    // conversation with her.
    let mut alice = service
        .memory
        .store
        .user("mp", "o_alice")
        .await
        .unwrap()
        .unwrap();
    alice
        .routing
        .activate("air-3", NOW_MS - 1_000, ActiveBecause::SessionFrom);
    service.memory.store.put_user(&alice).await.unwrap();
    let own = json!({"to": {"channel": "mp", "openid": "o_alice"}, "client_message_id": "c-4",
                     "content": {"type": "text", "text": "Your flight is on time."}})
    .to_string();
    let (status, accepted) = call(
        &service,
        request("air-3", "POST", "/v1/messages", &own, "nonce-0008"),
    )
    .await;
    assert_eq!(
        (status, accepted["conversation_id"].as_str()),
        (202, Some("mp:o_alice:air-3"))
    );
    let (status, listed) = call(
        &service,
        request(
            "air-3",
            "GET",
            "/v1/conversations?channel=mp&openid=o_alice",
            "",
            "nonce-0009",
        ),
    )
    .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mp:o_alice:air-3"]);
}

#[tokio::test]
async fn a_partner_reaches_no_user_it_has_no_relationship_with_and_learns_nothing_of_them() {
    // Alice wrote to the hotel and is bound to app user u-alice; the airline (no
    // can_bind) never talked with her. Everything the airline asks of her is answered as
    // of a user who does not exist.
    let service = service().await;
    let mut alice = service
        .memory
        .store
        .user("mp", "o_alice")
        .await
        .unwrap()
        .unwrap();
    alice.app_user_id = Some("u-alice".into());
    service.memory.store.put_user(&alice).await.unwrap();
    let nonce = std::sync::atomic::AtomicU32::new(0);
    let ask = |method: &'static str, path: String, body: Value| {
        let n = nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let service = &service;
        async move {
            call(
                service,
                request("air-3", method, &path, &body, &format!("nonce-privacy-{n}")),
            )
            .await
        }
    };
    fn message(to: Value) -> Value {
        json!({"to": to, "client_message_id": "c-p", "content": {"type": "text", "text": "Hello"}})
    }
    fn push(to: Value) -> Value {
        json!({"to": to, "push_id": "p-p", "content": {"type": "text", "text": "Hello"}})
    }
    let pairs = [
        (
            json!({"channel": "mp", "openid": "o_alice"}),
            json!({"channel": "mp", "openid": "o_nobody"}),
        ),
        (
            json!({"app_user_id": "u-alice"}),
            json!({"app_user_id": "u-nobody"}),
        ),
        (
            json!({"app_user_id": "u-alice", "channel": "mp"}),
            json!({"app_user_id": "u-nobody", "channel": "mp"}),
        ),
    ];
    for (known, unknown) in pairs {
        for (path, body) in [
            ("/v1/messages", message as fn(Value) -> Value),
            ("/v1/pushes", push),
        ] {
            let to_known = ask("POST", path.into(), body(known.clone())).await;
            let to_unknown = ask("POST", path.into(), body(unknown.clone())).await;
            assert_eq!(to_known.0, 404, "{path} {known}: {}", to_known.1);
            assert_eq!(to_known, to_unknown, "{path} {known}");
        }
    }
    for (known, unknown) in [
        ("channel=mp&openid=o_alice", "channel=mp&openid=o_nobody"),
        ("app_user_id=u-alice", "app_user_id=u-nobody"),
    ] {
        let listed = ask("GET", format!("/v1/conversations?{known}"), Value::Null).await;
        let none = ask("GET", format!("/v1/conversations?{unknown}"), Value::Null).await;
        assert_eq!(listed.0, 200);
        assert_eq!(listed, none, "{known}");
    }
    assert!(service.memory.outbound.sent().is_empty());
    assert!(service.memory.pushes.sent().is_empty());
    let stored = service
        .memory
        .store
        .conversations("mp", "o_alice")
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "no conversation opened for the airline");

    // The hotel, whom Alice wrote to, reaches her by openid and by app user.
    let hotel = |path: &str, body: Value, nonce: &str| {
        request("hotel-9", "POST", path, &body.to_string(), nonce)
    };
    let (status, _) = call(
        &service,
        hotel(
            "/v1/messages",
            message(json!({"app_user_id": "u-alice"})),
            "nonce-privacy-hotel-1",
        ),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = call(
        &service,
        hotel(
            "/v1/pushes",
            push(json!({"channel": "mp", "openid": "o_alice"})),
            "nonce-privacy-hotel-2",
        ),
    )
    .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn history_pages_newest_first() {
    let service = service().await;
    for n in 0..5 {
        let body = reply(&format!("page-{n}"), &format!("update {n}"));
        let nonce = format!("nonce-page-{n}");
        assert_eq!(
            call(
                &service,
                request("hotel-9", "POST", "/v1/messages", &body, &nonce)
            )
            .await
            .0,
            202
        );
    }
    // Same clock: ids break the tie, so order them by the store.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for n in 0..4 {
        let path = match &cursor {
            None => "/v1/conversations/mp:o_alice:hotel-9/messages?limit=2".to_owned(),
            Some(c) => {
                format!("/v1/conversations/mp:o_alice:hotel-9/messages?limit=2&cursor={c}")
            }
        };
        let (status, page) = call(
            &service,
            request("hotel-9", "GET", &path, "", &format!("nonce-read-{n}")),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let all: Vec<String> = service
        .memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(seen, all, "pages cover the history once, newest first");
    assert_eq!(all.len(), 6);
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let service = service().await;
    let cases = [
        ("POST", "/v1/messages", "{", 400, "the body is not JSON"),
        (
            "POST",
            "/v1/messages",
            r#"{"conversation_id":"mp:o_alice:hotel-9","client_message_id":"x","content":{"type":"video"}}"#,
            400,
            "content.type: unknown variant `video`",
        ),
        (
            "POST",
            "/v1/messages",
            r#"{"conversation_id":"mp:o_alice:hotel-9","content":{"type":"text","text":"a"}}"#,
            400,
            "body: missing field `client_message_id`",
        ),
        (
            "POST",
            "/v1/messages",
            r#"{"conversation_id":"mp:o_alice:hotel-9","client_message_id":"x","content":{"type":"text","text":" "}}"#,
            400,
            "content.text: must not be empty",
        ),
        (
            "POST",
            "/v1/messages",
            r#"{"conversation_id":"mp:o_alice:hotel-9","client_message_id":"x y","content":{"type":"text","text":"a"}}"#,
            400,
            "client_message_id:",
        ),
        (
            "POST",
            "/v1/messages",
            r#"{"client_message_id":"x","content":{"type":"text","text":"a"}}"#,
            400,
            "conversation_id:",
        ),
        (
            "POST",
            "/v1/messages",
            r#"{"conversation_id":"mp:o_alice:hotel-9","client_message_id":"x","content":{"type":"text","text":1}}"#,
            400,
            "content: has the wrong type",
        ),
        (
            "GET",
            "/v1/conversations/mp:o_alice:hotel-9/messages?limit=0",
            "",
            400,
            "limit:",
        ),
        (
            "GET",
            "/v1/conversations/mp:o_alice:hotel-9/messages?cursor=%%%",
            "",
            400,
            "cursor:",
        ),
        ("GET", "/v1/conversations", "", 400, "query:"),
        ("DELETE", "/v1/messages", "", 405, "another method"),
        ("GET", "/v2/things", "", 404, "no such route"),
        (
            "PUT",
            "/v1/bindings/mp/o_alice",
            r#"{"app_user_id":""}"#,
            400,
            "app_user_id:",
        ),
        (
            "PUT",
            "/v1/bindings/mp/o_nobody",
            r#"{"app_user_id":"u1"}"#,
            404,
            "no such user",
        ),
        (
            "PUT",
            "/v1/bindings/zz/o_alice",
            r#"{"app_user_id":"u1"}"#,
            404,
            "no such channel",
        ),
    ];
    for (n, (method, path, body, status, reason)) in cases.into_iter().enumerate() {
        let (got, answer) = call(
            &service,
            request("hotel-9", method, path, body, &format!("nonce-bad-{n}")),
        )
        .await;
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        let said = answer["reason"].as_str().unwrap_or_default();
        assert!(said.contains(reason), "{method} {path} {body}: {said}");
    }
    let huge = "x".repeat(MAX_REQUEST_BYTES + 1);
    assert_eq!(
        call(
            &service,
            request("hotel-9", "POST", "/v1/messages", &huge, "nonce-huge")
        )
        .await
        .0,
        413
    );
    let mut unsigned = request(
        "hotel-9",
        "GET",
        "/v1/conversations?channel=mp&openid=o_alice",
        "",
        "nonce-unsigned",
    );
    unsigned.headers_mut().remove(api_auth::SIGNATURE_HEADER);
    assert_eq!(call(&service, unsigned).await.0, 401);
}

#[tokio::test]
async fn bindings_are_kept_and_not_silently_replaced() {
    let service = service().await;
    let bind = |body: &str, nonce: &str| {
        request("hotel-9", "PUT", "/v1/bindings/mp/o_alice", body, nonce).map(|b| b)
    };
    assert_eq!(
        call(&service, bind(r#"{"app_user_id":"u-1"}"#, "nonce-bind-1"))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&service, bind(r#"{"app_user_id":"u-1"}"#, "nonce-bind-2"))
            .await
            .0,
        200,
        "idempotent"
    );
    assert_eq!(
        call(&service, bind(r#"{"app_user_id":"u-2"}"#, "nonce-bind-3"))
            .await
            .0,
        409
    );
    assert_eq!(
        call(
            &service,
            bind(r#"{"app_user_id":"u-2","replace":true}"#, "nonce-bind-4")
        )
        .await
        .0,
        200
    );
    let (status, listed) = call(
        &service,
        request(
            "hotel-9",
            "GET",
            "/v1/conversations?app_user_id=u-2",
            "",
            "nonce-bind-5",
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["conversations"][0]["app_user_id"], "u-2");
    // Writing to the app user reaches the bound channel user.
    let body = json!({"to": {"app_user_id": "u-2"}, "client_message_id": "c-app", "content": {"type": "text", "text": "Your room is ready."}}).to_string();
    let (status, accepted) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &body, "nonce-bind-6"),
    )
    .await;
    assert_eq!(
        (status, accepted["conversation_id"].as_str()),
        (202, Some("mp:o_alice:hotel-9"))
    );
    let body = json!({"to": {"app_user_id": "u-1"}, "client_message_id": "c-app-2", "content": {"type": "text", "text": "x"}}).to_string();
    assert_eq!(
        call(
            &service,
            request("hotel-9", "POST", "/v1/messages", &body, "nonce-bind-7")
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn only_binding_partners_bind() {
    let service = service().await;
    let bind = r#"{"app_user_id":"u-1"}"#;
    let (status, refusal) = call(
        &service,
        request(
            "air-3",
            "PUT",
            "/v1/bindings/mp/o_alice",
            bind,
            "nonce-cb-1",
        ),
    )
    .await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (403, Some("forbidden"))
    );
}

#[tokio::test]
async fn in_separate_mode_another_partners_channel_is_forbidden() {
    let service = service_in("separate").await;
    let to_alice = json!({"to": {"channel": "mp", "openid": "o_alice"}, "client_message_id": "s-1",
                          "content": {"type": "text", "text": "hi"}})
    .to_string();
    let cases = [
        ("POST", "/v1/messages", to_alice.as_str(), 403),
        (
            "PUT",
            "/v1/bindings/mp/o_alice",
            r#"{"app_user_id":"u-1"}"#,
            403,
        ),
        ("GET", "/v1/media/mp/m-1", "", 403),
        (
            "GET",
            "/v1/conversations?channel=mp&openid=o_alice",
            "",
            403,
        ),
        ("GET", "/v1/conversations/mp:o_alice/messages", "", 404),
        ("POST", "/v1/conversations/mp:o_alice/typing", "", 404),
    ];
    for (n, (method, path, body, status)) in cases.into_iter().enumerate() {
        let (got, answer) = call(
            &service,
            request("air-3", method, path, body, &format!("nonce-sep-{n}")),
        )
        .await;
        assert_eq!(got, status, "{method} {path}: {answer}");
    }
    // The hotel owns the channel and its conversations.
    let (status, page) = call(
        &service,
        request(
            "hotel-9",
            "GET",
            "/v1/conversations/mp:o_alice/messages",
            "",
            "nonce-sep-own",
        ),
    )
    .await;
    assert_eq!(
        (status, page["messages"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, _) = call(
        &service,
        request(
            "hotel-9",
            "POST",
            "/v1/messages",
            &to_alice,
            "nonce-sep-send",
        ),
    )
    .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn a_text_too_long_with_the_sender_name_is_refused_at_once() {
    let service = service().await;
    let text = "x".repeat(wxbridge_core::model::MAX_TEXT_BYTES - 3);
    let body = reply("long-1", &text);
    let (status, refusal) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &body, "nonce-long-1"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(refusal["reason"]
        .as_str()
        .unwrap()
        .starts_with("content.text:"));
}

#[tokio::test]
async fn routes_decode_their_segments_and_refuse_what_they_do_not_know() {
    let service = service().await;
    let encoded = "/v1/conversations/mp%3Ao_alice%3Ahotel-9/messages";
    let (status, page) = call(
        &service,
        request("hotel-9", "GET", encoded, "", "nonce-route-1"),
    )
    .await;
    assert_eq!(
        (status, page["messages"].as_array().map(Vec::len)),
        (200, Some(1)),
        "the conversation id decoded: {page}"
    );
    let cases = [
        ("PUT", "/v1/messages", 405, "method_not_allowed"),
        ("GET", "/v1/media/mp", 404, "not_found"),
        ("GET", "/v1/conversations//messages", 404, "not_found"),
    ];
    for (n, (method, path, status, code)) in cases.into_iter().enumerate() {
        let (got, answer) = call(
            &service,
            request("hotel-9", method, path, "", &format!("nonce-route-x{n}")),
        )
        .await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn an_unsigned_caller_learns_nothing_about_routes() {
    let service = service().await;
    for (method, path) in [
        ("GET", "/v2/things"),
        ("DELETE", "/v1/messages"),
        ("GET", "/v1/conversations"),
    ] {
        let mut unsigned = request("hotel-9", method, path, "", "nonce-anon-1");
        unsigned.headers_mut().remove(api_auth::SIGNATURE_HEADER);
        let (status, answer) = call(&service, unsigned).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}"
        );
    }
}

/// `api/openapi.json` is the document the code generates: rewritten with
/// `WXBRIDGE_WRITE_OPENAPI=1`, otherwise a drift fails here.
#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../api/openapi.json");
    let generated = super::openapi::document();
    if std::env::var_os("WXBRIDGE_WRITE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(
        committed == generated,
        "api/openapi.json differs from the generated document: run \
         WXBRIDGE_WRITE_OPENAPI=1 cargo test -p wxbridge-lambda openapi"
    );
}

/// Every documented operation is a route of the router (not "no such route" nor another
/// method), and every route answers as documented: each status it gives is listed.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let service = service().await;
    let doc: Value = serde_json::from_str(&super::openapi::document()).unwrap();
    let mut operations = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{conversation_id}", "mp:o_alice:hotel-9")
            .replace("{channel}", "mp")
            .replace("{openid}", "o_alice")
            .replace("{media_id}", "m-1")
            .replace("{message_id}", "in_1");
        for (method, operation) in methods.as_object().unwrap() {
            operations += 1;
            let method = method.to_ascii_uppercase();
            let nonce = format!("nonce-doc-{operations}");
            let (status, answer) =
                call(&service, request("hotel-9", &method, &concrete, "", &nonce)).await;
            assert_ne!(answer["reason"], "no such route", "{method} {path}");
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                operation["responses"].get(status.to_string()).is_some(),
                "{method} {path} answered {status}, which it does not document: {answer}"
            );
        }
    }
    assert_eq!(operations, 11);
}

/// One refusal of each kind the API answers. The matches have no wildcard, so a new kind
/// cannot be added without being listed (and documented) here.
fn every_refusal() -> Vec<ApiError> {
    use crate::api::error::ApiError as A;
    use wxbridge_core::ports::nonces::NonceError;
    use wxbridge_core::ports::store::StoreError;
    use wxbridge_core::services::partner::auth::AuthError;
    use wxbridge_core::services::partner::{ConflictCode as C, PartnerError as P};
    let conflicts = [
        C::ClientMessageIdReused,
        C::PushIdReused,
        C::AmbiguousRecipient,
        C::AlreadyBound,
        C::Changed,
        C::HandoverNotInThisMode,
        C::NotActivePartner,
        C::HandoverIdReused,
    ];
    for code in conflicts {
        match code {
            C::ClientMessageIdReused
            | C::PushIdReused
            | C::AmbiguousRecipient
            | C::AlreadyBound
            | C::Changed
            | C::HandoverNotInThisMode
            | C::NotActivePartner
            | C::HandoverIdReused => {}
        }
    }
    let mut all: Vec<A> = vec![
        P::field("content.text", "must not be empty").into(),
        P::NotFound("conversation").into(),
        P::Forbidden("rule").into(),
        P::Store(StoreError::Unavailable("down".into())).into(),
        P::NotQueued("client_message_id").into(),
        P::NotDelivered("handover_id").into(),
        P::PushesNotSetUp.into(),
        P::WeChatRefused(String::new()).into(),
        P::SubMerchantNotRegistered(String::new()).into(),
        P::WeChatUnavailable.into(),
        P::MediaNotFound(String::new()).into(),
        P::MediaTooLarge.into(),
        P::MediaNotStored("").into(),
        P::ArchiveUnavailable.into(),
        A::Unauthorized(AuthError::BadSignature),
        A::NoncesUnavailable(NonceError::Unavailable(String::new())),
        A::OutOfTime,
        A::InvalidJson,
        A::TooLarge,
        A::NoRoute,
        A::WrongMethod,
    ];
    all.extend(conflicts.map(|code| P::Conflict { code, reason: "" }.into()));
    for error in &all {
        match error {
            A::Partner(partner) => match partner {
                P::InvalidField { .. }
                | P::NotFound(_)
                | P::Forbidden(_)
                | P::Conflict { .. }
                | P::Store(_)
                | P::NotQueued(_)
                | P::NotDelivered(_)
                | P::PushesNotSetUp
                | P::WeChatRefused(_)
                | P::SubMerchantNotRegistered(_)
                | P::WeChatUnavailable
                | P::MediaNotFound(_)
                | P::MediaTooLarge
                | P::MediaNotStored(_)
                | P::ArchiveUnavailable => {}
            },
            A::Unauthorized(_)
            | A::NoncesUnavailable(_)
            | A::OutOfTime
            | A::InvalidJson
            | A::TooLarge
            | A::NoRoute
            | A::WrongMethod => {}
        }
    }
    all
}

#[test]
fn the_answer_table_lists_every_status_and_code_the_api_gives() {
    let docs = include_str!("../../../../docs/partner-api.md");
    for error in every_refusal() {
        let (status, code) = error.status_and_code();
        let row = format!("| {} | `{code}` |", status.as_u16());
        assert!(
            docs.contains(&row),
            "docs/partner-api.md does not list {row}"
        );
    }
}

#[tokio::test]
async fn a_conversation_whose_openid_holds_a_colon_is_found_by_the_id_the_bridge_gave() {
    let service = service().await;
    wrote(&service.memory.store, DialogMode::Merged, "o:with:colons").await;
    let path = "/v1/conversations/mp:o:with:colons:hotel-9/messages";
    let (status, page) = call(
        &service,
        request("hotel-9", "GET", path, "", "nonce-colon-1"),
    )
    .await;
    assert_eq!(
        (status, page["messages"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );
}

/// Sub-merchant mode: the hotel answers the mini program's own chat; Blue Air has its own
/// sub-merchant, in whose chat Alice wrote.
async fn sub_merchant_service() -> Service {
    let memory = Memory::default();
    let conversation = Conversation::new("mp:o_alice:air-3", "mp", "o_alice", "air-3", NOW_MS);
    let message = StoredMessage {
        direction: Direction::In,
        status: MessageStatus::Delivered,
        dedupe_key: Some("mp:o_alice:air".into()),
        ..StoredMessage::reply(
            &conversation,
            "in_alice",
            NOW_MS - 1,
            json!({"type": "text"}),
        )
    };
    let alice = ChannelUser::new("mp", "o_alice");
    memory
        .store
        .record_inbound(&message, &conversation, &alice)
        .await
        .unwrap();
    sub_merchant_instance(memory)
}

/// A new instance of the API on `memory` (it reads the sub-merchants afresh).
fn sub_merchant_instance(memory: Memory) -> Service {
    let config = BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
        "partners":[
          {"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://h/h","signing_secret":"hotel-secret-456789"},
          {"id":"air-3","display_name":"Blue Air","webhook_url":"http://a/a","signing_secret":"air-secret-0123456",
           "sub_merchant":{"account_name":"blue_air_3","nickname":"BlueAir","avatar_url":"https://cdn/air.png"}}],
        "dialog":{"mode":"sub_merchant","default_partner":"hotel-9"}}"#,
    )
    .unwrap();
    let api = PartnerApi::new(memory.bridge(config, NOW_MS), memory.outbound.clone());
    serving(api, memory)
}

#[tokio::test]
async fn in_sub_merchant_mode_a_partner_not_yet_registered_is_told_so_before_anything_is_stored() {
    let service = sub_merchant_service().await;
    let body = json!({"conversation_id": "mp:o_alice:air-3", "client_message_id": "c-1",
        "content": {"type": "text", "text": "Your seat is 12A."}})
    .to_string();
    let send = |nonce| request("air-3", "POST", "/v1/messages", &body, nonce);
    let (status, refusal) = call(&service, send("nonce-sm-1")).await;
    assert_eq!(status, 409, "{refusal}");
    assert_eq!(refusal["error"], "sub_merchant_not_registered");
    assert!(refusal["reason"]
        .as_str()
        .unwrap()
        .contains("wxbridge-admin sub-merchants register"));
    assert!(service.memory.outbound.sent().is_empty());
    let history = service.memory.store.history("mp:o_alice:air-3", 5).await;
    assert_eq!(
        history.unwrap().len(),
        1,
        "nothing stored but Alice's message"
    );

    service
        .memory
        .store
        .put_sub_merchant(&wxbridge_core::model::SubMerchant {
            channel: "mp".into(),
            partner: "air-3".into(),
            business_id: 7,
            account_name: "blue_air_3".into(),
            nickname: "BlueAir".into(),
            avatar_sha256: String::new(),
            updated_at_ms: NOW_MS,
        })
        .await
        .unwrap();
    let registered = sub_merchant_instance(service.memory.clone());
    let (status, accepted) = call(&registered, send("nonce-sm-2")).await;
    assert_eq!(status, 202, "{accepted}");
}

#[tokio::test]
async fn a_conversation_shows_its_window_and_a_reply_says_when_it_will_be_held() {
    let service = service().await;
    let mut alice = service
        .memory
        .store
        .user("mp", "o_alice")
        .await
        .unwrap()
        .unwrap();
    alice.window = Some(wxbridge_core::model::ReplyWindow {
        remaining: 1,
        closes_at_ms: NOW_MS + 3_600_000,
        opened_by_entry: false,
        last_message_at_ms: Some(NOW_MS - 1_000),
    });
    alice.grants.insert("tpl-order".into(), 2);
    alice.grants.insert("tpl-not-the-hotels".into(), 1);
    service.memory.store.put_user(&alice).await.unwrap();

    let path = "/v1/conversations/mp:o_alice:hotel-9";
    let (status, view) = call(&service, request("hotel-9", "GET", path, "", "nonce-w-1")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["id"], "mp:o_alice:hotel-9");
    assert_eq!(
        view["active_partner"], "hotel-9",
        "merged mode: the default answers"
    );
    let window = &view["window"];
    assert_eq!(
        (window["open"].as_bool(), window["sends_left"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(window["open_until_ms"], NOW_MS + 3_600_000);
    assert_eq!(window["entry_allowance"], false);
    assert_eq!(window["last_user_message_at_ms"], NOW_MS - 1_000);
    assert_eq!(window["subscribe_grants"], json!({"tpl-order": 2}));
    let listed = "/v1/conversations?channel=mp&openid=o_alice";
    let (_, list) = call(&service, request("hotel-9", "GET", listed, "", "nonce-w-2")).await;
    assert_eq!(list["conversations"][0]["window"], *window);
    let (status, _) = call(&service, request("air-3", "GET", path, "", "nonce-w-3")).await;
    assert_eq!(status, 404, "another partner's conversation");

    // One send left: the first reply takes it, the second will wait for the user.
    let first = reply("c-w-1", "One moment.");
    let (status, accepted) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &first, "nonce-w-4"),
    )
    .await;
    assert_eq!(
        (status, accepted["will_hold"].as_bool()),
        (202, Some(false)),
        "{accepted}"
    );
    assert_eq!(accepted["window"]["sends_left"], 1);
    let second = reply("c-w-2", "And another thing.");
    let (status, held) = call(
        &service,
        request("hotel-9", "POST", "/v1/messages", &second, "nonce-w-5"),
    )
    .await;
    assert_eq!(
        (status, held["will_hold"].as_bool()),
        (202, Some(true)),
        "{held}"
    );
    assert!(held["hold_reason"]
        .as_str()
        .unwrap()
        .contains("1 send(s) left go to the 1 reply queued before it"));
}

/// `partner` hands the conversation at `path` to `to`, as hand-over `id`.
async fn hand_over(
    service: &Service,
    partner: &str,
    path: &str,
    to: &str,
    id: &str,
) -> (u16, Value) {
    // Not from `id`: a 55-character id would make the nonce too long to sign with.
    let nonce = format!("nonce-handover-{}", next_number());
    call(
        service,
        request(partner, "POST", path, &handover(to, id), &nonce),
    )
    .await
}

fn next_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn handover(to: &str, id: &str) -> String {
    json!({"handover_id": id, "to": to, "note_to_user": "Blue Air will take it from here.",
           "note_to_partner": "Asked about a flight change for order 42."})
    .to_string()
}

#[tokio::test]
async fn the_platform_hands_a_user_over_with_notes_and_context_once_per_id() {
    let service = service().await;
    let path = "/v1/conversations/mp:o_alice:hotel-9/handover";
    let body = handover("air-3", "h-1");
    let (status, done) = call(
        &service,
        request("hotel-9", "POST", path, &body, "nonce-h-1"),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["conversation_id"], "mp:o_alice:air-3");
    assert_eq!(
        done["note"]["status"], "queued",
        "the note goes out as the hotel's reply"
    );

    let posts = service.memory.webhooks.posts();
    let hook = posts
        .iter()
        .find(|p| p.url == "http://a/a")
        .expect("Blue Air's webhook");
    assert_eq!(hook.body["type"], "conversation.handed_over");
    assert_eq!(hook.body["from"]["partner"], "hotel-9");
    assert_eq!(
        hook.body["note"],
        "Asked about a flight change for order 42."
    );
    let context = hook.body["context"].as_array().unwrap();
    assert_eq!(
        context.first().unwrap()["direction"],
        "in",
        "the user's message, oldest first"
    );
    assert_eq!(
        context.last().unwrap()["content"]["text"],
        "Blue Air will take it from here."
    );
    let alice = service
        .memory
        .store
        .user("mp", "o_alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        alice.routing.active.unwrap().partner,
        "air-3",
        "the next message goes to Blue Air"
    );

    // Again with the same id: the note is not stored twice, the webhook keeps its id.
    let (status, _) = call(
        &service,
        request("hotel-9", "POST", path, &body, "nonce-h-2"),
    )
    .await;
    assert_eq!(status, 200);
    let notes = service
        .memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(notes.len(), 2, "Alice's message and one note");
    let deliveries: Vec<String> = service
        .memory
        .webhooks
        .posts()
        .iter()
        .filter(|p| p.url == "http://a/a")
        .map(|p| p.delivery().to_owned())
        .collect();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0], deliveries[1]);
}

/// `openid` enters the chat with this `session-from`, through the inbound fan-in.
async fn enters(service: &Service, openid: &str, n: i64, session_from: &str) {
    use wxbridge_core::model::InboundMessage;
    use wxbridge_core::services::inbound::{Inbound, Outcome};
    use wxbridge_wechat::event::{CallbackEvent, EventKind};
    let memory = &service.memory;
    let inbound = Inbound::new(
        memory.bridge(config("merged"), NOW_MS),
        memory.outbound.clone(),
    );
    let event = CallbackEvent {
        to_user_name: "gh_1".into(),
        from_user_name: openid.into(),
        create_time: NOW_MS / 1000 + n,
        business_id: None,
        kind: EventKind::UserEnterTempSession {
            session_from: session_from.into(),
        },
    };
    let entry = InboundMessage::new("mp", event, NOW_MS + n * 1000);
    assert_eq!(inbound.process(&entry, NOW_MS).await, Outcome::Delivered);
}

#[tokio::test]
async fn the_receiving_partner_of_a_hand_over_gets_no_entry_context_but_its_own() {
    let service = service().await;
    // Bob enters from the hotel's page with his order; the hotel hands him to Blue Air.
    enters(&service, "o_bob", 1, "partner=hotel-9&order=HOTEL-ORD-1").await;
    let bob = "/v1/conversations/mp:o_bob:hotel-9/handover";
    let (status, _) = hand_over(&service, "hotel-9", bob, "air-3", "ho-bob").await;
    assert_eq!(status, 200);
    // Alice enters from a Blue Air page while the hotel answers her chat: the hotel gets
    // the entry without Blue Air's context, and Blue Air gets it when she is handed over.
    enters(&service, "o_alice", 2, "partner=air-3&order=AIR-ORD-2").await;
    let alice = "/v1/conversations/mp:o_alice:hotel-9/handover";
    let (status, _) = hand_over(&service, "hotel-9", alice, "air-3", "ho-alice").await;
    assert_eq!(status, 200);

    let posts = service.memory.webhooks.posts();
    let to_hotel: Vec<String> = posts
        .iter()
        .filter(|p| p.url == "http://h/h")
        .map(|p| p.body.to_string())
        .collect();
    assert_eq!(to_hotel.len(), 2, "the two entries");
    assert!(
        to_hotel[0].contains("HOTEL-ORD-1"),
        "its own: {}",
        to_hotel[0]
    );
    assert!(!to_hotel[1].contains("AIR-ORD-2"), "{}", to_hotel[1]);
    let handed: Vec<&Value> = posts
        .iter()
        .filter(|p| p.url == "http://a/a")
        .map(|p| &p.body)
        .collect();
    assert_eq!(handed[0]["user"]["openid"], "o_bob");
    assert_eq!(handed[0]["user"]["session_context"], json!([]));
    let entry = handed[0]["context"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"]["type"] == "user_enter_tempsession")
        .expect("the entry in the context");
    assert_eq!(
        entry["content"],
        json!({"type": "user_enter_tempsession"}),
        "the entry, without the hotel's session-from"
    );
    assert!(
        !handed[0].to_string().contains("HOTEL-ORD-1"),
        "{}",
        handed[0]
    );
    assert_eq!(handed[1]["user"]["openid"], "o_alice");
    assert_eq!(
        handed[1]["user"]["session_context"],
        json!([["partner", "air-3"], ["order", "AIR-ORD-2"]]),
        "Blue Air's own"
    );
}

/// The raw answer: status, content type, bytes.
async fn call_raw(service: &Service, request: Request) -> (u16, String, Vec<u8>) {
    let response = answer(&service.router, request).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, content_type, bytes.to_vec())
}

#[tokio::test]
async fn a_users_image_is_served_only_to_the_partner_whose_conversation_it_is() {
    use wxbridge_core::model::inbound_message_id;
    use wxbridge_core::ports::wechat::Media;
    let service = service().await;
    let store = &service.memory.store;
    // Alice sends the hotel an image; Blue Air talks with her too.
    let conversation = store
        .conversation("mp", "o_alice", "mp:o_alice:hotel-9")
        .await
        .unwrap()
        .unwrap();
    let alice = store.user("mp", "o_alice").await.unwrap().unwrap();
    let image = StoredMessage {
        id: inbound_message_id("mp:image-1"),
        dedupe_key: Some("mp:image-1".into()),
        created_at_ms: NOW_MS - 30_000,
        content: json!({"type": "image", "msg_id": "1", "pic_url": "http://mmbiz.qpic.cn/1",
                        "media_id": "MEDIA-alice-1"}),
        ..store.history(&conversation.id, 1).await.unwrap().remove(0)
    };
    store
        .record_inbound(&image, &conversation, &alice)
        .await
        .unwrap();
    let png = b"\x89PNG\r\n\x1a\nalice".to_vec();
    service.memory.wechat.hold_media(
        "MEDIA-alice-1",
        Media {
            content_type: "image/png".into(),
            bytes: png.clone(),
        },
    );
    let air = Conversation::new("mp:o_alice:air-3", "mp", "o_alice", "air-3", NOW_MS);
    let hello = StoredMessage::reply(
        &air,
        "out_air",
        NOW_MS,
        json!({"type": "text", "text": "Hi"}),
    );
    store.put_outbound(&hello, &air, "air-hello").await.unwrap();

    let get = |partner: &str, media_id: &str| {
        let path = format!("/v1/media/mp/{media_id}");
        let nonce = format!("nonce-media-{}", next_number());
        call_raw(&service, request(partner, "GET", &path, "", &nonce))
    };
    assert_eq!(
        get("hotel-9", "MEDIA-alice-1").await,
        (200, "image/png".into(), png)
    );
    let foreign = get("air-3", "MEDIA-alice-1").await;
    let absent = get("air-3", "MEDIA-nobody-sent").await;
    assert_eq!(foreign.0, 404);
    assert_eq!(
        foreign, absent,
        "another partner's user's image is not found"
    );
    assert_eq!(
        get("hotel-9", "MEDIA-nobody-sent").await,
        absent,
        "as any id no user sent"
    );
    let media_gets = service
        .memory
        .wechat
        .calls()
        .iter()
        .filter(|(api, _)| *api == wxbridge_testkit::scripted_wechat::MEDIA_GET)
        .count();
    assert_eq!(
        media_gets, 1,
        "WeChat is asked only for the partner's own image"
    );
}

#[tokio::test]
async fn a_hand_over_is_refused_by_rule_by_mode_and_answered_503_when_not_delivered() {
    let service = service().await;
    // Blue Air has no conversation with Alice: not found, as any other partner's.
    let path = "/v1/conversations/mp:o_alice:hotel-9/handover";
    let (status, _) = hand_over(&service, "air-3", path, "hotel-9", "h-2").await;
    assert_eq!(status, 404);
    let (status, refusal) = hand_over(&service, "hotel-9", path, "hotel-9", "h-3").await;
    assert_eq!(
        (status, refusal["reason"].as_str()),
        (400, Some("to: the conversation is this partner's already"))
    );
    let (status, _) = hand_over(&service, "hotel-9", path, "nobody", "h-4").await;
    assert_eq!(status, 400);

    // The receiving partner does not take the webhook: 503, to be repeated.
    service.memory.webhooks.not_now();
    let (status, refusal) = hand_over(&service, "hotel-9", path, "air-3", "h-5").await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (503, Some("unavailable")),
        "{refusal}"
    );
    assert!(refusal["reason"]
        .as_str()
        .unwrap()
        .contains("same handover_id"));

    // A partner other than the default one hands back only to the default one.
    let (status, _) = hand_over(&service, "hotel-9", path, "air-3", "h-5").await;
    assert_eq!(status, 200);
    let config = BridgeConfig::from_json(
        &serde_json::to_string(&json!({
            "channels": [{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
            "partners": [
                {"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://h/h","signing_secret":"hotel-secret-456789"},
                {"id":"air-3","display_name":"Blue Air","webhook_url":"http://a/a","signing_secret":"air-secret-0123456"},
                {"id":"shop-5","display_name":"Shop","webhook_url":"http://s/s","signing_secret":"shop-secret-0123456"}],
            "dialog": {"mode":"merged","default_partner":"hotel-9"}})).unwrap(),
    )
    .unwrap();
    assert!(config.may_hand_over("air-3", "hotel-9").is_ok());
    let rule = config.may_hand_over("air-3", "shop-5").unwrap_err();
    assert!(rule.contains("partners[].handover_to"), "{rule}");
    assert!(config.may_hand_over("hotel-9", "shop-5").is_ok());

    // Outside merged mode: 409 saying why.
    let separate = service_in("separate").await;
    let path = "/v1/conversations/mp:o_alice/handover";
    let (status, refusal) = hand_over(&separate, "hotel-9", path, "air-3", "h-6").await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (409, Some("handover_not_supported"))
    );
    assert!(refusal["reason"]
        .as_str()
        .unwrap()
        .contains("separate mode"));
}

#[tokio::test]
async fn an_agent_closes_a_conversation_and_the_users_next_message_reopens_it() {
    let service = service().await;
    let path = "/v1/conversations/mp:o_alice:hotel-9/close";
    let without_id = json!({"closing_text": "Thanks for writing!"}).to_string();
    let (status, refusal) = call(
        &service,
        request("hotel-9", "POST", path, &without_id, "nonce-c-1"),
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    let body =
        json!({"closing_text": "Thanks for writing!", "client_message_id": "bye-1"}).to_string();
    let (status, view) = call(
        &service,
        request("hotel-9", "POST", path, &body, "nonce-c-2"),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["status"].as_str(), view["closed"]["reason"].as_str()),
        (Some("closed"), Some("agent"))
    );
    let closed_at = view["closed"]["at_ms"].clone();
    let hook = service.memory.webhooks.posts().pop().unwrap();
    assert_eq!(
        (hook.url.as_str(), &hook.body["type"]),
        ("http://h/h", &json!("conversation.closed"))
    );
    let history = service
        .memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(
        history[0].content["text"], "Thanks for writing!",
        "the closing text, as a reply"
    );

    // Again: the first close stands, the text is not sent twice.
    let (status, again) = call(
        &service,
        request("hotel-9", "POST", path, &body, "nonce-c-3"),
    )
    .await;
    assert_eq!((status, &again["closed"]["at_ms"]), (200, &closed_at));
    let history = service
        .memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    let listed = "/v1/conversations?channel=mp&openid=o_alice";
    let (_, list) = call(&service, request("hotel-9", "GET", listed, "", "nonce-c-4")).await;
    assert_eq!(list["conversations"][0]["status"], "closed");
}

#[tokio::test]
async fn a_repeated_hand_over_writes_nothing_again_and_its_id_fits_the_note() {
    let service = service().await;
    let path = "/v1/conversations/mp:o_alice:hotel-9/handover";
    let (status, _) = hand_over(&service, "hotel-9", path, "air-3", "h-r").await;
    assert_eq!(status, 200);
    let version = |service: &Service| {
        let store = service.memory.store.clone();
        async move { store.user("mp", "o_alice").await.unwrap().unwrap().version }
    };
    let handed = version(&service).await;
    let (status, _) = hand_over(&service, "hotel-9", path, "air-3", "h-r").await;
    assert_eq!(status, 200);
    assert_eq!(
        version(&service).await,
        handed,
        "the user handed over already is not written again"
    );

    // The user switches back to the hotel; a late repeat of the hand-over (a client's
    // retry) does not move them again.
    let store = service.memory.store.clone();
    let switch_back = || async {
        let mut user = store.user("mp", "o_alice").await.unwrap().unwrap();
        user.routing
            .activate("hotel-9", NOW_MS, ActiveBecause::UserSwitched);
        store.put_user(&user).await.unwrap();
    };
    switch_back().await;
    let (status, _) = hand_over(&service, "hotel-9", path, "air-3", "h-r").await;
    assert_eq!(status, 200);
    let user = store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(user.routing.active.unwrap().partner, "hotel-9");
    // A new hand-over does; and after the user switches back once more, a late repeat of
    // the first (no longer the latest) still does not.
    let (status, _) = hand_over(&service, "hotel-9", path, "air-3", "h-r2").await;
    assert_eq!(status, 200);
    let user = store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(user.routing.active.unwrap().partner, "air-3");
    switch_back().await;
    let (status, _) = hand_over(&service, "hotel-9", path, "air-3", "h-r").await;
    assert_eq!(status, 200);
    let user = store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(user.routing.active.unwrap().partner, "hotel-9");

    let long_id = "h".repeat(56);
    let (status, refusal) = hand_over(&service, "hotel-9", path, "air-3", &long_id).await;
    assert_eq!(status, 400, "{refusal}");
    assert!(refusal["reason"]
        .as_str()
        .unwrap()
        .starts_with("handover_id"));
}

/// `openid` switches to `partner` at `at_ms` (as their `#` text would).
async fn switches_to(service: &Service, openid: &str, partner: &str, at_ms: i64) {
    let store = &service.memory.store;
    let mut user = store.user("mp", openid).await.unwrap().unwrap();
    user.routing
        .activate(partner, at_ms, ActiveBecause::UserSwitched);
    store.put_user(&user).await.unwrap();
}

async fn talks_to(service: &Service, openid: &str) -> String {
    let user = service.memory.store.user("mp", openid).await.unwrap();
    user.unwrap().routing.active.unwrap().partner
}

/// The airline writes to `openid` first: its conversation with them.
async fn airline_writes(service: &Service, openid: &str) {
    let body = json!({"to": {"channel": "mp", "openid": openid},
                      "client_message_id": format!("air-{openid}"),
                      "content": {"type": "text", "text": "Your flight is on time."}})
    .to_string();
    let nonce = format!("nonce-air-{}", next_number());
    let (status, answer) = call(
        service,
        request("air-3", "POST", "/v1/messages", &body, &nonce),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn only_the_partner_the_user_talks_to_hands_them_over_and_a_repeat_still_answers() {
    let service = service().await;
    let path = "/v1/conversations/mp:o_alice:air-3/handover";
    switches_to(&service, "o_alice", "air-3", NOW_MS - 3_000).await;
    airline_writes(&service, "o_alice").await;
    // Alice chose the hotel: the airline (not the default partner) may not move her.
    switches_to(&service, "o_alice", "hotel-9", NOW_MS - 2_000).await;
    let (status, refusal) = hand_over(&service, "air-3", path, "hotel-9", "ho-a").await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (409, Some("not_active_partner")),
        "{refusal}"
    );
    assert!(service.memory.webhooks.posts().is_empty(), "nobody told");

    // While Alice talks to the airline, it hands her to the hotel; a repeat after that
    // (the airline no longer the active partner) answers as the first did, and so does
    // one after Alice moved on.
    switches_to(&service, "o_alice", "air-3", NOW_MS - 1_000).await;
    let (status, first) = hand_over(&service, "air-3", path, "hotel-9", "ho-b").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(talks_to(&service, "o_alice").await, "hotel-9");
    let (status, again) = hand_over(&service, "air-3", path, "hotel-9", "ho-b").await;
    assert_eq!((status, &again), (200, &first));
    switches_to(&service, "o_alice", "air-3", NOW_MS).await;
    let (status, late) = hand_over(&service, "air-3", path, "hotel-9", "ho-b").await;
    assert_eq!((status, &late), (200, &first));
    assert_eq!(
        talks_to(&service, "o_alice").await,
        "air-3",
        "a repeat moves nobody"
    );
    let deliveries: Vec<String> = service
        .memory
        .webhooks
        .posts()
        .iter()
        .map(|p| p.delivery().to_owned())
        .collect();
    assert_eq!(deliveries, ["handover:air-3:ho-b"; 3]);

    // The same id for another user's hand-over is refused.
    wrote(&service.memory.store, DialogMode::Merged, "o_bob").await;
    switches_to(&service, "o_bob", "air-3", NOW_MS).await;
    airline_writes(&service, "o_bob").await;
    let bob = "/v1/conversations/mp:o_bob:air-3/handover";
    let body = json!({"handover_id": "ho-b", "to": "hotel-9"}).to_string();
    let (status, refusal) = call(
        &service,
        request("air-3", "POST", bob, &body, "nonce-bob-ho"),
    )
    .await;
    assert_eq!(
        (status, refusal["error"].as_str()),
        (409, Some("handover_id_reused")),
        "{refusal}"
    );
    assert_eq!(talks_to(&service, "o_bob").await, "air-3");
}

#[tokio::test]
async fn a_hand_over_id_is_kept_for_good_not_for_the_latest_eight() {
    let service = service().await;
    let path = "/v1/conversations/mp:o_alice:hotel-9/handover";
    for n in 0..10 {
        let (status, done) =
            hand_over(&service, "hotel-9", path, "air-3", &format!("ho-{n}")).await;
        assert_eq!(status, 200, "{done}");
    }
    switches_to(&service, "o_alice", "hotel-9", NOW_MS).await;
    let (status, _) = hand_over(&service, "hotel-9", path, "air-3", "ho-0").await;
    assert_eq!(status, 200);
    assert_eq!(
        talks_to(&service, "o_alice").await,
        "hotel-9",
        "a late retry of the first hand-over moves nobody"
    );
}

// Found by the property tests from the document (scripts/schemathesis.sh, make api-fuzz).

/// The document states the limits the API checks: the partners' ids, a page's size, a
/// text's and a URL's rules. Found: the ids and `limit` were documented as any string or
/// number, so valid-looking requests were refused 400.
#[test]
fn the_document_states_the_limits_the_api_checks() {
    let doc: Value = serde_json::from_str(&super::openapi::document()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for (schema, field, max) in [
        ("SendRequest", "client_message_id", 64),
        ("PushRequest", "push_id", 64),
        ("CloseRequest", "client_message_id", 64),
        ("HandoverRequest", "handover_id", 55),
        ("BindRequest", "app_user_id", 128),
    ] {
        let at = &schemas[schema]["properties"][field];
        assert_eq!(at["pattern"], "^[A-Za-z0-9._:@-]+$", "{schema}.{field}");
        assert_eq!(
            (at["minLength"].as_u64(), at["maxLength"].as_u64()),
            (Some(1), Some(max)),
            "{schema}.{field}"
        );
    }
    let history = &doc["paths"]["/v1/conversations/{conversation_id}/messages"]["get"];
    let limit = history["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (
            limit["schema"]["minimum"].as_u64(),
            limit["schema"]["maximum"].as_u64()
        ),
        (Some(1), Some(100))
    );
    assert_eq!(
        schemas["PushRequest"]["properties"]["expires_at_ms"]["minimum"],
        1
    );
    // Blank means only what Rust's `trim` takes away (Unicode White_Space, U+0085
    // included, U+FEFF not): the document's class, not JSON Schema's `\s`.
    let text = &schemas["Content"]["oneOf"][0]["properties"]["text"];
    assert!(text["pattern"].as_str().unwrap().contains(r"\u0085"));
    assert!(!text["pattern"].as_str().unwrap().contains(r"\ufeff"));
}

/// The boundaries the document gives are the API's: the longest id and page are
/// accepted, one more is refused; "blank" and "whitespace in a URL" are Unicode's.
#[tokio::test]
async fn the_documented_boundaries_are_the_apis() {
    let service = service().await;
    let mut n = 0;
    let mut post = |body: Value| {
        n += 1;
        request(
            "hotel-9",
            "POST",
            "/v1/messages",
            &body.to_string(),
            &format!("nonce-bound-{n}"),
        )
    };
    let with = |id: &str, content: Value| json!({"conversation_id": "mp:o_alice:hotel-9", "client_message_id": id, "content": content});
    let text = |t: &str| json!({"type": "text", "text": t});
    let (status, answer) = call(&service, post(with(&"a".repeat(64), text("hi")))).await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = call(&service, post(with(&"a".repeat(65), text("hi")))).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // U+0085 (NEL) is whitespace to the API, so to the document; U+FEFF is neither.
    let (status, answer) = call(&service, post(with("nel", text("\u{85}")))).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = call(&service, post(with("bom", text("\u{feff}")))).await;
    assert_eq!(status, 202, "{answer}");
    let link = |url: &str| {
        json!({"type": "link", "title": "Room", "description": "", "url": url,
               "thumb_url": "https://cdn.example.com/t.png"})
    };
    let (status, answer) = call(&service, post(with("l1", link("http://a\u{85}b")))).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (400, Some("content.url: must be an http(s) URL"))
    );
    let (status, answer) = call(&service, post(with("l2", link("http://a\u{feff}b")))).await;
    assert_eq!(status, 202, "{answer}");

    for (limit, status) in [("1", 200), ("100", 200), ("0", 400), ("101", 400)] {
        let path = format!("/v1/conversations/mp:o_alice:hotel-9/messages?limit={limit}");
        let (got, answer) = call(
            &service,
            request("hotel-9", "GET", &path, "", &format!("nonce-limit-{limit}")),
        )
        .await;
        assert_eq!(got, status, "limit={limit}: {answer}");
    }
}

/// Found: `expires_at_ms: 12030.0` — an integer to JSON Schema, so to the document — was
/// refused 400. Any JSON number with an integer value is taken; a fraction is not.
#[tokio::test]
async fn a_push_expiry_is_any_json_integer() {
    let service = service().await;
    let cases = [
        ("1800000000000", 202),
        ("1800000000000.0", 202),
        ("1.8e12", 202),
        ("1800000000000.5", 400),
        ("1e300", 400),
        ("\"1800000000000\"", 400),
    ];
    for (n, (expires, status)) in cases.into_iter().enumerate() {
        let body = format!(
            r#"{{"to": {{"channel": "mp", "openid": "o_alice"}}, "push_id": "exp-{n}",
                "content": {{"type": "text", "text": "Ready"}}, "expires_at_ms": {expires}}}"#
        );
        let (got, answer) = call(
            &service,
            request(
                "hotel-9",
                "POST",
                "/v1/pushes",
                &body,
                &format!("nonce-exp-{n}"),
            ),
        )
        .await;
        assert_eq!(got, status, "{expires}: {answer}");
        if status == 400 {
            assert!(answer["reason"]
                .as_str()
                .unwrap()
                .starts_with("expires_at_ms:"));
        }
    }
}

/// Found: a malformed `client_message_id` on a close without a closing text was ignored
/// and the conversation closed (200); it is refused, naming the field, and nothing closes.
#[tokio::test]
async fn a_close_with_a_malformed_client_message_id_is_refused_and_closes_nothing() {
    let service = service().await;
    let path = "/v1/conversations/mp:o_alice:hotel-9/close";
    let body = json!({"client_message_id": "bye 1"}).to_string();
    let (status, answer) = call(
        &service,
        request("hotel-9", "POST", path, &body, "nonce-badclose-1"),
    )
    .await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (
            400,
            Some("client_message_id: 1 to 64 characters of A-Z a-z 0-9 - _ . : @")
        )
    );
    let (status, view) = call(
        &service,
        request(
            "hotel-9",
            "GET",
            "/v1/conversations/mp:o_alice:hotel-9",
            "",
            "nonce-badclose-2",
        ),
    )
    .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("open")));
    // A well-formed id without a closing text still closes (it is not needed then).
    let body = json!({"client_message_id": "bye-1"}).to_string();
    let (status, view) = call(
        &service,
        request("hotel-9", "POST", path, &body, "nonce-badclose-3"),
    )
    .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("closed")));
}

/// Found: a body `[]` closed the conversation (200) — serde reads a struct from an array
/// of its fields in order, so `[null, null, "id", {…}]` was a reply too. A body is a JSON
/// object, as documented; anything else is refused before it is read.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let service = service().await;
    let close = "/v1/conversations/mp:o_alice:hotel-9/close";
    let positional = json!([null, null, "pos-1", {"type": "text", "text": "hi"}]).to_string();
    let cases = [
        (close, "[]", "invalid_request"),
        (close, r#"["Bye", "bye-1"]"#, "invalid_request"),
        ("/v1/messages", positional.as_str(), "invalid_request"),
        ("/v1/messages", " null", "invalid_request"),
        ("/v1/messages", "\"text\"", "invalid_request"),
        ("/v1/messages", "1", "invalid_request"),
        ("/v1/messages", "[", "invalid_json"),
    ];
    for (n, (path, body, code)) in cases.into_iter().enumerate() {
        let (status, answer) = call(
            &service,
            request("hotel-9", "POST", path, body, &format!("nonce-notobj-{n}")),
        )
        .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(code)),
            "{body}"
        );
        if code == "invalid_request" {
            assert_eq!(answer["reason"], "body: must be a JSON object", "{body}");
        }
    }
    let (status, view) = call(
        &service,
        request(
            "hotel-9",
            "GET",
            "/v1/conversations/mp:o_alice:hotel-9",
            "",
            "nonce-notobj-get",
        ),
    )
    .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("open")));
    assert!(service.memory.outbound.sent().is_empty());
}

/// A nonce store that never answers, as a store past its timeouts would behave.
struct NeverAnswers;

impl wxbridge_core::ports::nonces::NonceStore for NeverAnswers {
    async fn claim(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: i64,
    ) -> Result<bool, wxbridge_core::ports::nonces::NonceError> {
        std::future::pending().await
    }
}

/// Lambda would stop the function at its deadline and the partner would see a bare 502;
/// the API answers 503 `unavailable` (repeat the request) a second before it.
#[tokio::test]
async fn a_request_the_store_cannot_finish_before_the_deadline_is_answered_503() {
    let memory = Memory::default();
    let api = PartnerApi::new(
        memory.bridge(config("merged"), NOW_MS),
        memory.outbound.clone(),
    );
    let router = router(Arc::new(ApiState::<MemoryPorts, NeverAnswers> {
        api,
        nonces: NeverAnswers,
    }));
    let mut context = lambda_http::Context::default();
    let now = wxbridge_core::clock::system_clock_ms() as u64;
    context.deadline = now + 1_300;
    let body = reply("late-1", "hello");
    let late = lambda_http::RequestExt::with_lambda_context(
        request("hotel-9", "POST", "/v1/messages", &body, "nonce-late-1"),
        context,
    );
    let started = std::time::Instant::now();
    let (status, answer) = call(&Service { router, memory }, late).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (503, Some("unavailable")),
        "{answer}"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(1_200));
    assert!(answer["reason"].as_str().unwrap().contains("repeat"));
}

#[test]
fn the_time_to_answer_keeps_a_second_back_and_needs_a_deadline_ahead() {
    use super::signature::time_to_answer;
    let ms = std::time::Duration::from_millis;
    assert_eq!(time_to_answer(10_000, 1_000), Some(ms(8_000)));
    assert_eq!(time_to_answer(1_500, 1_000), Some(ms(0)));
    assert_eq!(
        time_to_answer(0, 1_000),
        None,
        "no deadline (tests, local tools)"
    );
}
