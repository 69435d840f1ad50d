//! Images that outlive WeChat's three days. WeChat keeps an image (one a user sent, or one
//! the bridge uploaded for a partner) as temporary media for 3 days (protocol notes §3.4);
//! the bridge copies every image message's media into the stack's bucket, so the history
//! shows both sides' pictures months later.
//!
//! A message with an image carries its copy's state ([`MediaCopy`]): `pending` until the
//! copy is kept (with the last failure, if any), `stored` once it is, `unavailable` with
//! the reason when it cannot be (WeChat no longer has the media, it is not an image, it is
//! too large). The copy is made from `media.fifo` ([`MediaJob`]), so a message is never held
//! back by its picture, and a copy that fails is tried again while WeChat still has it.

use super::message::StoredMessage;
use super::queued::OutboundRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long WeChat keeps temporary media (protocol notes §3.4).
pub const WECHAT_MEDIA_LIFETIME_MS: i64 = 3 * 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The state of a message's image copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl MediaCopy {
    pub fn pending(reason: Option<String>) -> Self {
        Self {
            status: MediaStatus::Pending,
            content_type: None,
            bytes: None,
            reason,
        }
    }

    pub fn stored(content_type: &str, bytes: u64) -> Self {
        Self {
            status: MediaStatus::Stored,
            content_type: Some(content_type.to_owned()),
            bytes: Some(bytes),
            reason: None,
        }
    }

    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            status: MediaStatus::Unavailable,
            content_type: None,
            bytes: None,
            reason: Some(reason.into()),
        }
    }
}

/// What `media.fifo` carries: copy the image of the message stored at `message`, which
/// WeChat holds as `media_id` (in the app of `channel`) until `wechat_expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaJob {
    pub channel: String,
    pub message: OutboundRef,
    pub media_id: String,
    /// After this WeChat has deleted the media: a copy still failing then is given up.
    pub wechat_expires_at_ms: i64,
}

impl MediaJob {
    /// The copy of `message`'s image, held by WeChat as `media_id` since `since_ms`.
    pub fn of(message: &StoredMessage, media_id: &str, since_ms: i64) -> Self {
        Self {
            channel: message.channel.clone(),
            message: OutboundRef::to(message),
            media_id: media_id.to_owned(),
            wechat_expires_at_ms: since_ms + WECHAT_MEDIA_LIFETIME_MS,
        }
    }

    /// One job per message in SQS's deduplication span (a redelivered inbound message
    /// queues the same copy again); each its own group, so one slow copy holds none back.
    pub fn deduplication_id(&self) -> String {
        format!("media:{}", self.message.message_id)
    }

    pub fn object_key(&self) -> String {
        object_key(
            &self.channel,
            &self.message.conversation_id,
            &self.message.message_id,
        )
    }
}

/// Where a message's image is kept in the bucket: by channel, then conversation (its id
/// hashed: it holds the user's openid), then message. The API serves a key it builds from
/// the conversation the partner may read, so no partner reaches another's images.
pub fn object_key(channel: &str, conversation_id: &str, message_id: &str) -> String {
    let conversation = hex::encode(&Sha256::digest(conversation_id.as_bytes())[..16]);
    format!(
        "media/{}/{conversation}/{}",
        key_part(channel),
        key_part(message_id)
    )
}

/// A plain token as it is; anything else (a `/`, a dot, a long or non-ASCII id) hashed.
fn key_part(value: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if !value.is_empty() && value.len() <= 128 && value.bytes().all(plain) {
        value.to_owned()
    } else {
        hex::encode(&Sha256::digest(value.as_bytes())[..16])
    }
}

/// The media id an inbound image message holds (WeChat's `MediaId`).
pub fn inbound_media_id(message: &StoredMessage) -> Option<&str> {
    match message.content.get("type").and_then(|t| t.as_str()) {
        Some("image") => message.content.get("media_id").and_then(|m| m.as_str()),
        _ => None,
    }
}

/// A media id as the partner API takes it (1-256 of `A-Z a-z 0-9 - _ . : @`).
pub fn is_media_id(id: &str) -> bool {
    (1..=256).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

/// The media id of a user's image message that the store records with the message
/// (`MessageMediaStore::inbound_image`), so `GET /v1/media/{channel}/{media_id}` answers only for the
/// partner's own conversations. An id the API would refuse (a forged push's) is not
/// recorded.
pub fn recorded_media_id(message: &StoredMessage) -> Option<&str> {
    inbound_media_id(message).filter(|id| is_media_id(id))
}

/// Whether a message's content is an image (from either side).
pub fn is_image(content: &serde_json::Value) -> bool {
    content.get("type").and_then(|t| t.as_str()) == Some("image")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_conversations_and_hide_the_openid() {
        let a = object_key("mp", "mp:o-alice:hotel", "in_1");
        assert!(a.starts_with("media/mp/"));
        assert!(!a.contains("o-alice"));
        assert_ne!(a, object_key("mp", "mp:o-bob:hotel", "in_1"));
        assert_eq!(a, object_key("mp", "mp:o-alice:hotel", "in_1"));
        // A message id that is not a plain token is hashed, never written as a path.
        assert!(!object_key("mp", "c", "../x").contains(".."));
    }

    #[test]
    fn copies_read_back_as_written() {
        let stored = MediaCopy::stored("image/png", 12);
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "stored", "content_type": "image/png", "bytes": 12})
        );
        assert_eq!(serde_json::from_value::<MediaCopy>(json).unwrap(), stored);
    }
}
