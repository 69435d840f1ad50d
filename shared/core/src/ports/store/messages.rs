//! Messages from either side: each stored once (by its dedupe key or the partner's client
//! message id) with its conversation, read by place or page, and moved from status to
//! status.

use super::{Recorded, StoreError};
use crate::model::{
    ChannelUser, Conversation, MessageCursor, MessageStatus, OutboundRef, StoredMessage,
};
use std::future::Future;

/// Users' and partners' messages and their statuses.
pub trait MessageStore: Send + Sync {
    /// Stores an inbound message once, keyed by its dedupe key, together with its
    /// conversation (created if new) and the user's new state (written only over
    /// `user.version`), all or nothing — and, for a user's image, which message carried
    /// its media id ([`super::MessageMediaStore::inbound_image`]).
    fn record_inbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Stores a partner's message once per `(partner, client_message_id)`, with its
    /// conversation (created if new): a repeat of the request writes nothing and returns
    /// the message stored the first time.
    fn put_outbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        client_message_id: &str,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// A message by its place: conversation, time and id.
    fn message(
        &self,
        conversation_id: &str,
        created_at_ms: i64,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredMessage>, StoreError>> + Send;

    /// The message a queue record names.
    fn message_at(
        &self,
        target: &OutboundRef,
    ) -> impl Future<Output = Result<Option<StoredMessage>, StoreError>> + Send {
        self.message(
            &target.conversation_id,
            target.created_at_ms,
            &target.message_id,
        )
    }

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
