//! The bridge's records as partners read them, in API answers and webhook bodies: mapped
//! from core's values field by field, so what the store keeps can change without changing
//! what partners read.

use super::content::SubscribeForm;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use wxbridge_core::model;
use wxbridge_core::services::partner as core;

/// A user × partner conversation (merged mode) or user × channel (separate mode).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    pub channel: String,
    pub openid: String,
    pub partner: String,
    pub created_at_ms: i64,
    pub last_message_at_ms: i64,
    /// When the conversation closes for idleness if nobody writes before (its partner's
    /// `idle_close_after_secs` after the last message); `None`: it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_at_ms: Option<i64>,
}

impl From<model::Conversation> for Conversation {
    fn from(conversation: model::Conversation) -> Self {
        Self {
            id: conversation.id,
            channel: conversation.channel,
            openid: conversation.openid,
            partner: conversation.partner,
            created_at_ms: conversation.created_at_ms,
            last_message_at_ms: conversation.last_message_at_ms,
            idle_at_ms: conversation.idle_at_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the WeChat user.
    In,
    /// A partner's reply.
    Out,
    /// An app notification.
    Push,
}

impl From<model::Direction> for Direction {
    fn from(direction: model::Direction) -> Self {
        match direction {
            model::Direction::In => Self::In,
            model::Direction::Out => Self::Out,
            model::Direction::Push => Self::Push,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
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
    /// WeChat's answer to the send was lost, so the user may or may not have the message.
    Uncertain,
}

impl From<model::MessageStatus> for MessageStatus {
    fn from(status: model::MessageStatus) -> Self {
        use model::MessageStatus as S;
        match status {
            S::Received => Self::Received,
            S::Delivered => Self::Delivered,
            S::Failed => Self::Failed,
            S::Queued => Self::Queued,
            S::Sending => Self::Sending,
            S::Sent => Self::Sent,
            S::Held => Self::Held,
            S::WindowClosed => Self::WindowClosed,
            S::Expired => Self::Expired,
            S::Undeliverable => Self::Undeliverable,
            S::Uncertain => Self::Uncertain,
        }
    }
}

/// A conversation closed: when, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Closed {
    pub at_ms: i64,
    pub reason: CloseReason,
}

impl From<model::Closed> for Closed {
    fn from(closed: model::Closed) -> Self {
        Self {
            at_ms: closed.at_ms,
            reason: closed.reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// A partner's agent closed it (`POST /v1/conversations/{id}/close`).
    Agent,
    /// Nobody wrote for the partner's idle timeout.
    Idle,
}

impl From<model::CloseReason> for CloseReason {
    fn from(reason: model::CloseReason) -> Self {
        match reason {
            model::CloseReason::Agent => Self::Agent,
            model::CloseReason::Idle => Self::Idle,
        }
    }
}

/// What a partner sees of a session before sending: the `window` of the API's
/// conversations, of `message.received` webhooks and of a reply's 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WindowState {
    /// A customer-service message may be sent now (open, with sends left).
    pub open: bool,
    /// Until when (ms since the epoch) the window is open; absent once it closed.
    pub open_until_ms: Option<i64>,
    /// Sends left in the window: 0 when closed or used up.
    pub sends_left: u32,
    /// The window is the entry allowance (2 sends within a minute of entering the chat).
    pub entry_allowance: bool,
    /// Until when the entry allowance runs, while it does.
    pub entry_allowance_until_ms: Option<i64>,
    /// The user's unspent subscribe grants, by template: the templates this partner may use.
    pub subscribe_grants: BTreeMap<String, u32>,
    /// When the user last wrote in this chat (ms since the epoch).
    pub last_user_message_at_ms: Option<i64>,
}

impl From<model::WindowState> for WindowState {
    fn from(window: model::WindowState) -> Self {
        Self {
            open: window.open,
            open_until_ms: window.open_until_ms,
            sends_left: window.sends_left,
            entry_allowance: window.entry_allowance,
            entry_allowance_until_ms: window.entry_allowance_until_ms,
            subscribe_grants: window.subscribe_grants,
            last_user_message_at_ms: window.last_user_message_at_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaStatus {
    /// Not kept yet: the copy is queued, or was tried and will be again (`reason`: the
    /// last failure).
    Pending,
    /// Kept in the bucket: served by `GET /v1/conversations/{id}/media/{message_id}`.
    Stored,
    /// Cannot be kept; `reason` says why.
    Unavailable,
}

impl From<model::MediaStatus> for MediaStatus {
    fn from(status: model::MediaStatus) -> Self {
        match status {
            model::MediaStatus::Pending => Self::Pending,
            model::MediaStatus::Stored => Self::Stored,
            model::MediaStatus::Unavailable => Self::Unavailable,
        }
    }
}

/// The state of a message's image copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MediaCopy {
    pub status: MediaStatus,
    /// `stored`: the image's type, told by its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `stored`: its size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// `pending`: the last failure; `unavailable`: why it cannot be kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<model::MediaCopy> for MediaCopy {
    fn from(copy: model::MediaCopy) -> Self {
        Self {
            status: copy.status.into(),
            content_type: copy.content_type,
            bytes: copy.bytes,
            reason: copy.reason,
        }
    }
}

/// An image message's copy, as partners read it (in history and in webhooks).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MediaView {
    #[serde(flatten)]
    pub copy: MediaCopy,
    /// `GET` it (signed like every call) for the image's bytes once `stored`.
    pub path: String,
}

impl From<core::MediaView> for MediaView {
    fn from(view: core::MediaView) -> Self {
        Self {
            copy: view.copy.into(),
            path: view.path,
        }
    }
}

/// Who a push is for, as the partner named them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PushTarget {
    /// An app user: any WeChat user bound to them, on a channel the partner may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_user_id: Option<String>,
    /// With `openid`, one channel user; with `app_user_id`, only that channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

impl From<model::PushTarget> for PushTarget {
    fn from(target: model::PushTarget) -> Self {
        Self {
            app_user_id: target.app_user_id,
            channel: target.channel,
            openid: target.openid,
        }
    }
}

/// The ways a push can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushPath {
    CustomerService,
    Subscribe,
    Inbox,
}

impl From<model::PushPath> for PushPath {
    fn from(path: model::PushPath) -> Self {
        match path {
            model::PushPath::CustomerService => Self::CustomerService,
            model::PushPath::Subscribe => Self::Subscribe,
            model::PushPath::Inbox => Self::Inbox,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Delivered this way.
    Sent,
    /// Not tried: the window, the quota, the waiting replies or a missing grant said no.
    Skipped,
    /// WeChat refused it for good (errcode in the reason); the chain went on.
    Refused,
    /// WeChat did not answer or was busy: the push is retried.
    Retry,
    /// WeChat's answer was lost: the user may have it (setting `lost_send_answer`: sent
    /// again, or the push ends `uncertain`).
    AnswerLost,
    /// Kept in the store as the app's inbox item.
    Kept,
}

impl From<model::AttemptOutcome> for AttemptOutcome {
    fn from(outcome: model::AttemptOutcome) -> Self {
        use model::AttemptOutcome as O;
        match outcome {
            O::Sent => Self::Sent,
            O::Skipped => Self::Skipped,
            O::Refused => Self::Refused,
            O::Retry => Self::Retry,
            O::AnswerLost => Self::AnswerLost,
            O::Kept => Self::Kept,
        }
    }
}

/// One step of the chain, as recorded on the push.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PushAttempt {
    pub path: PushPath,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
    pub at_ms: i64,
}

impl From<model::PushAttempt> for PushAttempt {
    fn from(attempt: model::PushAttempt) -> Self {
        Self {
            path: attempt.path.into(),
            outcome: attempt.outcome.into(),
            channel: attempt.channel,
            openid: attempt.openid,
            reason: attempt.reason,
            errcode: attempt.errcode,
            at_ms: attempt.at_ms,
        }
    }
}

/// What a push asked for and what became of it, kept on the stored message.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PushRecord {
    /// The partner's id for the push (absent on a reply falling back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_id: Option<String>,
    pub to: PushTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeForm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// A reply the window no longer allowed: only the subscribe and inbox branches.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    #[serde(default)]
    pub attempts: Vec<PushAttempt>,
    /// The path that settled it (`inbox` for an undeliverable one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PushPath>,
}

impl From<model::PushRecord> for PushRecord {
    fn from(record: model::PushRecord) -> Self {
        Self {
            push_id: record.push_id,
            to: record.to.into(),
            subscribe: record.subscribe.map(Into::into),
            expires_at_ms: record.expires_at_ms,
            fallback: record.fallback,
            attempts: record.attempts.into_iter().map(Into::into).collect(),
            path: record.path.map(Into::into),
        }
    }
}

/// A message as partners read it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub conversation_id: String,
    pub direction: Direction,
    pub partner: String,
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub created_at_ms: i64,
    #[schema(value_type = Object)]
    pub content: Value,
    /// Pushes (and replies that fell back through the push chain): the request, each
    /// attempt and the path that settled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushRecord>,
    /// An image message: its copy in the stack's bucket, and where the API serves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaView>,
}

impl From<core::MessageView> for MessageView {
    fn from(view: core::MessageView) -> Self {
        Self {
            id: view.id,
            conversation_id: view.conversation_id,
            direction: view.direction.into(),
            partner: view.partner,
            status: view.status.into(),
            status_reason: view.status_reason,
            created_at_ms: view.created_at_ms,
            content: view.content,
            push: view.push.map(Into::into),
            media: view.media.map(Into::into),
        }
    }
}
