//! WeChat's documentation leaves open whether a user entering the customer-service session
//! shrinks a reply window their message opened (5 sends, 48 hours) to the entry's own (2
//! sends, 1 minute). The bridge keeps the open window (docs/wechat-protocol.md §3.2); the
//! WeChat fake can be told either way (`EntryPolicy`). Under both, every reply the bridge
//! accepts ends as WeChat allows: sent where WeChat took it, held for the user's next
//! message where WeChat said the quota is used up, never failed and never lost.

use wechat_fake::{EntryPolicy, Fake, UserAction};
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::{InboundMessage, MessageStatus, OutboundRef};
use wxbridge_core::ports::store::MessageStore;
use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome};
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_integration::{
    bridge_on, create_fifo_queues, fifo_queue, images_on, new_table, sqs_client, store_reply,
    AwsPorts, WebhookReceiver,
};
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const APP: &str = "wx00000000000000e9";
const OPENID: &str = "o_entering";

struct Stack {
    fake: Fake,
    inbound: Inbound<AwsPorts>,
    dispatch: Dispatch<AwsPorts>,
    _hotel: WebhookReceiver,
}

async fn stack(policy: EntryPolicy) -> Stack {
    let fake = Fake::default().with_entry_policy(policy);
    fake.add_app(APP, "the-app-secret");
    let fake_url = fake.start().await;
    let hotel = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"the-app-secret"}}],
        "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"hotel-secret-456789"}}],
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}},"wechat_api_base":"{fake_url}"}}"#,
        hotel.url
    ))
    .unwrap();
    let table = new_table().await;
    let sqs = sqs_client().await;
    let outbound = fifo_queue(&sqs, &create_fifo_queues(&sqs, "outbound").await.queue_url);
    Stack {
        fake,
        inbound: Inbound::new(bridge_on(&config, &table), outbound.clone()),
        dispatch: Dispatch::new(
            bridge_on(&config, &table),
            images_on(&config, &table),
            outbound,
        ),
        _hotel: hotel,
    }
}

impl Stack {
    /// The user does something in WeChat: the fake opens its window as WeChat would, the
    /// bridge's `inbound` records the push.
    async fn user(&self, n: u32, action: UserAction) {
        self.fake.user_acts(APP, OPENID, action);
        let now = system_clock_ms();
        let kind = match action {
            UserAction::Message => EventKind::Text {
                msg_id: format!("m{n}"),
                content: format!("message {n}"),
            },
            UserAction::EnterSession => EventKind::UserEnterTempSession {
                session_from: String::new(),
            },
        };
        let event = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: OPENID.into(),
            create_time: now / 1000 + i64::from(n),
            business_id: None,
            kind,
        };
        let message = InboundMessage::new("mp", event, now);
        assert_eq!(
            self.inbound.process(&message, now).await,
            Outcome::Delivered
        );
    }

    async fn reply(&self, n: u32) -> OutboundRef {
        let text = serde_json::json!({"type": "text", "text": format!("reply {n}")});
        store_reply(&self.dispatch.bridge().store, OPENID, n, text).await
    }

    async fn status(&self, target: &OutboundRef) -> MessageStatus {
        let store = &self.dispatch.bridge().store;
        store.message_at(target).await.unwrap().unwrap().status
    }
}

/// The user writes, one reply goes out, the user enters the session, and the partner sends
/// three more: what becomes of each, and the last of them.
async fn three_replies_after_entering(
    policy: EntryPolicy,
) -> (Stack, Vec<DispatchOutcome>, OutboundRef) {
    let s = stack(policy).await;
    s.user(1, UserAction::Message).await;
    let first = s.reply(1).await;
    assert_eq!(s.dispatch.process(&first).await, DispatchOutcome::Sent);
    s.user(2, UserAction::EnterSession).await;
    let mut outcomes = Vec::new();
    let mut last = None;
    for n in 2..=4 {
        let reply = s.reply(n).await;
        let outcome = s.dispatch.process(&reply).await;
        let expected = match outcome {
            DispatchOutcome::Sent => MessageStatus::Sent,
            DispatchOutcome::Held => MessageStatus::Held,
            ref other => panic!("{policy:?}: reply {n} ended {other:?}"),
        };
        assert_eq!(s.status(&reply).await, expected, "{policy:?}: reply {n}");
        outcomes.push(outcome);
        last = Some(reply);
    }
    (s, outcomes, last.expect("three replies"))
}

#[tokio::test]
async fn when_entering_keeps_the_open_window_the_replies_go_out() {
    let (s, outcomes, _) = three_replies_after_entering(EntryPolicy::KeepsOpenWindow).await;
    assert_eq!(outcomes, vec![DispatchOutcome::Sent; 3]);
    assert_eq!(s.fake.sent().len(), 4);
}

#[tokio::test]
async fn when_entering_replaces_the_window_the_reply_over_its_quota_is_held() {
    let (s, outcomes, held) = three_replies_after_entering(EntryPolicy::Replaces).await;
    // WeChat took two (the entry's quota) and answered 45047 to the third: the bridge,
    // which thought sends were left, holds it for the user's next message.
    assert_eq!(
        outcomes,
        [
            DispatchOutcome::Sent,
            DispatchOutcome::Sent,
            DispatchOutcome::Held
        ]
    );
    assert_eq!(s.fake.sent().len(), 3);
    // The user's next message opens a fresh window and releases it: it goes out then.
    s.user(3, UserAction::Message).await;
    assert_eq!(s.dispatch.process(&held).await, DispatchOutcome::Sent);
    assert_eq!(s.status(&held).await, MessageStatus::Sent);
    assert_eq!(s.fake.sent().len(), 4);
}
