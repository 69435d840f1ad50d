//! Channel users: one per channel and openid, written over the version they were read at.

use super::StoreError;
use crate::model::ChannelUser;
use std::future::Future;

/// Channel users: their windows, routing, grants and held replies.
pub trait UserStore: Send + Sync {
    fn user(
        &self,
        channel: &str,
        openid: &str,
    ) -> impl Future<Output = Result<Option<ChannelUser>, StoreError>> + Send;

    /// Writes the user over the version it was read at (and bumps the version).
    fn put_user(&self, user: &ChannelUser) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The channel users bound to an app user.
    fn users_of_app_user(
        &self,
        app_user_id: &str,
    ) -> impl Future<Output = Result<Vec<ChannelUser>, StoreError>> + Send;
}
