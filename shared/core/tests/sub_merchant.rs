//! Sub-merchant mode on memory adapters and a scripted WeChat: registration, pushes routed
//! by `BusinessId`, replies into the partner's own session, and a window and held replies
//! per session.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use serde_json::json;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::{
    ChannelUser, Conversation, Direction, InboundMessage, MessageStatus, OutboundRef, PushPath,
    PushRecord, PushTarget, ReplyWindow, Session, StoredMessage,
};
use wxbridge_core::ports::store::{MessageStore, PushStore, Recorded, SubMerchantStore, UserStore};
use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome, Failure};
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::push::{Push, PushOutcome};
use wxbridge_core::services::sub_merchants::registration::{register_all, Registration};
use wxbridge_core::services::Bridge;
use wxbridge_testkit::scripted_wechat::{BUSINESS_GET, BUSINESS_REGISTER, BUSINESS_UPDATE, UPLOAD};
use wxbridge_testkit::{Memory, MemoryPorts};
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const T: i64 = 1_764_150_000_000;
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const OTHER_PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-other";

fn config(hotel_nickname: &str) -> BridgeConfig {
    BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"s"}}],
        "partners":[
          {{"id":"platform","display_name":"Trip Service","webhook_url":"http://desk/p","signing_secret":"platform-secret-0123"}},
          {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789",
            "sub_merchant":{{"account_name":"hotel_lotus_9","nickname":"{hotel_nickname}","avatar_url":"https://cdn/lotus.png"}}}},
          {{"id":"air-2","display_name":"Sky Air","webhook_url":"http://air/a","signing_secret":"airline-secret-0000",
            "sub_merchant":{{"account_name":"sky_air_2","nickname":"SkyAir","avatar_url":"https://cdn/sky.png"}}}}],
        "dialog":{{"mode":"sub_merchant","default_partner":"platform"}}}}"#
    ))
    .unwrap()
}

struct Setup {
    memory: Memory,
    bridge: Bridge<MemoryPorts>,
}

fn setup() -> Setup {
    let memory = Memory::default();
    memory.images.serve("https://cdn/lotus.png", PNG);
    memory.images.serve("https://cdn/sky.png", PNG);
    let bridge = memory.bridge(config("HotelLotus"), T);
    Setup { memory, bridge }
}

impl Setup {
    /// Registers every sub-merchant; (partner, what was done, business id).
    async fn register(&self, bridge: &Bridge<MemoryPorts>) -> Vec<(String, Registration, u64)> {
        let channel = bridge.config.channel("mp").unwrap();
        register_all(bridge, &self.memory.images, channel)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let (done, id) = r.outcome.unwrap();
                (r.partner, done, id)
            })
            .collect()
    }

    fn calls_of(&self, api: &str) -> usize {
        self.memory
            .wechat
            .calls()
            .iter()
            .filter(|(a, _)| *a == api)
            .count()
    }

    fn inbound(&self) -> Inbound<MemoryPorts> {
        Inbound::new(
            self.memory.bridge(config("HotelLotus"), T),
            self.memory.outbound.clone(),
        )
    }

    fn dispatch(&self) -> Dispatch<MemoryPorts> {
        Dispatch::new(
            self.memory.bridge(config("HotelLotus"), T),
            self.memory.images(),
            self.memory.outbound.clone(),
        )
    }

    async fn user(&self) -> ChannelUser {
        self.memory.store.user("mp", "o_a").await.unwrap().unwrap()
    }

    /// A hotel reply stored as queued in its conversation.
    async fn hotel_reply(&self, id: &str, text: &str) -> OutboundRef {
        let conversation = Conversation::new("mp:o_a:hotel-9", "mp", "o_a", "hotel-9", T);
        let message =
            StoredMessage::reply(&conversation, id, T, json!({"type": "text", "text": text}));
        let stored = self
            .memory
            .store
            .put_outbound(&message, &conversation, id)
            .await;
        assert_eq!(stored.unwrap(), Recorded::New);
        OutboundRef::to(&message)
    }
}

fn text_in(business_id: Option<&str>, n: i64, content: &str) -> InboundMessage {
    let event = CallbackEvent {
        to_user_name: "gh_1".into(),
        from_user_name: "o_a".into(),
        create_time: T / 1000 + n,
        business_id: business_id.map(str::to_owned),
        kind: EventKind::Text {
            msg_id: format!("{n}"),
            content: content.into(),
        },
    };
    InboundMessage::new("mp", event, T + n)
}

#[tokio::test]
async fn registration_registers_once_updates_what_changed_and_keeps_the_ids() {
    let s = setup();
    let first = s.register(&s.bridge).await;
    assert_eq!(
        first,
        [
            ("hotel-9".to_owned(), Registration::Registered, 1001),
            ("air-2".to_owned(), Registration::Registered, 1002),
        ]
    );
    let kept = s.memory.store.sub_merchants("mp").await.unwrap();
    assert_eq!(kept.len(), 2);
    assert!(kept
        .iter()
        .any(|k| k.partner == "hotel-9" && k.business_id == 1001));

    // Run again: nothing to tell WeChat.
    let calls_before = s.memory.wechat.calls().len();
    let again = s.register(&s.bridge).await;
    assert!(again
        .iter()
        .all(|(_, done, _)| *done == Registration::Unchanged));
    assert_eq!(s.memory.wechat.calls().len(), calls_before);

    // A new nickname, and a new avatar: updated under the same ids, never registered anew.
    let renamed = s.memory.bridge(config("LotusHotel"), T);
    s.memory.images.serve("https://cdn/sky.png", OTHER_PNG);
    let changed = s.register(&renamed).await;
    assert_eq!(
        changed,
        [
            ("hotel-9".to_owned(), Registration::Updated, 1001),
            ("air-2".to_owned(), Registration::Updated, 1002),
        ]
    );
    assert_eq!(s.calls_of(BUSINESS_REGISTER), 2);
    assert_eq!(s.calls_of(BUSINESS_UPDATE), 2);
    let hotel = s.memory.store.sub_merchants("mp").await.unwrap();
    let hotel = hotel.iter().find(|k| k.partner == "hotel-9").unwrap();
    assert_eq!(hotel.nickname, "LotusHotel");
    // Each (re)registration uploaded the avatar first.
    assert_eq!(s.calls_of(UPLOAD), 4);
}

#[tokio::test]
async fn a_table_that_lost_its_ids_finds_them_at_wechat_instead_of_registering_twice() {
    let s = setup();
    s.register(&s.bridge).await;
    let fresh_table = Memory {
        wechat: s.memory.wechat.clone(),
        images: s.memory.images.clone(),
        ..Memory::default()
    };
    let bridge = fresh_table.bridge(config("HotelLotus"), T);
    let channel = bridge.config.channel("mp").unwrap();
    let report = register_all(&bridge, &fresh_table.images, channel)
        .await
        .unwrap();
    for registration in &report {
        let (done, _) = registration.outcome.as_ref().unwrap();
        assert_eq!(*done, Registration::Updated, "{}", registration.partner);
    }
    assert_eq!(s.calls_of(BUSINESS_REGISTER), 2, "registered once each");
    assert_eq!(s.calls_of(BUSINESS_GET), 4);
    assert_eq!(
        fresh_table.store.sub_merchants("mp").await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_refused_registration_names_the_account_and_errcode_and_the_others_go_on() {
    let s = setup();
    s.memory.wechat.answer(BUSINESS_REGISTER, 45078);
    let channel = s.bridge.config.channel("mp").unwrap();
    let report = register_all(&s.bridge, &s.memory.images, channel)
        .await
        .unwrap();
    let error = report[0].outcome.as_ref().unwrap_err().to_string();
    assert!(
        error.contains("business/register of hotel_lotus_9"),
        "{error}"
    );
    assert!(error.contains("45078"), "{error}");
    assert!(report[1].outcome.is_ok());
    let kept = s.memory.store.sub_merchants("mp").await.unwrap();
    assert_eq!(
        kept.iter().map(|k| k.partner.as_str()).collect::<Vec<_>>(),
        ["air-2"]
    );
}

#[tokio::test]
async fn a_push_from_a_sub_merchant_session_goes_to_its_partner_and_opens_only_that_window() {
    let s = setup();
    s.register(&s.bridge).await;
    let inbound = s.inbound();
    let outcome = inbound
        .process(&text_in(Some("1001"), 1, "is breakfast included?"), T)
        .await;
    assert_eq!(outcome, Outcome::Delivered);
    let posts = s.memory.webhooks.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].url, "http://hotel/h");
    assert_eq!(posts[0].body["conversation"]["id"], "mp:o_a:hotel-9");
    assert_eq!(posts[0].body["message"]["content"]["business_id"], "1001");
    let user = s.user().await;
    assert_eq!(
        user.window_in(Session::SubMerchant("hotel-9"))
            .map(|w| w.remaining),
        Some(5)
    );
    assert_eq!(user.window_in(Session::Main), None);
    assert_eq!(user.window_in(Session::SubMerchant("air-2")), None);

    // The main session is the platform's.
    inbound.process(&text_in(None, 2, "hello"), T).await;
    let posts = s.memory.webhooks.posts();
    assert_eq!(posts[1].url, "http://desk/p");
    assert_eq!(posts[1].body["conversation"]["id"], "mp:o_a:platform");
}

#[tokio::test]
async fn an_entry_in_one_partners_chat_gives_its_context_to_that_partner_only() {
    // Entering the hotel's chat with an order, then writing in the airline's chat: the
    // airline's webhook carries nothing of the hotel's entry.
    let s = setup();
    s.register(&s.bridge).await;
    let inbound = s.inbound();
    let entry = CallbackEvent {
        kind: EventKind::UserEnterTempSession {
            session_from: "order=LOTUS-ORDER-5".into(),
        },
        ..text_in(Some("1001"), 1, "").event
    };
    inbound
        .process(&InboundMessage::new("mp", entry, T + 1), T)
        .await;
    inbound
        .process(&text_in(Some("1002"), 2, "is my flight on time?"), T)
        .await;
    let posts = s.memory.webhooks.posts();
    assert_eq!(posts[0].url, "http://hotel/h");
    assert_eq!(
        posts[0].body["user"]["session_context"],
        json!([["order", "LOTUS-ORDER-5"]])
    );
    assert_eq!(posts[1].url, "http://air/a");
    assert_eq!(posts[1].body["user"]["session_context"], json!([]));
    assert!(!posts[1].body.to_string().contains("LOTUS-ORDER-5"));
}

#[tokio::test]
async fn a_push_from_a_session_no_partner_is_registered_under_goes_to_the_default_with_its_id() {
    let s = setup();
    s.register(&s.bridge).await;
    let outcome = s
        .inbound()
        .process(&text_in(Some("4242"), 1, "hi"), T)
        .await;
    assert_eq!(outcome, Outcome::Delivered);
    let posts = s.memory.webhooks.posts();
    assert_eq!(posts[0].url, "http://desk/p");
    assert_eq!(posts[0].body["message"]["content"]["business_id"], "4242");
    let stored = s.memory.store.history("mp:o_a:platform", 5).await.unwrap();
    assert_eq!(stored.len(), 1, "stored, never dropped");
    // No partner can answer in that session: no window is kept for it.
    let user = s.user().await;
    assert_eq!(user.window_in(Session::Main), None);
    assert!(user.sub_merchant_sessions.is_empty());
}

#[tokio::test]
async fn a_reply_goes_into_its_partners_session_under_the_sub_merchants_own_name() {
    let s = setup();
    s.register(&s.bridge).await;
    s.inbound()
        .process(&text_in(Some("1001"), 1, "hi"), T)
        .await;
    let reply = s.hotel_reply("out_1", "Yes, from 7 to 10").await;
    assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Sent);
    let sent = s.memory.wechat.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["businessid"], 1001);
    assert_eq!(sent[0]["touser"], "o_a");
    assert_eq!(
        sent[0]["text"]["content"], "Yes, from 7 to 10",
        "no sender line: the sub-merchant's nickname shows"
    );
    let user = s.user().await;
    assert_eq!(
        user.window_in(Session::SubMerchant("hotel-9"))
            .map(|w| w.remaining),
        Some(4)
    );
}

#[tokio::test]
async fn a_held_reply_waits_for_its_own_sessions_next_message() {
    let s = setup();
    s.register(&s.bridge).await;
    s.inbound()
        .process(&text_in(Some("1001"), 1, "hi"), T)
        .await;
    // The hotel's session has no sends left; the main one is wide open.
    let mut user = s.user().await;
    *user.window_in_mut(Session::SubMerchant("hotel-9")) = Some(ReplyWindow {
        remaining: 0,
        closes_at_ms: T + 3_600_000,
        ..Default::default()
    });
    s.memory.store.put_user(&user).await.unwrap();
    let reply = s.hotel_reply("out_1", "One moment").await;
    assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Held);
    assert_eq!(
        s.user()
            .await
            .held_in(Session::SubMerchant("hotel-9"))
            .len(),
        1
    );

    // A message in the main session does not release it.
    s.inbound()
        .process(&text_in(None, 2, "hello platform"), T)
        .await;
    let user = s.user().await;
    assert_eq!(user.held_in(Session::SubMerchant("hotel-9")).len(), 1);
    assert!(s.memory.outbound.sent().is_empty());

    // One in the hotel's session does; sent, it leaves the list.
    s.inbound()
        .process(&text_in(Some("1001"), 3, "still there?"), T)
        .await;
    let released: Vec<OutboundRef> = s
        .memory
        .outbound
        .sent()
        .into_iter()
        .map(|(target, _)| target)
        .collect();
    assert_eq!(released, std::slice::from_ref(&reply));
    assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Sent);
    assert!(s
        .user()
        .await
        .held_in(Session::SubMerchant("hotel-9"))
        .is_empty());
}

#[tokio::test]
async fn a_partner_with_no_registered_sub_merchant_cannot_be_sent_as() {
    let s = setup();
    let missing = s.bridge.business_id_for("mp", "hotel-9").await.unwrap();
    let missing = missing.unwrap_err();
    assert_eq!(missing.partner, "hotel-9");
    assert!(missing
        .to_string()
        .contains("wxbridge-admin sub-merchants register"));
    assert_eq!(
        s.bridge.business_id_for("mp", "platform").await.unwrap(),
        Ok(None)
    );

    let reply = s.hotel_reply("out_1", "hello").await;
    let DispatchOutcome::Failed(Failure::SubMerchantNotRegistered(reason)) =
        s.dispatch().process(&reply).await
    else {
        panic!("a reply with no session to go into fails, naming why")
    };
    assert!(reason.contains("hotel-9"), "{reason}");
    assert!(s.memory.wechat.sent().is_empty());
    let stored = s.memory.store.message_at(&reply).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Failed);
}

/// A hotel push to the user, stored as the API stores it.
async fn hotel_push(s: &Setup) -> OutboundRef {
    let conversation = Conversation::new("mp:o_a:hotel-9", "mp", "o_a", "hotel-9", T);
    let message = StoredMessage {
        direction: Direction::Push,
        push: Some(PushRecord {
            push_id: Some("p-1".into()),
            to: PushTarget {
                app_user_id: None,
                channel: Some("mp".into()),
                openid: Some("o_a".into()),
            },
            subscribe: None,
            expires_at_ms: None,
            fallback: false,
            attempts: Vec::new(),
            path: None,
        }),
        ..StoredMessage::reply(
            &conversation,
            "push_1",
            T,
            json!({"type": "text", "text": "Room ready"}),
        )
    };
    let stored = s
        .memory
        .store
        .put_push(&message, &conversation, "p-1")
        .await;
    assert_eq!(stored.unwrap(), Recorded::New);
    OutboundRef::to(&message)
}

#[tokio::test]
async fn a_push_goes_through_its_partners_session_window_only() {
    let s = setup();
    s.register(&s.bridge).await;
    let mut user = ChannelUser::new("mp", "o_a");
    let open = |remaining| {
        Some(ReplyWindow {
            remaining,
            closes_at_ms: T + 3_600_000,
            ..Default::default()
        })
    };
    // Only the main session is open: the hotel's push cannot use it.
    user.window = open(5);
    s.memory.store.put_user(&user).await.unwrap();
    let push = Push::new(
        s.memory.bridge(config("HotelLotus"), T),
        s.memory.pushes.clone(),
    );
    let target = hotel_push(&s).await;
    assert!(matches!(
        push.process(&target).await,
        PushOutcome::Undeliverable(_)
    ));
    assert!(s.memory.wechat.sent().is_empty());

    // With the hotel's session open, it goes there.
    let mut user = s.user().await;
    *user.window_in_mut(Session::SubMerchant("hotel-9")) = open(3);
    s.memory.store.put_user(&user).await.unwrap();
    let mut record = s.memory.store.message_at(&target).await.unwrap().unwrap();
    record.status = MessageStatus::Queued;
    let again = StoredMessage {
        id: "push_2".into(),
        ..record
    };
    let conversation = Conversation::new("mp:o_a:hotel-9", "mp", "o_a", "hotel-9", T);
    s.memory
        .store
        .put_push(&again, &conversation, "p-2")
        .await
        .unwrap();
    let outcome = push.process(&OutboundRef::to(&again)).await;
    assert_eq!(outcome, PushOutcome::Sent(PushPath::CustomerService));
    let sent = s.memory.wechat.sent();
    assert_eq!(sent[0]["businessid"], 1001);
    let user = s.user().await;
    assert_eq!(
        user.window_in(Session::SubMerchant("hotel-9"))
            .map(|w| w.remaining),
        Some(2)
    );
    assert_eq!(
        user.window.map(|w| w.remaining),
        Some(5),
        "the main session's untouched"
    );
}

#[tokio::test]
async fn an_instance_learns_of_a_sub_merchant_registered_after_it_read_within_seconds() {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    let s = setup();
    let now = Arc::new(AtomicI64::new(T));
    let clock = Arc::clone(&now);
    let instance = s
        .memory
        .bridge(config("HotelLotus"), T)
        .with_clock(move || clock.load(Ordering::SeqCst));
    let registered = |answer: Result<Result<Option<u64>, _>, _>| answer.unwrap().ok();
    assert_eq!(
        registered(instance.business_id_for("mp", "hotel-9").await),
        None
    );
    s.register(&s.bridge).await;
    now.store(T + 5_000, Ordering::SeqCst);
    assert_eq!(
        registered(instance.business_id_for("mp", "hotel-9").await),
        None,
        "a miss within 10 s of the last read does not read again"
    );
    now.store(T + 10_000, Ordering::SeqCst);
    assert_eq!(
        registered(instance.business_id_for("mp", "hotel-9").await),
        Some(Some(1001))
    );
    assert_eq!(
        instance.partner_of_business("mp", "1002").await.unwrap(),
        Some("air-2".to_owned())
    );
    assert_eq!(
        instance
            .partner_of_business("mp", "not-a-number")
            .await
            .unwrap(),
        None
    );
}
