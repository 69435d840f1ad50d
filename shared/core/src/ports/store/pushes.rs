//! Pushes: app notifications stored as messages (direction `push`) once per push id, each
//! with its push record of attempts and path.

use super::{Recorded, StoreError};
use crate::model::{Conversation, MessageStatus, PushRecord, StoredMessage};
use std::future::Future;

/// Pushes and their records.
pub trait PushStore: Send + Sync {
    /// Stores a push once per `(partner, push_id)`, with its conversation (created if new):
    /// a repeat writes nothing and returns the push stored the first time.
    fn put_push(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        push_id: &str,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// As [`super::MessageStore::transition`], writing the message's push record in the
    /// same write.
    fn record_push(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
        push: &PushRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
