//! Conversations ([`ConversationStore`]): kept once with their latest time, found by their
//! idle deadline.

use super::{conversation, inbound, two_settled_messages, OPENID, T0};
use wxbridge_core::model::{Conversation, StoredMessage};
use wxbridge_core::ports::store::{ConversationStore, MessageStore, UserStore};

/// A conversation is created once and keeps the time of its latest message.
pub async fn a_conversation_is_kept_once_with_its_latest_time<
    S: ConversationStore + MessageStore + UserStore,
>(
    store: &S,
    channel: &str,
) {
    two_settled_messages(store, channel).await;
    let later = Conversation {
        last_message_at_ms: inbound(&conversation(channel), 2).created_at_ms,
        ..conversation(channel)
    };
    assert_eq!(
        store.conversations(channel, OPENID).await.unwrap(),
        vec![later.clone()]
    );
    assert_eq!(
        store
            .conversation(channel, OPENID, &later.id)
            .await
            .unwrap(),
        Some(later)
    );
    assert_eq!(
        store.conversation(channel, OPENID, "nope").await.unwrap(),
        None
    );
}

/// A conversation with an idle deadline is found once the deadline passes, until a newer
/// message moves it or it is cleared; clearing an old deadline does nothing.
pub async fn idle_conversations_are_found_by_their_deadline<S: ConversationStore + MessageStore>(
    store: &S,
    channel: &str,
) {
    let openid = format!("o_idle_{channel}");
    let id = format!("{channel}:{openid}:hotel-9");
    let message = |n: i64, idle_at_ms: i64| {
        let conversation = Conversation {
            last_message_at_ms: T0 + n,
            idle_at_ms: Some(idle_at_ms),
            ..Conversation::new(&id, channel, &openid, "hotel-9", T0)
        };
        let reply = StoredMessage::reply(
            &conversation,
            format!("out_idle_{n}"),
            T0 + n,
            serde_json::json!({"type": "text", "text": "hi"}),
        );
        (conversation, reply)
    };
    let mine =
        |found: Vec<Conversation>| found.into_iter().filter(|c| c.id == id).collect::<Vec<_>>();
    let (conversation, reply) = message(1, T0 + 60_000);
    store
        .put_outbound(&reply, &conversation, &reply.id)
        .await
        .unwrap();
    assert!(
        mine(store.idle_conversations(T0 + 59_999, 100).await.unwrap()).is_empty(),
        "not yet"
    );
    let due = mine(store.idle_conversations(T0 + 60_000, 100).await.unwrap());
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].idle_at_ms, Some(T0 + 60_000));

    // A newer message moves the deadline: the old one is not cleared, nor found.
    let (later, reply) = message(2, T0 + 120_000);
    store.put_outbound(&reply, &later, &reply.id).await.unwrap();
    assert!(mine(store.idle_conversations(T0 + 60_000, 100).await.unwrap()).is_empty());
    assert!(!store.clear_idle(&later, T0 + 60_000).await.unwrap());
    assert!(store.clear_idle(&later, T0 + 120_000).await.unwrap());
    assert!(
        mine(store.idle_conversations(T0 + 999_999, 100).await.unwrap()).is_empty(),
        "cleared"
    );
}
