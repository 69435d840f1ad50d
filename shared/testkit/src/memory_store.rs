//! The store in memory, with the same conditions as DynamoDB: for unit tests. One
//! [`MemoryStore`] holds every port of the message store (one `impl` per aggregate), the
//! token cache, the nonces and the media cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wxbridge_core::model::media::recorded_media_id;
use wxbridge_core::model::{
    ChannelUser, Conversation, HandoverRecord, MediaCopy, MediaStatus, MessageCursor,
    MessageStatus, OutboundRef, PushRecord, StoredMessage, SubMerchant,
};
use wxbridge_core::ports::media::MediaCache;
use wxbridge_core::ports::nonces::{NonceError, NonceStore};
use wxbridge_core::ports::store::{
    ConversationStore, HandoverStore, MessageMediaStore, MessageStore, PushStore, Recorded,
    StoreError, SubMerchantStore, UserStore,
};
use wxbridge_core::ports::tokens::{
    CachedToken, TokenStore, TokenStoreError, LEASE_MS, REFRESH_MARGIN_MS,
};

type MessageKey = (String, i64, String);

#[derive(Debug, Default)]
struct Tables {
    users: HashMap<(String, String), ChannelUser>,
    conversations: BTreeMap<(String, String, String), Conversation>,
    messages: BTreeMap<MessageKey, StoredMessage>,
    dedupe: HashMap<String, MessageKey>,
    tokens: HashMap<String, TokenSlot>,
    /// Nonces by (partner, nonce): who claimed them.
    nonces: HashMap<(String, String), String>,
    /// A partner's client message ids and push ids, each naming its message:
    /// (kind, partner, id).
    once_ids: HashMap<(&'static str, String, String), MessageKey>,
    /// Media ids by (appid, key), with when they expire.
    media: HashMap<(String, String), (String, i64)>,
    /// Users' images by (channel, media id): the message that carried each.
    inbound_images: HashMap<(String, String), MessageKey>,
    /// Registered sub-merchants by (channel, partner).
    sub_merchants: BTreeMap<(String, String), SubMerchant>,
    /// Applied hand-overs by (partner, handover id).
    handovers: HashMap<(String, String), HandoverRecord>,
}

/// A channel's cached token and its refresh lease (owner, end).
type TokenSlot = (Option<CachedToken>, Option<(String, i64)>);

#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
    before_put_user: Arc<Mutex<Option<UserChange>>>,
    lose_next_answer: Arc<AtomicBool>,
}

/// A change another function makes to a user, for tests of races.
pub struct UserChange(Box<dyn FnOnce(&mut ChannelUser) + Send>);

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserChange")
    }
}

fn message_key(message: &StoredMessage) -> MessageKey {
    (
        message.conversation_id.clone(),
        message.created_at_ms,
        message.id.clone(),
    )
}

impl MemoryStore {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().expect("memory store lock")
    }

    /// For tests of lost answers: the next partner message or push is stored, and then the
    /// write answers as if the store had not been reached (a timeout after it landed).
    pub fn lose_next_answer(&self) {
        self.lose_next_answer.store(true, Ordering::SeqCst);
    }

    /// For tests of races: just before the next `put_user`, another writer changes the
    /// stored user with `change` (and bumps its version), as if it had written first.
    pub fn before_next_put_user(&self, change: impl FnOnce(&mut ChannelUser) + Send + 'static) {
        *self.before_put_user.lock().expect("hook lock") = Some(UserChange(Box::new(change)));
    }
}

impl MemoryStore {
    /// Stores a partner's message once per `(kind, partner, id)`, with its conversation.
    fn put_once(
        &self,
        kind: &'static str,
        message: &StoredMessage,
        conversation: &Conversation,
        id: &str,
    ) -> Result<Recorded, StoreError> {
        let mut tables = self.tables();
        let once = (kind, message.partner.clone(), id.to_owned());
        if let Some(key) = tables.once_ids.get(&once) {
            let stored =
                tables.messages.get(key).cloned().ok_or_else(|| {
                    StoreError::Malformed(format!("{kind} id without its message"))
                })?;
            return Ok(Recorded::Duplicate(Box::new(stored)));
        }
        let key = message_key(message);
        tables.once_ids.insert(once, key.clone());
        tables.messages.insert(key, message.clone());
        tables.upsert(conversation);
        if self.lose_next_answer.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the answer was lost".into()));
        }
        Ok(Recorded::New)
    }
}

impl Tables {
    fn upsert(&mut self, conversation: &Conversation) {
        let key = (
            conversation.channel.clone(),
            conversation.openid.clone(),
            conversation.id.clone(),
        );
        let entry = self
            .conversations
            .entry(key)
            .or_insert_with(|| conversation.clone());
        // As DynamoDB's SET: the latest write wins.
        entry.last_message_at_ms = conversation.last_message_at_ms;
        entry.idle_at_ms = conversation.idle_at_ms;
    }

    /// Moves a stored message to `to` only from one of `from`, with its reason: the message
    /// moved, or `None` when it is missing or in another status.
    fn set_status(
        &mut self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
    ) -> Option<&mut StoredMessage> {
        let stored = self
            .messages
            .get_mut(&message_key(message))
            .filter(|stored| from.contains(&stored.status))?;
        stored.status = to;
        stored.status_reason = reason.map(str::to_owned);
        Some(stored)
    }
}

impl UserStore for MemoryStore {
    async fn user(&self, channel: &str, openid: &str) -> Result<Option<ChannelUser>, StoreError> {
        Ok(self
            .tables()
            .users
            .get(&(channel.to_owned(), openid.to_owned()))
            .cloned())
    }

    async fn put_user(&self, user: &ChannelUser) -> Result<(), StoreError> {
        let change = self.before_put_user.lock().expect("hook lock").take();
        let mut tables = self.tables();
        let key = (user.channel.clone(), user.openid.clone());
        if let Some(UserChange(change)) = change {
            if let Some(stored) = tables.users.get_mut(&key) {
                change(stored);
                stored.version += 1;
            }
        }
        if tables.users.get(&key).map_or(0, |u| u.version) != user.version {
            return Err(StoreError::Conflict);
        }
        let mut written = user.clone();
        written.version += 1;
        tables.users.insert(key, written);
        Ok(())
    }

    async fn users_of_app_user(&self, app_user_id: &str) -> Result<Vec<ChannelUser>, StoreError> {
        let mut users: Vec<ChannelUser> = self
            .tables()
            .users
            .values()
            .filter(|u| u.app_user_id.as_deref() == Some(app_user_id))
            .cloned()
            .collect();
        users.sort_by(|a, b| (&a.channel, &a.openid).cmp(&(&b.channel, &b.openid)));
        Ok(users)
    }
}

impl ConversationStore for MemoryStore {
    async fn conversation(
        &self,
        channel: &str,
        openid: &str,
        conversation_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        Ok(self
            .tables()
            .conversations
            .get(&(
                channel.to_owned(),
                openid.to_owned(),
                conversation_id.to_owned(),
            ))
            .cloned())
    }

    async fn conversations(
        &self,
        channel: &str,
        openid: &str,
    ) -> Result<Vec<Conversation>, StoreError> {
        Ok(self
            .tables()
            .conversations
            .iter()
            .filter(|((c, o, _), _)| c == channel && o == openid)
            .map(|(_, conversation)| conversation.clone())
            .collect())
    }

    async fn idle_conversations(
        &self,
        due_by_ms: i64,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        Ok(self
            .tables()
            .conversations
            .values()
            .filter(|c| c.idle_at_ms.is_some_and(|at| at <= due_by_ms))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn clear_idle(
        &self,
        conversation: &Conversation,
        idle_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let key = (
            conversation.channel.clone(),
            conversation.openid.clone(),
            conversation.id.clone(),
        );
        match tables.conversations.get_mut(&key) {
            Some(stored) if stored.idle_at_ms == Some(idle_at_ms) => {
                stored.idle_at_ms = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl MessageStore for MemoryStore {
    async fn record_inbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
    ) -> Result<Recorded, StoreError> {
        let mut tables = self.tables();
        let dedupe_key = message
            .dedupe_key
            .clone()
            .unwrap_or_else(|| message.id.clone());
        if let Some(key) = tables.dedupe.get(&dedupe_key) {
            let stored =
                tables.messages.get(key).cloned().ok_or_else(|| {
                    StoreError::Malformed("dedupe record without its message".into())
                })?;
            return Ok(Recorded::Duplicate(Box::new(stored)));
        }
        let user_key = (user.channel.clone(), user.openid.clone());
        let stored_version = tables.users.get(&user_key).map_or(0, |u| u.version);
        if stored_version != user.version {
            return Err(StoreError::Conflict);
        }
        let key = message_key(message);
        if let Some(media_id) = recorded_media_id(message) {
            let image = (message.channel.clone(), media_id.to_owned());
            tables.inbound_images.insert(image, key.clone());
        }
        tables.dedupe.insert(dedupe_key, key.clone());
        tables.messages.insert(key, message.clone());
        tables.upsert(conversation);
        let mut written = user.clone();
        written.version += 1;
        tables.users.insert(user_key, written);
        Ok(Recorded::New)
    }

    async fn put_outbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        client_message_id: &str,
    ) -> Result<Recorded, StoreError> {
        self.put_once("client", message, conversation, client_message_id)
    }

    async fn message(
        &self,
        conversation_id: &str,
        created_at_ms: i64,
        id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self
            .tables()
            .messages
            .get(&(conversation_id.to_owned(), created_at_ms, id.to_owned()))
            .cloned())
    }

    async fn history_page(
        &self,
        conversation_id: &str,
        limit: usize,
        before: Option<&MessageCursor>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self
            .tables()
            .messages
            .iter()
            .rev()
            .filter(|((conversation, at, id), _)| {
                conversation == conversation_id
                    && before.is_none_or(|b| (*at, id.as_str()) < (b.created_at_ms, b.id.as_str()))
            })
            .take(limit)
            .map(|(_, message)| message.clone())
            .collect())
    }

    async fn transition(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .tables()
            .set_status(message, from, to, reason)
            .is_some())
    }

    async fn mark_reported(
        &self,
        message: &StoredMessage,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        match tables.messages.get_mut(&message_key(message)) {
            Some(stored) if stored.status == status => {
                stored.reported = Some(status);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl PushStore for MemoryStore {
    async fn put_push(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        push_id: &str,
    ) -> Result<Recorded, StoreError> {
        self.put_once("push", message, conversation, push_id)
    }

    async fn record_push(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
        push: &PushRecord,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let Some(stored) = tables.set_status(message, from, to, reason) else {
            return Ok(false);
        };
        stored.push = Some(push.clone());
        Ok(true)
    }
}

impl MessageMediaStore for MemoryStore {
    async fn inbound_image(
        &self,
        channel: &str,
        media_id: &str,
    ) -> Result<Option<OutboundRef>, StoreError> {
        let tables = self.tables();
        let image = (channel.to_owned(), media_id.to_owned());
        Ok(tables
            .inbound_images
            .get(&image)
            .and_then(|key| tables.messages.get(key))
            .map(OutboundRef::to))
    }

    async fn set_media(&self, at: &OutboundRef, media: &MediaCopy) -> Result<bool, StoreError> {
        let key = (
            at.conversation_id.clone(),
            at.created_at_ms,
            at.message_id.clone(),
        );
        let mut tables = self.tables();
        match tables.messages.get_mut(&key) {
            Some(stored)
                if stored
                    .media
                    .as_ref()
                    .is_none_or(|m| m.status != MediaStatus::Stored) =>
            {
                stored.media = Some(media.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl SubMerchantStore for MemoryStore {
    async fn sub_merchants(&self, channel: &str) -> Result<Vec<SubMerchant>, StoreError> {
        Ok(self
            .tables()
            .sub_merchants
            .values()
            .filter(|s| s.channel == channel)
            .cloned()
            .collect())
    }

    async fn put_sub_merchant(&self, sub_merchant: &SubMerchant) -> Result<(), StoreError> {
        let key = (sub_merchant.channel.clone(), sub_merchant.partner.clone());
        self.tables()
            .sub_merchants
            .insert(key, sub_merchant.clone());
        Ok(())
    }
}

impl HandoverStore for MemoryStore {
    async fn handover(
        &self,
        partner: &str,
        handover_id: &str,
    ) -> Result<Option<HandoverRecord>, StoreError> {
        Ok(self
            .tables()
            .handovers
            .get(&(partner.to_owned(), handover_id.to_owned()))
            .cloned())
    }

    async fn put_handover(
        &self,
        user: &ChannelUser,
        handover: &HandoverRecord,
    ) -> Result<Option<HandoverRecord>, StoreError> {
        let mut tables = self.tables();
        let id = (handover.partner.clone(), handover.handover_id.clone());
        if let Some(first) = tables.handovers.get(&id) {
            return Ok(Some(first.clone()));
        }
        let key = (user.channel.clone(), user.openid.clone());
        if tables.users.get(&key).map_or(0, |u| u.version) != user.version {
            return Err(StoreError::Conflict);
        }
        tables.handovers.insert(id, handover.clone());
        let mut written = user.clone();
        written.version += 1;
        tables.users.insert(key, written);
        Ok(None)
    }
}

impl TokenStore for MemoryStore {
    async fn cached(&self, appid: &str) -> Result<Option<CachedToken>, TokenStoreError> {
        Ok(self
            .tables()
            .tokens
            .get(appid)
            .and_then(|(token, _)| token.clone()))
    }

    async fn try_lease(
        &self,
        appid: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<bool, TokenStoreError> {
        let mut tables = self.tables();
        let (token, lease) = tables.tokens.entry(appid.to_owned()).or_default();
        let held = lease.as_ref().is_some_and(|(_, until)| *until >= now_ms);
        let fresh = token
            .as_ref()
            .is_some_and(|t| t.expires_at_ms >= now_ms + REFRESH_MARGIN_MS);
        if held || fresh {
            return Ok(false);
        }
        *lease = Some((owner.to_owned(), now_ms + LEASE_MS));
        Ok(true)
    }

    async fn save(&self, appid: &str, token: &CachedToken) -> Result<(), TokenStoreError> {
        self.tables()
            .tokens
            .insert(appid.to_owned(), (Some(token.clone()), None));
        Ok(())
    }

    async fn expire_if(&self, appid: &str, failed: &str) -> Result<(), TokenStoreError> {
        if let Some((Some(token), _)) = self.tables().tokens.get_mut(appid) {
            if token.value == failed {
                token.expires_at_ms = 0;
            }
        }
        Ok(())
    }
}

impl NonceStore for MemoryStore {
    async fn claim(
        &self,
        partner: &str,
        nonce: &str,
        claimant: &str,
        _expires_at_secs: i64,
    ) -> Result<bool, NonceError> {
        let mut tables = self.tables();
        let key = (partner.to_owned(), nonce.to_owned());
        let holder = tables
            .nonces
            .entry(key)
            .or_insert_with(|| claimant.to_owned());
        Ok(holder == claimant)
    }
}

impl MediaCache for MemoryStore {
    async fn cached_media(
        &self,
        appid: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .tables()
            .media
            .get(&(appid.to_owned(), key.to_owned()))
            .filter(|(_, expires_at_ms)| *expires_at_ms > now_ms)
            .map(|(media_id, _)| media_id.clone()))
    }

    async fn save_media(
        &self,
        appid: &str,
        key: &str,
        media_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.tables().media.insert(
            (appid.to_owned(), key.to_owned()),
            (media_id.to_owned(), expires_at_ms),
        );
        Ok(())
    }

    async fn forget_media(&self, appid: &str, key: &str, media_id: &str) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let slot = (appid.to_owned(), key.to_owned());
        if tables
            .media
            .get(&slot)
            .is_some_and(|(id, _)| id == media_id)
        {
            tables.media.remove(&slot);
        }
        Ok(())
    }
}
