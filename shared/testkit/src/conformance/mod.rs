//! What every [`Store`](wxbridge_core::ports::store::Store),
//! [`MediaCache`](wxbridge_core::ports::media::MediaCache) and
//! [`NonceStore`](wxbridge_core::ports::nonces::NonceStore) must do, one rule per function,
//! so the memory adapters and DynamoDB (through the local emulator) keep one contract and a
//! broken rule does not hide the others. The rules are grouped as the store's ports are, one
//! module per aggregate, each rule bounded by the ports it uses; [`crate::store_conformance!`]
//! turns them into one test each for a given store, in modules of the same names.
//!
//! Every rule works on a channel of its own ([`unique_channel`]), so all of them can run
//! at once against one shared table.

use std::sync::atomic::{AtomicU32, Ordering};
use wxbridge_core::model::{
    inbound_message_id, ActiveBecause, ChannelUser, Conversation, Direction, MessageStatus,
    OutboundRef, PackedRef, StoredMessage,
};
use wxbridge_core::ports::store::{MessageStore, Recorded, UserStore};

pub mod conversations;
pub mod handovers;
pub mod media_cache;
pub mod message_media;
pub mod messages;
pub mod nonces;
pub mod pushes;
pub mod sub_merchants;
pub mod users;

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
async fn first_message<S: MessageStore + UserStore>(
    store: &S,
    channel: &str,
) -> (StoredMessage, ChannelUser) {
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
async fn partner_reply<S: MessageStore>(store: &S, channel: &str) -> (StoredMessage, Conversation) {
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

async fn stored<S: MessageStore>(store: &S, message: &StoredMessage) -> Option<StoredMessage> {
    store
        .message(&message.conversation_id, message.created_at_ms, &message.id)
        .await
        .unwrap()
}

/// Two messages with their statuses and reasons, newest first: (second, first).
async fn two_settled_messages<S: MessageStore + UserStore>(
    store: &S,
    channel: &str,
) -> Vec<StoredMessage> {
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

/// One `#[tokio::test]` per rule of the store contract for the store `$store` builds (an
/// expression, awaited inside each test; it may use `.await`), per rule of the media cache
/// for `$cache`, and of the nonce store for `$nonces`: in one module per group of rules,
/// named as the group (`users::bound_users_are_found_by_their_app_user`).
#[macro_export]
macro_rules! store_conformance {
    (store: $store:expr, cache: $cache:expr, nonces: $nonces:expr) => {
        $crate::store_conformance!(@rules users $store;
            bound_users_are_found_by_their_app_user,
        );
        $crate::store_conformance!(@rules conversations $store;
            a_conversation_is_kept_once_with_its_latest_time,
            idle_conversations_are_found_by_their_deadline,
        );
        $crate::store_conformance!(@rules messages $store;
            an_inbound_message_is_stored_with_its_user,
            a_repeated_inbound_message_writes_nothing,
            a_stale_user_is_refused,
            released_replies_leave_the_user_in_the_same_write,
            history_is_newest_first,
            history_pages_follow_their_cursor,
            a_partner_message_is_stored_once_per_client_id,
            a_status_moves_only_from_where_it_may,
            a_reported_status_is_recorded_only_while_it_holds,
        );
        $crate::store_conformance!(@rules pushes $store;
            a_push_is_stored_once_per_push_id,
            a_push_record_is_written_with_its_status,
        );
        $crate::store_conformance!(@rules message_media $store;
            a_stored_image_copy_is_never_undone,
            a_users_image_is_found_by_its_media_id,
        );
        $crate::store_conformance!(@rules sub_merchants $store;
            sub_merchants_are_kept_per_channel_and_partner,
        );
        $crate::store_conformance!(@rules handovers $store;
            a_hand_over_is_applied_once_per_partner_and_id,
        );
        $crate::store_conformance!(@rules media_cache $cache;
            media_ids_are_kept_until_they_expire,
            a_media_id_is_forgotten_only_if_still_cached,
        );
        $crate::store_conformance!(@rules nonces $nonces;
            a_nonce_is_claimed_once_per_partner,
        );
    };
    (@rules $group:ident $make:expr; $($rule:ident),+ $(,)?) => {
        mod $group {
            // What the caller's `$make` names, from the module the macro was called in.
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $rule() {
                    let adapter = $make;
                    $crate::conformance::$group::$rule(
                        &adapter,
                        &$crate::conformance::unique_channel(),
                    )
                    .await;
                }
            )+
        }
    };
}
