//! The fan-in: an opened push becomes the user's new state, a message in its
//! conversation and a signed webhook to the partner it is routed to.
//!
//! The message is stored first and once (the store's dedupe record), so a WeChat retry or
//! an SQS redelivery neither stores a second message nor sends a second webhook once the
//! first was delivered; a redelivery of a message stored but not yet delivered delivers
//! it (partners drop repeats by the delivery id).
//!
//! A user action that opens the reply window releases the user's held replies
//! ([`crate::release`]): taken out of the user in the same write that stores the message,
//! kept on the message, enqueued on `outbound.fifo` before the webhook — and enqueued again
//! on every redelivery, so a release is never lost.

use crate::config::{BridgeConfig, DialogMode};
use crate::event::{CallbackEvent, EventKind};
use crate::queue::{InboundMessage, OutboundQueue};
use crate::release;
use crate::reply_window::{Allowance, ReplyWindow, UserAction};
use crate::routing::{self, ActiveBecause};
use crate::session_from::SessionFrom;
use crate::store::keys::inbound_message_id;
use crate::store::{
    ChannelUser, Conversation, Direction, MessageStatus, Recorded, Store, StoreError, StoredMessage,
};
use crate::webhook::{self, Delivery, WebhookSender};
use serde_json::json;

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and delivered now.
    Delivered,
    /// Stored and settled by an earlier attempt: nothing to do.
    AlreadyDone,
    /// The partner refused it for good: stored as failed; goes to the dead-letter queue.
    Refused(String),
    /// Not finished (store or partner unavailable): try again later.
    Retry(String),
}

/// How often a user changed under us before the message is left for a later attempt.
const CONFLICT_ATTEMPTS: usize = 3;

pub struct Inbound<S, W, Q> {
    config: BridgeConfig,
    store: S,
    webhooks: W,
    outbound: Q,
}

impl<S: Store, W: WebhookSender, Q: OutboundQueue> Inbound<S, W, Q> {
    /// `outbound` is `outbound.fifo`, where released held replies go.
    pub fn new(config: BridgeConfig, store: S, webhooks: W, outbound: Q) -> Self {
        Self {
            config,
            store,
            webhooks,
            outbound,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn outbound(&self) -> &Q {
        &self.outbound
    }

    pub async fn process(&self, inbound: &InboundMessage, now_ms: i64) -> Outcome {
        for _ in 0..CONFLICT_ATTEMPTS {
            match self.try_process(inbound, now_ms).await {
                Err(StoreError::Conflict) => continue,
                Err(error) => return Outcome::Retry(error.to_string()),
                Ok(outcome) => return outcome,
            }
        }
        Outcome::Retry("the channel user kept changing".into())
    }

    async fn try_process(
        &self,
        inbound: &InboundMessage,
        now_ms: i64,
    ) -> Result<Outcome, StoreError> {
        let event = &inbound.event;
        let Some(channel) = self.config.channel(&inbound.channel) else {
            return Ok(Outcome::Refused(format!(
                "channel {} is not configured",
                inbound.channel
            )));
        };
        let mut user = self
            .store
            .user(&inbound.channel, &event.from_user_name)
            .await?
            .unwrap_or_else(|| ChannelUser::new(&inbound.channel, &event.from_user_name));
        apply(&self.config, &mut user, event, inbound.received_at_ms);
        // The user acted: the held replies go out now, in the same write as this message.
        let released = if opens_window(event) && !user.held.is_empty() {
            let sends_left = match ReplyWindow::allowance(user.window.as_ref(), now_ms) {
                Allowance::Open { remaining } => remaining,
                _ => 0,
            };
            let held = std::mem::take(&mut user.held);
            release::plan(&self.store, &self.config, &held, sends_left).await?
        } else {
            Vec::new()
        };

        let routed = routing::partner_for(&self.config, channel, &user.routing)
            .filter(|p| self.config.partner(p).is_some())
            .or(self.config.dialog.default_partner.as_deref());
        let Some(partner) = routed.map(str::to_owned) else {
            return Ok(Outcome::Refused("no partner to deliver to".into()));
        };
        let conversation = Conversation {
            id: routing::conversation_id(
                self.config.dialog.mode,
                &inbound.channel,
                &event.from_user_name,
                &partner,
            ),
            channel: inbound.channel.clone(),
            openid: event.from_user_name.clone(),
            partner: partner.clone(),
            created_at_ms: inbound.received_at_ms,
            last_message_at_ms: inbound.received_at_ms,
        };
        let message = StoredMessage {
            id: inbound_message_id(&inbound.dedupe_key),
            conversation_id: conversation.id.clone(),
            channel: inbound.channel.clone(),
            openid: event.from_user_name.clone(),
            partner,
            direction: Direction::In,
            status: MessageStatus::Received,
            status_reason: None,
            created_at_ms: inbound.received_at_ms,
            dedupe_key: Some(inbound.dedupe_key.clone()),
            wechat_msg_id: event.msg_id().map(str::to_owned),
            content: serde_json::to_value(&event.kind).unwrap_or_default(),
            released,
            reported: None,
            push: None,
        };
        let recorded = self
            .store
            .record_inbound(&message, &conversation, &user)
            .await?;
        // Released before the webhook, and again on every redelivery (SQS drops a repeat of
        // the same deduplication id; dispatch sends a message once): never lost.
        let stored = match &recorded {
            Recorded::New => &message,
            Recorded::Duplicate(prior) => prior,
        };
        if let Err(error) = release::enqueue(&self.outbound, &stored.released, &stored.id).await {
            return Ok(Outcome::Retry(format!(
                "held replies not released: {error}"
            )));
        }
        match recorded {
            Recorded::New => Ok(self
                .deliver(&message, &conversation, &user, event, now_ms)
                .await),
            Recorded::Duplicate(prior) => match prior.status {
                MessageStatus::Received => {
                    let conversation = Conversation {
                        id: prior.conversation_id.clone(),
                        partner: prior.partner.clone(),
                        ..conversation
                    };
                    Ok(self
                        .deliver(&prior, &conversation, &user, event, now_ms)
                        .await)
                }
                // Refused before: refused again, so it is parked again if parking failed
                // (the dead-letter queue drops a repeat of the same SQS message).
                MessageStatus::Failed => Ok(Outcome::Refused(
                    prior
                        .status_reason
                        .clone()
                        .unwrap_or_else(|| "refused before".into()),
                )),
                _ => Ok(Outcome::AlreadyDone),
            },
        }
    }

    async fn deliver(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
        event: &CallbackEvent,
        now_ms: i64,
    ) -> Outcome {
        let Some(partner) = self.config.partner(&message.partner) else {
            return self
                .refuse(
                    message,
                    format!("partner {} is not configured", message.partner),
                )
                .await;
        };
        let event_type = webhook_event_type(event);
        let body = json!({
            "type": event_type,
            "delivery_id": message.id,
            "message": {
                "id": message.id,
                "direction": message.direction,
                "created_at_ms": message.created_at_ms,
                "wechat_msg_id": message.wechat_msg_id,
                "content": message.content,
            },
            "conversation": {
                "id": conversation.id,
                "channel": conversation.channel,
                "partner": conversation.partner,
            },
            "user": {
                "channel": user.channel,
                "openid": user.openid,
                "unionid": user.unionid,
                "app_user_id": user.app_user_id,
                "session_context": user.session_context,
            },
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let now_secs = now_ms.div_euclid(1000);
        match webhook::deliver(
            &self.webhooks,
            partner,
            event_type,
            &message.id,
            body,
            now_secs,
        )
        .await
        {
            Delivery::Delivered => match self
                .store
                .transition(
                    message,
                    &[MessageStatus::Received],
                    MessageStatus::Delivered,
                    None,
                )
                .await
            {
                Ok(_) => Outcome::Delivered,
                // The partner has it; a redelivery repeats the webhook, which it drops by id.
                Err(error) => Outcome::Retry(format!("delivered, status not stored: {error}")),
            },
            Delivery::Refused(status) => {
                self.refuse(message, format!("partner answered {status}"))
                    .await
            }
            Delivery::Retry(reason) => Outcome::Retry(reason),
        }
    }

    async fn refuse(&self, message: &StoredMessage, reason: String) -> Outcome {
        match self
            .store
            .transition(
                message,
                &[MessageStatus::Received],
                MessageStatus::Failed,
                Some(&reason),
            )
            .await
        {
            Ok(_) => Outcome::Refused(reason),
            Err(error) => Outcome::Retry(format!("{reason}; status not stored: {error}")),
        }
    }
}

/// Whether the push is a user action that opens the reply window (and so releases held
/// replies): a message, a card, entering the session.
pub fn opens_window(event: &CallbackEvent) -> bool {
    matches!(
        event.kind,
        EventKind::Text { .. }
            | EventKind::Image { .. }
            | EventKind::MiniProgramPage { .. }
            | EventKind::UserEnterTempSession { .. }
    )
}

/// `conversation.started` for a session entry, `message.received` for everything else.
pub fn webhook_event_type(event: &CallbackEvent) -> &'static str {
    match event.kind {
        EventKind::UserEnterTempSession { .. } => "conversation.started",
        _ => "message.received",
    }
}

/// What a push changes on its user: the reply window, routing, binding and grants.
/// `at_ms` is when the bridge received the push: windows open and `session-from` values
/// age from then, whenever the push is processed.
pub fn apply(config: &BridgeConfig, user: &mut ChannelUser, event: &CallbackEvent, at_ms: i64) {
    let merged = config.dialog.mode == DialogMode::Merged;
    match &event.kind {
        EventKind::Text { content, .. } => {
            user.window = Some(ReplyWindow::after(user.window, UserAction::Message, at_ms));
            if let Some(partner) =
                routing::switch_target(config, &user.routing, content).filter(|_| merged)
            {
                user.routing
                    .activate(&partner, at_ms, ActiveBecause::UserSwitched);
            }
        }
        EventKind::Image { .. } | EventKind::MiniProgramPage { .. } => {
            user.window = Some(ReplyWindow::after(user.window, UserAction::Message, at_ms));
        }
        EventKind::UserEnterTempSession { session_from } => {
            user.window = Some(ReplyWindow::after(
                user.window,
                UserAction::EnterSession,
                at_ms,
            ));
            let read = SessionFrom::read(
                session_from,
                config.session_from_secret.as_ref(),
                at_ms.div_euclid(1000),
            );
            if let Some(vouched) = &read.vouched {
                // Binding an account needs the value to name this very WeChat user, so a
                // signed value copied from someone else's page binds nothing.
                let for_this_user = read.get("openid") == Some(event.from_user_name.as_str());
                if let Some(app_user) = vouched.app_user_id.as_ref().filter(|_| for_this_user) {
                    user.app_user_id = Some(app_user.clone());
                }
                if config.partner(&vouched.partner).is_some() {
                    user.routing
                        .activate(&vouched.partner, at_ms, ActiveBecause::SessionFrom);
                }
            }
            user.session_context = read.context;
        }
        EventKind::SubscribePopup { entries } => {
            for entry in entries {
                if entry.accepted() {
                    *user.grants.entry(entry.template_id.clone()).or_default() += 1;
                } else {
                    user.grants.remove(&entry.template_id);
                }
            }
        }
        EventKind::SubscribeChange { entries } => {
            for entry in entries.iter().filter(|e| !e.accepted()) {
                user.grants.remove(&entry.template_id);
            }
        }
        EventKind::SubscribeSent { .. } | EventKind::Raw { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::OutboundRef;
    use crate::event::SubscribeDecision;
    use crate::queue::MemoryOutboundQueue;
    use crate::session_from::sign;
    use crate::store::memory::MemoryStore;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    const T: i64 = 1_764_150_000_000;

    /// One webhook as sent: URL, headers, body.
    type Post = (String, Vec<(&'static str, String)>, serde_json::Value);

    /// Records every webhook and answers with the statuses it is given (then 200).
    #[derive(Default)]
    struct FakeWebhooks {
        answers: Mutex<VecDeque<Option<u16>>>,
        posts: Mutex<Vec<Post>>,
    }

    impl FakeWebhooks {
        fn answer(&self, status: Option<u16>) {
            self.answers.lock().unwrap().push_back(status);
        }

        fn posts(&self) -> Vec<Post> {
            self.posts.lock().unwrap().clone()
        }
    }

    impl WebhookSender for FakeWebhooks {
        async fn post(
            &self,
            url: &str,
            headers: &[(&'static str, String)],
            body: Vec<u8>,
        ) -> Option<u16> {
            let body = serde_json::from_slice(&body).unwrap();
            self.posts
                .lock()
                .unwrap()
                .push((url.to_owned(), headers.to_vec(), body));
            self.answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Some(200))
        }
    }

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

    fn inbound(mode: &str) -> Inbound<MemoryStore, FakeWebhooks, MemoryOutboundQueue> {
        Inbound::new(
            config(mode),
            MemoryStore::default(),
            FakeWebhooks::default(),
            MemoryOutboundQueue::default(),
        )
    }

    fn push(kind: EventKind, n: i64) -> InboundMessage {
        let event = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: "o_alice".into(),
            create_time: (T / 1000) + n,
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

    async fn history(
        inbound: &Inbound<MemoryStore, FakeWebhooks, MemoryOutboundQueue>,
    ) -> Vec<StoredMessage> {
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
        let posts = inbound.webhooks.posts();
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
                closes_at_ms: T + 1000 + 48 * 3_600_000
            })
        );
    }

    #[tokio::test]
    async fn a_redelivery_stores_and_sends_nothing_twice() {
        let inbound = inbound("merged");
        let message = text(1, "hello");
        assert_eq!(inbound.process(&message, T).await, Outcome::Delivered);
        assert_eq!(inbound.process(&message, T).await, Outcome::AlreadyDone);
        assert_eq!(inbound.webhooks.posts().len(), 1);
        assert_eq!(history(&inbound).await.len(), 1);
    }

    #[tokio::test]
    async fn a_partner_that_is_down_gets_the_same_delivery_again_later() {
        let inbound = inbound("merged");
        inbound.webhooks.answer(Some(503));
        inbound.webhooks.answer(None);
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
            .webhooks
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
        inbound.webhooks.answer(Some(400));
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
        assert_eq!(inbound.webhooks.posts().len(), 1);
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
        let posts = inbound.webhooks.posts();
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
        let posts = inbound.webhooks.posts();
        assert!(posts.iter().all(|(url, _, _)| url == "http://hotel/h"));
        let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
        assert_eq!(user.app_user_id, None);
    }

    #[tokio::test]
    async fn an_unsigned_session_from_is_context_only() {
        let inbound = inbound("merged");
        assert_eq!(
            inbound
                .process(&entered(1, "partner=hotel-9&uid=app-42"), T)
                .await,
            Outcome::Delivered
        );
        let posts = inbound.webhooks.posts();
        assert_eq!(
            posts[0].0, "http://desk/p",
            "not routed by an unsigned value"
        );
        assert_eq!(posts[0].2["user"]["app_user_id"], serde_json::Value::Null);
        assert_eq!(
            posts[0].2["user"]["session_context"][0],
            json!(["partner", "hotel-9"])
        );
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
        let urls: Vec<String> = inbound
            .webhooks
            .posts()
            .into_iter()
            .map(|(url, _, _)| url)
            .collect();
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
        let posts = inbound.webhooks.posts();
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
        assert_eq!(
            inbound.webhooks.posts().len(),
            3,
            "grants changes are delivered too"
        );
    }

    /// A held reply of the platform to o_alice.
    async fn held_reply(
        inbound: &Inbound<MemoryStore, FakeWebhooks, MemoryOutboundQueue>,
        n: i64,
    ) -> OutboundRef {
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
    async fn holding(
        inbound: &Inbound<MemoryStore, FakeWebhooks, MemoryOutboundQueue>,
        count: i64,
    ) -> Vec<OutboundRef> {
        let mut held = Vec::new();
        for n in 1..=count {
            held.push(held_reply(inbound, n).await);
        }
        let mut user = ChannelUser::new("mp", "o_alice");
        user.window = Some(ReplyWindow {
            remaining: 0,
            closes_at_ms: T + 3_600_000,
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
        assert!(after.held.is_empty());
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
            Outcome::Retry(reason) if reason.contains("not released")
        ));
        assert!(
            inbound.webhooks.posts().is_empty(),
            "released before the webhook"
        );
        // The user's write happened: the list now lives on the message only.
        let user = inbound.store.user("mp", "o_alice").await.unwrap().unwrap();
        assert!(user.held.is_empty());
        inbound.outbound.fail(false);
        assert_eq!(inbound.process(&message, T).await, Outcome::Delivered);
        assert_eq!(inbound.process(&message, T).await, Outcome::AlreadyDone);
        let sent = inbound.outbound.sent();
        let ids: Vec<&str> = sent.iter().map(|(r, _)| r.message_id.as_str()).collect();
        assert_eq!(ids, ["out_1", "out_2", "out_1", "out_2"]);
        assert_eq!(sent[0].1, sent[2].1, "the same deduplication id every time");
        assert_eq!(sent[0].0, held[0]);
        assert_eq!(inbound.webhooks.posts().len(), 1);
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
}
