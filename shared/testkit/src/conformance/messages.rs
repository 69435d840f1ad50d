//! Messages ([`MessageStore`]): stored once with their conversation and user, read newest
//! first, moved from status to status.

use super::{
    conversation, first_message, full_user, inbound, partner_reply, stored, two_settled_messages,
    OPENID,
};
use wxbridge_core::model::{ChannelUser, MessageCursor, MessageStatus, StoredMessage};
use wxbridge_core::ports::store::{
    ConversationStore, MessageStore, Recorded, StoreError, UserStore,
};

/// The first message is stored with its conversation and the user's new state, which
/// round-trips whole at version 1.
pub async fn an_inbound_message_is_stored_with_its_user<S: MessageStore + UserStore>(
    store: &S,
    channel: &str,
) {
    assert_eq!(
        store.user(channel, OPENID).await.unwrap(),
        None,
        "a new user is absent"
    );
    let (first, user) = first_message(store, channel).await;
    assert_eq!(user.version, 1);
    assert_eq!(
        ChannelUser { version: 0, ..user },
        full_user(channel),
        "user round-trips"
    );
    assert_eq!(
        store.history(&first.conversation_id, 10).await.unwrap(),
        vec![first]
    );
}

/// The same push again writes nothing and returns the stored message.
pub async fn a_repeated_inbound_message_writes_nothing<S: MessageStore + UserStore>(
    store: &S,
    channel: &str,
) {
    let (first, user) = first_message(store, channel).await;
    let again = store
        .record_inbound(&first, &conversation(channel), &user)
        .await
        .unwrap();
    assert_eq!(again, Recorded::Duplicate(Box::new(first)));
    assert_eq!(
        store.user(channel, OPENID).await.unwrap().unwrap().version,
        1,
        "a duplicate writes nothing"
    );
}

/// A write over a stale version of the user is refused and writes nothing.
pub async fn a_stale_user_is_refused<S: MessageStore + UserStore>(store: &S, channel: &str) {
    let (first, _) = first_message(store, channel).await;
    let second = inbound(&conversation(channel), 2);
    let stale = store
        .record_inbound(&second, &conversation(channel), &full_user(channel))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(
        store.history(&first.conversation_id, 10).await.unwrap(),
        vec![first]
    );
}

/// Held replies released by a message leave the user in the same write and round-trip on
/// the message.
pub async fn released_replies_leave_the_user_in_the_same_write<S: MessageStore + UserStore>(
    store: &S,
    channel: &str,
) {
    let (_, user) = first_message(store, channel).await;
    let second = StoredMessage {
        released: user.held.clone(),
        ..inbound(&conversation(channel), 2)
    };
    let emptied = ChannelUser {
        held: Vec::new(),
        ..user.clone()
    };
    let recorded = store
        .record_inbound(&second, &conversation(channel), &emptied)
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::New);
    assert_eq!(
        stored(store, &second).await.unwrap().released,
        full_user(channel).held,
        "released replies round-trip"
    );
    assert!(
        store
            .user(channel, OPENID)
            .await
            .unwrap()
            .unwrap()
            .held
            .is_empty(),
        "released in the same write"
    );
}

/// History is newest first, with each message's status and reason, at most `limit`.
pub async fn history_is_newest_first<S: MessageStore + UserStore>(store: &S, channel: &str) {
    let history = two_settled_messages(store, channel).await;
    let ids: Vec<&str> = history.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            inbound(&conversation(channel), 2).id.as_str(),
            inbound(&conversation(channel), 1).id.as_str()
        ]
    );
    assert_eq!(
        (history[0].status, history[0].status_reason.as_deref()),
        (MessageStatus::Failed, Some("partner answered 400"))
    );
    assert_eq!(
        (history[1].status, history[1].status_reason.as_deref()),
        (MessageStatus::Delivered, None)
    );
    assert_eq!(
        store
            .history(&conversation(channel).id, 1)
            .await
            .unwrap()
            .len(),
        1,
        "limit"
    );
}

/// A page of history is what is older than its cursor, newest first.
pub async fn history_pages_follow_their_cursor<S: MessageStore + UserStore>(
    store: &S,
    channel: &str,
) {
    let history = two_settled_messages(store, channel).await;
    let id = &conversation(channel).id;
    let page = store
        .history_page(id, 10, Some(&MessageCursor::after(&history[0])))
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [history[1].id.as_str()]
    );
    assert!(store
        .history_page(id, 10, Some(&MessageCursor::after(&history[1])))
        .await
        .unwrap()
        .is_empty());
}

/// A partner's message is stored once per client message id, with its conversation
/// (created with it), and is found where it is stored.
pub async fn a_partner_message_is_stored_once_per_client_id<S: MessageStore + ConversationStore>(
    store: &S,
    channel: &str,
) {
    let (reply, partner_conversation) = partner_reply(store, channel).await;
    assert_eq!(
        store
            .conversation(channel, OPENID, &partner_conversation.id)
            .await
            .unwrap(),
        Some(partner_conversation.clone()),
        "the partner's conversation is created with its first message"
    );
    let retry = StoredMessage {
        id: "out_2".into(),
        ..reply.clone()
    };
    assert_eq!(
        store
            .put_outbound(&retry, &partner_conversation, "client-1")
            .await
            .unwrap(),
        Recorded::Duplicate(Box::new(reply.clone())),
        "the same client message id gives the first message"
    );
    assert_eq!(
        store
            .history(&partner_conversation.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(stored(store, &reply).await, Some(reply.clone()));
    assert_eq!(stored(store, &retry).await, None, "no such message");
}

/// A status moves only from the states it may move from.
pub async fn a_status_moves_only_from_where_it_may<S: MessageStore>(store: &S, channel: &str) {
    use MessageStatus::*;
    let (reply, _) = partner_reply(store, channel).await;
    assert!(store
        .transition(&reply, &[Queued, Held], Sending, None)
        .await
        .unwrap());
    assert!(
        !store
            .transition(&reply, &[Queued, Held], Sending, None)
            .await
            .unwrap(),
        "already sending"
    );
    assert!(store
        .transition(&reply, &[Sending], Failed, Some("45047"))
        .await
        .unwrap());
    let failed = stored(store, &reply).await.unwrap();
    assert_eq!(
        (failed.status, failed.status_reason.as_deref()),
        (Failed, Some("45047"))
    );
    let missing = StoredMessage {
        id: "out_missing".into(),
        ..reply
    };
    assert!(
        !store
            .transition(&missing, &[Queued], Sending, None)
            .await
            .unwrap(),
        "no such message"
    );
}

/// The reported status is recorded only while the message is in it, and leaves the
/// status as it was.
pub async fn a_reported_status_is_recorded_only_while_it_holds<S: MessageStore>(
    store: &S,
    channel: &str,
) {
    use MessageStatus::*;
    let (reply, _) = partner_reply(store, channel).await;
    assert!(store
        .transition(&reply, &[Queued], Failed, Some("45047"))
        .await
        .unwrap());
    assert_eq!(stored(store, &reply).await.unwrap().reported, None);
    assert!(
        !store.mark_reported(&reply, Sent).await.unwrap(),
        "not in that status"
    );
    assert!(store.mark_reported(&reply, Failed).await.unwrap());
    let reported = stored(store, &reply).await.unwrap();
    assert_eq!(reported.reported, Some(Failed));
    assert_eq!(
        (reported.status, reported.status_reason.as_deref()),
        (Failed, Some("45047")),
        "the status is left as it was"
    );
    let missing = StoredMessage {
        id: "out_missing".into(),
        ..reply
    };
    assert!(
        !store.mark_reported(&missing, Failed).await.unwrap(),
        "no such message"
    );
}
