//! What every [`Store`], [`MediaCache`] and [`NonceStore`] must do, one rule per function, so the memory
//! adapters and DynamoDB (through the local emulator) keep one contract and a broken rule
//! does not hide the others. [`crate::store_conformance!`] turns the rules into one test
//! each for a given store.
//!
//! Every rule works on a channel of its own ([`unique_channel`]), so all of them can run
//! at once against one shared table.

use std::sync::atomic::{AtomicU32, Ordering};
use wxbridge_core::model::{
    inbound_message_id, ActiveBecause, AttemptOutcome, ChannelUser, Conversation, Direction,
    HandoverRecord, MediaCopy, MessageCursor, MessageStatus, OutboundRef, PackedRef, PushAttempt,
    PushPath, PushRecord, PushTarget, ReplyWindow, Session, StoredMessage, SubMerchant,
    SubscribeForm,
};
use wxbridge_core::ports::media::MediaCache;
use wxbridge_core::ports::nonces::NonceStore;
use wxbridge_core::ports::store::{Recorded, Store, StoreError};
use wxbridge_core::services::images::MEDIA_LIFETIME_MS;

const T0: i64 = 1_764_150_000_000;
const OPENID: &str = "o_conformance";

/// A channel id no other rule (or run) uses.
pub fn unique_channel() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "c{}x{}x{}",
        std::process::id(),
        wxbridge_core::clock::system_clock_ms() % 1_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The user's conversation with `hotel-9` on `channel`.
fn conversation(channel: &str) -> Conversation {
    Conversation::new(
        &format!("{channel}:{OPENID}:hotel-9"),
        channel,
        OPENID,
        "hotel-9",
        T0,
    )
}

/// The user's `n`th message in `conversation`, as `inbound` stores it.
fn inbound(conversation: &Conversation, n: i64) -> StoredMessage {
    let dedupe_key = format!("{}:msg:{n}", conversation.channel);
    StoredMessage {
        id: inbound_message_id(&dedupe_key),
        conversation_id: conversation.id.clone(),
        channel: conversation.channel.clone(),
        openid: conversation.openid.clone(),
        partner: conversation.partner.clone(),
        direction: Direction::In,
        status: MessageStatus::Received,
        status_reason: None,
        created_at_ms: T0 + n * 1000,
        dedupe_key: Some(dedupe_key),
        wechat_msg_id: Some(n.to_string()),
        content: serde_json::json!({"type": "text", "content": format!("message {n}"), "msg_id": n.to_string()}),
        released: Vec::new(),
        reported: None,
        push: None,
        media: None,
    }
}

/// A user with every field set, holding three replies (two of them packed).
fn full_user(channel: &str) -> ChannelUser {
    let conversation = conversation(channel);
    let mut user = ChannelUser::new(channel, OPENID);
    user.app_user_id = Some(format!("{channel}-app-123"));
    user.routing
        .activate("hotel-9", T0, ActiveBecause::SessionFrom);
    user.grants.insert("tpl-1".into(), 1);
    user.session_context = vec![("partner".into(), "hotel-9".into())];
    let mut packed = OutboundRef::new(&conversation.id, T0 - 1_000_000, "out_held_1");
    packed.packed = vec![PackedRef {
        created_at_ms: T0 - 999_999,
        message_id: "out_held_2".into(),
    }];
    user.held = vec![
        packed,
        OutboundRef::new(&conversation.id, T0 - 999_998, "out_held_3"),
    ];
    user
}

/// The user's first message stored, with their full state: the user as stored.
async fn first_message<S: Store>(store: &S, channel: &str) -> (StoredMessage, ChannelUser) {
    let first = inbound(&conversation(channel), 1);
    let recorded = store
        .record_inbound(&first, &conversation(channel), &full_user(channel))
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::New);
    let user = store
        .user(channel, OPENID)
        .await
        .unwrap()
        .expect("user stored");
    (first, user)
}

/// A partner's reply in a conversation of its own (`other-partner`), stored once.
async fn partner_reply<S: Store>(store: &S, channel: &str) -> (StoredMessage, Conversation) {
    let created_at_ms = T0 + 10_000;
    let partner_conversation = Conversation {
        id: format!("{}:other-partner", conversation(channel).id),
        partner: "other-partner".into(),
        ..Conversation::new("", channel, OPENID, "", created_at_ms)
    };
    let reply = StoredMessage::reply(
        &partner_conversation,
        "out_1",
        created_at_ms,
        serde_json::json!({"type": "text", "text": "Breakfast is included."}),
    );
    assert_eq!(
        store
            .put_outbound(&reply, &partner_conversation, "client-1")
            .await
            .unwrap(),
        Recorded::New
    );
    (reply, partner_conversation)
}

async fn stored<S: Store>(store: &S, message: &StoredMessage) -> Option<StoredMessage> {
    store
        .message(&message.conversation_id, message.created_at_ms, &message.id)
        .await
        .unwrap()
}

/// The first message is stored with its conversation and the user's new state, which
/// round-trips whole at version 1.
pub async fn an_inbound_message_is_stored_with_its_user<S: Store>(store: &S, channel: &str) {
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
pub async fn a_repeated_inbound_message_writes_nothing<S: Store>(store: &S, channel: &str) {
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
pub async fn a_stale_user_is_refused<S: Store>(store: &S, channel: &str) {
    let (first, _) = first_message(store, channel).await;
    let second = inbound(&conversation(channel), 2);
    assert_eq!(
        store
            .record_inbound(&second, &conversation(channel), &full_user(channel))
            .await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.history(&first.conversation_id, 10).await.unwrap(),
        vec![first]
    );
}

/// Held replies released by a message leave the user in the same write and round-trip on
/// the message.
pub async fn released_replies_leave_the_user_in_the_same_write<S: Store>(store: &S, channel: &str) {
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

/// Two messages with their statuses and reasons, newest first: (second, first).
async fn two_settled_messages<S: Store>(store: &S, channel: &str) -> Vec<StoredMessage> {
    let (first, user) = first_message(store, channel).await;
    let second = inbound(&conversation(channel), 2);
    let later = Conversation {
        last_message_at_ms: second.created_at_ms,
        ..conversation(channel)
    };
    store.record_inbound(&second, &later, &user).await.unwrap();
    use MessageStatus::*;
    assert!(store
        .transition(&first, &[Received], Delivered, None)
        .await
        .unwrap());
    assert!(store
        .transition(&second, &[Received], Failed, Some("partner answered 400"))
        .await
        .unwrap());
    store.history(&first.conversation_id, 10).await.unwrap()
}

/// History is newest first, with each message's status and reason, at most `limit`.
pub async fn history_is_newest_first<S: Store>(store: &S, channel: &str) {
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

/// A conversation is created once and keeps the time of its latest message.
pub async fn a_conversation_is_kept_once_with_its_latest_time<S: Store>(store: &S, channel: &str) {
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

/// A page of history is what is older than its cursor, newest first.
pub async fn history_pages_follow_their_cursor<S: Store>(store: &S, channel: &str) {
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

/// Users bound to an app user are found by it.
pub async fn bound_users_are_found_by_their_app_user<S: Store>(store: &S, channel: &str) {
    let app_user = format!("{channel}-app-7");
    assert!(store.users_of_app_user(&app_user).await.unwrap().is_empty());
    first_message(store, channel).await;
    let mut bound = store.user(channel, OPENID).await.unwrap().unwrap();
    bound.app_user_id = Some(app_user.clone());
    store.put_user(&bound).await.unwrap();
    let found = store.users_of_app_user(&app_user).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|u| (u.channel.as_str(), u.openid.as_str()))
            .collect::<Vec<_>>(),
        [(channel, OPENID)]
    );
}

/// A partner's message is stored once per client message id, with its conversation
/// (created with it), and is found where it is stored.
pub async fn a_partner_message_is_stored_once_per_client_id<S: Store>(store: &S, channel: &str) {
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
pub async fn a_status_moves_only_from_where_it_may<S: Store>(store: &S, channel: &str) {
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
pub async fn a_reported_status_is_recorded_only_while_it_holds<S: Store>(store: &S, channel: &str) {
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

/// An image's copy is recorded on its message, and once `stored` no later write (a late
/// retry's `pending` or `unavailable`) undoes it; a missing message is not written.
pub async fn a_stored_image_copy_is_never_undone<S: Store>(store: &S, channel: &str) {
    let (reply, _) = partner_reply(store, channel).await;
    let at = OutboundRef::to(&reply);
    let pending = MediaCopy::pending(Some("bucket unreachable".into()));
    assert!(store.set_media(&at, &pending).await.unwrap());
    assert_eq!(
        stored(store, &reply).await.unwrap().media,
        Some(pending.clone())
    );
    let kept = MediaCopy::stored("image/png", 1234);
    assert!(store.set_media(&at, &kept).await.unwrap());
    assert!(
        !store.set_media(&at, &pending).await.unwrap(),
        "a stored copy stays stored"
    );
    assert!(!store
        .set_media(&at, &MediaCopy::unavailable("late"))
        .await
        .unwrap());
    let read = stored(store, &reply).await.unwrap();
    assert_eq!(read.media, Some(kept));
    assert_eq!(read.status, reply.status, "the status is left as it was");
    let missing = OutboundRef::new(&reply.conversation_id, reply.created_at_ms, "out_missing");
    assert!(
        !store.set_media(&missing, &pending).await.unwrap(),
        "no such message"
    );
}

/// A user's image message records which message carried its media id, per channel: found
/// by the id in one read; a text, or an id the API would refuse, records nothing.
pub async fn a_users_image_is_found_by_its_media_id<S: Store>(store: &S, channel: &str) {
    let (_, user) = first_message(store, channel).await;
    let image = |n: i64, media_id: &str| StoredMessage {
        content: serde_json::json!({"type": "image", "msg_id": n.to_string(),
            "pic_url": "http://mmbiz.qpic.cn/x", "media_id": media_id}),
        ..inbound(&conversation(channel), n)
    };
    let media_id = format!("M_{channel}-1.a:b@c");
    let sent = image(2, &media_id);
    let mut user = user;
    store
        .record_inbound(&sent, &conversation(channel), &user)
        .await
        .unwrap();
    user.version += 1;
    let found = store.inbound_image(channel, &media_id).await.unwrap();
    assert_eq!(found, Some(OutboundRef::to(&sent)));
    assert_eq!(
        store.inbound_image(channel, &format!("{media_id}x")).await,
        Ok(None),
        "another id"
    );
    assert_eq!(
        store.inbound_image(&format!("{channel}x"), &media_id).await,
        Ok(None),
        "another channel"
    );
    assert_eq!(
        store.inbound_image(channel, "message 1").await,
        Ok(None),
        "a text carries no media"
    );
    let unusable = format!("M_{channel}/../x");
    assert_eq!(
        store
            .record_inbound(&image(3, &unusable), &conversation(channel), &user)
            .await,
        Ok(Recorded::New),
        "an id the API refuses is stored with its message"
    );
    assert_eq!(store.inbound_image(channel, &unusable).await, Ok(None));
    assert!(matches!(
        store
            .record_inbound(&sent, &conversation(channel), &user)
            .await,
        Ok(Recorded::Duplicate(_))
    ));
    assert_eq!(store.inbound_image(channel, &media_id).await, Ok(found));
}

/// A push as the API stores it.
fn push_record(channel: &str, expires_at_ms: i64) -> PushRecord {
    PushRecord {
        push_id: Some("client-1".into()),
        to: PushTarget {
            app_user_id: Some(format!("{channel}-app-7")),
            channel: None,
            openid: None,
        },
        subscribe: Some(SubscribeForm {
            template_id: "tpl-1".into(),
            data: serde_json::json!({"thing1": {"value": "Order 42 confirmed"}})
                .as_object()
                .cloned()
                .unwrap(),
            page: Some("pages/order?id=42".into()),
            miniprogram_state: None,
            lang: Some("en_US".into()),
        }),
        expires_at_ms: Some(expires_at_ms),
        fallback: false,
        attempts: Vec::new(),
        path: None,
    }
}

/// A push is stored once per (partner, push id), apart from client message ids, and is in
/// the history.
pub async fn a_push_is_stored_once_per_push_id<S: Store>(store: &S, channel: &str) {
    let (reply, partner_conversation) = partner_reply(store, channel).await;
    let push = StoredMessage {
        id: "push_1".into(),
        direction: Direction::Push,
        created_at_ms: reply.created_at_ms + 1000,
        content: serde_json::json!({"type": "text", "text": "Your order is confirmed."}),
        push: Some(push_record(channel, reply.created_at_ms + 60_000)),
        ..reply.clone()
    };
    assert_eq!(
        store
            .put_push(&push, &partner_conversation, "client-1")
            .await
            .unwrap(),
        Recorded::New,
        "a push id is not a client message id"
    );
    let again = StoredMessage {
        id: "push_2".into(),
        ..push.clone()
    };
    assert_eq!(
        store
            .put_push(&again, &partner_conversation, "client-1")
            .await
            .unwrap(),
        Recorded::Duplicate(Box::new(push.clone())),
        "the same push id gives the first push"
    );
    assert_eq!(
        store
            .history(&partner_conversation.id, 10)
            .await
            .unwrap()
            .iter()
            .map(|m| (m.id.as_str(), m.direction))
            .collect::<Vec<_>>(),
        [("push_1", Direction::Push), ("out_1", Direction::Out)],
        "pushes are in the history"
    );
}

/// A push's record is written with its status in one write, only from the states it may
/// move from.
pub async fn a_push_record_is_written_with_its_status<S: Store>(store: &S, channel: &str) {
    use MessageStatus::*;
    let (reply, partner_conversation) = partner_reply(store, channel).await;
    let record = push_record(channel, reply.created_at_ms + 60_000);
    let push = StoredMessage {
        id: "push_1".into(),
        direction: Direction::Push,
        created_at_ms: reply.created_at_ms + 1000,
        push: Some(record.clone()),
        ..reply
    };
    store
        .put_push(&push, &partner_conversation, "push-1")
        .await
        .unwrap();
    let mut progressed = record.clone();
    progressed.attempts.push(PushAttempt {
        path: PushPath::CustomerService,
        outcome: AttemptOutcome::Skipped,
        channel: Some(channel.to_owned()),
        openid: Some(OPENID.to_owned()),
        reason: Some("the reply window is closed".into()),
        errcode: None,
        at_ms: push.created_at_ms,
    });
    progressed.path = Some(PushPath::Inbox);
    assert!(
        !store
            .record_push(
                &push,
                &[Sending],
                Undeliverable,
                Some("no grant"),
                &progressed
            )
            .await
            .unwrap(),
        "not sending"
    );
    assert!(store
        .record_push(
            &push,
            &[Queued],
            Undeliverable,
            Some("no grant"),
            &progressed
        )
        .await
        .unwrap());
    let settled = stored(store, &push).await.unwrap();
    assert_eq!(
        (
            settled.status,
            settled.status_reason.as_deref(),
            settled.push.as_ref()
        ),
        (Undeliverable, Some("no grant"), Some(&progressed)),
        "status, reason and record in one write"
    );
    assert!(store
        .record_push(&push, &[Undeliverable], Sending, None, &record)
        .await
        .unwrap());
    let cleared = stored(store, &push).await.unwrap();
    assert_eq!(
        (cleared.status, cleared.status_reason, cleared.push),
        (Sending, None, Some(record))
    );
}

/// A channel's sub-merchants are kept one per partner (a later one replaces it), apart
/// from other channels', and read back whole; a user's sub-merchant sessions are kept with
/// the user.
pub async fn sub_merchants_are_kept_per_channel_and_partner<S: Store>(store: &S, channel: &str) {
    let sub_merchant = |partner: &str, business_id: u64, nickname: &str| SubMerchant {
        channel: channel.to_owned(),
        partner: partner.to_owned(),
        business_id,
        account_name: format!("{partner}_account").replace('-', "_"),
        nickname: nickname.to_owned(),
        avatar_sha256: "ab".repeat(32),
        updated_at_ms: T0,
    };
    assert!(store.sub_merchants(channel).await.unwrap().is_empty());
    let hotel = sub_merchant("hotel-9", 1001, "HotelLotus");
    store.put_sub_merchant(&hotel).await.unwrap();
    store
        .put_sub_merchant(&sub_merchant("air-2", 1002, "SkyAir"))
        .await
        .unwrap();
    let renamed = sub_merchant("hotel-9", 1001, "LotusHotel");
    store.put_sub_merchant(&renamed).await.unwrap();
    let mut kept = store.sub_merchants(channel).await.unwrap();
    kept.sort_by_key(|k| k.business_id);
    assert_eq!(kept, [renamed, sub_merchant("air-2", 1002, "SkyAir")]);
    let other = format!("{channel}-other");
    assert!(
        store.sub_merchants(&other).await.unwrap().is_empty(),
        "per channel"
    );

    // A user's sub-merchant sessions are kept with the user.
    let mut user = ChannelUser::new(channel, "o_sessions");
    *user.window_in_mut(Session::SubMerchant("hotel-9")) = Some(ReplyWindow {
        remaining: 3,
        closes_at_ms: T0 + 1_000,
        ..Default::default()
    });
    user.held_in_mut(Session::SubMerchant("hotel-9"))
        .push(OutboundRef::new("c:o:hotel-9", T0, "out_1"));
    store.put_user(&user).await.unwrap();
    let read = store.user(channel, "o_sessions").await.unwrap().unwrap();
    assert_eq!(read.sub_merchant_sessions, user.sub_merchant_sessions);
}

/// A conversation with an idle deadline is found once the deadline passes, until a newer
/// message moves it or it is cleared; clearing an old deadline does nothing.
pub async fn idle_conversations_are_found_by_their_deadline<S: Store>(store: &S, channel: &str) {
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

/// A hand-over is applied once per partner and id, for good: its record and the user's
/// new routing in one write; a repeat writes nothing and gives the first; a stale user is
/// refused with nothing recorded.
pub async fn a_hand_over_is_applied_once_per_partner_and_id<S: Store>(store: &S, channel: &str) {
    let (_, user) = first_message(store, channel).await;
    // Hand-over ids are the partner's, across channels: one of its own for this run.
    let id = format!("ho-{channel}");
    let record = |partner: &str, to: &str| HandoverRecord {
        partner: partner.into(),
        handover_id: id.clone(),
        conversation_id: conversation(channel).id,
        to: to.into(),
        at_ms: T0,
    };
    assert_eq!(store.handover("hotel-9", &id).await.unwrap(), None);
    let mut moved = user.clone();
    moved
        .routing
        .activate("air-2", T0 + 1, ActiveBecause::HandedOver);
    let first = record("hotel-9", "air-2");
    assert_eq!(store.put_handover(&moved, &first).await.unwrap(), None);
    let stored = store.user(channel, OPENID).await.unwrap().unwrap();
    assert_eq!(
        (&stored.routing, stored.version),
        (&moved.routing, user.version + 1)
    );
    assert_eq!(
        store.handover("hotel-9", &id).await.unwrap(),
        Some(first.clone())
    );

    let mut again = stored.clone();
    again
        .routing
        .activate("platform", T0 + 2, ActiveBecause::HandedOver);
    assert_eq!(
        store
            .put_handover(&again, &record("hotel-9", "platform"))
            .await
            .unwrap(),
        Some(first.clone()),
        "a repeat gives the first"
    );
    assert_eq!(
        store.user(channel, OPENID).await.unwrap(),
        Some(stored.clone())
    );

    // Another partner's same id is its own; over a stale user it is refused and not kept.
    let other = record("air-2", "hotel-9");
    assert_eq!(
        store.put_handover(&user, &other).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(store.handover("air-2", &id).await.unwrap(), None);
    assert_eq!(store.put_handover(&stored, &other).await.unwrap(), None);
    assert_eq!(store.handover("air-2", &id).await.unwrap(), Some(other));
}

/// Media ids are kept per app and key until they expire, even before the store deletes
/// them.
pub async fn media_ids_are_kept_until_they_expire<C: MediaCache>(cache: &C, appid: &str) {
    let now = T0;
    let expires = now + MEDIA_LIFETIME_MS;
    assert_eq!(cache.cached_media(appid, "k1", now).await.unwrap(), None);
    cache
        .save_media(appid, "k1", "media-1", expires)
        .await
        .unwrap();
    let cached = |at| cache.cached_media(appid, "k1", at);
    assert_eq!(cached(now).await.unwrap().as_deref(), Some("media-1"));
    assert_eq!(
        cached(expires - 1000).await.unwrap().as_deref(),
        Some("media-1"),
        "still valid a second before it expires"
    );
    assert_eq!(
        cached(expires).await.unwrap(),
        None,
        "an expired id is not used, whether or not the store deleted it yet"
    );
    assert_eq!(
        cache.cached_media(appid, "k2", now).await.unwrap(),
        None,
        "per key"
    );
    let other_app = format!("{appid}-other");
    assert_eq!(
        cache.cached_media(&other_app, "k1", now).await.unwrap(),
        None,
        "per app"
    );
}

/// A media id is forgotten only if it is still the one cached: a replaced one stays.
pub async fn a_media_id_is_forgotten_only_if_still_cached<C: MediaCache>(cache: &C, appid: &str) {
    let (now, expires) = (T0, T0 + MEDIA_LIFETIME_MS);
    cache
        .save_media(appid, "k1", "media-1", expires)
        .await
        .unwrap();
    cache
        .save_media(appid, "k1", "media-2", expires)
        .await
        .unwrap();
    cache.forget_media(appid, "k1", "media-1").await.unwrap();
    assert_eq!(
        cache
            .cached_media(appid, "k1", now)
            .await
            .unwrap()
            .as_deref(),
        Some("media-2")
    );
    cache.forget_media(appid, "k1", "media-2").await.unwrap();
    assert_eq!(cache.cached_media(appid, "k1", now).await.unwrap(), None);
    cache.forget_media(appid, "k1", "media-2").await.unwrap();
}

/// A nonce is claimed once per partner; the same claimant claiming it again (its write sent
/// twice) still has it, anyone else does not.
pub async fn a_nonce_is_claimed_once_per_partner<N: NonceStore>(nonces: &N, channel: &str) {
    let nonce = format!("nonce-{channel}");
    let claim = |partner: &'static str, claimant: &'static str| {
        let nonce = nonce.clone();
        async move {
            nonces
                .claim(partner, &nonce, claimant, 1_764_150_600)
                .await
                .unwrap()
        }
    };
    assert!(claim("hotel-9", "first").await);
    assert!(claim("hotel-9", "first").await, "its own write, sent again");
    assert!(!claim("hotel-9", "replay").await, "a replay");
    assert!(claim("air-2", "other").await, "per partner");
}

/// One `#[tokio::test]` per rule of the store contract for the store `$store` builds (an
/// expression, awaited inside each test; it may use `.await`), per rule of the media cache
/// for `$cache`, and of the nonce store for `$nonces`.
#[macro_export]
macro_rules! store_conformance {
    (store: $store:expr, cache: $cache:expr, nonces: $nonces:expr) => {
        $crate::store_conformance!(@rules store $store;
            an_inbound_message_is_stored_with_its_user,
            a_repeated_inbound_message_writes_nothing,
            a_stale_user_is_refused,
            released_replies_leave_the_user_in_the_same_write,
            history_is_newest_first,
            a_conversation_is_kept_once_with_its_latest_time,
            history_pages_follow_their_cursor,
            bound_users_are_found_by_their_app_user,
            a_partner_message_is_stored_once_per_client_id,
            a_status_moves_only_from_where_it_may,
            a_reported_status_is_recorded_only_while_it_holds,
            a_stored_image_copy_is_never_undone,
            a_users_image_is_found_by_its_media_id,
            a_push_is_stored_once_per_push_id,
            a_push_record_is_written_with_its_status,
            sub_merchants_are_kept_per_channel_and_partner,
            idle_conversations_are_found_by_their_deadline,
            a_hand_over_is_applied_once_per_partner_and_id,
        );
        $crate::store_conformance!(@rules cache $cache;
            media_ids_are_kept_until_they_expire,
            a_media_id_is_forgotten_only_if_still_cached,
        );
        $crate::store_conformance!(@rules nonces $nonces;
            a_nonce_is_claimed_once_per_partner,
        );
    };
    (@rules $kind:ident $make:expr; $($rule:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $rule() {
                let adapter = $make;
                $crate::conformance::$rule(&adapter, &$crate::conformance::unique_channel()).await;
            }
        )+
    };
}
