//! Keeping images on memory adapters: what `inbound` asks for, and how one copy ends —
//! stored, unavailable with the reason, or pending and retried until WeChat's three days
//! are over.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use serde_json::json;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::media::{object_key, WECHAT_MEDIA_LIFETIME_MS};
use wxbridge_core::model::{
    Conversation, InboundMessage, MediaCopy, MediaJob, MediaStatus, OutboundRef, StoredMessage,
};
use wxbridge_core::ports::store::MessageStore;
use wxbridge_core::ports::wechat::Media;
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::media::{CopyOutcome, MediaKeeper};
use wxbridge_testkit::{Memory, MemoryPorts};
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const T: i64 = 1_764_150_000_000;
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];

fn config() -> BridgeConfig {
    BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"s"}],
        "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789"}],
        "dialog":{"mode":"merged","default_partner":"hotel-9"}}"#,
    )
    .unwrap()
}

fn push(kind: EventKind) -> InboundMessage {
    let event = CallbackEvent {
        to_user_name: "gh_1".into(),
        from_user_name: "o_alice".into(),
        create_time: T / 1000,
        business_id: None,
        kind,
    };
    InboundMessage::new("mp", event, T)
}

fn image(media_id: &str) -> EventKind {
    EventKind::Image {
        msg_id: "42".into(),
        pic_url: "http://mmbiz/x".into(),
        media_id: media_id.into(),
    }
}

#[tokio::test]
async fn a_users_image_is_stored_pending_and_its_copy_asked_for_on_every_redelivery() {
    let memory = Memory::default();
    let inbound = Inbound::new(memory.bridge(config(), T), memory.outbound.clone())
        .with_media_queue(memory.media.clone());
    let message = push(image("m-1"));
    assert_eq!(inbound.process(&message, T).await, Outcome::Delivered);
    let stored = memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(stored[0].media, Some(MediaCopy::pending(None)));
    let jobs = memory.media.copies();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].media_id, "m-1");
    assert_eq!(jobs[0].message, OutboundRef::to(&stored[0]));
    assert_eq!(jobs[0].wechat_expires_at_ms, T + WECHAT_MEDIA_LIFETIME_MS);
    let webhook = &memory.webhooks.posts()[0].body;
    assert_eq!(webhook["message"]["media"]["status"], "pending");

    // A redelivery asks again (the queue drops the repeat; the copy makes it once).
    assert_eq!(inbound.process(&message, T).await, Outcome::AlreadyDone);
    assert_eq!(memory.media.copies().len(), 2);
    assert_eq!(
        memory.media.copies()[1].deduplication_id(),
        jobs[0].deduplication_id()
    );

    // A text asks for nothing and has no copy.
    let text = push(EventKind::Text {
        msg_id: "43".into(),
        content: "hi".into(),
    });
    assert_eq!(inbound.process(&text, T).await, Outcome::Delivered);
    assert_eq!(memory.media.copies().len(), 2);
}

#[tokio::test]
async fn without_the_media_queue_an_image_is_kept_only_as_wechats_media_id() {
    let memory = Memory::default();
    let inbound = Inbound::new(memory.bridge(config(), T), memory.outbound.clone());
    assert_eq!(
        inbound.process(&push(image("m-1")), T).await,
        Outcome::Delivered
    );
    let stored = memory
        .store
        .history("mp:o_alice:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(stored[0].media, None);
    assert!(memory.webhooks.posts()[0].body["message"]["media"].is_null());
}

/// A stored user image and the job to copy it.
async fn stored_image(memory: &Memory, now_ms: i64) -> MediaJob {
    let conversation = Conversation::new("mp:o_alice:hotel-9", "mp", "o_alice", "hotel-9", T);
    let mut message = StoredMessage::reply(
        &conversation,
        "in_1",
        T,
        json!({"type": "image", "media_id": "m-1"}),
    );
    message.media = Some(MediaCopy::pending(None));
    memory
        .store
        .put_outbound(&message, &conversation, "in_1")
        .await
        .unwrap();
    MediaJob::of(&message, "m-1", now_ms)
}

fn keeper(memory: &Memory, now_ms: i64) -> MediaKeeper<MemoryPorts> {
    MediaKeeper::new(memory.bridge(config(), now_ms), memory.archive.clone())
}

async fn copy_state(memory: &Memory, job: &MediaJob) -> MediaCopy {
    memory
        .store
        .message_at(&job.message)
        .await
        .unwrap()
        .unwrap()
        .media
        .unwrap()
}

fn hold(memory: &Memory, bytes: &[u8]) {
    memory.wechat.hold_media(
        "m-1",
        Media {
            content_type: "image/jpeg".into(),
            bytes: bytes.to_vec(),
        },
    );
}

#[tokio::test]
async fn a_copy_is_kept_under_its_conversations_key_by_the_type_its_bytes_tell() {
    let memory = Memory::default();
    let job = stored_image(&memory, T).await;
    hold(&memory, JPEG);
    assert_eq!(keeper(&memory, T).copy(&job).await, CopyOutcome::Stored);
    let key = object_key("mp", "mp:o_alice:hotel-9", "in_1");
    assert_eq!(memory.archive.object(&key).unwrap().bytes, JPEG);
    assert_eq!(
        copy_state(&memory, &job).await,
        MediaCopy::stored("image/jpeg", JPEG.len() as u64)
    );
    // Kept once: a repeat does not ask WeChat again.
    let calls = memory.wechat.calls().len();
    assert_eq!(
        keeper(&memory, T).copy(&job).await,
        CopyOutcome::AlreadyDone
    );
    assert_eq!(memory.wechat.calls().len(), calls);
}

#[tokio::test]
async fn what_trying_again_cannot_help_is_unavailable_at_once() {
    // Not an image by its bytes.
    let memory = Memory::default();
    let job = stored_image(&memory, T).await;
    hold(&memory, b"<html>not an image</html>");
    assert!(matches!(
        keeper(&memory, T).copy(&job).await,
        CopyOutcome::Unavailable(reason) if reason.contains("not a JPEG")
    ));
    assert_eq!(
        copy_state(&memory, &job).await.status,
        MediaStatus::Unavailable
    );
    assert!(memory.archive.keys().is_empty());

    // WeChat does not have it (40007).
    let memory = Memory::default();
    let job = stored_image(&memory, T).await;
    let outcome = keeper(&memory, T).copy(&job).await;
    assert!(
        matches!(&outcome, CopyOutcome::Unavailable(reason) if reason.contains("40007")),
        "{outcome:?}"
    );

    // Over 4 MiB.
    let memory = Memory::default();
    let job = stored_image(&memory, T).await;
    let mut large = JPEG.to_vec();
    large.resize(4 * 1024 * 1024 + 1, 0);
    hold(&memory, &large);
    assert!(matches!(
        keeper(&memory, T).copy(&job).await,
        CopyOutcome::Unavailable(reason) if reason.contains("4 MiB")
    ));
}

#[tokio::test]
async fn a_copy_failing_for_now_is_pending_with_the_reason_until_wechats_days_run_out() {
    let memory = Memory::default();
    let job = stored_image(&memory, T).await;
    hold(&memory, JPEG);
    memory.archive.set_down(true);
    let outcome = keeper(&memory, T + 60_000).copy(&job).await;
    assert!(matches!(outcome, CopyOutcome::Retry(_)), "{outcome:?}");
    let pending = copy_state(&memory, &job).await;
    assert_eq!(pending.status, MediaStatus::Pending);
    assert_eq!(
        pending.reason.as_deref(),
        Some("the media bucket could not be reached"),
        "the bucket's own error stays in the log"
    );

    // WeChat busy (-1) is for later too.
    memory.archive.set_down(false);
    memory.wechat.answer("media/get", -1);
    let outcome = keeper(&memory, T + 120_000).copy(&job).await;
    assert!(matches!(outcome, CopyOutcome::Retry(_)), "{outcome:?}");

    // Still failing when WeChat's three days are over: given up, with why.
    memory.archive.set_down(true);
    let late = T + WECHAT_MEDIA_LIFETIME_MS;
    let outcome = keeper(&memory, late).copy(&job).await;
    assert!(
        matches!(&outcome, CopyOutcome::Unavailable(reason) if reason.contains("three days")),
        "{outcome:?}"
    );
    assert_eq!(
        copy_state(&memory, &job).await.status,
        MediaStatus::Unavailable
    );
}

#[tokio::test]
async fn a_job_for_a_message_not_stored_is_dropped() {
    let memory = Memory::default();
    let conversation = Conversation::new("mp:o_alice:hotel-9", "mp", "o_alice", "hotel-9", T);
    let message = StoredMessage::reply(&conversation, "in_gone", T, json!({"type": "image"}));
    let job = MediaJob::of(&message, "m-1", T);
    assert_eq!(
        keeper(&memory, T).copy(&job).await,
        CopyOutcome::AlreadyDone
    );
    assert!(memory.wechat.calls().is_empty());
}

#[tokio::test]
async fn a_copy_kept_but_not_recorded_is_recorded_even_after_wechat_lost_the_media() {
    // An earlier attempt put the object and could not record it; WeChat's copy is gone
    // now (40007): the kept one is recorded, not given up.
    let memory = Memory::default();
    let job = stored_image(&memory, T).await;
    use wxbridge_core::ports::media::MediaArchive;
    memory
        .archive
        .put(&job.object_key(), "image/jpeg", JPEG.to_vec())
        .await
        .unwrap();
    assert_eq!(keeper(&memory, T).copy(&job).await, CopyOutcome::Stored);
    assert_eq!(
        copy_state(&memory, &job).await,
        MediaCopy::stored("image/jpeg", JPEG.len() as u64)
    );
}
