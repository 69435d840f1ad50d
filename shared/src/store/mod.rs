//! The message store: channel users, conversations and every message, from either side.
//!
//! [`Store`] is the port; [`dynamo::DynamoStore`] keeps it in DynamoDB and
//! [`memory::MemoryStore`] in memory for unit tests. Keys are built in [`keys`].

pub mod conformance;
pub mod dynamo;
pub mod keys;
pub mod memory;

use crate::dispatch::OutboundRef;
use crate::push::PushRecord;
use crate::reply_window::ReplyWindow;
use crate::routing::Routing;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use thiserror::Error;

/// A WeChat user on a channel, and what the bridge knows of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelUser {
    pub channel: String,
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
    /// The app user this WeChat user is bound to (by a vouched `session-from` or the API).
    #[serde(default)]
    pub app_user_id: Option<String>,
    #[serde(default)]
    pub routing: Routing,
    #[serde(default)]
    pub window: Option<ReplyWindow>,
    /// Subscribe-message sends left, by template id.
    #[serde(default)]
    pub grants: BTreeMap<String, u32>,
    /// The latest `session-from`, vouched or not, as context for partners.
    #[serde(default)]
    pub session_context: Vec<(String, String)>,
    /// Partners' replies held because the quota was used up, in the order they were held;
    /// released (sent) when the user acts again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<OutboundRef>,
    /// Optimistic concurrency: a write succeeds only over the version it read.
    #[serde(default)]
    pub version: u64,
}

impl ChannelUser {
    /// A partner's message reached the user: one send of the window is spent, and the
    /// partner becomes the one who last wrote (merged routing).
    pub fn partner_sent(&mut self, partner: &str, at_ms: i64) {
        if let Some(window) = self.window.as_mut() {
            window.spend();
        }
        self.routing
            .activate(partner, at_ms, crate::routing::ActiveBecause::PartnerWrote);
    }

    pub fn new(channel: &str, openid: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            openid: openid.to_owned(),
            unionid: None,
            app_user_id: None,
            routing: Routing::default(),
            window: None,
            grants: BTreeMap::new(),
            session_context: Vec::new(),
            held: Vec::new(),
            version: 0,
        }
    }
}

/// A user × partner conversation (merged mode) or user × channel (separate mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub channel: String,
    pub openid: String,
    pub partner: String,
    pub created_at_ms: i64,
    pub last_message_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the WeChat user.
    In,
    /// A partner's reply.
    Out,
    /// An app notification.
    Push,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Inbound, stored, not yet delivered to the partner.
    Received,
    /// Inbound, delivered to the partner.
    Delivered,
    /// Could not be delivered or sent; `status_reason` says why.
    Failed,
    Queued,
    Sending,
    Sent,
    Held,
    WindowClosed,
    /// A push whose `expires_at_ms` passed before it could be delivered: nothing was sent.
    Expired,
    /// A push (or a reply falling back) that no WeChat path could take: it stays in the
    /// store as the app's inbox item; `status_reason` says why.
    Undeliverable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub id: String,
    pub conversation_id: String,
    pub channel: String,
    pub openid: String,
    pub partner: String,
    pub direction: Direction,
    pub status: MessageStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub created_at_ms: i64,
    /// The push's dedupe key (inbound only).
    #[serde(default)]
    pub dedupe_key: Option<String>,
    #[serde(default)]
    pub wechat_msg_id: Option<String>,
    /// What was said: the typed event for inbound messages.
    pub content: serde_json::Value,
    /// Inbound only: the held replies this user action released, as they were enqueued
    /// (so a redelivery enqueues the same again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<OutboundRef>,
    /// Outbound only: the status the partner has been told of by a `message.status`
    /// webhook (delivered, or refused for good by the partner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<MessageStatus>,
    /// Pushes, and replies falling back through the push chain: the request, each attempt
    /// and the path that delivered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushRecord>,
}

impl Conversation {
    pub fn new(id: &str, channel: &str, openid: &str, partner: &str, at_ms: i64) -> Self {
        Self {
            id: id.to_owned(),
            channel: channel.to_owned(),
            openid: openid.to_owned(),
            partner: partner.to_owned(),
            created_at_ms: at_ms,
            last_message_at_ms: at_ms,
        }
    }
}

impl StoredMessage {
    /// A partner's message in its conversation, `queued` to be sent.
    pub fn reply(
        conversation: &Conversation,
        id: impl Into<String>,
        created_at_ms: i64,
        content: serde_json::Value,
    ) -> Self {
        Self {
            id: id.into(),
            conversation_id: conversation.id.clone(),
            channel: conversation.channel.clone(),
            openid: conversation.openid.clone(),
            partner: conversation.partner.clone(),
            direction: Direction::Out,
            status: MessageStatus::Queued,
            status_reason: None,
            created_at_ms,
            dedupe_key: None,
            wechat_msg_id: None,
            content,
            released: Vec::new(),
            reported: None,
            push: None,
        }
    }
}

/// Where a page of history ends: the oldest message it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageCursor {
    pub created_at_ms: i64,
    pub id: String,
}

impl MessageCursor {
    pub fn after(message: &StoredMessage) -> Self {
        Self {
            created_at_ms: message.created_at_ms,
            id: message.id.clone(),
        }
    }
}

/// The outcome of storing a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Stored now, with its conversation and the user's new state.
    New,
    /// Stored before (a retry or redelivery): nothing was written; the stored message is
    /// returned so the caller can finish what the first attempt did not.
    Duplicate(Box<StoredMessage>),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StoreError {
    /// The user changed since it was read (another function wrote it): read and try again.
    #[error("the channel user changed since it was read")]
    Conflict,
    #[error("message store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Malformed(String),
}

/// The port the functions use.
pub trait Store: Send + Sync {
    fn user(
        &self,
        channel: &str,
        openid: &str,
    ) -> impl Future<Output = Result<Option<ChannelUser>, StoreError>> + Send;

    /// Stores an inbound message once, keyed by its dedupe key, together with its
    /// conversation (created if new) and the user's new state (written only over
    /// `user.version`), all or nothing.
    fn record_inbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// A conversation's messages, newest first.
    fn history(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredMessage>, StoreError>> + Send {
        self.history_page(conversation_id, limit, None)
    }

    /// A conversation's messages older than `before` (all when `None`), newest first.
    fn history_page(
        &self,
        conversation_id: &str,
        limit: usize,
        before: Option<&MessageCursor>,
    ) -> impl Future<Output = Result<Vec<StoredMessage>, StoreError>> + Send;

    /// One conversation of a user.
    fn conversation(
        &self,
        channel: &str,
        openid: &str,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<Conversation>, StoreError>> + Send;

    /// The channel users bound to an app user.
    fn users_of_app_user(
        &self,
        app_user_id: &str,
    ) -> impl Future<Output = Result<Vec<ChannelUser>, StoreError>> + Send;

    /// A user's conversations.
    fn conversations(
        &self,
        channel: &str,
        openid: &str,
    ) -> impl Future<Output = Result<Vec<Conversation>, StoreError>> + Send;

    /// Stores a partner's message once per `(partner, client_message_id)`, with its
    /// conversation (created if new): a repeat of the request writes nothing and returns
    /// the message stored the first time.
    fn put_outbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        client_message_id: &str,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Stores a push once per `(partner, push_id)`, with its conversation (created if new):
    /// a repeat writes nothing and returns the push stored the first time.
    fn put_push(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        push_id: &str,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// As [`Store::transition`], writing the message's push record in the same write.
    fn record_push(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
        push: &PushRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A message by its place: conversation, time and id.
    fn message(
        &self,
        conversation_id: &str,
        created_at_ms: i64,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredMessage>, StoreError>> + Send;

    /// Writes the user over the version it was read at (and bumps the version).
    fn put_user(&self, user: &ChannelUser) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves a message to `to` only if its status is one of `from`; `false` when it was not
    /// (another attempt got there first).
    fn transition(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that the partner was told of `status` (`reported`), only while the message
    /// is in that status; `false` when it is not (or the message is missing).
    fn mark_reported(
        &self,
        message: &StoredMessage,
        status: MessageStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl MessageStatus {
    /// Not settled yet: still to be sent (or to be sent again).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            MessageStatus::Queued | MessageStatus::Held | MessageStatus::Sending
        )
    }
}

/// How often a user write is tried again after another writer got there first.
const USER_CHANGE_ATTEMPTS: usize = 3;

/// Changes a stored user over the version read, reading again when another writer got
/// there first. Best effort: a change not written is logged (`what` names it), and the
/// window or grants the bridge keeps are then off by one, which WeChat's answers (45047,
/// 43101) correct.
pub async fn change_user<S: Store>(
    store: &S,
    channel: &str,
    openid: &str,
    what: &str,
    change: impl Fn(&mut ChannelUser),
) {
    for _ in 0..USER_CHANGE_ATTEMPTS {
        let Ok(Some(mut user)) = store.user(channel, openid).await else {
            break;
        };
        change(&mut user);
        match store.put_user(&user).await {
            Ok(()) => return,
            Err(StoreError::Conflict) => continue,
            Err(error) => {
                tracing::warn!(%error, what, "user not updated");
                return;
            }
        }
    }
    tracing::warn!(what, "user not updated: it kept changing");
}

/// Runs a store write a few times through a hiccup (`Unavailable`): for the status written
/// after WeChat accepted a send, which, if lost, would have a retry send it again.
pub async fn through_hiccups<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match write().await {
            Err(StoreError::Unavailable(_)) if tries < 2 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 << tries)).await;
            }
            other => return other,
        }
    }
}

/// A status as it is stored.
pub fn status_name(status: MessageStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        super::conformance::check(&super::memory::MemoryStore::default(), "mp").await;
    }
}
