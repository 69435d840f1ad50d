//! Merged routing through the real services on memory adapters, against a reference model
//! of who the user's next message goes to: random sequences of the user's texts, switches
//! (`#Shop Three`) and entries from a partner's page, partners' replies (sent by
//! `dispatch`) and hand-overs (new, and repeats of applied ones).
//!
//! The model: the user's choice — the latest switch, entry or hand-over — holds; while
//! there is none, the partner that wrote last; with neither, the default partner. A
//! hand-over is done only by the partner the user's messages go to or the default partner
//! (and as configuration allows), and a repeat of an applied one answers again and moves
//! nobody.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use proptest::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use wxbridge_core::config::{BridgeConfig, Secret};
use wxbridge_core::model::session_from::sign;
use wxbridge_core::model::{routing, InboundMessage, MessageStatus, ReplyWindow};
use wxbridge_core::ports::store::{ConversationStore, MessageStore, UserStore};
use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::partner::{
    ConflictCode, HandoverRequest, PartnerApi, PartnerError, Recipient, SendRequest,
};
use wxbridge_core::services::Bridge;
use wxbridge_testkit::{Memory, MemoryPorts};
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const T: i64 = 1_764_150_000_000;
const OPENID: &str = "o_alice";
const SECRET: &str = "session-from-secret-1";
/// Partner ids and display names; the first is the default partner.
const PARTNERS: [(&str, &str); 4] = [
    ("platform", "Trip Service"),
    ("hotel-9", "Hotel Lotus"),
    ("air-2", "Sky Air"),
    ("shop-3", "Shop Three"),
];
const DEFAULT: &str = PARTNERS[0].0;

fn config() -> BridgeConfig {
    let partners: Vec<String> = PARTNERS
        .iter()
        .map(|(id, name)| {
            format!(
                r#"{{"id":"{id}","display_name":"{name}","webhook_url":"http://{id}/hook","signing_secret":"{id}-secret-0123456789","can_bind":true}}"#
            )
        })
        .collect();
    BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"s"}}],
        "partners":[{}],
        "dialog":{{"mode":"merged","default_partner":"{DEFAULT}"}},
        "session_from_secret":"{SECRET}"}}"#,
        partners.join(",")
    ))
    .unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    /// The user writes a plain text.
    Text,
    /// The user switches: `#` and the partner's display name.
    Switch(usize),
    /// The user enters the chat from the partner's page (a vouched session-from).
    Enter(usize),
    /// The partner replies, and `dispatch` sends it.
    Reply(usize),
    /// A partner hands the user to another (with a note to the user).
    HandOver { from: usize, to: usize },
    /// A repeat of one of the hand-overs applied so far.
    Repeat(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let partner = 0..PARTNERS.len();
    prop_oneof![
        1 => Just(Op::Text),
        2 => partner.clone().prop_map(Op::Switch),
        2 => partner.clone().prop_map(Op::Enter),
        4 => partner.clone().prop_map(Op::Reply),
        3 => (partner.clone(), partner).prop_map(|(from, to)| Op::HandOver { from, to }),
        1 => any::<usize>().prop_map(Op::Repeat),
    ]
}

/// Who the user's next message goes to, as the rules say.
#[derive(Debug, Default)]
struct Model {
    /// The latest switch, entry or hand-over.
    choice: Option<&'static str>,
    /// The partner that wrote last.
    writer: Option<&'static str>,
    /// Hand-overs applied: (from, id, to).
    applied: Vec<(&'static str, String, &'static str)>,
}

impl Model {
    fn next(&self) -> &'static str {
        self.choice.or(self.writer).unwrap_or(DEFAULT)
    }

    /// What a new hand-over must answer, the conversation of `from` existing or not.
    fn hand_over(&self, from: &str, to: &str, has_conversation: bool) -> Expected {
        if !has_conversation {
            Expected::NotFound
        } else if from == to {
            Expected::InvalidField
        } else if from != DEFAULT && to != DEFAULT {
            // partners[].handover_to unset: any partner but the default one hands back only.
            Expected::Forbidden
        } else if from != self.next() && from != DEFAULT {
            Expected::NotActivePartner
        } else {
            Expected::Done
        }
    }
}

#[derive(Debug, PartialEq)]
enum Expected {
    Done,
    NotFound,
    InvalidField,
    Forbidden,
    NotActivePartner,
}

fn answered<T>(answer: &Result<T, PartnerError>) -> Expected {
    match answer {
        Ok(_) => Expected::Done,
        Err(PartnerError::NotFound(_)) => Expected::NotFound,
        Err(PartnerError::InvalidField { .. }) => Expected::InvalidField,
        Err(PartnerError::Forbidden(_)) => Expected::Forbidden,
        Err(PartnerError::Conflict {
            code: ConflictCode::NotActivePartner,
            ..
        }) => Expected::NotActivePartner,
        Err(other) => panic!("unexpected refusal: {other:?}"),
    }
}

struct Stack {
    memory: Memory,
    now: Arc<AtomicI64>,
    inbound: Inbound<MemoryPorts>,
    api: PartnerApi<MemoryPorts>,
    dispatch: Dispatch<MemoryPorts>,
    config: BridgeConfig,
    /// How many of the outbound queue's records `dispatch` has taken.
    dispatched: usize,
    /// Texts and replies so far: their ids.
    texts: usize,
    replies: usize,
}

impl Stack {
    fn new() -> Self {
        let memory = Memory::default();
        let now = Arc::new(AtomicI64::new(T));
        let bridge = || -> Bridge<MemoryPorts> {
            let clock = Arc::clone(&now);
            memory
                .bridge(config(), T)
                .with_clock(move || clock.load(Ordering::SeqCst))
        };
        Self {
            inbound: Inbound::new(bridge(), memory.outbound.clone()),
            api: PartnerApi::new(bridge(), memory.outbound.clone()),
            dispatch: Dispatch::new(bridge(), memory.images(), memory.outbound.clone()),
            config: config(),
            memory,
            now,
            dispatched: 0,
            texts: 0,
            replies: 0,
        }
    }

    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    /// The user's push, received and handled now; answers the partner it reached.
    async fn user(&self, kind: EventKind) -> String {
        let now_ms = self.now_ms();
        let event = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: OPENID.into(),
            create_time: now_ms / 1000,
            business_id: None,
            kind,
        };
        let message = InboundMessage::new("mp", event, now_ms);
        assert_eq!(
            self.inbound.process(&message, now_ms).await,
            Outcome::Delivered
        );
        let post = self.memory.webhooks.posts().pop().unwrap();
        post.body["conversation"]["partner"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn text(&mut self, content: &str) -> String {
        self.texts += 1;
        let kind = EventKind::Text {
            msg_id: self.texts.to_string(),
            content: content.into(),
        };
        self.user(kind).await
    }

    async fn enter(&self, partner: &str) -> String {
        let value = format!("partner={partner}&ts={}", self.now_ms() / 1000);
        let session_from = sign(&value, &Secret::new(SECRET));
        self.user(EventKind::UserEnterTempSession { session_from })
            .await
    }

    /// The user's window opened afresh, so a reply goes out at once (what is tested here
    /// is routing, not the window).
    async fn open_window(&self) {
        let store = &self.memory.store;
        let mut user = store.user("mp", OPENID).await.unwrap().unwrap();
        user.window = Some(ReplyWindow {
            remaining: 5,
            closes_at_ms: self.now_ms() + 3_600_000,
            ..Default::default()
        });
        store.put_user(&user).await.unwrap();
    }

    /// `dispatch` takes every record queued since it last did; answers the partners whose
    /// replies it sent.
    async fn dispatch(&mut self) -> Vec<String> {
        let mut sent = Vec::new();
        loop {
            let queued = self.memory.outbound.sent();
            let Some((target, _)) = queued.get(self.dispatched).cloned() else {
                return sent;
            };
            self.dispatched += 1;
            self.dispatch.process(&target).await;
            let message = self
                .memory
                .store
                .message_at(&target)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(message.status, MessageStatus::Sent, "{message:?}");
            sent.push(message.partner);
        }
    }

    async fn reply(&mut self, partner: &str) -> Vec<String> {
        self.open_window().await;
        self.replies += 1;
        let request = SendRequest {
            conversation_id: None,
            to: Some(Recipient {
                channel: Some("mp".into()),
                openid: Some(OPENID.into()),
                app_user_id: None,
            }),
            client_message_id: format!("reply-{}", self.replies),
            content: wxbridge_core::model::Content::Text {
                text: "A reply.".into(),
            },
        };
        self.api.send(partner, request).await.unwrap();
        self.dispatch().await
    }

    async fn has_conversation(&self, partner: &str) -> bool {
        let id = self.conversation_of(partner);
        let found = self.memory.store.conversation("mp", OPENID, &id).await;
        found.unwrap().is_some()
    }

    fn conversation_of(&self, partner: &str) -> String {
        routing::conversation_id(self.config.dialog.mode, "mp", OPENID, partner)
    }

    async fn hand_over(&mut self, from: &str, to: &str, id: &str) -> Expected {
        self.open_window().await;
        let request = HandoverRequest {
            handover_id: id.to_owned(),
            to: to.to_owned(),
            note_to_user: Some("Someone else will answer you now.".into()),
            note_to_partner: None,
        };
        let conversation = self.conversation_of(from);
        let answer = self.api.hand_over(from, &conversation, request).await;
        // The note, as the handing partner's reply.
        let notes = self.dispatch().await;
        assert!(notes.iter().all(|p| p == from), "{notes:?}");
        answered(&answer)
    }

    /// Who the bridge routes the user's next message to.
    async fn routed(&self) -> String {
        let user = self.memory.store.user("mp", OPENID).await.unwrap();
        let routing = user.map(|u| u.routing).unwrap_or_default();
        let channel = &self.config.channels[0];
        routing::partner_for(&self.config, channel, &routing)
            .unwrap()
            .to_owned()
    }
}

async fn run(ops: Vec<Op>) {
    let mut stack = Stack::new();
    let mut model = Model::default();
    // The user writes first, so the bridge knows them.
    assert_eq!(stack.text("Hello").await, DEFAULT);
    for (step, op) in ops.into_iter().enumerate() {
        stack.now.fetch_add(1_000, Ordering::SeqCst);
        match op {
            Op::Text => {
                let reached = stack.text("Any news?").await;
                assert_eq!(reached, model.next(), "step {step}: a text");
            }
            Op::Switch(p) => {
                let (id, name) = PARTNERS[p];
                model.choice = Some(id);
                let reached = stack.text(&format!("#{name}")).await;
                assert_eq!(
                    reached, id,
                    "step {step}: the switch goes to the new partner"
                );
            }
            Op::Enter(p) => {
                let id = PARTNERS[p].0;
                model.choice = Some(id);
                let reached = stack.enter(id).await;
                assert_eq!(reached, id, "step {step}: the entry goes to its partner");
            }
            Op::Reply(p) => {
                let id = PARTNERS[p].0;
                assert_eq!(stack.reply(id).await, [id], "step {step}: sent");
                model.writer = Some(id);
            }
            Op::HandOver { from, to } => {
                let (from, to) = (PARTNERS[from].0, PARTNERS[to].0);
                let handover_id = format!("ho-{step}");
                let has_conversation = stack.has_conversation(from).await;
                let expected = model.hand_over(from, to, has_conversation);
                let answered = stack.hand_over(from, to, &handover_id).await;
                assert_eq!(answered, expected, "step {step}: {from} hands over to {to}");
                if answered == Expected::Done {
                    model.choice = Some(to);
                    model.writer = Some(from);
                    model.applied.push((from, handover_id, to));
                }
            }
            Op::Repeat(k) => {
                if model.applied.is_empty() {
                    continue;
                }
                let (from, handover_id, to) = model.applied[k % model.applied.len()].clone();
                let answered = stack.hand_over(from, to, &handover_id).await;
                assert_eq!(
                    answered,
                    Expected::Done,
                    "step {step}: a repeat of {handover_id}"
                );
            }
        }
        assert_eq!(stack.routed().await, model.next(), "step {step}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_users_choice_holds_against_partners_writing(ops in prop::collection::vec(op(), 1..40)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}

/// The issue's case, spelled out: after the user switches to shop-3 and talks to it, the
/// hotel's reply is delivered (with its name) but the user's next text still goes to
/// shop-3; and the hotel, not the partner the user talks to, may not hand them over.
#[tokio::test]
async fn a_switch_holds_against_another_partners_reply_and_its_hand_over() {
    let mut stack = Stack::new();
    stack.text("Hello").await;
    stack.now.fetch_add(1_000, Ordering::SeqCst);
    stack.reply("hotel-9").await;
    assert_eq!(stack.text("#Shop Three").await, "shop-3");
    assert_eq!(stack.reply("shop-3").await, ["shop-3"]);
    stack.now.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(stack.reply("hotel-9").await, ["hotel-9"]);
    let shown = stack.memory.wechat.sent().pop().unwrap();
    assert_eq!(shown["text"]["content"], "【Hotel Lotus】A reply.");
    assert_eq!(stack.text("For shop-3").await, "shop-3");
    assert_eq!(
        stack.hand_over("hotel-9", "platform", "ho-1").await,
        Expected::NotActivePartner
    );
    assert_eq!(stack.routed().await, "shop-3");
}
