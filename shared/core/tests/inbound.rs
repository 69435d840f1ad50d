//! Inbound fan-in on memory adapters: stored once, delivered signed, routed, windows
//! opened and held replies released.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use serde_json::json;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::session_from::sign;
use wxbridge_core::model::{
    inbound_message_id, ChannelUser, Conversation, Direction, InboundMessage, MessageStatus,
    OutboundRef, ReplyWindow, StoredMessage,
};
use wxbridge_core::model::{CloseReason, Closed};
use wxbridge_core::ports::store::{MessageStore, UserStore};
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::webhook;
use wxbridge_testkit::{Memory, MemoryOutboundQueue, MemoryPorts, MemoryStore, RecordingWebhooks};
use wxbridge_wechat::event::{CallbackEvent, EventKind, SubscribeDecision};

const T: i64 = 1_764_150_000_000;

/// One webhook as sent: URL, headers, body.
type Post = (String, Vec<(&'static str, String)>, serde_json::Value);

fn config(mode: &str) -> BridgeConfig {
    BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","partner":"air-2"}}],
        "partners":[
          {{"id":"platform","display_name":"Trip Service","webhook_url":"http://desk/p","signing_secret":"platform-secret-0123"}},
          {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789"}},
          {{"id":"air-2","display_name":"Sky Air","webhook_url":"http://air/a","signing_secret":"airline-secret-0000"}}],
        "dialog":{{"mode":"{mode}","default_partner":"platform"}},
        "session_from_secret":"session-from-secret-1"}}"#
    ))
    .unwrap()
}

/// The service, with handles on its memory adapters named as it names them.
struct TestInbound {
    service: Inbound<MemoryPorts>,
    config: BridgeConfig,
    store: MemoryStore,
    webhooks: RecordingWebhooks,
    outbound: MemoryOutboundQueue,
}

impl TestInbound {
    async fn process(&self, message: &InboundMessage, now_ms: i64) -> Outcome {
        self.service.process(message, now_ms).await
    }

    /// Every webhook: URL, headers, body.
    fn posts(&self) -> Vec<Post> {
        self.webhooks
            .posts()
            .into_iter()
            .map(|p| (p.url, p.headers, p.body))
            .collect()
    }
}

fn inbound(mode: &str) -> TestInbound {
    inbound_with(config(mode))
}

fn inbound_with(config: BridgeConfig) -> TestInbound {
    let memory = Memory::default();
    TestInbound {
        service: Inbound::new(memory.bridge(config.clone(), T), memory.outbound.clone()),
        config,
        store: memory.store,
        webhooks: memory.webhooks,
        outbound: memory.outbound,
    }
}

fn push(kind: EventKind, n: i64) -> InboundMessage {
    let event = CallbackEvent {
        to_user_name: "gh_1".into(),
        from_user_name: "o_alice".into(),
        create_time: (T / 1000) + n,
        business_id: None,
        kind,
    };
    InboundMessage::new("mp", event, T + n * 1000)
}

fn text(n: i64, content: &str) -> InboundMessage {
    push(
        EventKind::Text {
            msg_id: n.to_string(),
            content: content.into(),
        },
        n,
    )
}

fn entered(n: i64, session_from: &str) -> InboundMessage {
    push(
        EventKind::UserEnterTempSession {
            session_from: session_from.into(),
        },
        n,
    )
}

async fn history(inbound: &TestInbound) -> Vec<StoredMessage> {
    inbound
        .store
        .history("mp:o_alice:platform", 10)
        .await
        .unwrap()
}

fn header<'h>(headers: &'h [(&'static str, String)], name: &str) -> &'h str {
    &headers.iter().find(|(n, _)| *n == name).unwrap().1
}

#[tokio::test]
async fn a_message_is_stored_then_delivered_with_a_verifiable_signature() {
    let inbound = inbound("merged");
    let message = text(1, "Is breakfast included?");
    assert_eq!(
        inbound.process(&message, T + 2000).await,
        Outcome::Delivered
    );
    let posts = inbound.posts();
    assert_eq!(posts.len(), 1);
    let (url, headers, body) = &posts[0];
    assert_eq!(
        url, "http://desk/p",
        "no active partner: the default partner"
    );
    assert_eq!(body["type"], "message.received");
    assert_eq!(
        body["message"]["content"]["content"],
        "Is breakfast included?"
    );
    assert_eq!(body["conversation"]["id"], "mp:o_alice:platform");
    // The window the message opened, for the desk to show.
    let window = &body["window"];
    assert_eq!(
        (window["open"].as_bool(), window["sends_left"].as_u64()),
        (Some(true), Some(5))
    );
    assert_eq!(window["open_until_ms"], T + 1000 + 48 * 3_600_000);
    assert_eq!(window["last_user_message_at_ms"], T + 1000);
    let timestamp: i64 = header(headers, webhook::TIMESTAMP_HEADER).parse().unwrap();
    let secret = &inbound.config.partner("platform").unwrap().signing_secret;
    let raw = serde_json::to_vec(body).unwrap();
    assert!(webhook::verify(
        secret,
        timestamp,
        &raw,
        header(headers, webhook::SIGNATURE_HEADER),
        timestamp,
        300
    ));
    assert_eq!(
        header(headers, webhook::DELIVERY_HEADER),
        body["delivery_id"].as_str().unwrap()
    );

    let history = history(&inbound).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, MessageStatus::Delivered);
    let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(
        user.window,
        Some(ReplyWindow {
            remaining: 5,
            closes_at_ms: T + 1000 + 48 * 3_600_000,
            opened_by_entry: false,
            last_message_at_ms: Some(T + 1000),
        })
    );
}

#[tokio::test]
async fn a_redelivery_stores_and_sends_nothing_twice() {
    let inbound = inbound("merged");
    let message = text(1, "hello");
    assert_eq!(inbound.process(&message, T).await, Outcome::Delivered);
    assert_eq!(inbound.process(&message, T).await, Outcome::AlreadyDone);
    assert_eq!(inbound.posts().len(), 1);
    assert_eq!(history(&inbound).await.len(), 1);
}

#[tokio::test]
async fn a_partner_that_is_down_gets_the_same_delivery_again_later() {
    let inbound = inbound("merged");
    inbound.webhooks.not_now();
    inbound.webhooks.not_now();
    let message = text(1, "hello");
    assert!(matches!(
        inbound.process(&message, T).await,
        Outcome::Retry(_)
    ));
    assert!(matches!(
        inbound.process(&message, T).await,
        Outcome::Retry(_)
    ));
    let stored = history(&inbound).await;
    assert_eq!(stored[0].status, MessageStatus::Received);
    assert_eq!(inbound.process(&message, T).await, Outcome::Delivered);
    let ids: Vec<String> = inbound
        .posts()
        .iter()
        .map(|(_, _, b)| b["delivery_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id for every attempt"
    );
    assert_eq!(history(&inbound).await.len(), 1);
}

#[tokio::test]
async fn a_partner_refusal_is_stored_as_failed() {
    let inbound = inbound("merged");
    inbound.webhooks.refuse(400);
    assert_eq!(
        inbound.process(&text(1, "hello"), T).await,
        Outcome::Refused("partner answered 400".into())
    );
    let stored = history(&inbound).await;
    assert_eq!(stored[0].status, MessageStatus::Failed);
    assert_eq!(
        stored[0].status_reason.as_deref(),
        Some("partner answered 400")
    );
    // A redelivery is refused again (to be parked again), without a second webhook.
    assert_eq!(
        inbound.process(&text(1, "hello"), T).await,
        Outcome::Refused("partner answered 400".into())
    );
    assert_eq!(inbound.posts().len(), 1);
}

#[tokio::test]
async fn a_vouched_session_from_binds_the_user_and_routes_to_its_partner() {
    let inbound = inbound("merged");
    let secret = inbound.config.session_from_secret.clone().unwrap();
    let from = sign(
        &format!(
            "partner=hotel-9&uid=app-42&openid=o_alice&order=7&ts={}",
            T / 1000
        ),
        &secret,
    );
    assert_eq!(
        inbound.process(&entered(1, &from), T).await,
        Outcome::Delivered
    );
    assert_eq!(
        inbound.process(&text(2, "late check-out?"), T).await,
        Outcome::Delivered
    );
    let posts = inbound.posts();
    assert_eq!(posts[0].2["type"], "conversation.started");
    assert_eq!(posts[0].0, "http://hotel/h");
    assert_eq!(posts[1].0, "http://hotel/h");
    assert_eq!(posts[1].2["user"]["app_user_id"], "app-42");
    assert_eq!(
        posts[1].2["user"]["session_context"][3],
        json!(["order", "7"])
    );
    let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(user.app_user_id.as_deref(), Some("app-42"));
}

#[tokio::test]
async fn a_signed_session_from_for_another_user_routes_but_binds_nothing() {
    let inbound = inbound("merged");
    let secret = inbound.config.session_from_secret.clone().unwrap();
    for (n, extra) in [(1, ""), (2, "&openid=o_mallory")] {
        let from = sign(
            &format!("partner=hotel-9&uid=app-42{extra}&ts={}", T / 1000),
            &secret,
        );
        inbound.process(&entered(n, &from), T).await;
    }
    let posts = inbound.posts();
    assert!(posts.iter().all(|(url, _, _)| url == "http://hotel/h"));
    let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(user.app_user_id, None);
}

#[tokio::test]
async fn an_unsigned_session_from_is_context_only_and_only_for_the_partner_it_names() {
    let inbound = inbound("merged");
    assert_eq!(
        inbound
            .process(&entered(1, "partner=hotel-9&uid=app-42&order=7"), T)
            .await,
        Outcome::Delivered
    );
    let posts = inbound.posts();
    assert_eq!(
        posts[0].0, "http://desk/p",
        "not routed by an unsigned value"
    );
    assert_eq!(posts[0].2["user"]["app_user_id"], serde_json::Value::Null);
    // The platform gets the entry, but the context names the hotel.
    assert_eq!(posts[0].2["user"]["session_context"], json!([]));
    assert_eq!(
        posts[0].2["message"]["content"],
        json!({"type": "user_enter_tempsession"})
    );
    assert!(!posts[0].2.to_string().contains("app-42"));
    // The hotel has it once the user talks to it.
    inbound.process(&text(2, "#Hotel Lotus"), T).await;
    let posts = inbound.posts();
    assert_eq!(posts[1].0, "http://hotel/h");
    assert_eq!(
        posts[1].2["user"]["session_context"],
        json!([["partner", "hotel-9"], ["uid", "app-42"], ["order", "7"]])
    );
}

#[tokio::test]
async fn an_entrys_context_does_not_follow_the_user_to_another_partner() {
    // The user enters from the airline's page with an order, switches to the hotel and
    // writes: the hotel's webhook carries nothing of the airline's entry.
    let inbound = inbound("merged");
    let secret = inbound.config.session_from_secret.clone().unwrap();
    let from = sign(
        &format!("partner=air-2&uid=u-77&order=X-ORDER-991&ts={}", T / 1000),
        &secret,
    );
    inbound.process(&entered(1, &from), T).await;
    inbound.process(&text(2, "#Hotel Lotus"), T).await;
    inbound.process(&text(3, "a room for tonight?"), T).await;
    let posts = inbound.posts();
    assert_eq!(posts[0].0, "http://air/a");
    assert!(posts[0].2.to_string().contains("X-ORDER-991"));
    for (url, _, body) in &posts[1..] {
        assert_eq!(url, "http://hotel/h");
        assert_eq!(body["user"]["session_context"], json!([]));
        let body = body.to_string();
        assert!(
            !body.contains("X-ORDER-991") && !body.contains("u-77"),
            "{body}"
        );
    }
    // Back at the airline, its own context is there again.
    inbound.process(&text(4, "#Sky Air"), T).await;
    let posts = inbound.posts();
    assert_eq!(
        posts[3].2["user"]["session_context"][2],
        json!(["order", "X-ORDER-991"])
    );
}

#[tokio::test]
async fn a_context_that_names_no_partner_goes_to_the_partner_the_entry_reached() {
    let inbound = inbound("merged");
    inbound.process(&entered(1, "order=42"), T).await;
    inbound.process(&text(2, "#Hotel Lotus"), T).await;
    let posts = inbound.posts();
    assert_eq!(posts[0].0, "http://desk/p");
    assert_eq!(
        posts[0].2["user"]["session_context"],
        json!([["order", "42"]])
    );
    assert_eq!(posts[0].2["message"]["content"]["session_from"], "order=42");
    assert_eq!(posts[1].0, "http://hotel/h");
    assert_eq!(posts[1].2["user"]["session_context"], json!([]));
}

#[tokio::test]
async fn a_context_stored_before_it_named_its_partner_reaches_none() {
    let inbound = inbound("merged");
    let mut user = ChannelUser::new("mp", "o_alice");
    user.session_context = vec![("order".into(), "OLD-1".into())];
    let stored: ChannelUser = serde_json::from_value(json!({
        "channel": "mp", "openid": "o_alice",
        "session_context": [["order", "OLD-1"]]
    }))
    .unwrap();
    assert_eq!(stored, user, "an old record reads");
    inbound.store.put_user(&user).await.unwrap();
    inbound.process(&text(1, "hello"), T).await;
    assert_eq!(inbound.posts()[0].2["user"]["session_context"], json!([]));
}

#[tokio::test]
async fn the_user_switches_partner_explicitly() {
    let inbound = inbound("merged");
    let secret = inbound.config.session_from_secret.clone().unwrap();
    let from = sign(&format!("partner=hotel-9&ts={}", T / 1000), &secret);
    inbound.process(&entered(1, &from), T).await;
    inbound.process(&text(2, "#Sky Air"), T).await;
    inbound.process(&text(3, "my flight?"), T).await;
    inbound.process(&text(4, "#2"), T).await;
    inbound.process(&text(5, "and the room?"), T).await;
    let urls: Vec<String> = inbound.posts().into_iter().map(|(url, _, _)| url).collect();
    assert_eq!(
        urls,
        [
            "http://hotel/h",
            "http://air/a",
            "http://air/a",
            "http://hotel/h",
            "http://hotel/h"
        ]
    );
}

#[tokio::test]
async fn separate_mode_routes_by_channel() {
    let inbound = inbound("separate");
    inbound.process(&text(1, "#Hotel Lotus"), T).await;
    let posts = inbound.posts();
    assert_eq!(posts[0].0, "http://air/a");
    assert_eq!(posts[0].2["conversation"]["id"], "mp:o_alice");
}

#[tokio::test]
async fn subscribe_answers_change_the_grants() {
    let inbound = inbound("merged");
    let decision = |template: &str, status: &str| SubscribeDecision {
        template_id: template.into(),
        status: status.into(),
        popup_scene: Some(0),
    };
    let popup = |n, entries| push(EventKind::SubscribePopup { entries }, n);
    inbound
        .process(
            &popup(1, vec![decision("t1", "accept"), decision("t2", "accept")]),
            T,
        )
        .await;
    inbound
        .process(
            &popup(2, vec![decision("t1", "accept"), decision("t2", "reject")]),
            T,
        )
        .await;
    let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(
        user.grants.into_iter().collect::<Vec<_>>(),
        [("t1".to_owned(), 2)]
    );
    let change = push(
        EventKind::SubscribeChange {
            entries: vec![decision("t1", "reject")],
        },
        3,
    );
    inbound.process(&change, T).await;
    assert!(inbound
        .store
        .user("mp", "o_alice")
        .await
        .unwrap()
        .unwrap()
        .grants
        .is_empty());
    assert_eq!(inbound.posts().len(), 3, "grants changes are delivered too");
}

/// A held reply of the platform to o_alice.
async fn held_reply(inbound: &TestInbound, n: i64) -> OutboundRef {
    let conversation = Conversation::new(
        "mp:o_alice:platform",
        "mp",
        "o_alice",
        "platform",
        T - 100_000,
    );
    let message = StoredMessage {
        status: MessageStatus::Held,
        ..StoredMessage::reply(
            &conversation,
            format!("out_{n}"),
            T - 100_000 + n,
            json!({"type": "text", "text": format!("reply {n}")}),
        )
    };
    inbound
        .store
        .put_outbound(&message, &conversation, &message.id)
        .await
        .unwrap();
    OutboundRef::to(&message)
}

/// o_alice with a used-up window and `count` held replies; returns them.
async fn holding(inbound: &TestInbound, count: i64) -> Vec<OutboundRef> {
    let mut held = Vec::new();
    for n in 1..=count {
        held.push(held_reply(inbound, n).await);
    }
    let mut user = ChannelUser::new("mp", "o_alice");
    user.window = Some(ReplyWindow {
        remaining: 0,
        closes_at_ms: T + 3_600_000,
        ..Default::default()
    });
    user.held = held.clone();
    inbound.store.put_user(&user).await.unwrap();
    held
}

fn inbound_id(message: &InboundMessage) -> String {
    inbound_message_id(&message.dedupe_key)
}

#[tokio::test]
async fn a_user_message_releases_held_replies_in_order_in_the_same_write() {
    let inbound = inbound("merged");
    let held = holding(&inbound, 3).await;
    // A subscribe answer is no user message: nothing is released.
    let popup = push(EventKind::SubscribePopup { entries: vec![] }, 1);
    assert_eq!(inbound.process(&popup, T).await, Outcome::Delivered);
    assert!(inbound.outbound.sent().is_empty());
    let before = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(before.held, held);

    let message = text(2, "hello again");
    assert_eq!(inbound.process(&message, T).await, Outcome::Delivered);
    let id = inbound_id(&message);
    let expected: Vec<(OutboundRef, String)> = held
        .iter()
        .map(|r| (r.clone(), format!("{}:release:{id}", r.message_id)))
        .collect();
    assert_eq!(inbound.outbound.sent(), expected, "in order, once each");
    let after = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(
        after.held, held,
        "listed until dispatch settles them: later replies of the conversation go behind them"
    );
    assert_eq!(after.version, before.version + 1, "one write");
    assert_eq!(after.window.unwrap().remaining, 5);
    let stored = history(&inbound).await;
    let stored = stored.iter().find(|m| m.id == id).unwrap();
    assert_eq!(stored.released, held, "kept on the user's message");
}

#[tokio::test]
async fn a_redelivery_enqueues_the_stored_release_list_again() {
    let inbound = inbound("merged");
    let held = holding(&inbound, 2).await;
    let message = text(1, "hello again");
    inbound.outbound.fail(true);
    assert!(matches!(
        inbound.process(&message, T).await,
        Outcome::RetrySoon(reason) if reason.contains("not released")
    ));
    assert!(inbound.posts().is_empty(), "released before the webhook");
    // The user's write happened: the release lives on the message (the list keeps the
    // replies until dispatch settles them).
    let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert_eq!(user.held, held);
    inbound.outbound.fail(false);
    assert_eq!(inbound.process(&message, T).await, Outcome::Delivered);
    assert_eq!(inbound.process(&message, T).await, Outcome::AlreadyDone);
    let sent = inbound.outbound.sent();
    let ids: Vec<&str> = sent.iter().map(|(r, _)| r.message_id.as_str()).collect();
    assert_eq!(ids, ["out_1", "out_2", "out_1", "out_2"]);
    assert_eq!(sent[0].1, sent[2].1, "the same deduplication id every time");
    assert_eq!(sent[0].0, held[0]);
    assert_eq!(inbound.posts().len(), 1);
}

#[tokio::test]
async fn held_texts_are_packed_only_when_the_fresh_window_is_too_small() {
    let inbound = inbound("merged");
    let held = holding(&inbound, 5).await;
    inbound.process(&text(1, "hi"), T).await;
    assert_eq!(inbound.outbound.sent().len(), 5, "five sends, five replies");

    let inbound = self::inbound("merged");
    let held7 = holding(&inbound, 7).await;
    inbound.process(&text(1, "hi"), T).await;
    let sent = inbound.outbound.sent();
    assert_eq!(sent.len(), 1, "seven short texts in one send");
    let lead = &sent[0].0;
    assert_eq!(lead.message_id, "out_1");
    let packed: Vec<&str> = lead.packed.iter().map(|p| p.message_id.as_str()).collect();
    assert_eq!(
        packed,
        ["out_2", "out_3", "out_4", "out_5", "out_6", "out_7"]
    );
    assert_eq!(lead.parts(), held7);
    let _ = held;

    // Entering the session opens only two sends: five held texts pack too.
    let inbound = self::inbound("merged");
    holding(&inbound, 5).await;
    inbound.process(&entered(1, ""), T).await;
    assert_eq!(inbound.outbound.sent().len(), 1);
}

/// Alice wrote to the platform, and the conversation was then closed for `reason`.
async fn closed_after_a_message(reason: CloseReason) -> TestInbound {
    let inbound = inbound("merged");
    assert_eq!(
        inbound.process(&text(1, "hello"), T).await,
        Outcome::Delivered
    );
    let mut user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    let closed = Closed {
        at_ms: T + 1_500,
        reason,
    };
    user.closed.insert("mp:o_alice:platform".into(), closed);
    inbound.store.put_user(&user).await.unwrap();
    inbound
}

#[tokio::test]
async fn the_users_message_reopens_a_closed_conversation_once() {
    let inbound = closed_after_a_message(CloseReason::Agent).await;

    assert_eq!(
        inbound.process(&text(2, "one more thing"), T).await,
        Outcome::Delivered
    );
    assert_eq!(
        inbound.process(&text(3, "and another"), T).await,
        Outcome::Delivered
    );
    let types: Vec<_> = inbound
        .posts()
        .iter()
        .map(|(_, _, b)| b["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            "message.received",
            "conversation.reopened",
            "message.received"
        ]
    );
    let reopened = &inbound.posts()[1].2;
    assert_eq!(reopened["reopened"]["reason"], "agent");
    let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
    assert!(
        user.closed.is_empty(),
        "open again, in the same write as the message"
    );
}

/// The hotel greets users who enter from its page.
fn welcoming() -> BridgeConfig {
    let mut config = config("merged");
    let hotel = config
        .partners
        .iter_mut()
        .find(|p| p.id == "hotel-9")
        .unwrap();
    hotel.welcome = serde_json::from_value(json!([
        {"type": "text", "text": "Welcome to Hotel Lotus!"},
        {"type": "link", "title": "Your booking", "description": "Order 7",
         "url": "https://app.example/orders/7", "thumb_url": "https://app.example/t.png"}
    ]))
    .unwrap();
    config
}

#[tokio::test]
async fn entering_from_a_partners_page_sends_its_welcome_once_per_entry() {
    let inbound = inbound_with(welcoming());
    let secret = inbound.config.session_from_secret.clone().unwrap();
    let from = sign(&format!("partner=hotel-9&ts={}", T / 1000), &secret);
    let entry = entered(1, &from);
    assert_eq!(inbound.process(&entry, T).await, Outcome::Delivered);
    let greeted = inbound.outbound.sent();
    assert_eq!(greeted.len(), 2, "text and link: the entry's 2 sends");
    let stored = inbound
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    let texts: Vec<_> = stored
        .iter()
        .filter(|m| m.direction == Direction::Out)
        .collect();
    assert_eq!(texts.len(), 2);
    assert_eq!(
        texts[1].content["text"], "Welcome to Hotel Lotus!",
        "oldest last"
    );
    assert_eq!(texts[1].status, MessageStatus::Queued);

    // WeChat retries the entry: nothing more is stored or sent.
    assert_eq!(inbound.process(&entry, T).await, Outcome::AlreadyDone);
    assert_eq!(
        inbound
            .store
            .history("mp:o_alice:hotel-9", 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(inbound.outbound.sent().len(), 2);

    // Entering without the hotel's session-from greets nobody.
    let plain = inbound_with(welcoming());
    assert_eq!(plain.process(&entered(1, ""), T).await, Outcome::Delivered);
    assert!(plain.outbound.sent().is_empty());
}

#[tokio::test]
async fn the_welcome_leaves_the_entrys_sends_to_released_replies() {
    let inbound = inbound_with(welcoming());
    // Two replies held for Alice: the entry's 2 sends are theirs.
    let mut user = ChannelUser::new("mp", "o_alice");
    for n in 1..=2 {
        let conversation = Conversation::new("mp:o_alice:hotel-9", "mp", "o_alice", "hotel-9", T);
        let reply = StoredMessage {
            status: MessageStatus::Held,
            ..StoredMessage::reply(
                &conversation,
                format!("out_{n}"),
                T - 100 + n,
                json!({"type": "text", "text": "held"}),
            )
        };
        inbound
            .store
            .put_outbound(&reply, &conversation, &reply.id)
            .await
            .unwrap();
        user.held.push(OutboundRef::to(&reply));
    }
    inbound.store.put_user(&user).await.unwrap();
    let secret = inbound.config.session_from_secret.clone().unwrap();
    let from = sign(&format!("partner=hotel-9&ts={}", T / 1000), &secret);
    assert_eq!(
        inbound.process(&entered(1, &from), T).await,
        Outcome::Delivered
    );
    let enqueued: Vec<String> = inbound
        .outbound
        .sent()
        .into_iter()
        .map(|(t, _)| t.message_id)
        .collect();
    assert_eq!(enqueued, ["out_1", "out_2"], "released, and no welcome");
}

#[tokio::test]
async fn a_redelivered_entry_not_yet_delivered_enqueues_its_welcome_again_under_the_same_ids() {
    let inbound = inbound_with(welcoming());
    let secret = inbound.config.session_from_secret.clone().unwrap();
    let from = sign(&format!("partner=hotel-9&ts={}", T / 1000), &secret);
    let entry = entered(1, &from);
    inbound.webhooks.not_now();
    assert!(matches!(
        inbound.process(&entry, T).await,
        Outcome::Retry(_)
    ));
    assert_eq!(inbound.process(&entry, T).await, Outcome::Delivered);
    let ids: Vec<String> = inbound
        .outbound
        .sent()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids.len(), 4, "enqueued on each attempt: {ids:?}");
    assert_eq!(
        ids[..2],
        ids[2..],
        "under the same deduplication ids: SQS keeps one"
    );
    let stored = inbound
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "the entry and two welcome messages, once");
}

#[tokio::test]
async fn a_reopening_message_redelivered_still_reaches_the_partner_as_reopened() {
    let inbound = closed_after_a_message(CloseReason::Idle).await;
    inbound.webhooks.not_now();
    let reopening = text(2, "back again");
    assert!(matches!(
        inbound.process(&reopening, T).await,
        Outcome::Retry(_)
    ));
    assert_eq!(inbound.process(&reopening, T).await, Outcome::Delivered);
    let types: Vec<_> = inbound
        .posts()
        .iter()
        .map(|(_, _, b)| b["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            "message.received",
            "conversation.reopened",
            "conversation.reopened"
        ],
        "the redelivery says the same"
    );
}
