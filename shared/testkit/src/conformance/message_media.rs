//! Image messages' media ([`MessageMediaStore`]): a user's image found by its media id, a
//! kept copy never undone.

use super::{conversation, first_message, inbound, partner_reply, stored};
use wxbridge_core::model::{MediaCopy, OutboundRef, StoredMessage};
use wxbridge_core::ports::store::{MessageMediaStore, MessageStore, Recorded, UserStore};

/// An image's copy is recorded on its message, and once `stored` no later write (a late
/// retry's `pending` or `unavailable`) undoes it; a missing message is not written.
pub async fn a_stored_image_copy_is_never_undone<S: MessageMediaStore + MessageStore>(
    store: &S,
    channel: &str,
) {
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
pub async fn a_users_image_is_found_by_its_media_id<
    S: MessageMediaStore + MessageStore + UserStore,
>(
    store: &S,
    channel: &str,
) {
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
        store
            .inbound_image(channel, &format!("{media_id}x"))
            .await
            .unwrap(),
        None,
        "another id"
    );
    assert_eq!(
        store
            .inbound_image(&format!("{channel}x"), &media_id)
            .await
            .unwrap(),
        None,
        "another channel"
    );
    assert_eq!(
        store.inbound_image(channel, "message 1").await.unwrap(),
        None,
        "a text carries no media"
    );
    let unusable = format!("M_{channel}/../x");
    assert_eq!(
        store
            .record_inbound(&image(3, &unusable), &conversation(channel), &user)
            .await
            .unwrap(),
        Recorded::New,
        "an id the API refuses is stored with its message"
    );
    assert_eq!(store.inbound_image(channel, &unusable).await.unwrap(), None);
    assert!(matches!(
        store
            .record_inbound(&sent, &conversation(channel), &user)
            .await,
        Ok(Recorded::Duplicate(_))
    ));
    assert_eq!(
        store.inbound_image(channel, &media_id).await.unwrap(),
        found
    );
}
