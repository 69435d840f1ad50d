//! The partner operations' requests and answers, as core values: the Lambda edge reads the
//! JSON partners send into these and writes its answers from them (`wxbridge_lambda::api::wire`,
//! which also documents them). `MessageView` and `MediaView` are serialized here too: they
//! are part of webhook bodies.

use crate::model::{
    Closed, Content, Conversation, Direction, MediaCopy, MediaStatus, MessageStatus, PushRecord,
    StoredMessage, SubscribeForm, WindowState,
};
use serde::Serialize;
use serde_json::{json, Value};

/// History pages: 20 messages unless asked, at most 100.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// Media answered through the API: a Lambda answer is at most 6 MB once base64-encoded.
pub const MAX_MEDIA_BYTES: usize = 4 * 1024 * 1024;

/// `POST /v1/messages`.
#[derive(Debug)]
pub struct SendRequest {
    pub conversation_id: Option<String>,
    pub to: Option<Recipient>,
    /// The partner's id for this reply (1-64 of `A-Z a-z 0-9 - _ . : @`): a repeat answers
    /// the first message.
    pub client_message_id: String,
    pub content: Content,
}

/// `POST /v1/pushes`.
#[derive(Debug)]
pub struct PushRequest {
    pub to: Recipient,
    /// The partner's id for this push (1-64 of `A-Z a-z 0-9 - _ . : @`): a repeat answers
    /// the first push, delivered once.
    pub push_id: String,
    pub content: Content,
    /// The subscribe message to send when the window does not allow a customer-service
    /// message and the user granted the template.
    pub subscribe: Option<SubscribeForm>,
    /// After this (ms since the epoch) the push is not worth sending: it ends `expired`.
    /// Any JSON integer, `1.8e12` or `1800000000000.0` too, as JSON Schema counts them.
    pub expires_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushAccepted {
    pub push_id: String,
    pub message: Accepted,
}

/// A user to write to without a conversation id: a channel user, or an app user (with a
/// channel when they are bound on several).
#[derive(Debug)]
pub struct Recipient {
    pub channel: Option<String>,
    pub openid: Option<String>,
    pub app_user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub message_id: String,
    pub conversation_id: String,
    pub status: MessageStatus,
    pub created_at_ms: i64,
}

impl Accepted {
    /// What the partner is told of a message it stored (or had stored before).
    pub fn of(stored: StoredMessage) -> Self {
        Self {
            message_id: stored.id,
            conversation_id: stored.conversation_id,
            status: stored.status,
            created_at_ms: stored.created_at_ms,
        }
    }
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
    /// An image message: its copy in the stack's bucket, and where the API serves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaView>,
}

/// An image message's copy, as partners read it (in history and in webhooks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaView {
    #[serde(flatten)]
    pub copy: MediaCopy,
    /// `GET` it (signed like every call) for the image's bytes once `stored`.
    pub path: String,
}

impl MediaView {
    /// The copy of `message`'s image; a partner's image that was never sent (or whose send
    /// ended `uncertain`) is `unavailable`, not `pending` for ever.
    pub fn of(message: &StoredMessage) -> Option<Self> {
        let mut copy = message.media.clone()?;
        let settled = message.direction != Direction::In && !message.status.is_pending();
        if copy.status == MediaStatus::Pending && settled {
            match message.status {
                MessageStatus::Sent => {}
                MessageStatus::Uncertain => {
                    copy = MediaCopy::unavailable(
                        "WeChat's answer to the send was lost: the image was not kept",
                    )
                }
                _ => copy = MediaCopy::unavailable("the image was not sent"),
            }
        }
        Some(Self {
            copy,
            path: format!(
                "/v1/conversations/{}/media/{}",
                message.conversation_id, message.id
            ),
        })
    }
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
        let media = MediaView::of(&message);
        Self {
            id: message.id,
            conversation_id: message.conversation_id,
            direction: message.direction,
            partner: message.partner,
            status: message.status,
            status_reason: message.status_reason,
            created_at_ms: message.created_at_ms,
            media,
            content: message.content,
            push: message.push,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A conversation as its partner sees it: with what WeChat lets it send now.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    pub conversation: Conversation,
    pub app_user_id: Option<String>,
    /// Merged mode: the partner the user's next message goes to.
    pub active_partner: Option<String>,
    /// `open`, or `closed` until the user writes again.
    pub status: ConversationStatus,
    /// When and why it was closed, while it is.
    pub closed: Option<Closed>,
    /// The chat's reply window now.
    pub window: WindowState,
}

/// `POST /v1/messages` answered: the reply is stored and queued; whether it will wait for
/// the user's next message, as the window stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyAccepted {
    pub message: Accepted,
    /// The window has no send left for it (used up, or taken by the replies ahead of it):
    /// it is held and goes out when the user writes again.
    pub will_hold: bool,
    /// Why it will be held.
    pub hold_reason: Option<String>,
    pub window: WindowState,
}

/// `GET /v1/conversations`: a channel user (`channel` and `openid`), or an app user's
/// bindings (`app_user_id`, and `channel` to keep to one).
#[derive(Debug, Default)]
pub struct ConversationsQuery {
    /// The channel (with `openid`; with `app_user_id`, to keep to one channel).
    pub channel: Option<String>,
    /// The user's openid on `channel`.
    pub openid: Option<String>,
    /// The app user whose bindings to look at.
    pub app_user_id: Option<String>,
}

/// `PUT /v1/bindings/{channel}/{openid}`.
#[derive(Debug)]
pub struct BindRequest {
    /// The app user (1-128 of `A-Z a-z 0-9 - _ . : @`).
    pub app_user_id: String,
    /// Rebinds a user already bound to another app user.
    pub replace: bool,
}

/// A user bound to an app user.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub channel: String,
    pub openid: String,
    pub app_user_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationStatus {
    Open,
    Closed,
}

/// `POST /v1/conversations/{id}/close`.
#[derive(Debug, Default)]
pub struct CloseRequest {
    /// Sent to the user as the partner's reply before the conversation closes: a text's
    /// rules.
    pub closing_text: Option<String>,
    /// The closing text's client message id (required with it; 1-64 of
    /// `A-Z a-z 0-9 - _ . : @`): a repeat sends it once.
    pub client_message_id: Option<String>,
}

/// `POST /v1/conversations/{id}/handover`.
#[derive(Debug)]
pub struct HandoverRequest {
    /// The partner's id for this hand-over (1-55 of `A-Z a-z 0-9 - _ . : @`): a repeat
    /// does it once.
    pub handover_id: String,
    /// The partner the user goes to.
    pub to: String,
    /// Sent to the user as this partner's reply (it counts against the window): a text's
    /// rules.
    pub note_to_user: Option<String>,
    /// For the receiving partner, with the conversation's latest messages (at most 2000
    /// characters).
    pub note_to_partner: Option<String>,
}

/// A hand-over done: the receiving partner's conversation, and the note to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoverAnswer {
    /// The receiving partner's conversation with the user.
    pub conversation_id: String,
    pub to: String,
    /// The note to the user, as a reply: stored and queued.
    pub note: Option<ReplyAccepted>,
}

/// `POST /v1/conversations/{id}/typing`.
#[derive(Debug)]
pub struct TypingRequest {
    pub typing: bool,
}

/// Whether the typing indicator is now shown.
#[derive(Debug, Clone, PartialEq)]
pub struct TypingAnswer {
    pub typing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Conversation;

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
}
