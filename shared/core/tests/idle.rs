//! Closing idle conversations on memory adapters: by the partner's timeout, told once even
//! when the webhook fails first or a message that does not reopen it comes after, reopened
//! by the user.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::{CloseReason, Content, InboundMessage};
use wxbridge_core::ports::store::UserStore;
use wxbridge_core::services::idle::{sweep, Swept};
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::partner::{PartnerApi, SendRequest};
use wxbridge_core::services::Bridge;
use wxbridge_testkit::{Memory, MemoryPorts};
use wxbridge_wechat::event::{CallbackEvent, EventKind, SubscribeDecision};

const T: i64 = 1_764_150_000_000;
const HOUR_MS: i64 = 3_600_000;
const CONVERSATION: &str = "mp:o_a:hotel-9";

fn config() -> BridgeConfig {
    BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
        "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789","idle_close_after_secs":3600}],
        "dialog":{"mode":"merged","default_partner":"hotel-9"}}"#,
    )
    .unwrap()
}

struct Setup {
    memory: Memory,
    now: Arc<AtomicI64>,
    bridge: Bridge<MemoryPorts>,
}

fn setup() -> Setup {
    let memory = Memory::default();
    let now = Arc::new(AtomicI64::new(T));
    let clock = Arc::clone(&now);
    let bridge = memory
        .bridge(config(), T)
        .with_clock(move || clock.load(Ordering::SeqCst));
    Setup {
        memory,
        now,
        bridge,
    }
}

impl Setup {
    async fn user_writes(&self, n: i64, at_ms: i64) {
        self.user_writes_late(n, at_ms, at_ms).await;
    }

    /// The user's message `n`, received at `received_ms` and handled at `handled_ms`.
    async fn user_writes_late(&self, n: i64, received_ms: i64, handled_ms: i64) {
        let kind = EventKind::Text {
            msg_id: n.to_string(),
            content: "hi".into(),
        };
        self.user_acts(kind, received_ms, handled_ms).await;
    }

    /// The user answers a subscribe pop-up: an event that opens no window, so reopens no
    /// conversation.
    async fn user_answers_a_popup(&self, at_ms: i64) {
        let kind = EventKind::SubscribePopup {
            entries: vec![SubscribeDecision {
                template_id: "tpl-1".into(),
                status: "accept".into(),
                popup_scene: Some(0),
            }],
        };
        self.user_acts(kind, at_ms, at_ms).await;
    }

    async fn user_acts(&self, kind: EventKind, received_ms: i64, handled_ms: i64) {
        let event = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: "o_a".into(),
            create_time: received_ms / 1000,
            business_id: None,
            kind,
        };
        let inbound = Inbound::new(
            self.memory.bridge(config(), handled_ms),
            self.memory.outbound.clone(),
        );
        let message = InboundMessage::new("mp", event, received_ms);
        assert_eq!(
            inbound.process(&message, handled_ms).await,
            Outcome::Delivered
        );
    }

    /// The hotel replies in its conversation with the user at `at_ms`.
    async fn hotel_replies(&self, n: i64, at_ms: i64) {
        self.now.store(at_ms, Ordering::SeqCst);
        let api = PartnerApi::new(
            self.memory.bridge(config(), at_ms),
            self.memory.outbound.clone(),
        );
        let reply = SendRequest {
            conversation_id: Some(CONVERSATION.into()),
            to: None,
            client_message_id: format!("reply-{n}"),
            content: Content::Text {
                text: "Anything else?".into(),
            },
        };
        api.send("hotel-9", reply).await.unwrap();
    }

    async fn is_closed(&self) -> bool {
        let user = self.memory.store.user("mp", "o_a").await.unwrap().unwrap();
        user.closed.contains_key(CONVERSATION)
    }

    async fn sweep_at(&self, at_ms: i64) -> Swept {
        self.now.store(at_ms, Ordering::SeqCst);
        sweep(&self.bridge).await.unwrap()
    }

    fn closed_hooks(&self) -> Vec<(String, serde_json::Value)> {
        self.memory
            .webhooks
            .deliveries()
            .into_iter()
            .filter(|(_, body)| body["type"] == "conversation.closed")
            .collect()
    }
}

#[tokio::test]
async fn a_conversation_nobody_wrote_in_closes_at_its_partners_timeout_once() {
    let s = setup();
    s.user_writes(1, T).await;
    assert_eq!(
        s.sweep_at(T + HOUR_MS - 1).await,
        Swept::default(),
        "not yet"
    );
    let swept = s.sweep_at(T + HOUR_MS).await;
    assert_eq!(swept.closed, 1);
    let hooks = s.closed_hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].1["closed"]["reason"], "idle");
    assert_eq!(hooks[0].1["closed"]["at_ms"], T + HOUR_MS);
    let user = s.memory.store.user("mp", "o_a").await.unwrap().unwrap();
    assert_eq!(user.closed["mp:o_a:hotel-9"].reason, CloseReason::Idle);
    assert_eq!(
        s.sweep_at(T + 2 * HOUR_MS).await,
        Swept::default(),
        "told once"
    );
}

#[tokio::test]
async fn a_message_moves_the_deadline_and_reopens_after_an_idle_close() {
    let s = setup();
    s.user_writes(1, T).await;
    s.user_writes(2, T + HOUR_MS / 2).await;
    assert_eq!(
        s.sweep_at(T + HOUR_MS).await,
        Swept::default(),
        "the later message counts"
    );
    assert_eq!(s.sweep_at(T + HOUR_MS + HOUR_MS / 2).await.closed, 1);
    s.user_writes(3, T + 2 * HOUR_MS).await;
    let reopened = s.memory.webhooks.deliveries().pop().unwrap().1;
    assert_eq!(reopened["type"], "conversation.reopened");
    assert_eq!(reopened["reopened"]["reason"], "idle");
}

#[tokio::test]
async fn a_close_the_partner_did_not_take_is_told_again_under_the_same_delivery_id() {
    let s = setup();
    s.user_writes(1, T).await;
    s.memory.webhooks.not_now();
    let first = s.sweep_at(T + HOUR_MS).await;
    assert_eq!((first.closed, first.left), (0, 1));
    let again = s.sweep_at(T + HOUR_MS + 60_000).await;
    assert_eq!(again.closed, 1);
    let hooks = s.closed_hooks();
    assert_eq!(hooks.len(), 2);
    assert_eq!(
        hooks[0].0, hooks[1].0,
        "one delivery id: the partner keeps one"
    );
}

#[tokio::test]
async fn a_message_handled_late_counts_its_idle_time_from_when_it_was_handled() {
    // Received at T, handled 40 minutes later (a retry's backoff): the conversation stays
    // open an hour from then, not from T.
    let s = setup();
    s.user_writes_late(1, T, T + 40 * 60_000).await;
    assert_eq!(
        s.sweep_at(T + HOUR_MS).await,
        Swept::default(),
        "an hour from receipt is not idle yet"
    );
    assert_eq!(s.sweep_at(T + HOUR_MS + 40 * 60_000).await.closed, 1);
}

#[tokio::test]
async fn a_reply_after_an_idle_close_neither_reopens_it_nor_closes_it_again() {
    let s = setup();
    s.user_writes(1, T).await;
    assert_eq!(s.sweep_at(T + HOUR_MS).await.closed, 1);
    s.hotel_replies(1, T + HOUR_MS + 60_000).await;
    assert!(s.is_closed().await, "a partner's reply reopens nothing");
    assert_eq!(
        s.sweep_at(T + 3 * HOUR_MS).await,
        Swept::default(),
        "the reply does not arm a second close"
    );
    assert_eq!(s.closed_hooks().len(), 1, "told once");
    // The user's next message reopens it, and a later close is a close of its own.
    s.user_writes(2, T + 4 * HOUR_MS).await;
    assert!(!s.is_closed().await);
    assert_eq!(s.sweep_at(T + 5 * HOUR_MS).await.closed, 1);
    let hooks = s.closed_hooks();
    assert_eq!(hooks.len(), 2);
    assert_ne!(hooks[0].0, hooks[1].0, "one delivery id per close");
}

#[tokio::test]
async fn a_reply_while_the_close_is_still_to_be_told_leaves_its_deadline() {
    let s = setup();
    s.user_writes(1, T).await;
    s.memory.webhooks.not_now();
    assert_eq!(s.sweep_at(T + HOUR_MS).await.left, 1);
    s.hotel_replies(1, T + HOUR_MS + 30_000).await;
    let again = s.sweep_at(T + HOUR_MS + 60_000).await;
    assert_eq!(
        again.closed, 1,
        "the next sweep tells it, as without the reply"
    );
    let hooks = s.closed_hooks();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].0, hooks[1].0);
    assert_eq!(s.sweep_at(T + 4 * HOUR_MS).await, Swept::default());
}

#[tokio::test]
async fn an_event_that_does_not_reopen_a_closed_conversation_does_not_close_it_again() {
    let s = setup();
    s.user_writes(1, T).await;
    assert_eq!(s.sweep_at(T + HOUR_MS).await.closed, 1);
    // The pop-up's answer is delivered in the conversation and moves its deadline, but
    // leaves it closed.
    s.user_answers_a_popup(T + HOUR_MS + 60_000).await;
    assert!(s.is_closed().await);
    let swept = s.sweep_at(T + 3 * HOUR_MS).await;
    assert_eq!((swept.closed, swept.cleared), (0, 1));
    assert_eq!(s.closed_hooks().len(), 1, "told once");
    assert_eq!(s.sweep_at(T + 4 * HOUR_MS).await, Swept::default());
}
