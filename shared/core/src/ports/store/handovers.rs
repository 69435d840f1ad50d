//! Hand-overs (merged mode): one record per partner and hand-over id, kept for good, so a
//! repeat of the request is known however late.

use super::StoreError;
use crate::model::{ChannelUser, HandoverRecord};
use std::future::Future;

/// Applied hand-overs.
pub trait HandoverStore: Send + Sync {
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
}
