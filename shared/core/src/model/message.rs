//! Conversations and the messages in them, from either side, as the store keeps them.

use super::media::{is_image, MediaCopy};
use super::push::PushRecord;
use super::queued::OutboundRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A user × partner conversation (merged mode) or user × channel (separate mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// WeChat's answer to the send was lost, so the user may or may not have the message;
    /// with `lost_send_answer: "report"` it is not sent again ([`lost_answer`]).
    Uncertain,
}

/// What the partner reads when WeChat's answer to a send was lost (setting
/// `lost_send_answer`): WeChat's send has no idempotency key, so the bridge either sends
/// again, and says the user may see it twice, or stops, and says the user may not have it.
pub mod lost_answer {
    /// `status_reason` of an `uncertain` message.
    pub const UNCERTAIN: &str =
        "WeChat's answer to the send was lost: the user may or may not have it; not sent again";
    /// `status_reason` of a `sent` message that was sent again after a lost answer.
    pub const RESENT: &str =
        "sent again after WeChat's answer to an earlier send was lost: the user may see it twice";
    /// The reason a message waits with for its next send after a lost answer.
    pub const RETRYING: &str = "WeChat's answer to the send was lost: sending again";
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
    /// An image message (from either side): its copy in the stack's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaCopy>,
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
            idle_at_ms: None,
        }
    }
}

impl StoredMessage {
    /// The text of a stored text reply.
    pub fn text(&self) -> Option<&str> {
        match self.content.get("type").and_then(|t| t.as_str()) {
            Some("text") => self.content.get("text").and_then(|t| t.as_str()),
            _ => None,
        }
    }

    /// A partner's message in its conversation, `queued` to be sent; an image's copy is
    /// `pending` until it is sent and kept.
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
            media: is_image(&content).then(|| MediaCopy::pending(None)),
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

impl MessageStatus {
    /// Not settled yet: still to be sent (or to be sent again).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            MessageStatus::Queued | MessageStatus::Held | MessageStatus::Sending
        )
    }
}

/// A status as it is stored.
pub fn status_name(status: MessageStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The id of the message an inbound push becomes: derived from its dedupe key, so every
/// retry and redelivery names the same message.
pub fn inbound_message_id(dedupe_key: &str) -> String {
    format!(
        "in_{}",
        hex::encode(&Sha256::digest(dedupe_key.as_bytes())[..12])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_ids_are_stable_and_distinct() {
        assert_eq!(
            inbound_message_id("mp:msg:1"),
            inbound_message_id("mp:msg:1")
        );
        assert_ne!(
            inbound_message_id("mp:msg:1"),
            inbound_message_id("mp:msg:2")
        );
        assert_eq!(inbound_message_id("x").len(), 3 + 24);
    }
}
