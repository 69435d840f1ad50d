//! Conversations: a user's thread with one partner (or with all, merged), created with its
//! first message, and the idle deadline that closes it.

use super::StoreError;
use crate::model::Conversation;
use std::future::Future;

/// A user's conversations, and those due to close for idleness.
pub trait ConversationStore: Send + Sync {
    /// One conversation of a user.
    fn conversation(
        &self,
        channel: &str,
        openid: &str,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<Conversation>, StoreError>> + Send;

    /// A user's conversations.
    fn conversations(
        &self,
        channel: &str,
        openid: &str,
    ) -> impl Future<Output = Result<Vec<Conversation>, StoreError>> + Send;

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
}
