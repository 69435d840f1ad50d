//! Held replies released when the user acts again.
//!
//! A reply found with the quota used up is `held`: its [`OutboundRef`] is appended to the
//! channel user's `held` list (over the version read). When the user writes again (a
//! message, a card, entering the session), `inbound` takes the list out of the user in the
//! same write that stores the user's message, keeps what it released on that message and
//! enqueues it on `outbound.fifo` in order. When more replies are released than the fresh
//! window allows, consecutive texts of a conversation go out together, one per line
//! ([`crate::model::content::pack_runs`]); images, links and cards go alone.

use crate::config::BridgeConfig;
use crate::model::content::pack_runs;
use crate::model::{OutboundRef, PackedRef, StoredMessage, MAX_TEXT_BYTES};
use crate::ports::queue::{OutboundQueue, QueueError};
use crate::ports::store::{MessageStore, StoreError};

/// The deduplication id of a release: the first enqueue of the message used its id, and
/// SQS drops a repeat within 5 minutes.
pub fn release_deduplication_id(target: &OutboundRef, inbound_message_id: &str) -> String {
    format!("{}:release:{inbound_message_id}", target.message_id)
}

/// What to enqueue for `held`, given `sends_left` in the fresh window: every held message
/// once, in order; packed only when there are more of them than sends left. Reads the held
/// messages only then (to see which are texts and how long); those found settled or gone
/// go first, alone.
pub async fn plan<S: MessageStore>(
    store: &S,
    config: &BridgeConfig,
    held: &[OutboundRef],
    sends_left: u32,
) -> Result<Vec<OutboundRef>, StoreError> {
    let mut parts: Vec<OutboundRef> = Vec::new();
    for part in held.iter().flat_map(OutboundRef::parts) {
        if !parts
            .iter()
            .any(|p| p.message_id == part.message_id && p.conversation_id == part.conversation_id)
        {
            parts.push(part);
        }
    }
    if parts.len() <= sends_left as usize {
        return Ok(parts);
    }
    let mut pending: Vec<(OutboundRef, StoredMessage)> = Vec::new();
    // Settled meanwhile (or gone): released on its own, at no send, so dispatch finds it
    // done and takes it off the list.
    let mut done: Vec<OutboundRef> = Vec::new();
    for part in parts {
        let message = store
            .message(&part.conversation_id, part.created_at_ms, &part.message_id)
            .await?;
        match message {
            Some(message) if message.status.is_pending() => pending.push((part, message)),
            _ => done.push(part),
        }
    }
    if pending.len() <= sends_left as usize {
        return Ok(done
            .into_iter()
            .chain(pending.into_iter().map(|(part, _)| part))
            .collect());
    }
    // Scarce: pack per conversation (a send carries one partner's name), keeping order.
    let mut conversations: Vec<&str> = Vec::new();
    for (part, _) in &pending {
        if !conversations.contains(&part.conversation_id.as_str()) {
            conversations.push(&part.conversation_id);
        }
    }
    let mut planned: Vec<(usize, OutboundRef)> = Vec::new();
    for conversation in conversations {
        let members: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].0.conversation_id == conversation)
            .collect();
        let sizes: Vec<Option<usize>> = members
            .iter()
            .map(|&i| pending[i].1.text().map(str::len))
            .collect();
        let prefix = config
            .sender_of(&pending[members[0]].1.partner)
            .unwrap_or_default();
        let limit = MAX_TEXT_BYTES.saturating_sub(prefix.len());
        for run in pack_runs(&sizes, 0, limit) {
            let lead = members[run[0]];
            let mut target = pending[lead].0.clone();
            target.packed = run[1..]
                .iter()
                .map(|&r| {
                    let part = &pending[members[r]].0;
                    PackedRef {
                        created_at_ms: part.created_at_ms,
                        message_id: part.message_id.clone(),
                    }
                })
                .collect();
            planned.push((lead, target));
        }
    }
    planned.sort_by_key(|(lead, _)| *lead);
    Ok(done
        .into_iter()
        .chain(planned.into_iter().map(|(_, target)| target))
        .collect())
}

/// Enqueues what an inbound message released, in order.
pub async fn enqueue<Q: OutboundQueue>(
    queue: &Q,
    released: &[OutboundRef],
    inbound_message_id: &str,
) -> Result<(), QueueError> {
    for target in released {
        queue
            .enqueue(
                target,
                &release_deduplication_id(target, inbound_message_id),
            )
            .await?;
    }
    Ok(())
}
