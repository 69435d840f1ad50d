//! The message store: channel users, conversations and every message, from either side.
//!
//! [`Store`] is the port; the AWS adapters keep it in DynamoDB and the test kit in memory,
//! and one conformance suite (in the test kit) holds both to this contract.

use crate::model::{
    ChannelUser, Conversation, HandoverRecord, MediaCopy, MessageCursor, MessageStatus,
    OutboundRef, PushRecord, StoredMessage, SubMerchant,
};
use std::future::Future;
use thiserror::Error;

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
    /// The store refuses this write for good (a key or item it cannot hold): trying again
    /// cannot help, and the record that asked for it is parked.
    #[error("message store refuses the write for good: {0}")]
    Rejected(String),
    #[error("stored item is malformed: {0}")]
    Malformed(String),
}

impl StoreError {
    /// The store did not answer, or another writer came first: the same request can
    /// succeed in a moment. A refused write or a malformed item will not.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict)
    }
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
    /// `user.version`), all or nothing — and, for a user's image, which message carried
    /// its media id ([`Store::inbound_image`]).
    fn record_inbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Where the user's image message that carried `media_id` on `channel` is stored
    /// (recorded by [`Store::record_inbound`], for the ids
    /// [`crate::model::media::recorded_media_id`] takes); `None` for an id no user's
    /// message carried. One read, whatever the table holds.
    fn inbound_image(
        &self,
        channel: &str,
        media_id: &str,
    ) -> impl Future<Output = Result<Option<OutboundRef>, StoreError>> + Send;

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

    /// Writes the user over the version it was read at (and bumps the version).
    fn put_user(&self, user: &ChannelUser) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies a hand-over once per `(partner, handover id)`, for good: its record (only if
    /// absent) and the user's new routing (only over `user.version`), all or nothing.
    /// `Some(first)` when the id was recorded before (nothing is written);
    /// [`StoreError::Conflict`] when the user changed since it was read.
    fn put_handover(
        &self,
        user: &ChannelUser,
        handover: &HandoverRecord,
    ) -> impl Future<Output = Result<Option<HandoverRecord>, StoreError>> + Send;

    /// The hand-over recorded under `(partner, handover id)`, if any.
    fn handover(
        &self,
        partner: &str,
        handover_id: &str,
    ) -> impl Future<Output = Result<Option<HandoverRecord>, StoreError>> + Send;

    /// Moves a message to `to` only if its status is one of `from`; `false` when it was not
    /// (another attempt got there first).
    fn transition(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Conversations whose idle deadline (`idle_at_ms`) is at or before `due_by_ms`, at
    /// most `limit`, any order.
    fn idle_conversations(
        &self,
        due_by_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Conversation>, StoreError>> + Send;

    /// Forgets the conversation's idle deadline if it is still `idle_at_ms`; `false` when a
    /// newer message moved it (or the conversation is gone).
    fn clear_idle(
        &self,
        conversation: &Conversation,
        idle_at_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The sub-merchants registered in a channel (sub-merchant dialog mode), any order.
    fn sub_merchants(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<Vec<SubMerchant>, StoreError>> + Send;

    /// Keeps a partner's sub-merchant of a channel, replacing the one kept before.
    fn put_sub_merchant(
        &self,
        sub_merchant: &SubMerchant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that the partner was told of `status` (`reported`), only while the message
    /// is in that status; `false` when it is not (or the message is missing).
    fn mark_reported(
        &self,
        message: &StoredMessage,
        status: MessageStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes the state of the message's image copy, unless the copy is already `stored`
    /// (a late retry never undoes a kept copy); `false` when it is (or the message is
    /// missing).
    fn set_media(
        &self,
        message: &OutboundRef,
        media: &MediaCopy,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
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
    change_user_if(store, channel, openid, what, |user| {
        change(user);
        true
    })
    .await
}

/// As [`change_user`], written only when `change` says it changed the user.
pub async fn change_user_if<S: Store>(
    store: &S,
    channel: &str,
    openid: &str,
    what: &str,
    change: impl Fn(&mut ChannelUser) -> bool,
) {
    for _ in 0..USER_CHANGE_ATTEMPTS {
        let Ok(Some(mut user)) = store.user(channel, openid).await else {
            break;
        };
        if !change(&mut user) {
            return;
        }
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
