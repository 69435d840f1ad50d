//! Closing conversations nobody wrote in for their partner's idle timeout
//! (`partners[].idle_close_after_secs`): run every minute by the `lifecycle` function.
//!
//! Every message in an open conversation sets its deadline (`Conversation::idle_at_ms`),
//! which the store indexes. A sweep takes the conversations past their deadline, marks
//! each closed on its user (reason `idle`, at the deadline) and tells the partner
//! (`conversation.closed`); only then is the deadline cleared. A webhook not delivered
//! leaves the deadline, so the next sweep tells the partner again under the same delivery
//! id. A conversation is told closed once per close: a partner's message in a closed
//! conversation leaves its deadline as it was (it reopens nothing), and a deadline set
//! after the close (by a message that did not reopen it, or an agent's close) is only
//! cleared. The user's next message reopens it, as after any close.

use super::webhook::{self, Delivery};
use super::Bridge;
use crate::model::{ChannelUser, CloseReason, Closed, Conversation};
use crate::ports::store::{ConversationStore, StoreError, UserStore};
use crate::ports::Ports;
use serde_json::{json, Value};

/// How many conversations one sweep closes at most (the next takes the rest).
pub const SWEEP_LIMIT: usize = 200;
/// How long one sweep works before leaving the rest to the next (the function has 60 s; a
/// webhook may take 5).
const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Closed, and the partner told.
    pub closed: usize,
    /// Closed before the deadline was set (by an agent, or for idleness and told): only
    /// the deadline cleared.
    pub cleared: usize,
    /// Left for the next sweep (the partner's webhook did not take it, the user kept
    /// changing).
    pub left: usize,
}

/// Closes the conversations past their idle deadline at the bridge's now.
pub async fn sweep<P: Ports>(bridge: &Bridge<P>) -> Result<Swept, StoreError> {
    let now_ms = bridge.now_ms();
    let started = std::time::Instant::now();
    let mut swept = Swept::default();
    for listed in bridge.store.idle_conversations(now_ms, SWEEP_LIMIT).await? {
        if started.elapsed() > SWEEP_BUDGET {
            swept.left += 1;
            continue;
        }
        // The index is read eventually: a message since may have moved the deadline.
        let Some(conversation) = bridge
            .store
            .conversation(&listed.channel, &listed.openid, &listed.id)
            .await?
        else {
            continue;
        };
        let Some(due) = conversation.idle_at_ms.filter(|due| *due <= now_ms) else {
            continue;
        };
        let Some((closed, user)) = mark_idle(bridge, &conversation, due).await? else {
            swept.left += 1;
            continue;
        };
        // Closed before this deadline was set — by an agent, or for idleness and told
        // (a message that does not reopen it moved the deadline since): only the deadline
        // goes, the partner is not told again.
        if closed.reason == CloseReason::Agent || closed.at_ms != due {
            bridge.store.clear_idle(&conversation, due).await?;
            swept.cleared += 1;
            continue;
        }
        let Some(partner) = bridge.config.partner(&conversation.partner) else {
            bridge.store.clear_idle(&conversation, due).await?;
            continue;
        };
        let (delivery_id, body) = closed_webhook(&conversation, &closed, &user);
        let delivered = webhook::deliver(
            &bridge.webhooks,
            partner,
            "conversation.closed",
            &delivery_id,
            serde_json::to_vec(&body).unwrap_or_default(),
            now_ms.div_euclid(1000),
        )
        .await;
        match delivered {
            // Told, or the partner refuses the webhook for good (as any webhook it refuses,
            // it is not sent again).
            Delivery::Delivered | Delivery::Refused(_) => {
                bridge.store.clear_idle(&conversation, due).await?;
                swept.closed += 1;
            }
            Delivery::Retry(_) => swept.left += 1,
        }
    }
    Ok(swept)
}

/// Marks the conversation closed for idleness on its user (a close already there stands);
/// `None` when the user is gone or kept changing.
async fn mark_idle<P: Ports>(
    bridge: &Bridge<P>,
    conversation: &Conversation,
    due: i64,
) -> Result<Option<(Closed, ChannelUser)>, StoreError> {
    for _ in 0..3 {
        let Some(mut user) = bridge
            .store
            .user(&conversation.channel, &conversation.openid)
            .await?
        else {
            return Ok(None);
        };
        if let Some(closed) = user.closed.get(&conversation.id) {
            return Ok(Some((*closed, user)));
        }
        let closed = Closed {
            at_ms: due,
            reason: CloseReason::Idle,
        };
        user.closed.insert(conversation.id.clone(), closed);
        match bridge.store.put_user(&user).await {
            Ok(()) => return Ok(Some((closed, user))),
            Err(StoreError::Conflict) => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

/// The `conversation.closed` webhook: its delivery id (the same for every attempt) and
/// body.
pub fn closed_webhook(
    conversation: &Conversation,
    closed: &Closed,
    user: &ChannelUser,
) -> (String, Value) {
    let delivery_id = format!("closed:{}:{}", conversation.id, closed.at_ms);
    let body = json!({
        "type": "conversation.closed",
        "delivery_id": delivery_id,
        "conversation": {
            "id": conversation.id,
            "channel": conversation.channel,
            "partner": conversation.partner,
        },
        "closed": closed,
        "user": webhook::user_fields(user, &conversation.partner),
    });
    (delivery_id, body)
}
