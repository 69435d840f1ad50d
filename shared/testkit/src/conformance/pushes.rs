//! Pushes ([`PushStore`]): stored once per push id, their record written with their status.

use super::{partner_reply, stored, OPENID};
use wxbridge_core::model::{
    AttemptOutcome, Direction, MessageStatus, PushAttempt, PushPath, PushRecord, PushTarget,
    StoredMessage, SubscribeForm,
};
use wxbridge_core::ports::store::{MessageStore, PushStore, Recorded};

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
pub async fn a_push_is_stored_once_per_push_id<S: PushStore + MessageStore>(
    store: &S,
    channel: &str,
) {
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
pub async fn a_push_record_is_written_with_its_status<S: PushStore + MessageStore>(
    store: &S,
    channel: &str,
) {
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
