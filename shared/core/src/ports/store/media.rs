//! Image messages' media: which message carried a user's media id, and the state of each
//! image's copy in the bucket.

use super::StoreError;
use crate::model::{MediaCopy, OutboundRef};
use std::future::Future;

/// The media of stored image messages.
pub trait MessageMediaStore: Send + Sync {
    /// Where the user's image message that carried `media_id` on `channel` is stored
    /// (recorded by [`super::MessageStore::record_inbound`], for the ids
    /// [`crate::model::media::recorded_media_id`] takes); `None` for an id no user's
    /// message carried. One read, whatever the table holds.
    fn inbound_image(
        &self,
        channel: &str,
        media_id: &str,
    ) -> impl Future<Output = Result<Option<OutboundRef>, StoreError>> + Send;

    /// Writes the state of the message's image copy, unless the copy is already `stored`
    /// (a late retry never undoes a kept copy); `false` when it is (or the message is
    /// missing).
    fn set_media(
        &self,
        message: &OutboundRef,
        media: &MediaCopy,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
