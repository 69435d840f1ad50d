//! The message store: channel users, conversations and every message, from either side.
//!
//! One port per aggregate — [`UserStore`], [`ConversationStore`], [`MessageStore`],
//! [`PushStore`], [`MessageMediaStore`], [`SubMerchantStore`], [`HandoverStore`] — and
//! [`Store`], all of them at once, as the services hold it. The AWS adapters keep them in
//! DynamoDB and the test kit in memory; one conformance suite (in the test kit), grouped
//! the same way, holds both to this contract.

mod conversations;
mod handovers;
mod media;
mod messages;
mod pushes;
mod sub_merchants;
mod users;

pub use conversations::ConversationStore;
pub use handovers::HandoverStore;
pub use media::MessageMediaStore;
pub use messages::MessageStore;
pub use pushes::PushStore;
pub use sub_merchants::SubMerchantStore;
pub use users::UserStore;

use super::{Cause, Chain};
use crate::model::{ChannelUser, StoredMessage};
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

#[derive(Debug, Error)]
pub enum StoreError {
    /// The user changed since it was read (another function wrote it): read and try again.
    #[error("the channel user changed since it was read")]
    Conflict,
    /// The store did not answer (or not in time): the adapter's error is the source.
    #[error("message store unavailable: {}", Chain(.0.as_ref()))]
    Unavailable(#[source] Cause),
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

/// The whole store, as the services hold it: every aggregate's port, implemented by
/// whatever implements them all. A service (or helper) that needs one aggregate names that
/// port instead.
pub trait Store:
    UserStore
    + ConversationStore
    + MessageStore
    + PushStore
    + MessageMediaStore
    + SubMerchantStore
    + HandoverStore
{
}

impl<T> Store for T where
    T: UserStore
        + ConversationStore
        + MessageStore
        + PushStore
        + MessageMediaStore
        + SubMerchantStore
        + HandoverStore
{
}

/// How often a user write is tried again after another writer got there first.
const USER_CHANGE_ATTEMPTS: usize = 3;

/// Changes a stored user over the version read, reading again when another writer got
/// there first. Best effort: a change not written is logged (`what` names it), and the
/// window or grants the bridge keeps are then off by one, which WeChat's answers (45047,
/// 43101) correct.
pub async fn change_user<S: UserStore>(
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
pub async fn change_user_if<S: UserStore>(
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
