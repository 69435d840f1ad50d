//! What partners do through the bridge's API, apart from HTTP: reply and push
//! ([`send`]), read history and conversations ([`read`]), bind users, show typing, fetch
//! media ([`users`]). The Lambda edge maps requests and answers; this module decides, and
//! says why it refuses as a [`PartnerError`].
//!
//! A partner sees only its own conversations (`Conversation::partner`): another
//! partner's conversation is not found, as one that does not exist. In separate mode a
//! channel belongs to one partner; another partner's request on it is forbidden.
//!
//! A partner reaches only the users it has a relationship with ([`PartnerApi::may_reach`]):
//! a user it has a conversation with (the user wrote while it answered, or it wrote to
//! them), one routed to it (entered from its page with a vouched `session-from`, or
//! switched to it), any user of its own channel in separate mode, and any user for a
//! partner with `can_bind` (the platform's own service). Every route that takes a user —
//! replies and pushes by openid or app user, the conversation list — answers a user it
//! may not reach exactly as one that does not exist, so no answer tells whether an openid
//! or an app user is known.

pub mod auth;
mod error;
mod handover;
mod lifecycle;
mod read;
mod send;
pub mod types;
mod users;

pub use error::{ConflictCode, PartnerError};
pub use types::*;

use super::Bridge;
use crate::config::{ChannelConfig, DialogMode};
use crate::model::routing;
use crate::model::{
    ChannelUser, Content, Conversation, MessageStatus, OutboundRef, StoredMessage, MAX_TEXT_BYTES,
};
use crate::ports::queue::OutboundQueue;
use crate::ports::store::{ConversationStore, StoreError, UserStore};
use crate::ports::Ports;

type Answer<T> = Result<T, PartnerError>;

/// Ids partners choose: client message ids, app user ids.
fn valid_client_id(id: &str, max: usize) -> bool {
    (1..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

/// The partner operations of one deployment.
pub struct PartnerApi<P: Ports> {
    bridge: Bridge<P>,
    /// `outbound.fifo`, for replies.
    queue: P::Queue,
    /// `push.fifo`, for pushes.
    pushes: Option<P::Queue>,
    /// The bucket image messages' copies are kept in.
    archive: Option<P::Archive>,
}

impl<P: Ports> PartnerApi<P> {
    /// `queue` is `outbound.fifo`, where accepted replies go.
    pub fn new(bridge: Bridge<P>, queue: P::Queue) -> Self {
        Self {
            bridge,
            queue,
            pushes: None,
            archive: None,
        }
    }

    /// The bucket image messages' copies are served from (without it, none are).
    pub fn with_archive(mut self, archive: P::Archive) -> Self {
        self.archive = Some(archive);
        self
    }

    /// `push.fifo`: where accepted pushes go (without it, pushes are refused as not set up).
    pub fn with_push_queue(mut self, pushes: P::Queue) -> Self {
        self.pushes = Some(pushes);
        self
    }

    pub fn bridge(&self) -> &Bridge<P> {
        &self.bridge
    }

    pub fn queue(&self) -> &P::Queue {
        &self.queue
    }

    pub fn push_queue(&self) -> Option<&P::Queue> {
        self.pushes.as_ref()
    }

    pub fn now_ms(&self) -> i64 {
        self.bridge.now_ms()
    }

    /// A channel the partner may act on: any in merged mode, its own in separate mode.
    fn channel(&self, partner: &str, channel_id: &str) -> Answer<&ChannelConfig> {
        let channel = self
            .bridge
            .config
            .channel(channel_id)
            .ok_or(PartnerError::NotFound("channel"))?;
        if !self.bridge.config.may_use(partner, channel_id) {
            return Err(PartnerError::Forbidden(
                "this channel belongs to another partner",
            ));
        }
        Ok(channel)
    }

    /// In merged mode the sender's name goes before a text, all within WeChat's limit.
    fn fits_with_sender(&self, partner: &str, content: &Content) -> Answer<()> {
        let Content::Text { text } = content else {
            return Ok(());
        };
        let prefix = self.bridge.config.sender_of(partner).map_or(0, |s| s.len());
        if prefix + text.len() > MAX_TEXT_BYTES {
            return Err(PartnerError::field(
                "content.text",
                "too long: with the sender's name it is over WeChat's 2048 bytes",
            ));
        }
        Ok(())
    }

    /// The partner's conversation with this id; 404 when it is not the partner's.
    pub async fn own_conversation(&self, partner: &str, id: &str) -> Answer<Conversation> {
        let (channel, openid) = routing::parse_conversation_id(self.bridge.config.dialog.mode, id)
            .ok_or(PartnerError::NotFound("conversation"))?;
        let conversation = self
            .bridge
            .store
            .conversation(channel, openid, id)
            .await
            .map_err(PartnerError::store)?
            .filter(|c| c.partner == partner)
            .ok_or(PartnerError::NotFound("conversation"))?;
        Ok(conversation)
    }

    /// The user, if the partner may reach them; one it may not is not found, exactly as
    /// one that does not exist.
    async fn user(&self, partner: &str, channel: &str, openid: &str) -> Answer<ChannelUser> {
        let user = self
            .bridge
            .store
            .user(channel, openid)
            .await
            .map_err(PartnerError::store)?;
        match user {
            Some(user) if self.may_reach(partner, &user).await? => Ok(user),
            _ => Err(PartnerError::NotFound("user on this channel")),
        }
    }

    /// Whether the partner has a relationship with the user (see the module's docs).
    async fn may_reach(&self, partner: &str, user: &ChannelUser) -> Answer<bool> {
        let config = &self.bridge.config;
        if !config.may_use(partner, &user.channel) {
            return Ok(false);
        }
        let trusted = config.partner(partner).is_some_and(|p| p.can_bind);
        if trusted || config.dialog.mode == DialogMode::Separate || user.routing.knows(partner) {
            return Ok(true);
        }
        let id = routing::conversation_id(config.dialog.mode, &user.channel, &user.openid, partner);
        let conversation = self
            .bridge
            .store
            .conversation(&user.channel, &user.openid, &id)
            .await
            .map_err(PartnerError::store)?;
        Ok(conversation.is_some())
    }

    /// The conversation a message goes to: named, or the partner's with a user (created
    /// with the message when it is the partner's first).
    async fn target(
        &self,
        partner: &str,
        request: &SendRequest,
        now_ms: i64,
    ) -> Answer<Conversation> {
        let (channel_id, openid) = match (&request.conversation_id, &request.to) {
            (Some(id), None) => return self.own_conversation(partner, id).await,
            (
                None,
                Some(Recipient {
                    channel: Some(channel),
                    openid: Some(openid),
                    app_user_id: None,
                }),
            ) => (channel.clone(), openid.clone()),
            (
                None,
                Some(Recipient {
                    channel,
                    openid: None,
                    app_user_id: Some(app_user),
                }),
            ) => {
                let user = self
                    .bound_user(partner, app_user, channel.as_deref())
                    .await?;
                (user.channel, user.openid)
            }
            (None, Some(_)) => {
                return Err(PartnerError::field(
                    "to",
                    "give channel and openid, or app_user_id (and channel)",
                ))
            }
            _ => {
                return Err(PartnerError::field(
                    "conversation_id",
                    "give conversation_id or to, one of them",
                ))
            }
        };
        let channel = self.channel(partner, &channel_id)?;
        self.user(partner, &channel.id, &openid).await?;
        self.conversation_with(partner, &channel.id, &openid, now_ms)
            .await
    }

    /// The partner's conversation with a user, as stored, or new (opened now).
    async fn conversation_with(
        &self,
        partner: &str,
        channel: &str,
        openid: &str,
        now_ms: i64,
    ) -> Answer<Conversation> {
        let id = routing::conversation_id(self.bridge.config.dialog.mode, channel, openid, partner);
        let existing = self
            .bridge
            .store
            .conversation(channel, openid, &id)
            .await
            .map_err(PartnerError::store)?;
        Ok(existing.unwrap_or_else(|| Conversation::new(&id, channel, openid, partner, now_ms)))
    }

    /// The one channel user bound to an app user (on `channel` if named).
    async fn bound_user(
        &self,
        partner: &str,
        app_user_id: &str,
        channel: Option<&str>,
    ) -> Answer<ChannelUser> {
        let mut users = self.bindings(partner, app_user_id, channel).await?;
        match users.len() {
            0 => Err(PartnerError::NotFound("user bound to this app user")),
            1 => Ok(users.remove(0)),
            _ => Err(PartnerError::conflict(
                ConflictCode::AmbiguousRecipient,
                "the app user is bound on several channels: name to.channel",
            )),
        }
    }

    /// The channel users bound to an app user that the partner may reach (only on
    /// `channel` if named).
    async fn bindings(
        &self,
        partner: &str,
        app_user_id: &str,
        channel: Option<&str>,
    ) -> Answer<Vec<ChannelUser>> {
        let mut users = self
            .bridge
            .store
            .users_of_app_user(app_user_id)
            .await
            .map_err(PartnerError::store)?;
        users.retain(|u| channel.is_none_or(|c| u.channel == c));
        let mut reachable = Vec::with_capacity(users.len());
        for user in users {
            if self.may_reach(partner, &user).await? {
                reachable.push(user);
            }
        }
        Ok(reachable)
    }
}

impl<P: Ports> PartnerApi<P> {
    /// The user of one of the partner's conversations.
    async fn user_of(&self, conversation: &Conversation) -> Answer<ChannelUser> {
        self.bridge
            .store
            .user(&conversation.channel, &conversation.openid)
            .await
            .map_err(PartnerError::store)?
            .ok_or(PartnerError::NotFound("conversation"))
    }

    /// Changes the conversation's user over the version read, reading again when another
    /// writer got there first. `change` answers what to return, and whether it changed
    /// anything (if not, nothing is written).
    async fn change_user<T>(
        &self,
        conversation: &Conversation,
        change: impl Fn(&mut ChannelUser) -> (T, bool),
    ) -> Answer<T> {
        for _ in 0..3 {
            let mut user = self.user_of(conversation).await?;
            let (answer, changed) = change(&mut user);
            if !changed {
                return Ok(answer);
            }
            match self.bridge.store.put_user(&user).await {
                Ok(()) => return Ok(answer),
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(PartnerError::store(error)),
            }
        }
        Err(PartnerError::conflict(
            ConflictCode::Changed,
            "the user changed meanwhile; retry",
        ))
    }
}

/// Puts a stored message on its queue — again on a repeat of the request while it is
/// still `queued`, as the first enqueue may be what failed (SQS drops a repeat within 5
/// minutes; the consumer settles a message once). `id_field` is what the partner repeats.
async fn enqueue_queued<Q: OutboundQueue>(
    queue: &Q,
    stored: &StoredMessage,
    id_field: &'static str,
) -> Answer<()> {
    if stored.status != MessageStatus::Queued {
        return Ok(());
    }
    queue
        .enqueue(&OutboundRef::to(stored), &stored.id)
        .await
        .map_err(|error| {
            tracing::warn!(%error, message_id = %stored.id, "stored, not enqueued");
            PartnerError::NotQueued(id_field)
        })
}
