//! What partners do through the bridge's API, apart from HTTP: reply, read history, list
//! conversations, bind users, show typing, fetch media. [`crate::handlers::api`] maps
//! requests and answers; this module decides.
//!
//! A partner sees only its own conversations (`Conversation::partner`): another
//! partner's conversation answers 404, as one that does not exist. In separate mode a
//! channel belongs to one partner; another partner's request on it answers 403.

use crate::config::{BridgeConfig, ChannelConfig, DialogMode};
use crate::dispatch::OutboundRef;
use crate::outbound::{Content, MAX_TEXT_BYTES};
use crate::push::{PushRecord, PushTarget, SubscribeForm};
use crate::queue::OutboundQueue;
use crate::routing;
use crate::store::{
    ChannelUser, Conversation, Direction, MessageCursor, MessageStatus, Recorded, Store,
    StoreError, StoredMessage,
};
use crate::token::{CallError, TokenStore, Tokens};
use crate::wechat_api::{ApiError, Media, Remedy, WeChatApi};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// History pages: 20 messages unless asked, at most 100.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// Media answered through the API: a Lambda answer is at most 6 MB once base64-encoded.
pub const MAX_MEDIA_BYTES: usize = 4 * 1024 * 1024;

/// Why a request is not done: the HTTP status, a stable code and a reason that names
/// fields, never their content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub reason: String,
}

impl Refusal {
    pub fn new(status: u16, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            code,
            reason: reason.into(),
        }
    }

    /// 400 naming the field.
    pub fn field(field: &str, reason: &str) -> Self {
        Self::new(400, "invalid_request", format!("{field}: {reason}"))
    }

    fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("no such {what}"))
    }

    fn store(error: StoreError) -> Self {
        tracing::warn!(%error, "store unavailable for an API request");
        Self::new(
            503,
            "unavailable",
            "the message store is unavailable; retry",
        )
    }

    fn wechat(error: CallError) -> Self {
        match error {
            error if error.is_final() => Self::new(409, "wechat_refused", error.to_string()),
            error => {
                tracing::warn!(%error, "WeChat unavailable for an API request");
                Self::new(502, "wechat_unavailable", "WeChat did not answer; retry")
            }
        }
    }
}

type Answer<T> = Result<T, Refusal>;

/// `POST /v1/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub to: Option<Recipient>,
    pub client_message_id: String,
    pub content: Content,
}

/// `POST /v1/pushes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub to: Recipient,
    /// The partner's id for this push: a repeat answers the first push, delivered once.
    pub push_id: String,
    pub content: Content,
    /// The subscribe message to send when the window does not allow a customer-service
    /// message and the user granted the template.
    #[serde(default)]
    pub subscribe: Option<SubscribeForm>,
    /// After this (ms since the epoch) the push is not worth sending: it ends `expired`.
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushAccepted {
    pub push_id: String,
    pub message_id: String,
    pub conversation_id: String,
    pub status: MessageStatus,
    pub created_at_ms: i64,
}

/// A user to write to without a conversation id: a channel user, or an app user (with a
/// channel when they are bound on several).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub openid: Option<String>,
    #[serde(default)]
    pub app_user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accepted {
    pub message_id: String,
    pub conversation_id: String,
    pub status: MessageStatus,
    pub created_at_ms: i64,
}

/// A message as partners read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageView {
    pub id: String,
    pub conversation_id: String,
    pub direction: Direction,
    pub partner: String,
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub created_at_ms: i64,
    pub content: Value,
    /// Pushes (and replies that fell back through the push chain): the request, each
    /// attempt and the path that settled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushRecord>,
}

impl From<StoredMessage> for MessageView {
    /// A base64 image is not repeated in history (a page of them would pass the 6 MB a
    /// Lambda may answer): `base64` gives way to `base64_bytes`, its length.
    fn from(mut message: StoredMessage) -> Self {
        if let Some(content) = message.content.as_object_mut() {
            if let Some(Value::String(image)) = content.remove("base64") {
                content.insert("base64_bytes".into(), json!(image.len()));
            }
        }
        Self {
            id: message.id,
            conversation_id: message.conversation_id,
            direction: message.direction,
            partner: message.partner,
            status: message.status,
            status_reason: message.status_reason,
            created_at_ms: message.created_at_ms,
            content: message.content,
            push: message.push,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPage {
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationView {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub app_user_id: Option<String>,
}

/// `PUT /v1/bindings/{channel}/{openid}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    pub app_user_id: String,
    /// Rebinds a user already bound to another app user.
    #[serde(default)]
    pub replace: bool,
}

/// `POST /v1/conversations/{id}/typing`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypingRequest {
    #[serde(default = "typing_default")]
    pub typing: bool,
}

fn typing_default() -> bool {
    true
}

/// Ids partners choose: client message ids, app user ids.
fn valid_client_id(id: &str, max: usize) -> bool {
    (1..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

pub struct PartnerApi<S, T, Q> {
    config: BridgeConfig,
    store: S,
    tokens: Tokens<T>,
    wechat: WeChatApi,
    queue: Q,
    /// `push.fifo`, for `POST /v1/pushes`.
    pushes: Option<Q>,
    clock: fn() -> i64,
}

impl<S: Store, T: TokenStore, Q: OutboundQueue> PartnerApi<S, T, Q> {
    pub fn new(
        config: BridgeConfig,
        store: S,
        tokens: Tokens<T>,
        wechat: WeChatApi,
        queue: Q,
        clock: fn() -> i64,
    ) -> Self {
        Self {
            config,
            store,
            tokens,
            wechat,
            queue,
            pushes: None,
            clock,
        }
    }

    /// `push.fifo`: where accepted pushes go (without it, `POST /v1/pushes` answers 503).
    pub fn with_push_queue(mut self, pushes: Q) -> Self {
        self.pushes = Some(pushes);
        self
    }

    pub fn push_queue(&self) -> Option<&Q> {
        self.pushes.as_ref()
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }

    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// A channel the partner may act on: any in merged mode, its own in separate mode.
    fn channel(&self, partner: &str, channel_id: &str) -> Answer<&ChannelConfig> {
        let channel = self
            .config
            .channel(channel_id)
            .ok_or_else(|| Refusal::not_found("channel"))?;
        if !self.config.may_use(partner, channel_id) {
            return Err(Refusal::new(
                403,
                "forbidden",
                "this channel belongs to another partner",
            ));
        }
        Ok(channel)
    }

    /// In merged mode the sender's name goes before a text, all within WeChat's limit.
    fn fits_with_sender(&self, partner: &str, content: &Content) -> Answer<()> {
        let Content::Text { text } = content else {
            return Ok(());
        };
        let prefix = if self.config.dialog.mode == DialogMode::Merged {
            routing::sender_prefix(&self.config, partner).len()
        } else {
            0
        };
        if prefix + text.len() > MAX_TEXT_BYTES {
            return Err(Refusal::field(
                "content.text",
                "too long: with the sender's name it is over WeChat's 2048 bytes",
            ));
        }
        Ok(())
    }

    /// The partner's conversation with this id; 404 when it is not the partner's.
    pub async fn own_conversation(&self, partner: &str, id: &str) -> Answer<Conversation> {
        let (channel, openid) = parse_conversation_id(self.config.dialog.mode, id)
            .ok_or_else(|| Refusal::not_found("conversation"))?;
        let conversation = self
            .store
            .conversation(channel, openid, id)
            .await
            .map_err(Refusal::store)?
            .filter(|c| c.partner == partner)
            .ok_or_else(|| Refusal::not_found("conversation"))?;
        Ok(conversation)
    }

    async fn user(&self, channel: &str, openid: &str) -> Answer<ChannelUser> {
        self.store
            .user(channel, openid)
            .await
            .map_err(Refusal::store)?
            .ok_or_else(|| Refusal::not_found("user on this channel"))
    }

    /// The conversation a message goes to: named, or the partner's with a user (created
    /// with the message when it is the partner's first).
    async fn target(
        &self,
        partner: &str,
        request: &SendRequest,
        now_ms: i64,
    ) -> Answer<Conversation> {
        let (channel_id, openid) = match (&request.conversation_id, &request.to) {
            (Some(id), None) => return self.own_conversation(partner, id).await,
            (
                None,
                Some(Recipient {
                    channel: Some(channel),
                    openid: Some(openid),
                    app_user_id: None,
                }),
            ) => (channel.clone(), openid.clone()),
            (
                None,
                Some(Recipient {
                    channel,
                    openid: None,
                    app_user_id: Some(app_user),
                }),
            ) => {
                let user = self
                    .bound_user(partner, app_user, channel.as_deref())
                    .await?;
                (user.channel, user.openid)
            }
            (None, Some(_)) => {
                return Err(Refusal::field(
                    "to",
                    "give channel and openid, or app_user_id (and channel)",
                ))
            }
            _ => {
                return Err(Refusal::field(
                    "conversation_id",
                    "give conversation_id or to, one of them",
                ))
            }
        };
        let channel = self.channel(partner, &channel_id)?;
        self.user(&channel.id, &openid).await?;
        self.conversation_with(partner, &channel.id, &openid, now_ms)
            .await
    }

    /// The partner's conversation with a user, as stored, or new (opened now).
    async fn conversation_with(
        &self,
        partner: &str,
        channel: &str,
        openid: &str,
        now_ms: i64,
    ) -> Answer<Conversation> {
        let id = routing::conversation_id(self.config.dialog.mode, channel, openid, partner);
        let existing = self
            .store
            .conversation(channel, openid, &id)
            .await
            .map_err(Refusal::store)?;
        Ok(existing.unwrap_or_else(|| Conversation::new(&id, channel, openid, partner, now_ms)))
    }

    /// The one channel user bound to an app user (on `channel` if named).
    async fn bound_user(
        &self,
        partner: &str,
        app_user_id: &str,
        channel: Option<&str>,
    ) -> Answer<ChannelUser> {
        let mut users = self.bindings(partner, app_user_id, channel).await?;
        match users.len() {
            0 => Err(Refusal::not_found("user bound to this app user")),
            1 => Ok(users.remove(0)),
            _ => Err(Refusal::new(
                409,
                "ambiguous_recipient",
                "the app user is bound on several channels: name to.channel",
            )),
        }
    }

    /// The channel users bound to an app user on the channels the partner may use (only
    /// `channel` if named).
    async fn bindings(
        &self,
        partner: &str,
        app_user_id: &str,
        channel: Option<&str>,
    ) -> Answer<Vec<ChannelUser>> {
        let mut users = self
            .store
            .users_of_app_user(app_user_id)
            .await
            .map_err(Refusal::store)?;
        users.retain(|u| {
            channel.is_none_or(|c| u.channel == c) && self.config.may_use(partner, &u.channel)
        });
        Ok(users)
    }

    /// Stores the reply as `queued` and hands it to `dispatch`; a repeat of the request
    /// (same `client_message_id`) answers the first message and writes nothing.
    pub async fn send(&self, partner: &str, request: SendRequest) -> Answer<Accepted> {
        if !valid_client_id(&request.client_message_id, 64) {
            return Err(Refusal::field(
                "client_message_id",
                "1 to 64 characters of A-Z a-z 0-9 - _ . : @",
            ));
        }
        request
            .content
            .validate()
            .map_err(|e| Refusal::field(e.field, e.reason))?;
        self.fits_with_sender(partner, &request.content)?;
        let now_ms = self.now_ms();
        let mut conversation = self.target(partner, &request, now_ms).await?;
        conversation.last_message_at_ms = now_ms;
        let content = serde_json::to_value(&request.content)
            .map_err(|_| Refusal::field("content", "cannot be stored"))?;
        let message = StoredMessage::reply(
            &conversation,
            format!("out_{}", hex::encode(rand::random::<[u8; 12]>())),
            now_ms,
            content,
        );
        let stored = match self
            .store
            .put_outbound(&message, &conversation, &request.client_message_id)
            .await
            .map_err(Refusal::store)?
        {
            Recorded::New => message,
            Recorded::Duplicate(first) => {
                if first.conversation_id != message.conversation_id
                    || first.content != message.content
                {
                    return Err(Refusal::new(
                        409,
                        "client_message_id_reused",
                        "client_message_id was used for a different message",
                    ));
                }
                *first
            }
        };
        enqueue_queued(&self.queue, &stored, "client_message_id").await?;
        tracing::info!(partner, message_id = %stored.id, "reply accepted");
        Ok(Accepted {
            message_id: stored.id,
            conversation_id: stored.conversation_id,
            status: stored.status,
            created_at_ms: stored.created_at_ms,
        })
    }

    /// Stores the push as `queued` in the partner's conversation with the user and hands it
    /// to `push`; a repeat of the request (same `push_id`) answers the first push and
    /// writes nothing.
    pub async fn push(&self, partner: &str, request: PushRequest) -> Answer<PushAccepted> {
        if !valid_client_id(&request.push_id, 64) {
            return Err(Refusal::field(
                "push_id",
                "1 to 64 characters of A-Z a-z 0-9 - _ . : @",
            ));
        }
        if matches!(request.content, Content::Image { .. }) {
            return Err(Refusal::field(
                "content.type",
                "a push is text, link or miniprogrampage",
            ));
        }
        request
            .content
            .validate()
            .map_err(|e| Refusal::field(e.field, e.reason))?;
        self.fits_with_sender(partner, &request.content)?;
        if let Some(form) = &request.subscribe {
            form.validate()
                .map_err(|(field, reason)| Refusal::field(&field, reason))?;
            // A user's grant is for one template; another partner's push must not spend it.
            let allowed = self
                .config
                .partner(partner)
                .is_some_and(|p| p.subscribe_templates.contains(&form.template_id));
            if !allowed {
                return Err(Refusal::new(
                    403,
                    "forbidden",
                    "this partner may not use this subscribe template (partners[].subscribe_templates)",
                ));
            }
        }
        if request.expires_at_ms.is_some_and(|at| at <= 0) {
            return Err(Refusal::field(
                "expires_at_ms",
                "milliseconds since the epoch",
            ));
        }
        let Some(pushes) = self.pushes.as_ref() else {
            return Err(Refusal::new(
                503,
                "unavailable",
                "pushes are not set up in this deployment",
            ));
        };
        let now_ms = self.now_ms();
        let (user, to) = self.push_target(partner, &request.to, now_ms).await?;
        let mut conversation = self
            .conversation_with(partner, &user.channel, &user.openid, now_ms)
            .await?;
        conversation.last_message_at_ms = now_ms;
        let content = serde_json::to_value(&request.content)
            .map_err(|_| Refusal::field("content", "cannot be stored"))?;
        let record = PushRecord {
            push_id: Some(request.push_id.clone()),
            to,
            subscribe: request.subscribe,
            expires_at_ms: request.expires_at_ms,
            fallback: false,
            attempts: Vec::new(),
            path: None,
        };
        let message = StoredMessage {
            id: format!("push_{}", hex::encode(rand::random::<[u8; 12]>())),
            conversation_id: conversation.id.clone(),
            channel: conversation.channel.clone(),
            openid: conversation.openid.clone(),
            partner: partner.to_owned(),
            direction: Direction::Push,
            status: MessageStatus::Queued,
            status_reason: None,
            created_at_ms: now_ms,
            dedupe_key: None,
            wechat_msg_id: None,
            content,
            released: Vec::new(),
            reported: None,
            push: Some(record.clone()),
        };
        let stored = match self
            .store
            .put_push(&message, &conversation, &request.push_id)
            .await
            .map_err(Refusal::store)?
        {
            Recorded::New => message,
            Recorded::Duplicate(first) => {
                let same = first.content == message.content
                    && first.push.as_ref().is_some_and(|p| p.same_request(&record));
                if !same {
                    return Err(Refusal::new(
                        409,
                        "push_id_reused",
                        "push_id was used for a different push",
                    ));
                }
                *first
            }
        };
        enqueue_queued(pushes, &stored, "push_id").await?;
        tracing::info!(partner, message_id = %stored.id, "push accepted");
        Ok(PushAccepted {
            push_id: request.push_id,
            message_id: stored.id,
            conversation_id: stored.conversation_id,
            status: stored.status,
            created_at_ms: stored.created_at_ms,
        })
    }

    /// The user a push is stored for, and the target as it is kept: a channel user; or an
    /// app user's binding (on `channel` if named) — one with an open window, else the
    /// first. The push function chooses again among all of them when it delivers.
    async fn push_target(
        &self,
        partner: &str,
        to: &Recipient,
        now_ms: i64,
    ) -> Answer<(ChannelUser, PushTarget)> {
        match to {
            Recipient {
                channel: Some(channel),
                openid: Some(openid),
                app_user_id: None,
            } => {
                let channel = self.channel(partner, channel)?;
                let user = self.user(&channel.id, openid).await?;
                let target = PushTarget {
                    app_user_id: None,
                    channel: Some(user.channel.clone()),
                    openid: Some(user.openid.clone()),
                };
                Ok((user, target))
            }
            Recipient {
                channel,
                openid: None,
                app_user_id: Some(app_user),
            } => {
                if let Some(channel) = channel {
                    self.channel(partner, channel)?;
                }
                let mut users = self.bindings(partner, app_user, channel.as_deref()).await?;
                let open = users.iter().position(|u| {
                    matches!(
                        crate::reply_window::ReplyWindow::allowance(u.window.as_ref(), now_ms),
                        crate::reply_window::Allowance::Open { .. }
                    )
                });
                if users.is_empty() {
                    return Err(Refusal::not_found("user bound to this app user"));
                }
                let user = users.swap_remove(open.unwrap_or(0));
                let target = PushTarget {
                    app_user_id: Some(app_user.clone()),
                    channel: channel.clone(),
                    openid: None,
                };
                Ok((user, target))
            }
            _ => Err(Refusal::field(
                "to",
                "give channel and openid, or app_user_id (and channel)",
            )),
        }
    }

    /// A page of the conversation, newest first.
    pub async fn history(
        &self,
        partner: &str,
        conversation_id: &str,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Answer<HistoryPage> {
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| Refusal::field("limit", "a number from 1 to 100"))?,
        };
        let before = cursor
            .map(|c| {
                decode_cursor(c)
                    .ok_or_else(|| Refusal::field("cursor", "not a cursor this API gave"))
            })
            .transpose()?;
        let conversation = self.own_conversation(partner, conversation_id).await?;
        let mut messages = self
            .store
            .history_page(&conversation.id, limit + 1, before.as_ref())
            .await
            .map_err(Refusal::store)?;
        let more = messages.len() > limit;
        messages.truncate(limit);
        let next_cursor = more
            .then(|| {
                messages
                    .last()
                    .map(|m| encode_cursor(&MessageCursor::after(m)))
            })
            .flatten();
        Ok(HistoryPage {
            messages: messages.into_iter().map(MessageView::from).collect(),
            next_cursor,
        })
    }

    /// The partner's conversations with a channel user or with the users bound to an app
    /// user, latest first.
    pub async fn conversations(
        &self,
        partner: &str,
        query: &[(String, String)],
    ) -> Answer<Vec<ConversationView>> {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let users = match (param("channel"), param("openid"), param("app_user_id")) {
            (Some(channel), Some(openid), None) => {
                self.channel(partner, channel)?;
                self.store
                    .user(channel, openid)
                    .await
                    .map_err(Refusal::store)?
                    .into_iter()
                    .collect()
            }
            (channel, None, Some(app_user)) => self.bindings(partner, app_user, channel).await?,
            _ => {
                return Err(Refusal::field(
                    "query",
                    "give channel and openid, or app_user_id (and channel)",
                ))
            }
        };
        let mut found = Vec::new();
        for user in users {
            for conversation in self
                .store
                .conversations(&user.channel, &user.openid)
                .await
                .map_err(Refusal::store)?
            {
                if conversation.partner == partner {
                    found.push(ConversationView {
                        conversation,
                        app_user_id: user.app_user_id.clone(),
                    });
                }
            }
        }
        found.sort_by(|a, b| {
            b.conversation
                .last_message_at_ms
                .cmp(&a.conversation.last_message_at_ms)
        });
        Ok(found)
    }

    /// Binds a channel user the partner talks with to an app user.
    pub async fn bind(
        &self,
        partner: &str,
        channel: &str,
        openid: &str,
        request: BindRequest,
    ) -> Answer<Value> {
        if !valid_client_id(&request.app_user_id, 128) {
            return Err(Refusal::field(
                "app_user_id",
                "1 to 128 characters of A-Z a-z 0-9 - _ . : @",
            ));
        }
        if !self.config.partner(partner).is_some_and(|p| p.can_bind) {
            return Err(Refusal::new(
                403,
                "forbidden",
                "this partner may not bind users (partners[].can_bind)",
            ));
        }
        self.channel(partner, channel)?;
        let talks_with = self
            .store
            .conversations(channel, openid)
            .await
            .map_err(Refusal::store)?
            .iter()
            .any(|c| c.partner == partner);
        if !talks_with {
            return Err(Refusal::not_found("user in your conversations"));
        }
        for _ in 0..3 {
            let mut user = self.user(channel, openid).await?;
            match user.app_user_id.as_deref() {
                Some(bound) if bound == request.app_user_id => {}
                Some(_) if !request.replace => {
                    return Err(Refusal::new(
                        409,
                        "already_bound",
                        "the user is bound to another app user; send replace: true to rebind",
                    ))
                }
                _ => {
                    user.app_user_id = Some(request.app_user_id.clone());
                    match self.store.put_user(&user).await {
                        Err(StoreError::Conflict) => continue,
                        Err(error) => return Err(Refusal::store(error)),
                        Ok(()) => {}
                    }
                }
            }
            return Ok(
                json!({ "channel": channel, "openid": openid, "app_user_id": request.app_user_id }),
            );
        }
        Err(Refusal::new(
            409,
            "conflict",
            "the user changed meanwhile; retry",
        ))
    }

    /// Shows (or stops) the typing indicator in the user's chat.
    pub async fn typing(
        &self,
        partner: &str,
        conversation_id: &str,
        request: TypingRequest,
    ) -> Answer<Value> {
        let conversation = self.own_conversation(partner, conversation_id).await?;
        let channel = self.channel(partner, &conversation.channel)?;
        let (wechat, path, openid) = (
            &self.wechat,
            self.config.typing_path.as_str(),
            conversation.openid.as_str(),
        );
        self.tokens
            .call(channel, self.clock, |token| async move {
                wechat.typing(path, &token, openid, request.typing).await
            })
            .await
            .map_err(Refusal::wechat)?;
        Ok(json!({ "typing": request.typing }))
    }

    /// An image WeChat holds (a user sent it): its bytes and type.
    pub async fn media(&self, partner: &str, channel: &str, media_id: &str) -> Answer<Media> {
        if !valid_client_id(media_id, 256) {
            return Err(Refusal::field("media_id", "not a WeChat media id"));
        }
        let channel = self.channel(partner, channel)?;
        let wechat = &self.wechat;
        self.tokens
            .call(channel, self.clock, |token| async move {
                wechat.media(&token, media_id, MAX_MEDIA_BYTES).await
            })
            .await
            .map_err(|error| match error {
                CallError::Api(error @ ApiError::WeChat { .. })
                    if error.remedy() == Remedy::Final =>
                {
                    Refusal::new(404, "media_not_found", error.to_string())
                }
                CallError::Api(ApiError::TooLarge(_)) => {
                    Refusal::new(502, "media_too_large", "the media is over 4 MiB")
                }
                error => Refusal::wechat(error),
            })
    }
}

/// Puts a stored message on its queue — again on a repeat of the request while it is
/// still `queued`, as the first enqueue may be what failed (SQS drops a repeat within 5
/// minutes; the consumer settles a message once). `id_field` is what the partner repeats.
async fn enqueue_queued<Q: OutboundQueue>(
    queue: &Q,
    stored: &StoredMessage,
    id_field: &str,
) -> Answer<()> {
    if stored.status != MessageStatus::Queued {
        return Ok(());
    }
    queue
        .enqueue(&OutboundRef::to(stored), &stored.id)
        .await
        .map_err(|error| {
            tracing::warn!(%error, message_id = %stored.id, "stored, not enqueued");
            Refusal::new(
                503,
                "unavailable",
                format!("stored but not queued: repeat the request with the same {id_field}"),
            )
        })
}

/// A conversation id's channel and openid: `channel:openid:partner` in merged mode,
/// `channel:openid` in separate mode (channel and partner ids have no `:`).
pub fn parse_conversation_id(mode: DialogMode, id: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let expected = match mode {
        DialogMode::Merged => 3,
        DialogMode::Separate => 2,
    };
    (parts.len() == expected && parts.iter().all(|p| !p.is_empty())).then(|| (parts[0], parts[1]))
}

fn encode_cursor(cursor: &MessageCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", cursor.created_at_ms, cursor.id))
}

fn decode_cursor(text: &str) -> Option<MessageCursor> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some(MessageCursor {
        created_at_ms: at.parse().ok()?,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_shows_a_base64_images_length_not_its_body() {
        let conversation = Conversation::new("mp:o:h", "mp", "o", "h", 1);
        let image = StoredMessage::reply(
            &conversation,
            "out_1",
            1,
            json!({"type": "image", "base64": "R0lGODlh"}),
        );
        let view = MessageView::from(image);
        assert_eq!(view.content, json!({"type": "image", "base64_bytes": 8}));
        let text = StoredMessage::reply(
            &conversation,
            "out_2",
            2,
            json!({"type": "text", "text": "hi"}),
        );
        assert_eq!(MessageView::from(text).content["text"], "hi");
    }

    #[test]
    fn conversation_ids_name_their_channel_and_user() {
        assert_eq!(
            parse_conversation_id(DialogMode::Merged, "mp:o1:hotel-9"),
            Some(("mp", "o1"))
        );
        assert_eq!(parse_conversation_id(DialogMode::Merged, "mp:o1"), None);
        assert_eq!(
            parse_conversation_id(DialogMode::Separate, "mp:o1"),
            Some(("mp", "o1"))
        );
        assert_eq!(parse_conversation_id(DialogMode::Separate, "mp::x"), None);
    }
}
