//! The fan-in: an opened push becomes the user's new state, a message in its
//! conversation and a signed webhook to the partner it is routed to.
//!
//! The message is stored first and once (the store's dedupe record), so a WeChat retry or
//! an SQS redelivery neither stores a second message nor sends a second webhook once the
//! first was delivered; a redelivery of a message stored but not yet delivered delivers
//! it (partners drop repeats by the delivery id).
//!
//! A user action that opens the reply window releases the user's held replies
//! ([`super::release`]): planned from the user's `held` list as read for the write that
//! stores the message, kept on the message, enqueued on `outbound.fifo` before the webhook —
//! and enqueued again on every redelivery, so a release is never lost. The list keeps them
//! until each is settled (dispatch takes them off), so a reply queued before the release
//! is sent behind them.

use super::partner::MediaView;
use super::release;
use super::settlement::Settlement;
use super::webhook::{self, Delivery};
use super::welcome;
use super::Bridge;
use crate::config::{BridgeConfig, ChannelConfig, DialogMode};
use crate::model::media::{inbound_media_id, is_image};
use crate::model::routing::{self, ActiveBecause};
use crate::model::session_from::SessionFrom;
use crate::model::{
    inbound_message_id, Allowance, ChannelUser, Conversation, Direction, InboundMessage, MediaCopy,
    MediaJob, MediaStatus, MessageStatus, OutboundRef, ReplyWindow, Session, StoredMessage,
    UserAction, WindowState,
};
use crate::ports::queue::{MediaQueue, QueueError};
use crate::ports::store::{MessageStore, Recorded, StoreError, UserStore};
use crate::ports::Ports;
use serde_json::json;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and delivered now.
    Delivered,
    /// Stored and settled by an earlier attempt: nothing to do.
    AlreadyDone,
    /// The partner refused it for good: stored as failed; goes to the dead-letter queue.
    Refused(String),
    /// Not finished (the partner unavailable): try again later.
    Retry(String),
    /// Not finished: the store or a queue did not answer. Try again soon.
    RetrySoon(String),
}

/// Delivered or settled before is done; refused is parked.
impl From<Outcome> for Settlement {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Delivered | Outcome::AlreadyDone => Settlement::Done,
            Outcome::Refused(reason) => Settlement::Park(reason),
            Outcome::Retry(reason) => Settlement::Retry(reason),
            Outcome::RetrySoon(reason) => Settlement::RetrySoon(reason),
        }
    }
}

/// How often a user changed under us before the message is left for a later attempt.
const CONFLICT_ATTEMPTS: usize = 3;

pub struct Inbound<P: Ports> {
    bridge: Bridge<P>,
    outbound: P::Queue,
    /// `media.fifo`, where the copies of users' images are asked for.
    media: Option<P::Queue>,
}

impl<P: Ports> Inbound<P> {
    /// `outbound` is `outbound.fifo`, where released held replies go.
    pub fn new(bridge: Bridge<P>, outbound: P::Queue) -> Self {
        Self {
            bridge,
            outbound,
            media: None,
        }
    }

    /// `media.fifo`: every image a user sends is copied into the bucket (without it,
    /// images are kept only as WeChat's media ids).
    pub fn with_media_queue(mut self, media: P::Queue) -> Self {
        self.media = Some(media);
        self
    }

    pub fn bridge(&self) -> &Bridge<P> {
        &self.bridge
    }

    pub fn outbound(&self) -> &P::Queue {
        &self.outbound
    }

    pub async fn process(&self, inbound: &InboundMessage, now_ms: i64) -> Outcome {
        for _ in 0..CONFLICT_ATTEMPTS {
            match self.try_process(inbound, now_ms).await {
                Err(StoreError::Conflict) => continue,
                // Nothing can be stored for it (an impossible key): parked with the reason.
                Err(StoreError::Rejected(reason)) => return Outcome::Refused(reason),
                Err(error) if error.is_transient() => return Outcome::RetrySoon(error.to_string()),
                Err(error) => return Outcome::Retry(error.to_string()),
                Ok(outcome) => return outcome,
            }
        }
        Outcome::RetrySoon("the channel user kept changing".into())
    }

    /// One attempt: the user's new state, the message stored with it (once), what goes out
    /// before the webhook, then the webhook unless the message was settled before.
    async fn try_process(
        &self,
        inbound: &InboundMessage,
        now_ms: i64,
    ) -> Result<Outcome, StoreError> {
        let event = &inbound.event;
        let Some(channel) = self.bridge.config.channel(&inbound.channel) else {
            return Ok(Outcome::Refused(format!(
                "channel {} is not configured",
                inbound.channel
            )));
        };
        let mut user = self.user_of(inbound).await?;
        let sub_merchant = self.sub_merchant_partner(inbound).await?;
        let session = self.session_of(event, sub_merchant.as_deref());
        apply(
            &self.bridge.config,
            &mut user,
            event,
            session,
            inbound.received_at_ms,
        );
        let released = self.released(&user, event, session, now_ms).await?;
        let Some(partner) = self.partner_for(channel, &user, sub_merchant.as_deref()) else {
            return Ok(Outcome::Refused("no partner to deliver to".into()));
        };
        if session.is_none() {
            warn_unregistered(event);
        }
        let conversation = self.conversation(inbound, partner, now_ms);
        let content = content_of(event, session, &mut user, &conversation);
        let message = self.message(inbound, &conversation, content, released);
        let recorded = self
            .bridge
            .store
            .record_inbound(&message, &conversation, &user)
            .await?;
        let stored = match &recorded {
            Recorded::New => &message,
            Recorded::Duplicate(prior) => prior,
        };
        let conversation = stored_in(stored, conversation);
        if let Err(reason) = self
            .before_webhook(stored, &conversation, &user, event)
            .await
        {
            return Ok(Outcome::RetrySoon(reason));
        }
        Ok(self
            .deliver_unless_settled(stored, &conversation, &user, event, now_ms)
            .await)
    }

    /// The channel user as stored, or a new one.
    async fn user_of(&self, inbound: &InboundMessage) -> Result<ChannelUser, StoreError> {
        let openid = &inbound.event.from_user_name;
        Ok(self
            .bridge
            .store
            .user(&inbound.channel, openid)
            .await?
            .unwrap_or_else(|| ChannelUser::new(&inbound.channel, openid)))
    }

    /// The session the push came in: the registered sub-merchant's, else the main one. A
    /// session of a sub-merchant the bridge has not registered has none: its window is not
    /// one any partner's reply can use, so none is kept for it.
    fn session_of<'a>(
        &self,
        event: &CallbackEvent,
        sub_merchant: Option<&'a str>,
    ) -> Option<Session<'a>> {
        match (&event.business_id, sub_merchant) {
            (_, Some(partner)) => Some(Session::SubMerchant(partner)),
            (Some(_), None) if self.sub_merchant_mode() => None,
            _ => Some(Session::Main),
        }
    }

    /// The user acted: the session's held replies go out now, planned from the user this
    /// message is stored with.
    async fn released(
        &self,
        user: &ChannelUser,
        event: &CallbackEvent,
        session: Option<Session<'_>>,
        now_ms: i64,
    ) -> Result<Vec<OutboundRef>, StoreError> {
        let Some(session) = session.filter(|_| opens_window(event)) else {
            return Ok(Vec::new());
        };
        let held = user.held_in(session);
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let sends_left = match ReplyWindow::allowance(user.window_in(session), now_ms) {
            Allowance::Open { remaining } => remaining,
            _ => 0,
        };
        release::plan(&self.bridge.store, &self.bridge.config, held, sends_left).await
    }

    /// Who gets the message: the registered sub-merchant's partner, else the user's routing
    /// (a configured partner), else the default partner.
    fn partner_for<'a>(
        &'a self,
        channel: &'a ChannelConfig,
        user: &'a ChannelUser,
        sub_merchant: Option<&'a str>,
    ) -> Option<&'a str> {
        let config = &self.bridge.config;
        sub_merchant
            .or_else(|| routing::partner_for(config, channel, &user.routing))
            .filter(|p| config.partner(p).is_some())
            .or(config.dialog.default_partner.as_deref())
    }

    /// The conversation the message is stored in (it may have been stored before, in
    /// another: see [`stored_in`]).
    fn conversation(&self, inbound: &InboundMessage, partner: &str, now_ms: i64) -> Conversation {
        let config = &self.bridge.config;
        let openid = &inbound.event.from_user_name;
        Conversation {
            id: routing::conversation_id(config.dialog.mode, &inbound.channel, openid, partner),
            channel: inbound.channel.clone(),
            openid: openid.clone(),
            partner: partner.to_owned(),
            created_at_ms: inbound.received_at_ms,
            last_message_at_ms: inbound.received_at_ms,
            // From when the message is handled, not received: one handled late (after a
            // retry's backoff) must not move the deadline before a reply written meanwhile.
            idle_at_ms: config.idle_at(partner, now_ms.max(inbound.received_at_ms)),
        }
    }

    /// The message as stored (`received`), with the replies it released and, when images
    /// are copied, its copy pending.
    fn message(
        &self,
        inbound: &InboundMessage,
        conversation: &Conversation,
        content: serde_json::Value,
        released: Vec<OutboundRef>,
    ) -> StoredMessage {
        let event = &inbound.event;
        let media = (self.media.is_some() && is_image(&content)).then(|| MediaCopy::pending(None));
        StoredMessage {
            id: inbound_message_id(&inbound.dedupe_key),
            conversation_id: conversation.id.clone(),
            channel: inbound.channel.clone(),
            openid: event.from_user_name.clone(),
            partner: conversation.partner.clone(),
            direction: Direction::In,
            status: MessageStatus::Received,
            status_reason: None,
            created_at_ms: inbound.received_at_ms,
            dedupe_key: Some(inbound.dedupe_key.clone()),
            wechat_msg_id: event.msg_id().map(str::to_owned),
            content,
            released,
            reported: None,
            push: None,
            media,
        }
    }

    /// What goes out before the webhook, and again on every redelivery (each is made once),
    /// so none is lost: the released replies (SQS drops a repeat of the same deduplication
    /// id; dispatch sends a message once), the image's copy until it is kept, and — entering
    /// from a partner's page, until the entry is delivered — its welcome. A failure is the
    /// bridge's own parts' (a store or a queue): the reason to try again soon.
    async fn before_webhook(
        &self,
        stored: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
        event: &CallbackEvent,
    ) -> Result<(), String> {
        release::enqueue(&self.outbound, &stored.released, &stored.id)
            .await
            .map_err(|error| format!("held replies not released: {error}"))?;
        self.ask_for_copy(stored)
            .await
            .map_err(|error| format!("image copy not queued: {error}"))?;
        let entered = matches!(event.kind, EventKind::UserEnterTempSession { .. });
        if entered && stored.status == MessageStatus::Received {
            welcome::greet(&self.bridge, &self.outbound, stored, conversation, user)
                .await
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// The webhook for a message not yet delivered; one refused before is refused again,
    /// so it is parked again if parking failed (the dead-letter queue drops a repeat of the
    /// same SQS message); anything else was settled before.
    async fn deliver_unless_settled(
        &self,
        stored: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
        event: &CallbackEvent,
        now_ms: i64,
    ) -> Outcome {
        match stored.status {
            MessageStatus::Received => {
                self.deliver(stored, conversation, user, event, now_ms)
                    .await
            }
            MessageStatus::Failed => Outcome::Refused(
                stored
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "refused before".into()),
            ),
            _ => Outcome::AlreadyDone,
        }
    }

    async fn ask_for_copy(&self, message: &StoredMessage) -> Result<(), QueueError> {
        let (Some(queue), Some(media_id)) = (&self.media, inbound_media_id(message)) else {
            return Ok(());
        };
        if message
            .media
            .as_ref()
            .is_none_or(|media| media.status != MediaStatus::Pending)
        {
            return Ok(());
        }
        let job = MediaJob::of(message, media_id, message.created_at_ms);
        queue.enqueue_copy(&job).await
    }

    fn sub_merchant_mode(&self) -> bool {
        self.bridge.config.dialog.mode == DialogMode::SubMerchant
    }

    /// Sub-merchant mode: the configured partner registered under the push's `BusinessId`.
    async fn sub_merchant_partner(
        &self,
        inbound: &InboundMessage,
    ) -> Result<Option<String>, StoreError> {
        let Some(business_id) = inbound.event.business_id.as_deref() else {
            return Ok(None);
        };
        if !self.sub_merchant_mode() {
            return Ok(None);
        }
        let partner = self
            .bridge
            .partner_of_business(&inbound.channel, business_id)
            .await?;
        let config = &self.bridge.config;
        Ok(partner.filter(|p| {
            config.partner(p).is_some() && Session::of(config, p) == Session::SubMerchant(p)
        }))
    }

    /// The signed webhook to the message's partner, and its status as the partner answered.
    async fn deliver(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
        event: &CallbackEvent,
        now_ms: i64,
    ) -> Outcome {
        let Some(partner) = self.bridge.config.partner(&message.partner) else {
            return self
                .refuse(
                    message,
                    format!("partner {} is not configured", message.partner),
                )
                .await;
        };
        let event_type = match (webhook_event_type(event), message.content.get("reopened")) {
            ("message.received", Some(_)) => "conversation.reopened",
            (event_type, _) => event_type,
        };
        // What the partner may send back now, so a desk can show it without asking.
        let window = WindowState::of(
            user,
            Session::of(&self.bridge.config, &partner.id),
            &partner.subscribe_templates,
            now_ms,
        );
        let body = received_body(event_type, message, conversation, user, window);
        let now_secs = now_ms.div_euclid(1000);
        match webhook::deliver(
            &self.bridge.webhooks,
            partner,
            event_type,
            &message.id,
            body,
            now_secs,
        )
        .await
        {
            Delivery::Delivered => self.delivered(message).await,
            Delivery::Refused(status) => {
                self.refuse(message, format!("partner answered {status}"))
                    .await
            }
            Delivery::Retry(reason) => Outcome::Retry(reason),
        }
    }

    async fn delivered(&self, message: &StoredMessage) -> Outcome {
        use MessageStatus::{Delivered, Received};
        match self
            .bridge
            .store
            .transition(message, &[Received], Delivered, None)
            .await
        {
            Ok(_) => Outcome::Delivered,
            // The partner has it; a redelivery repeats the webhook, which it drops by id.
            Err(error) => Outcome::RetrySoon(format!("delivered, status not stored: {error}")),
        }
    }

    async fn refuse(&self, message: &StoredMessage, reason: String) -> Outcome {
        match self
            .bridge
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
            Err(error) => Outcome::RetrySoon(format!("{reason}; status not stored: {error}")),
        }
    }
}

/// The message's content as the partner reads it, and what telling it changes on the user:
/// an entry's context belongs to one partner ([`context_owner`]) — the raw `session_from`
/// holds the same pairs, so it goes with the entry only to that partner — and a closed
/// conversation the user acts in opens again, in the same write (kept on the message, so a
/// redelivery tells the partner the same).
fn content_of(
    event: &CallbackEvent,
    session: Option<Session<'_>>,
    user: &mut ChannelUser,
    conversation: &Conversation,
) -> serde_json::Value {
    let mut content = serde_json::to_value(&event.kind).unwrap_or_default();
    if let EventKind::UserEnterTempSession { .. } = event.kind {
        let owner = context_owner(session, &user.session_context, &conversation.partner);
        if let (true, Some(fields)) = (owner != conversation.partner, content.as_object_mut()) {
            fields.remove("session_from");
        }
        user.session_context_partner = Some(owner);
    }
    if let (Some(business_id), Some(fields)) = (&event.business_id, content.as_object_mut()) {
        fields.insert("business_id".into(), business_id.as_str().into());
    }
    let reopened = opens_window(event)
        .then(|| user.closed.remove(&conversation.id))
        .flatten();
    if let (Some(closed), Some(fields)) = (reopened, content.as_object_mut()) {
        fields.insert("reopened".into(), json!(closed));
    }
    content
}

/// The webhook's body for a message the user sent (or a session entry).
fn received_body(
    event_type: &str,
    message: &StoredMessage,
    conversation: &Conversation,
    user: &ChannelUser,
    window: WindowState,
) -> Vec<u8> {
    let body = json!({
        "type": event_type,
        "delivery_id": message.id,
        "message": {
            "id": message.id,
            "direction": message.direction,
            "created_at_ms": message.created_at_ms,
            "wechat_msg_id": message.wechat_msg_id,
            "content": message.content,
            "media": MediaView::of(message),
        },
        "conversation": {
            "id": conversation.id,
            "channel": conversation.channel,
            "partner": conversation.partner,
        },
        "user": webhook::user_fields(user, &conversation.partner),
        "window": window,
        "reopened": message.content.get("reopened"),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// A push from a sub-merchant session no partner is registered under goes to the default
/// partner: said in the log.
fn warn_unregistered(event: &CallbackEvent) {
    tracing::warn!(
        business_id = event.business_id.as_deref().unwrap_or_default(),
        "a push from a sub-merchant session no partner is registered under; handed to the default partner"
    );
}

/// The conversation as `stored` was stored in it: a redelivery's message may have been
/// stored before the routing changed.
fn stored_in(stored: &StoredMessage, conversation: Conversation) -> Conversation {
    Conversation {
        id: stored.conversation_id.clone(),
        partner: stored.partner.clone(),
        ..conversation
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

/// `conversation.started` for a session entry, `message.received` for everything else
/// (`conversation.reopened` instead when the message reopens a closed conversation).
pub fn webhook_event_type(event: &CallbackEvent) -> &'static str {
    match event.kind {
        EventKind::UserEnterTempSession { .. } => "conversation.started",
        _ => "message.received",
    }
}

/// Whose an entry's context is: the one partner shown its pairs (`user.session_context`)
/// and the entry's raw `session_from`. The partner whose sub-merchant chat the user
/// entered; else the partner the `partner` pair names, vouched or not — in merged mode a
/// vouched one is also the partner the entry made active, and an unvouched one can neither
/// route nor bind, only keep the context from every other partner; else (no partner
/// named) the partner the entry reached, which the user entered talking to.
pub fn context_owner(
    session: Option<Session<'_>>,
    context: &[(String, String)],
    reached: &str,
) -> String {
    if let Some(Session::SubMerchant(partner)) = session {
        return partner.to_owned();
    }
    context
        .iter()
        .find(|(name, _)| name == "partner")
        .map(|(_, partner)| partner.as_str())
        .filter(|partner| !partner.is_empty())
        .unwrap_or(reached)
        .to_owned()
}

/// What a push changes on its user: the reply window of the push's `session` (none for a
/// session no partner answers), routing, binding and grants. `at_ms` is when the bridge
/// received the push: windows open and `session-from` values age from then, whenever the
/// push is processed.
pub fn apply(
    config: &BridgeConfig,
    user: &mut ChannelUser,
    event: &CallbackEvent,
    session: Option<Session<'_>>,
    at_ms: i64,
) {
    let merged = config.dialog.mode == DialogMode::Merged;
    let open_window = |user: &mut ChannelUser, action| {
        if let Some(session) = session {
            let window = user.window_in_mut(session);
            *window = Some(ReplyWindow::after(*window, action, at_ms));
        }
    };
    match &event.kind {
        EventKind::Text { content, .. } => {
            open_window(user, UserAction::Message);
            if let Some(partner) =
                routing::switch_target(config, &user.routing, content).filter(|_| merged)
            {
                user.routing
                    .activate(&partner, at_ms, ActiveBecause::UserSwitched);
            }
        }
        EventKind::Image { .. } | EventKind::MiniProgramPage { .. } => {
            open_window(user, UserAction::Message);
        }
        EventKind::UserEnterTempSession { session_from } => {
            open_window(user, UserAction::EnterSession);
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
            // Whose it is is known once the entry is routed ([`context_owner`]).
            user.session_context_partner = None;
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
