//! The partner operations' answers, as partners read them: written from core's answers.

use super::views::{Closed, Conversation, MessageStatus, MessageView, WindowState};
use serde::Serialize;
use utoipa::ToSchema;
use wxbridge_core::services::partner as core;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Accepted {
    pub message_id: String,
    pub conversation_id: String,
    pub status: MessageStatus,
    pub created_at_ms: i64,
}

impl From<core::Accepted> for Accepted {
    fn from(accepted: core::Accepted) -> Self {
        Self {
            message_id: accepted.message_id,
            conversation_id: accepted.conversation_id,
            status: accepted.status.into(),
            created_at_ms: accepted.created_at_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PushAccepted {
    pub push_id: String,
    #[serde(flatten)]
    pub message: Accepted,
}

impl From<core::PushAccepted> for PushAccepted {
    fn from(accepted: core::PushAccepted) -> Self {
        Self {
            push_id: accepted.push_id,
            message: accepted.message.into(),
        }
    }
}

/// `POST /v1/messages` answered: the reply is stored and queued; whether it will wait for
/// the user's next message, as the window stands now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReplyAccepted {
    #[serde(flatten)]
    pub message: Accepted,
    /// The window has no send left for it (used up, or taken by the replies ahead of it):
    /// it is held and goes out when the user writes again.
    pub will_hold: bool,
    /// Why it will be held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,
    pub window: WindowState,
}

impl From<core::ReplyAccepted> for ReplyAccepted {
    fn from(accepted: core::ReplyAccepted) -> Self {
        Self {
            message: accepted.message.into(),
            will_hold: accepted.will_hold,
            hold_reason: accepted.hold_reason,
            window: accepted.window.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryPage {
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<core::HistoryPage> for HistoryPage {
    fn from(page: core::HistoryPage) -> Self {
        Self {
            messages: page.messages.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A conversation as its partner sees it: with what WeChat lets it send now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationView {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub app_user_id: Option<String>,
    /// Merged mode: the partner the user's next message goes to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_partner: Option<String>,
    /// `open`, or `closed` until the user writes again.
    pub status: ConversationStatus,
    /// When and why it was closed, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closed>,
    /// The chat's reply window now.
    pub window: WindowState,
}

impl From<core::ConversationView> for ConversationView {
    fn from(view: core::ConversationView) -> Self {
        Self {
            conversation: view.conversation.into(),
            app_user_id: view.app_user_id,
            active_partner: view.active_partner,
            status: view.status.into(),
            closed: view.closed.map(Into::into),
            window: view.window.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Closed,
}

impl From<core::ConversationStatus> for ConversationStatus {
    fn from(status: core::ConversationStatus) -> Self {
        match status {
            core::ConversationStatus::Open => Self::Open,
            core::ConversationStatus::Closed => Self::Closed,
        }
    }
}

/// The partner's conversations, as `GET /v1/conversations` lists them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationView>,
}

/// A user bound to an app user.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Binding {
    pub channel: String,
    pub openid: String,
    pub app_user_id: String,
}

impl From<core::Binding> for Binding {
    fn from(binding: core::Binding) -> Self {
        Self {
            channel: binding.channel,
            openid: binding.openid,
            app_user_id: binding.app_user_id,
        }
    }
}

/// A hand-over done: the receiving partner's conversation, and the note to the user.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HandoverAnswer {
    /// The receiving partner's conversation with the user.
    pub conversation_id: String,
    pub to: String,
    /// The note to the user, as a reply: stored and queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<ReplyAccepted>,
}

impl From<core::HandoverAnswer> for HandoverAnswer {
    fn from(answer: core::HandoverAnswer) -> Self {
        Self {
            conversation_id: answer.conversation_id,
            to: answer.to,
            note: answer.note.map(Into::into),
        }
    }
}

/// Whether the typing indicator is now shown.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TypingAnswer {
    pub typing: bool,
}

impl From<core::TypingAnswer> for TypingAnswer {
    fn from(answer: core::TypingAnswer) -> Self {
        Self {
            typing: answer.typing,
        }
    }
}
