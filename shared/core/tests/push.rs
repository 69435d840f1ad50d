//! The push chain on memory adapters and a scripted WeChat that answers as it is told.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use serde_json::{json, Value};
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::message::lost_answer;
use wxbridge_core::model::push::{cut, fallback_form};
use wxbridge_core::model::{
    AttemptOutcome, ChannelUser, Content, Conversation, Direction, MessageStatus, OutboundRef,
    PushPath, PushRecord, PushTarget, ReplyWindow, StoredMessage, SubscribeForm,
};
use wxbridge_core::ports::store::{MessageStore, PushStore, Recorded, UserStore};
use wxbridge_core::services::push::{Push, PushOutcome};
use wxbridge_testkit::scripted_wechat::{CUSTOM_SEND, SUBSCRIBE_SEND};
use wxbridge_testkit::{Memory, MemoryPorts, MemoryStore};

const T: i64 = 1_764_150_000_000;

struct Setup {
    push: Push<MemoryPorts>,
    memory: Memory,
}

fn setup(held_replies_first: bool) -> Setup {
    setup_losing_answers(held_replies_first, "resend")
}

/// With the setting `lost_send_answer`.
fn setup_losing_answers(held_replies_first: bool, lost_send_answer: &str) -> Setup {
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"s"}},
                        {{"id":"mp2","app_id":"wx2","original_id":"gh_2","token":"t","mode":"plaintext","push_format":"json","app_secret":"s"}}],
        "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789","held_replies_first":{held_replies_first}}}],
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}},
        "lost_send_answer":"{lost_send_answer}"}}"#
    ))
    .unwrap();
    let memory = Memory::default();
    let push = Push::new(memory.bridge(config, T), memory.pushes.clone());
    Setup { push, memory }
}

fn conversation() -> Conversation {
    Conversation {
        id: "mp:o_a:hotel-9".into(),
        channel: "mp".into(),
        openid: "o_a".into(),
        partner: "hotel-9".into(),
        created_at_ms: T - 60_000,
        last_message_at_ms: T - 60_000,
        idle_at_ms: None,
    }
}

fn form() -> SubscribeForm {
    SubscribeForm {
        template_id: "tpl-order".into(),
        data: json!({"thing1": {"value": "Order 42 confirmed"}})
            .as_object()
            .cloned()
            .unwrap(),
        page: Some("pages/order?id=42".into()),
        miniprogram_state: None,
        lang: None,
    }
}

impl Setup {
    fn store(&self) -> &MemoryStore {
        &self.memory.store
    }

    /// The user, with `window` sends left (None: closed) and `grants` for the template.
    async fn user(&self, window: Option<u32>, grants: u32) {
        let mut user = ChannelUser::new("mp", "o_a");
        user.window = window.map(|remaining| ReplyWindow {
            remaining,
            closes_at_ms: T + 3_600_000,
            ..Default::default()
        });
        if grants > 0 {
            user.grants.insert("tpl-order".into(), grants);
        }
        self.store().put_user(&user).await.unwrap();
    }

    async fn stored_user(&self) -> ChannelUser {
        self.store().user("mp", "o_a").await.unwrap().unwrap()
    }

    async fn push(
        &self,
        n: i64,
        subscribe: Option<SubscribeForm>,
        expires: Option<i64>,
    ) -> OutboundRef {
        let record = PushRecord {
            push_id: Some(format!("p-{n}")),
            to: PushTarget {
                app_user_id: None,
                channel: Some("mp".into()),
                openid: Some("o_a".into()),
            },
            subscribe,
            expires_at_ms: expires,
            fallback: false,
            attempts: Vec::new(),
            path: None,
        };
        let message = StoredMessage {
            id: format!("push_{n}"),
            conversation_id: "mp:o_a:hotel-9".into(),
            channel: "mp".into(),
            openid: "o_a".into(),
            partner: "hotel-9".into(),
            direction: Direction::Push,
            status: MessageStatus::Queued,
            status_reason: None,
            created_at_ms: T - 1000 + n,
            dedupe_key: None,
            wechat_msg_id: None,
            content: json!({"type": "text", "text": "Your order is confirmed."}),
            released: Vec::new(),
            reported: None,
            push: Some(record),
            media: None,
        };
        assert_eq!(
            self.store()
                .put_push(&message, &conversation(), &format!("p-{n}"))
                .await
                .unwrap(),
            Recorded::New
        );
        OutboundRef::to(&message)
    }

    async fn waiting_reply(&self, n: i64) {
        let message = StoredMessage {
            id: format!("out_{n}"),
            conversation_id: "mp:o_a:hotel-9".into(),
            channel: "mp".into(),
            openid: "o_a".into(),
            partner: "hotel-9".into(),
            direction: Direction::Out,
            status: MessageStatus::Queued,
            status_reason: None,
            created_at_ms: T - 5000 + n,
            dedupe_key: None,
            wechat_msg_id: None,
            content: json!({"type": "text", "text": "a reply"}),
            released: Vec::new(),
            reported: None,
            push: None,
            media: None,
        };
        self.store()
            .put_outbound(&message, &conversation(), &message.id)
            .await
            .unwrap();
    }

    async fn stored(&self, target: &OutboundRef) -> StoredMessage {
        self.store()
            .message(
                &target.conversation_id,
                target.created_at_ms,
                &target.message_id,
            )
            .await
            .unwrap()
            .unwrap()
    }

    fn paths(&self) -> Vec<String> {
        self.memory
            .wechat
            .calls()
            .iter()
            .map(|(api, _)| api.trim_start_matches("message/").to_owned())
            .collect()
    }

    /// The body of the `n`th call WeChat accepted.
    fn call(&self, n: usize) -> Value {
        self.memory.wechat.calls()[n].1.clone()
    }

    fn hooks(&self) -> Vec<(String, Value)> {
        self.memory.webhooks.deliveries()
    }

    fn answer(&self, api: &'static str, errcode: i64) {
        self.memory.wechat.answer(api, errcode);
    }
}

fn outcomes(record: &PushRecord) -> Vec<(PushPath, AttemptOutcome)> {
    record
        .attempts
        .iter()
        .map(|a| (a.path, a.outcome))
        .collect()
}

#[tokio::test]
async fn an_open_window_takes_the_push_as_a_customer_service_message() {
    let s = setup(true);
    s.user(Some(3), 1).await;
    let push = s.push(1, Some(form()), None).await;
    assert_eq!(
        s.push.process(&push).await,
        PushOutcome::Sent(PushPath::CustomerService)
    );
    assert_eq!(s.paths(), ["custom/send"]);
    let body = s.call(0);
    assert_eq!(
        body["text"]["content"],
        "【Hotel Lotus】Your order is confirmed."
    );
    let stored = s.stored(&push).await;
    assert_eq!(stored.status, MessageStatus::Sent);
    let record = stored.push.unwrap();
    assert_eq!(record.path, Some(PushPath::CustomerService));
    assert_eq!(
        outcomes(&record),
        [(PushPath::CustomerService, AttemptOutcome::Sent)]
    );
    let user = s.stored_user().await;
    assert_eq!(user.window.unwrap().remaining, 2, "one send spent");
    assert_eq!(user.grants.get("tpl-order"), Some(&1), "the grant is kept");
    let hooks = s.hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].0, "push_1:sent");
    assert_eq!(hooks[0].1["type"], "push.status");
    assert_eq!(hooks[0].1["push"]["id"], "p-1");
    assert_eq!(hooks[0].1["push"]["path"], "customer_service");
    // A redelivery sends nothing and tells nothing more.
    assert_eq!(s.push.process(&push).await, PushOutcome::AlreadyDone);
    assert_eq!(s.paths().len(), 1);
    assert_eq!(s.hooks().len(), 1);
}

#[tokio::test]
async fn waiting_replies_keep_the_last_sends_and_the_push_goes_as_a_subscribe_message() {
    let s = setup(true);
    s.user(Some(2), 2).await;
    s.waiting_reply(1).await;
    s.waiting_reply(2).await;
    let push = s.push(1, Some(form()), None).await;
    assert_eq!(
        s.push.process(&push).await,
        PushOutcome::Sent(PushPath::Subscribe)
    );
    assert_eq!(s.paths(), ["subscribe/send"]);
    let body = s.call(0);
    assert_eq!(body["template_id"], "tpl-order");
    assert_eq!(body["touser"], "o_a");
    assert_eq!(body["page"], "pages/order?id=42");
    assert_eq!(body["data"]["thing1"]["value"], "Order 42 confirmed");
    let record = s.stored(&push).await.push.unwrap();
    assert_eq!(
        outcomes(&record),
        [
            (PushPath::CustomerService, AttemptOutcome::Skipped),
            (PushPath::Subscribe, AttemptOutcome::Sent)
        ]
    );
    assert!(record.attempts[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("2 waiting replies"));
    let user = s.stored_user().await;
    assert_eq!(user.grants.get("tpl-order"), Some(&1), "one grant spent");
    assert_eq!(user.window.unwrap().remaining, 2, "no send spent");

    // Without held_replies_first the same push takes a send.
    let s = setup(false);
    s.user(Some(2), 0).await;
    s.waiting_reply(1).await;
    s.waiting_reply(2).await;
    let push = s.push(1, None, None).await;
    assert_eq!(
        s.push.process(&push).await,
        PushOutcome::Sent(PushPath::CustomerService)
    );
}

#[tokio::test]
async fn without_a_window_or_grant_the_push_stays_in_the_inbox_undeliverable() {
    let s = setup(true);
    s.user(None, 0).await;
    let push = s.push(1, Some(form()), None).await;
    let outcome = s.push.process(&push).await;
    let PushOutcome::Undeliverable(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        reason,
        "customer service: the reply window is closed; subscribe: no grant for template tpl-order"
    );
    assert!(s.paths().is_empty(), "nothing sent");
    let stored = s.stored(&push).await;
    assert_eq!(stored.status, MessageStatus::Undeliverable);
    let record = stored.push.unwrap();
    assert_eq!(record.path, Some(PushPath::Inbox));
    assert_eq!(
        outcomes(&record),
        [
            (PushPath::CustomerService, AttemptOutcome::Skipped),
            (PushPath::Subscribe, AttemptOutcome::Skipped),
            (PushPath::Inbox, AttemptOutcome::Kept)
        ]
    );
    let hooks = s.hooks();
    assert_eq!(hooks[0].0, "push_1:undeliverable");
    assert_eq!(hooks[0].1["push"]["reason"], reason.as_str());
    assert_eq!(hooks[0].1["push"]["attempts"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_refused_subscribe_message_clears_the_grant_and_the_chain_goes_on() {
    let s = setup(true);
    s.user(None, 2).await;
    s.answer(SUBSCRIBE_SEND, 43101);
    let push = s.push(1, Some(form()), None).await;
    assert!(matches!(
        s.push.process(&push).await,
        PushOutcome::Undeliverable(_)
    ));
    let record = s.stored(&push).await.push.unwrap();
    assert_eq!(
        outcomes(&record),
        [
            (PushPath::CustomerService, AttemptOutcome::Skipped),
            (PushPath::Subscribe, AttemptOutcome::Refused),
            (PushPath::Inbox, AttemptOutcome::Kept)
        ]
    );
    assert_eq!(record.attempts[1].errcode, Some(43101));
    assert!(
        s.stored_user().await.grants.is_empty(),
        "the grant is cleared"
    );
}

#[tokio::test]
async fn an_expired_push_is_not_sent() {
    let s = setup(true);
    s.user(Some(5), 1).await;
    let push = s.push(1, Some(form()), Some(T)).await;
    assert_eq!(s.push.process(&push).await, PushOutcome::Expired);
    assert!(s.paths().is_empty());
    assert_eq!(s.stored(&push).await.status, MessageStatus::Expired);
    assert_eq!(s.hooks()[0].0, "push_1:expired");
    // Not yet expired: sent.
    let later = s.push(2, None, Some(T + 1)).await;
    assert_eq!(
        s.push.process(&later).await,
        PushOutcome::Sent(PushPath::CustomerService)
    );
}

#[tokio::test]
async fn a_busy_wechat_leaves_the_push_queued_for_a_retry_with_the_attempt_recorded() {
    let s = setup(true);
    s.user(Some(5), 0).await;
    s.answer(CUSTOM_SEND, -1);
    let push = s.push(1, None, None).await;
    assert!(matches!(s.push.process(&push).await, PushOutcome::Retry(_)));
    let stored = s.stored(&push).await;
    assert_eq!(stored.status, MessageStatus::Queued);
    assert_eq!(
        outcomes(stored.push.as_ref().unwrap()),
        [(PushPath::CustomerService, AttemptOutcome::Retry)]
    );
    assert!(s.hooks().is_empty(), "not settled, not reported");
    assert_eq!(
        s.push.process(&push).await,
        PushOutcome::Sent(PushPath::CustomerService)
    );
    assert_eq!(
        outcomes(s.stored(&push).await.push.as_ref().unwrap()),
        [
            (PushPath::CustomerService, AttemptOutcome::Retry),
            (PushPath::CustomerService, AttemptOutcome::Sent)
        ]
    );
}

#[tokio::test]
async fn a_push_whose_answer_was_lost_is_sent_again_by_default_with_the_attempt_saying_so() {
    let s = setup(true);
    s.user(Some(5), 0).await;
    s.memory.wechat.lose_answer(CUSTOM_SEND);
    let push = s.push(1, None, None).await;
    assert!(matches!(s.push.process(&push).await, PushOutcome::Retry(_)));
    assert_eq!(s.stored(&push).await.status, MessageStatus::Queued);
    assert_eq!(
        s.push.process(&push).await,
        PushOutcome::Sent(PushPath::CustomerService)
    );
    assert_eq!(s.paths(), ["custom/send", "custom/send"], "perhaps twice");
    let (_, report) = &s.hooks()[0];
    let attempts: Vec<&str> = report["push"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(attempts, ["answer_lost", "sent"]);
}

#[tokio::test]
async fn reporting_lost_answers_a_push_whose_answer_was_lost_ends_uncertain() {
    let s = setup_losing_answers(true, "report");
    s.user(Some(5), 1).await;
    s.memory.wechat.lose_answer(CUSTOM_SEND);
    let push = s.push(1, Some(form()), None).await;
    assert_eq!(s.push.process(&push).await, PushOutcome::Uncertain);
    let stored = s.stored(&push).await;
    assert_eq!(stored.status, MessageStatus::Uncertain);
    assert_eq!(
        outcomes(stored.push.as_ref().unwrap()),
        [(PushPath::CustomerService, AttemptOutcome::AnswerLost)]
    );
    let (_, report) = &s.hooks()[0];
    assert_eq!(report["push"]["status"], "uncertain");
    assert_eq!(report["push"]["reason"], lost_answer::UNCERTAIN);
    // Not sent again, not even as the subscribe message the user granted.
    assert_eq!(s.push.process(&push).await, PushOutcome::AlreadyDone);
    assert_eq!(s.paths(), ["custom/send"]);
    assert_eq!(s.stored_user().await.grants.get("tpl-order"), Some(&1));
}

#[test]
fn a_reply_becomes_a_subscribe_form_cut_to_the_fields_length() {
    let config = BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
        "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789",
          "reply_fallback":{"template_id":"tpl-reply","field":"thing2","data":{"name1":"{partner}"},"page":"pages/chat"}}],
        "dialog":{"mode":"merged","default_partner":"hotel-9"}}"#,
    )
    .unwrap();
    let partner = config.partner("hotel-9").unwrap();
    let fallback = partner.reply_fallback.as_ref().unwrap();
    assert_eq!(fallback.limit(), 20);
    let text = Content::Text {
        text: "Breakfast is included,\n served from 7 to 10.".into(),
    };
    let form = fallback_form(fallback, partner, &text).unwrap();
    assert_eq!(form.template_id, "tpl-reply");
    assert_eq!(form.page.as_deref(), Some("pages/chat"));
    assert_eq!(
        Value::Object(form.data),
        json!({"name1": {"value": "Hotel Lotus"}, "thing2": {"value": "Breakfast is includ…"}})
    );
    assert_eq!(cut("早餐包含在房价里", 20), "早餐包含在房价里");
    assert_eq!(cut("abc", 2), "a…");
    let image = Content::Image {
        url: Some("https://i/x.png".into()),
        base64: None,
    };
    assert_eq!(fallback_form(fallback, partner, &image), None);
    assert!(BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
        "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789",
          "reply_fallback":{"template_id":"tpl-reply","field":"thing2","data":{"thing2":"x"}}}]}"#,
    )
    .unwrap_err()
    .to_string()
    .contains("partners[0].reply_fallback.data"));
}

#[tokio::test]
async fn an_app_user_on_two_mini_programs_is_reached_where_the_window_is_open() {
    let s = setup(true);
    // Bound on both channels: closed on `mp`, open on `mp2`.
    for (channel, openid, window) in [("mp", "o_a", None), ("mp2", "o_b", Some(3))] {
        let mut user = ChannelUser::new(channel, openid);
        user.app_user_id = Some("app-7".into());
        user.window = window.map(|remaining| ReplyWindow {
            remaining,
            closes_at_ms: T + 3_600_000,
            ..Default::default()
        });
        s.store().put_user(&user).await.unwrap();
    }
    let target = s.push(1, None, None).await;
    // The push names the app user, not the channel user it was stored for.
    let mut stored = s
        .store()
        .message(
            &target.conversation_id,
            target.created_at_ms,
            &target.message_id,
        )
        .await
        .unwrap()
        .unwrap();
    let mut record = stored.push.take().unwrap();
    record.to = PushTarget {
        app_user_id: Some("app-7".into()),
        channel: None,
        openid: None,
    };
    let for_app_user = StoredMessage {
        id: "push_app".into(),
        push: Some(record),
        ..stored
    };
    s.store()
        .put_push(&for_app_user, &conversation(), "p-app")
        .await
        .unwrap();
    assert_eq!(
        s.push.process(&OutboundRef::to(&for_app_user)).await,
        PushOutcome::Sent(PushPath::CustomerService)
    );
    let calls = s.memory.wechat.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1["touser"], "o_b", "sent where the window is open");
}
