//! What every [`Store`] must do, as one check that the unit tests run on the memory store
//! and the integration tests on DynamoDB (through the emulator), so both keep one contract.

use super::{
    ChannelUser, Conversation, Direction, MessageCursor, MessageStatus, Recorded, Store,
    StoreError, StoredMessage,
};
use crate::dispatch::{OutboundRef, PackedRef};
use crate::routing::ActiveBecause;

fn inbound(conversation: &Conversation, n: i64) -> StoredMessage {
    let dedupe_key = format!("{}:msg:{n}", conversation.channel);
    StoredMessage {
        id: super::keys::inbound_message_id(&dedupe_key),
        conversation_id: conversation.id.clone(),
        channel: conversation.channel.clone(),
        openid: conversation.openid.clone(),
        partner: conversation.partner.clone(),
        direction: Direction::In,
        status: MessageStatus::Received,
        status_reason: None,
        created_at_ms: 1_764_150_000_000 + n * 1000,
        dedupe_key: Some(dedupe_key),
        wechat_msg_id: Some(n.to_string()),
        content: serde_json::json!({"type": "text", "content": format!("message {n}"), "msg_id": n.to_string()}),
        released: Vec::new(),
        reported: None,
        push: None,
    }
}

/// Runs the contract against `store`; `channel` keeps runs apart in a shared table.
/// Panics with a description of the first broken promise.
pub async fn check<S: Store>(store: &S, channel: &str) {
    let openid = "o_conformance";
    let conversation = Conversation {
        id: format!("{channel}:{openid}:hotel-9"),
        channel: channel.to_owned(),
        openid: openid.to_owned(),
        partner: "hotel-9".to_owned(),
        created_at_ms: 1_764_150_000_000,
        last_message_at_ms: 1_764_150_000_000,
    };
    assert_eq!(
        store.user(channel, openid).await.unwrap(),
        None,
        "a new user is absent"
    );

    // First message: stored with its conversation and the user's new state.
    let mut user = ChannelUser::new(channel, openid);
    user.app_user_id = Some("app-123".into());
    user.routing
        .activate("hotel-9", 1_764_150_000_000, ActiveBecause::SessionFrom);
    user.grants.insert("tpl-1".into(), 1);
    user.session_context = vec![("partner".into(), "hotel-9".into())];
    let mut packed = OutboundRef::new(&conversation.id, 1_764_149_000_000, "out_held_1");
    packed.packed = vec![PackedRef {
        created_at_ms: 1_764_149_000_001,
        message_id: "out_held_2".into(),
    }];
    user.held = vec![
        packed,
        OutboundRef::new(&conversation.id, 1_764_149_000_002, "out_held_3"),
    ];
    let first = inbound(&conversation, 1);
    assert_eq!(
        store
            .record_inbound(&first, &conversation, &user)
            .await
            .unwrap(),
        Recorded::New
    );
    let stored_user = store
        .user(channel, openid)
        .await
        .unwrap()
        .expect("user stored");
    assert_eq!(stored_user.version, 1);
    assert_eq!(
        ChannelUser {
            version: 0,
            ..stored_user.clone()
        },
        user,
        "user round-trips"
    );

    // The same push again: nothing written, the stored message returned.
    let again = store
        .record_inbound(&first, &conversation, &stored_user)
        .await
        .unwrap();
    assert_eq!(again, Recorded::Duplicate(Box::new(first.clone())));
    assert_eq!(
        store.user(channel, openid).await.unwrap().unwrap().version,
        1,
        "a duplicate writes nothing"
    );

    // A write over a stale version is refused and writes nothing.
    let second = inbound(&conversation, 2);
    assert_eq!(
        store.record_inbound(&second, &conversation, &user).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.history(&conversation.id, 10).await.unwrap(),
        vec![first.clone()]
    );

    // Over the current version it is stored, with the held replies it released (taken
    // out of the user in the same write); history is newest first.
    let later = Conversation {
        last_message_at_ms: second.created_at_ms,
        ..conversation.clone()
    };
    let second = StoredMessage {
        released: stored_user.held.clone(),
        ..second
    };
    let stored_user = ChannelUser {
        held: Vec::new(),
        ..stored_user
    };
    assert_eq!(
        store
            .record_inbound(&second, &later, &stored_user)
            .await
            .unwrap(),
        Recorded::New
    );
    assert!(store
        .transition(
            &first,
            &[MessageStatus::Received],
            MessageStatus::Delivered,
            None
        )
        .await
        .unwrap());
    assert!(store
        .transition(
            &second,
            &[MessageStatus::Received],
            MessageStatus::Failed,
            Some("partner answered 400")
        )
        .await
        .unwrap());
    let history = store.history(&conversation.id, 10).await.unwrap();
    assert_eq!(
        history.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [second.id.as_str(), first.id.as_str()]
    );
    assert_eq!(history[0].status, MessageStatus::Failed);
    assert_eq!(
        history[0].status_reason.as_deref(),
        Some("partner answered 400")
    );
    assert_eq!(history[1].status, MessageStatus::Delivered);
    assert_eq!(history[1].status_reason, None);
    assert_eq!(
        history[0].released, user.held,
        "released replies round-trip"
    );
    assert!(
        store
            .user(channel, openid)
            .await
            .unwrap()
            .unwrap()
            .held
            .is_empty(),
        "released in the same write"
    );
    assert_eq!(
        store.history(&conversation.id, 1).await.unwrap().len(),
        1,
        "limit"
    );

    // One conversation, created once, with the time of its latest message.
    let conversations = store.conversations(channel, openid).await.unwrap();
    assert_eq!(conversations, vec![later.clone()]);
    assert_eq!(
        store
            .conversation(channel, openid, &conversation.id)
            .await
            .unwrap(),
        Some(later)
    );
    assert_eq!(
        store.conversation(channel, openid, "nope").await.unwrap(),
        None
    );

    // Pages: older than the cursor, newest first.
    let page = store
        .history_page(
            &conversation.id,
            10,
            Some(&MessageCursor::after(&history[0])),
        )
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [first.id.as_str()]
    );
    assert!(store
        .history_page(
            &conversation.id,
            10,
            Some(&MessageCursor::after(&history[1]))
        )
        .await
        .unwrap()
        .is_empty());

    // Bound users are found by their app user.
    assert!(store.users_of_app_user("app-7").await.unwrap().is_empty());
    let mut bound = store.user(channel, openid).await.unwrap().unwrap();
    bound.app_user_id = Some("app-7".into());
    store.put_user(&bound).await.unwrap();
    let found = store.users_of_app_user("app-7").await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|u| (u.channel.as_str(), u.openid.as_str()))
            .collect::<Vec<_>>(),
        [(channel, openid)]
    );

    // A partner's message: once per client message id.
    let reply = StoredMessage {
        id: "out_1".into(),
        direction: Direction::Out,
        status: MessageStatus::Queued,
        dedupe_key: None,
        wechat_msg_id: None,
        created_at_ms: second.created_at_ms + 1000,
        content: serde_json::json!({"type": "text", "text": "Breakfast is included."}),
        ..first.clone()
    };
    // Its conversation: a second partner writes first to this user.
    let partner_conversation = Conversation {
        id: format!("{}:other-partner", conversation.id),
        partner: "other-partner".into(),
        created_at_ms: reply.created_at_ms,
        last_message_at_ms: reply.created_at_ms,
        ..conversation.clone()
    };
    let reply = StoredMessage {
        conversation_id: partner_conversation.id.clone(),
        partner: partner_conversation.partner.clone(),
        ..reply
    };
    assert_eq!(
        store
            .put_outbound(&reply, &partner_conversation, "client-1")
            .await
            .unwrap(),
        Recorded::New
    );
    assert_eq!(
        store
            .conversation(channel, openid, &partner_conversation.id)
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
    let found = store
        .message(&partner_conversation.id, reply.created_at_ms, &reply.id)
        .await
        .unwrap();
    assert_eq!(found, Some(reply.clone()));
    assert_eq!(
        store
            .message(&partner_conversation.id, reply.created_at_ms, "nope")
            .await
            .unwrap(),
        None
    );

    // Status moves only from the states it may move from.
    use MessageStatus::*;
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
    let failed = store
        .message(&partner_conversation.id, reply.created_at_ms, &reply.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (failed.status, failed.status_reason.as_deref()),
        (Failed, Some("45047"))
    );
    assert!(
        !store
            .transition(&retry, &[Queued], Sending, None)
            .await
            .unwrap(),
        "no such message"
    );

    // The reported status is recorded only while the message is in it.
    assert_eq!(failed.reported, None);
    assert!(
        !store.mark_reported(&reply, Sent).await.unwrap(),
        "not in that status"
    );
    assert!(store.mark_reported(&reply, Failed).await.unwrap());
    let reported = store
        .message(&partner_conversation.id, reply.created_at_ms, &reply.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reported.reported, Some(Failed));
    assert_eq!(
        (reported.status, reported.status_reason.as_deref()),
        (Failed, Some("45047")),
        "the status is left as it was"
    );
    assert!(
        !store.mark_reported(&retry, Failed).await.unwrap(),
        "no such message"
    );

    // A push: once per (partner, push id), apart from client message ids; its record is
    // written with its status, only from the states it may move from.
    let record = crate::push::PushRecord {
        push_id: Some("client-1".into()),
        to: crate::push::PushTarget {
            app_user_id: Some("app-7".into()),
            channel: None,
            openid: None,
        },
        subscribe: Some(crate::push::SubscribeForm {
            template_id: "tpl-1".into(),
            data: serde_json::json!({"thing1": {"value": "Order 42 confirmed"}})
                .as_object()
                .cloned()
                .unwrap(),
            page: Some("pages/order?id=42".into()),
            miniprogram_state: None,
            lang: Some("en_US".into()),
        }),
        expires_at_ms: Some(reply.created_at_ms + 60_000),
        fallback: false,
        attempts: Vec::new(),
        path: None,
    };
    let push = StoredMessage {
        id: "push_1".into(),
        direction: Direction::Push,
        status: Queued,
        status_reason: None,
        created_at_ms: reply.created_at_ms + 1000,
        content: serde_json::json!({"type": "text", "text": "Your order is confirmed."}),
        push: Some(record.clone()),
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
    let mut progressed = record.clone();
    progressed.attempts.push(crate::push::PushAttempt {
        path: crate::push::PushPath::CustomerService,
        outcome: crate::push::AttemptOutcome::Skipped,
        channel: Some(channel.to_owned()),
        openid: Some(openid.to_owned()),
        reason: Some("the reply window is closed".into()),
        errcode: None,
        at_ms: push.created_at_ms,
    });
    progressed.path = Some(crate::push::PushPath::Inbox);
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
    let settled = store
        .message(&partner_conversation.id, push.created_at_ms, &push.id)
        .await
        .unwrap()
        .unwrap();
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
    let cleared = store
        .message(&partner_conversation.id, push.created_at_ms, &push.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (cleared.status, cleared.status_reason, cleared.push),
        (Sending, None, Some(record))
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

/// What every [`MediaCache`](crate::media::MediaCache) must do: ids kept per app and key
/// until they expire, even before the store deletes them; forgotten only if still the same.
pub async fn check_media_cache<C: crate::media::MediaCache>(cache: &C, appid: &str) {
    let now = 1_764_150_000_000;
    let expires = now + crate::media::MEDIA_LIFETIME_MS;
    assert_eq!(cache.cached_media(appid, "k1", now).await.unwrap(), None);
    cache
        .save_media(appid, "k1", "media-1", expires)
        .await
        .unwrap();
    assert_eq!(
        cache
            .cached_media(appid, "k1", now)
            .await
            .unwrap()
            .as_deref(),
        Some("media-1")
    );
    assert_eq!(
        cache
            .cached_media(appid, "k1", expires - 1000)
            .await
            .unwrap()
            .as_deref(),
        Some("media-1"),
        "still valid a second before it expires"
    );
    assert_eq!(
        cache.cached_media(appid, "k1", expires).await.unwrap(),
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

    // Forgetting an id that was replaced meanwhile leaves the new one.
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
