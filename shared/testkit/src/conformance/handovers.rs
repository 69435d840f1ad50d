//! Hand-overs ([`HandoverStore`]): applied once per partner and id, with the user they
//! move.

use super::{conversation, first_message, OPENID, T0};
use wxbridge_core::model::{ActiveBecause, HandoverRecord};
use wxbridge_core::ports::store::{HandoverStore, MessageStore, StoreError, UserStore};

/// A hand-over is applied once per partner and id, for good: its record and the user's
/// new routing in one write; a repeat writes nothing and gives the first; a stale user is
/// refused with nothing recorded.
pub async fn a_hand_over_is_applied_once_per_partner_and_id<
    S: HandoverStore + UserStore + MessageStore,
>(
    store: &S,
    channel: &str,
) {
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
    let stale = store.put_handover(&user, &other).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(store.handover("air-2", &id).await.unwrap(), None);
    assert_eq!(store.put_handover(&stored, &other).await.unwrap(), None);
    assert_eq!(store.handover("air-2", &id).await.unwrap(), Some(other));
}
