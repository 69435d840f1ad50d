//! Held replies released when the user acts again.
//!
//! A reply found with the quota used up is `held`: its [`OutboundRef`] is appended to the
//! channel user's `held` list (over the version read). When the user writes again (a
//! message, a card, entering the session), `inbound` takes the list out of the user in the
//! same write that stores the user's message, keeps what it released on that message and
//! enqueues it on `outbound.fifo` in order. When more replies are released than the fresh
//! window allows, consecutive texts of a conversation go out together, one per line
//! ([`crate::outbound::pack_runs`]); images, links and cards go alone.

use crate::config::{BridgeConfig, DialogMode};
use crate::dispatch::{OutboundRef, PackedRef};
use crate::outbound::{pack_runs, MAX_TEXT_BYTES};
use crate::queue::{OutboundQueue, QueueError};
use crate::routing;
use crate::store::{Store, StoreError, StoredMessage};

/// The deduplication id of a release: the first enqueue of the message used its id, and
/// SQS drops a repeat within 5 minutes.
pub fn release_deduplication_id(target: &OutboundRef, inbound_message_id: &str) -> String {
    format!("{}:release:{inbound_message_id}", target.message_id)
}

/// What to enqueue for `held`, given `sends_left` in the fresh window: every held message
/// once, in order; packed only when there are more of them than sends left. Reads the held
/// messages only then (to see which are texts and how long).
pub async fn plan<S: Store>(
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
    for part in parts {
        let message = store
            .message(&part.conversation_id, part.created_at_ms, &part.message_id)
            .await?;
        match message {
            Some(message) if message.status.is_pending() => pending.push((part, message)),
            // Settled meanwhile (or gone): nothing to release.
            _ => {}
        }
    }
    if pending.len() <= sends_left as usize {
        return Ok(pending.into_iter().map(|(part, _)| part).collect());
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
            .map(|&i| text_of(&pending[i].1).map(str::len))
            .collect();
        let prefix = match config.dialog.mode {
            DialogMode::Merged => routing::sender_prefix(config, &pending[members[0]].1.partner),
            DialogMode::Separate => String::new(),
        };
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
    Ok(planned.into_iter().map(|(_, target)| target).collect())
}

/// The text of a stored text reply.
pub fn text_of(message: &StoredMessage) -> Option<&str> {
    match message.content.get("type").and_then(|t| t.as_str()) {
        Some("text") => message.content.get("text").and_then(|t| t.as_str()),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{Conversation, MessageStatus, Recorded};

    fn config() -> BridgeConfig {
        BridgeConfig::from_json(
            r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
            "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789"}],
            "dialog":{"mode":"merged","default_partner":"hotel-9"}}"#,
        )
        .unwrap()
    }

    async fn held(store: &MemoryStore, n: i64, content: serde_json::Value) -> OutboundRef {
        let conversation = Conversation::new("mp:o_a:hotel-9", "mp", "o_a", "hotel-9", 1_000);
        let message = StoredMessage {
            status: MessageStatus::Held,
            ..StoredMessage::reply(&conversation, format!("out_{n}"), 1_000 + n, content)
        };
        assert_eq!(
            store
                .put_outbound(&message, &conversation, &message.id)
                .await
                .unwrap(),
            Recorded::New
        );
        OutboundRef::to(&message)
    }

    fn text(t: &str) -> serde_json::Value {
        serde_json::json!({"type": "text", "text": t})
    }

    fn shape(planned: &[OutboundRef]) -> Vec<Vec<String>> {
        planned
            .iter()
            .map(|t| {
                std::iter::once(t.message_id.clone())
                    .chain(t.packed.iter().map(|p| p.message_id.clone()))
                    .collect()
            })
            .collect()
    }

    #[tokio::test]
    async fn held_replies_pack_only_when_sends_are_scarce() {
        let store = MemoryStore::default();
        let card = serde_json::json!({"type": "link", "title": "t", "description": "d", "url": "https://a", "thumb_url": "https://b"});
        let mut refs = Vec::new();
        for n in 1..=3 {
            refs.push(held(&store, n, text(&format!("text {n}"))).await);
        }
        refs.push(held(&store, 4, card).await);
        for n in 5..=6 {
            refs.push(held(&store, n, text(&format!("text {n}"))).await);
        }
        let plenty = plan(&store, &config(), &refs, 6).await.unwrap();
        assert_eq!(plenty, refs, "enough sends: each goes alone, in order");
        let scarce = plan(&store, &config(), &refs, 5).await.unwrap();
        assert_eq!(
            shape(&scarce),
            [
                vec!["out_1", "out_2", "out_3"],
                vec!["out_4"],
                vec!["out_5", "out_6"]
            ],
            "consecutive texts pack, the link goes alone, order is kept"
        );
        // A packed reply held again is planned again as its parts.
        let again = plan(&store, &config(), &scarce, 6).await.unwrap();
        assert_eq!(again, refs);
    }

    #[tokio::test]
    async fn a_packed_text_leaves_room_for_the_senders_name() {
        let store = MemoryStore::default();
        let prefix = routing::sender_prefix(&config(), "hotel-9").len();
        let long = "x".repeat(MAX_TEXT_BYTES - prefix - 1);
        let refs = [
            held(&store, 1, text(&long)).await,
            held(&store, 2, text("y")).await,
            held(&store, 3, text("z")).await,
        ];
        let planned = plan(&store, &config(), &refs, 1).await.unwrap();
        assert_eq!(shape(&planned), [vec!["out_1"], vec!["out_2", "out_3"]]);
    }
}
