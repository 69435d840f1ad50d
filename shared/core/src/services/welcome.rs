//! The welcome: a partner's greeting (`partners[].welcome`) when a user enters the chat
//! from that partner's page — a vouched `session-from` naming it in merged mode, its
//! sub-merchant's chat in sub-merchant mode, its channel in separate mode.
//!
//! It is stored as the partner's replies and sent by `dispatch`, so it spends the entry's
//! sends like any reply, but only when held replies the entry released do not need them.
//! Each is stored once per entry (keyed by the entry message's id) and enqueued with its own
//! id as the deduplication id: a WeChat retry or an SQS redelivery of the entry sends it once.

use super::Bridge;
use crate::config::DialogMode;
use crate::model::{ActiveBecause, ChannelUser, Conversation, Session, StoredMessage, WindowState};
use crate::ports::queue::{OutboundQueue, QueueError};
use crate::ports::store::{MessageStore, StoreError};
use crate::ports::Ports;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WelcomeError {
    #[error("welcome not stored: {0}")]
    Store(#[from] StoreError),
    #[error("welcome not queued: {0}")]
    Queue(#[from] QueueError),
}

/// Stores and enqueues the welcome of `conversation`'s partner for the entry `entry`, if
/// the user entered from its page and the window has sends the released replies do not
/// need. `at_ms` is when the entry was received.
pub async fn greet<P: Ports>(
    bridge: &Bridge<P>,
    outbound: &P::Queue,
    entry: &StoredMessage,
    conversation: &Conversation,
    user: &ChannelUser,
) -> Result<usize, WelcomeError> {
    let config = &bridge.config;
    let Some(partner) = config.partner(&conversation.partner) else {
        return Ok(0);
    };
    if partner.welcome.is_empty() || !entered_from_its_page(config.dialog.mode, user, entry) {
        return Ok(0);
    }
    let session = Session::of(config, &partner.id);
    // A sub-merchant's chat no partner is registered under reached the default partner:
    // its welcome belongs in the mini program's own chat, not that one.
    if entry.content.get("business_id").is_some() && session == Session::Main {
        return Ok(0);
    }
    // The window as the entry opened it: a redelivery decides as the first attempt did, so
    // a welcome stored then is enqueued again, never left queued.
    let window = WindowState::of(user, session, &[], entry.created_at_ms);
    let spare = (window.sends_left as usize).saturating_sub(entry.released.len());
    let mut greeted = 0;
    for (n, content) in partner.welcome.iter().take(spare).enumerate() {
        let content = serde_json::to_value(content).unwrap_or_default();
        let at_ms = entry.created_at_ms + 1 + n as i64;
        let message = StoredMessage::reply(
            conversation,
            format!("welcome_{}_{n}", entry.id),
            at_ms,
            content,
        );
        let client_id = format!("welcome:{}:{n}", entry.id);
        bridge
            .store
            .put_outbound(&message, conversation, &client_id)
            .await?;
        outbound
            .enqueue(&crate::model::OutboundRef::to(&message), &message.id)
            .await?;
        greeted += 1;
    }
    Ok(greeted)
}

/// Whether the entry came from the partner's page: in merged mode its vouched
/// `session-from` made the partner active with this very entry.
fn entered_from_its_page(mode: DialogMode, user: &ChannelUser, entry: &StoredMessage) -> bool {
    match mode {
        DialogMode::Merged => user.routing.active.as_ref().is_some_and(|active| {
            active.partner == entry.partner
                && active.because == ActiveBecause::SessionFrom
                && active.since_ms == entry.created_at_ms
        }),
        DialogMode::Separate | DialogMode::SubMerchant => true,
    }
}
