//! What the queues between the functions carry.
//!
//! `inbound.fifo` (what `callback` hands to `inbound`) keeps order per user
//! (its group = channel + openid) and collapses WeChat's retries (its deduplication key =
//! the event's dedupe key; SQS drops a repeat within 5 minutes, the same span as WeChat's
//! retries). The keys are the bridge's own words; the queue adapter fits them to its
//! queue's rules (SQS's 128 characters: `wxbridge_aws::sqs`).
//!
//! `outbound.fifo` (what `api` and `inbound` hand to `dispatch`) and `push.fifo` keep order
//! per conversation (MessageGroupId = conversation id) and carry only where the message is
//! stored ([`OutboundRef`]).

use super::message::StoredMessage;
use serde::{Deserialize, Serialize};
use wxbridge_wechat::event::CallbackEvent;

/// Version of the message body below; bumped when a consumer must tell shapes apart.
pub const INBOUND_MESSAGE_VERSION: u32 = 1;

/// One push, opened and ready for the fan-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub version: u32,
    pub channel: String,
    pub dedupe_key: String,
    /// When the bridge accepted the push, in milliseconds since the epoch.
    pub received_at_ms: i64,
    pub event: CallbackEvent,
}

impl InboundMessage {
    pub fn new(channel: &str, event: CallbackEvent, received_at_ms: i64) -> Self {
        Self {
            version: INBOUND_MESSAGE_VERSION,
            channel: channel.to_owned(),
            dedupe_key: format!("{channel}:{}", event.dedupe_key()),
            received_at_ms,
            event,
        }
    }

    /// Order is kept per user of a channel.
    pub fn group_id(&self) -> String {
        format!("{}:{}", self.channel, self.event.from_user_name)
    }

    pub fn deduplication_id(&self) -> String {
        self.dedupe_key.clone()
    }
}

/// What `outbound.fifo` carries: where the message is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRef {
    pub conversation_id: String,
    pub created_at_ms: i64,
    pub message_id: String,
    /// Further held texts of the same conversation sent together with this one, in order
    /// (a release when the quota is scarce).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packed: Vec<PackedRef>,
    /// Only report the message's status to its partner (a `message.status` webhook that
    /// was not delivered at once); never sends anything to WeChat.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report: bool,
}

/// A message packed with an [`OutboundRef`]: same conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedRef {
    pub created_at_ms: i64,
    pub message_id: String,
}

impl OutboundRef {
    pub fn new(conversation_id: &str, created_at_ms: i64, message_id: &str) -> Self {
        Self {
            conversation_id: conversation_id.to_owned(),
            created_at_ms,
            message_id: message_id.to_owned(),
            packed: Vec::new(),
            report: false,
        }
    }

    /// Where `message` is stored.
    pub fn to(message: &StoredMessage) -> Self {
        Self::new(&message.conversation_id, message.created_at_ms, &message.id)
    }

    /// The `outbound.fifo` group: the conversation, so its replies keep their order; a
    /// report job has a group of its own, so a partner whose webhook is down never holds
    /// back the conversation's later replies.
    pub fn group_id(&self) -> String {
        if self.report {
            format!("report:{}", self.message_id)
        } else {
            self.conversation_id.clone()
        }
    }

    /// This message and every message packed with it, each on its own, in order.
    pub fn parts(&self) -> Vec<OutboundRef> {
        std::iter::once(Self::new(
            &self.conversation_id,
            self.created_at_ms,
            &self.message_id,
        ))
        .chain(
            self.packed
                .iter()
                .map(|p| Self::new(&self.conversation_id, p.created_at_ms, &p.message_id)),
        )
        .collect()
    }
}
