//! Dispatch: holding, packed sends and status reports, on memory adapters and a scripted
//! WeChat.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::message::lost_answer;
use wxbridge_core::model::{
    ChannelUser, Conversation, MessageStatus, OutboundRef, PackedRef, ReplyWindow, StoredMessage,
};
use wxbridge_core::ports::store::{MessageStore, Recorded, UserStore};
use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome};
use wxbridge_testkit::scripted_wechat::{CUSTOM_SEND, UPLOAD};

/// A 1×1 GIF, base64.
const BASE64_GIF: &str = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
use wxbridge_testkit::{Memory, MemoryPorts, MemoryStore};

const T: i64 = 1_764_150_000_000;

struct Setup {
    dispatch: Dispatch<MemoryPorts>,
    memory: Memory,
}

fn setup() -> Setup {
    setup_losing_answers("resend")
}

/// With the setting `lost_send_answer`.
fn setup_losing_answers(lost_send_answer: &str) -> Setup {
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"s"}}],
        "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789"}}],
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}},
        "lost_send_answer":"{lost_send_answer}"}}"#,
    ))
    .unwrap();
    let memory = Memory::default();
    let dispatch = Dispatch::new(
        memory.bridge(config, T),
        memory.images(),
        memory.outbound.clone(),
    );
    Setup { dispatch, memory }
}

impl Setup {
    fn store(&self) -> &MemoryStore {
        &self.memory.store
    }

    /// The user's window with `remaining` sends.
    async fn window(&self, remaining: u32) {
        let mut user = self
            .store()
            .user("mp", "o_a")
            .await
            .unwrap()
            .unwrap_or_else(|| ChannelUser::new("mp", "o_a"));
        user.window = Some(ReplyWindow {
            remaining,
            closes_at_ms: T + 3_600_000,
            ..Default::default()
        });
        self.store().put_user(&user).await.unwrap();
    }

    async fn user(&self) -> ChannelUser {
        self.store().user("mp", "o_a").await.unwrap().unwrap()
    }

    async fn reply(&self, n: i64, text: &str, status: MessageStatus) -> OutboundRef {
        let content = serde_json::json!({"type": "text", "text": text});
        self.stored_reply(&format!("out_{n}"), T - 10_000 + n, content, status)
            .await
    }

    /// A reply with this content stored (and not yet queued) in the hotel's conversation.
    async fn stored_reply(
        &self,
        id: &str,
        created_at_ms: i64,
        content: serde_json::Value,
        status: MessageStatus,
    ) -> OutboundRef {
        let conversation = Conversation::new("mp:o_a:hotel-9", "mp", "o_a", "hotel-9", T - 10_000);
        let message = StoredMessage {
            status,
            ..StoredMessage::reply(&conversation, id, created_at_ms, content)
        };
        assert_eq!(
            self.store()
                .put_outbound(&message, &conversation, &message.id)
                .await
                .unwrap(),
            Recorded::New
        );
        OutboundRef::to(&message)
    }

    async fn message(&self, target: &OutboundRef) -> StoredMessage {
        self.store()
            .message(
                &target.conversation_id,
                target.created_at_ms,
                &target.message_id,
            )
            .await
            .unwrap()
            .unwrap()
    }

    fn texts(&self) -> Vec<String> {
        self.memory
            .wechat
            .sent()
            .iter()
            .map(|b| b["text"]["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_reply_over_quota_is_held_on_the_users_list_once() {
    let s = setup();
    s.window(0).await;
    let reply = s.reply(1, "one more thing", MessageStatus::Queued).await;
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Held);
    assert_eq!(s.message(&reply).await.status, MessageStatus::Held);
    assert_eq!(s.user().await.held, std::slice::from_ref(&reply));
    // A redelivery holds it again without listing it twice.
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Held);
    assert_eq!(s.user().await.held, [reply]);
    assert!(s.texts().is_empty());
    assert!(
        s.memory.webhooks.deliveries().is_empty(),
        "held is not a final status"
    );
}

#[tokio::test]
async fn a_hold_that_races_the_users_new_message_decides_again_and_sends() {
    let s = setup();
    s.window(0).await;
    let reply = s
        .reply(1, "your room is ready", MessageStatus::Queued)
        .await;
    // The user writes while dispatch holds: inbound reopens the window and writes first.
    s.store().before_next_put_user(|user| {
        user.window = Some(ReplyWindow {
            remaining: 5,
            closes_at_ms: T + 48 * 3_600_000,
            ..Default::default()
        })
    });
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);
    assert_eq!(s.texts(), ["【Hotel Lotus】your room is ready"]);
    let user = s.user().await;
    assert!(user.held.is_empty(), "never left on a list nobody releases");
    assert_eq!(user.window.unwrap().remaining, 4);

    // A change that does not reopen the window: held after all, over the fresh version.
    s.window(0).await;
    let later = s.reply(2, "and breakfast", MessageStatus::Queued).await;
    s.store().before_next_put_user(|user| {
        user.grants.insert("tpl".into(), 1);
    });
    assert_eq!(s.dispatch.process(&later).await, DispatchOutcome::Held);
    let user = s.user().await;
    assert_eq!(user.held, [later]);
    assert_eq!(user.grants.get("tpl"), Some(&1), "the other write is kept");
}

#[tokio::test]
async fn packed_texts_go_out_as_one_message_with_one_sender_name() {
    let s = setup();
    s.window(1).await;
    let mut lead = s.reply(1, "first", MessageStatus::Held).await;
    for (n, text) in [(2, "second"), (3, "third")] {
        let part = s.reply(n, text, MessageStatus::Held).await;
        lead.packed.push(PackedRef {
            created_at_ms: part.created_at_ms,
            message_id: part.message_id,
        });
    }
    assert_eq!(s.dispatch.process(&lead).await, DispatchOutcome::Sent);
    assert_eq!(s.texts(), ["【Hotel Lotus】first\nsecond\nthird"]);
    for part in lead.parts() {
        assert_eq!(s.message(&part).await.status, MessageStatus::Sent);
    }
    let reported: Vec<String> = s
        .memory
        .webhooks
        .deliveries()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(reported, ["out_1:sent", "out_2:sent", "out_3:sent"]);
    assert_eq!(
        s.user().await.window.unwrap().remaining,
        0,
        "one send spent"
    );
    // A redelivery sends nothing.
    assert_eq!(
        s.dispatch.process(&lead).await,
        DispatchOutcome::AlreadyDone
    );
    assert_eq!(s.texts().len(), 1);

    // Held again as a whole when the quota is used up.
    let mut again = s.reply(4, "fourth", MessageStatus::Held).await;
    let fifth = s.reply(5, "fifth", MessageStatus::Held).await;
    again.packed.push(PackedRef {
        created_at_ms: fifth.created_at_ms,
        message_id: fifth.message_id.clone(),
    });
    assert_eq!(s.dispatch.process(&again).await, DispatchOutcome::Held);
    assert_eq!(s.user().await.held, [again]);
    assert_eq!(s.message(&fifth).await.status, MessageStatus::Held);
}

#[tokio::test]
async fn a_status_report_is_retried_from_the_queue_until_delivered_and_not_after() {
    let s = setup();
    s.window(5).await;
    let reply = s.reply(1, "hello", MessageStatus::Queued).await;
    s.memory.webhooks.not_now();
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);
    assert_eq!(s.message(&reply).await.reported, None);
    let queued = s.memory.outbound.sent();
    assert_eq!(queued.len(), 1);
    let (job, dedup) = &queued[0];
    assert!(job.report);
    assert_eq!(dedup, "out_1:report:sent");
    assert_eq!(
        job.group_id(),
        "report:out_1",
        "not in the conversation's group"
    );

    // The FIFO consumer retries the job: still down, then back.
    s.memory.webhooks.not_now();
    assert!(matches!(
        s.dispatch.process(job).await,
        DispatchOutcome::Retry(_)
    ));
    assert_eq!(s.dispatch.process(job).await, DispatchOutcome::Reported);
    assert_eq!(s.message(&reply).await.reported, Some(MessageStatus::Sent));
    // A repeat of the job, or of the reply, tells the partner nothing more.
    assert_eq!(s.dispatch.process(job).await, DispatchOutcome::AlreadyDone);
    assert_eq!(
        s.dispatch.process(&reply).await,
        DispatchOutcome::AlreadyDone
    );
    let posts = s.memory.webhooks.deliveries();
    assert_eq!(posts.len(), 3);
    assert!(posts.iter().all(|(id, _)| id == "out_1:sent"), "{posts:?}");
    assert!(posts
        .iter()
        .all(|(_, body)| body["message"]["status"] == "sent"));
    assert_eq!(s.memory.outbound.sent().len(), 1);
    assert_eq!(s.texts().len(), 1);
}

#[tokio::test]
async fn a_refused_report_is_final_and_one_neither_delivered_nor_queued_is_retried() {
    let s = setup();
    s.window(5).await;
    let refused = s.reply(1, "one", MessageStatus::Queued).await;
    s.memory.webhooks.refuse(410);
    assert_eq!(s.dispatch.process(&refused).await, DispatchOutcome::Sent);
    assert_eq!(
        s.message(&refused).await.reported,
        Some(MessageStatus::Sent),
        "refused for good: not retried"
    );
    assert!(s.memory.outbound.sent().is_empty());

    let reply = s.reply(2, "two", MessageStatus::Queued).await;
    s.memory.webhooks.not_now();
    s.memory.outbound.fail(true);
    assert!(matches!(
        s.dispatch.process(&reply).await,
        DispatchOutcome::RetrySoon(_)
    ));
    assert_eq!(s.message(&reply).await.status, MessageStatus::Sent);
    s.memory.outbound.fail(false);
    // The record comes back: nothing is sent again, the report goes.
    assert_eq!(
        s.dispatch.process(&reply).await,
        DispatchOutcome::AlreadyDone
    );
    assert_eq!(s.message(&reply).await.reported, Some(MessageStatus::Sent));
    assert_eq!(s.texts().len(), 2);
    let ids: Vec<String> = s
        .memory
        .webhooks
        .deliveries()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["out_1:sent", "out_2:sent", "out_2:sent"]);
}

#[tokio::test]
async fn every_packed_part_is_settled_before_any_report_so_none_is_sent_twice() {
    let s = setup();
    s.window(1).await;
    let mut lead = s.reply(1, "first", MessageStatus::Held).await;
    for (n, text) in [(2, "second"), (3, "third")] {
        let part = s.reply(n, text, MessageStatus::Held).await;
        lead.packed.push(PackedRef {
            created_at_ms: part.created_at_ms,
            message_id: part.message_id,
        });
    }
    // The partner is down and the report queue too: the record is retried...
    for _ in 0..3 {
        s.memory.webhooks.not_now();
    }
    s.memory.outbound.fail(true);
    assert!(matches!(
        s.dispatch.process(&lead).await,
        DispatchOutcome::RetrySoon(_)
    ));
    // ...but every part is already recorded sent, so the retry only reports.
    for part in lead.parts() {
        assert_eq!(s.message(&part).await.status, MessageStatus::Sent);
    }
    s.memory.outbound.fail(false);
    assert_eq!(
        s.dispatch.process(&lead).await,
        DispatchOutcome::AlreadyDone
    );
    assert_eq!(
        s.texts(),
        ["【Hotel Lotus】first\nsecond\nthird"],
        "sent once"
    );
    for part in lead.parts() {
        assert_eq!(s.message(&part).await.reported, Some(MessageStatus::Sent));
    }
}

#[tokio::test]
async fn a_packed_card_that_cannot_be_requeued_leaves_the_whole_record_for_later() {
    let s = setup();
    s.window(1).await;
    let mut lead = s.reply(1, "first", MessageStatus::Held).await;
    let conversation = Conversation::new("mp:o_a:hotel-9", "mp", "o_a", "hotel-9", T - 10_000);
    let card = StoredMessage {
        status: MessageStatus::Held,
        ..StoredMessage::reply(
            &conversation,
            "out_card",
            T - 9_000,
            serde_json::json!({"type": "miniprogrampage", "title": "Order", "pagepath": "pages/o", "thumb_media_id": "m"}),
        )
    };
    s.store()
        .put_outbound(&card, &conversation, &card.id)
        .await
        .unwrap();
    lead.packed.push(PackedRef {
        created_at_ms: card.created_at_ms,
        message_id: card.id.clone(),
    });
    s.memory.outbound.fail(true);
    assert!(matches!(
        s.dispatch.process(&lead).await,
        DispatchOutcome::RetrySoon(_)
    ));
    assert!(s.texts().is_empty(), "nothing claimed, nothing sent");
    assert_eq!(s.message(&lead).await.status, MessageStatus::Held);
    s.memory.outbound.fail(false);
    assert_eq!(s.dispatch.process(&lead).await, DispatchOutcome::Sent);
    assert_eq!(s.texts(), ["【Hotel Lotus】first"]);
    assert_eq!(
        s.memory.outbound.sent()[0].1,
        "out_card:unpacked",
        "the card goes on its own"
    );
}

#[tokio::test]
async fn a_released_reply_whose_window_closed_waits_for_the_next_message() {
    let s = setup();
    // Released into a one-minute window (the user entered the session) that has closed.
    let mut user = ChannelUser::new("mp", "o_a");
    user.window = Some(ReplyWindow {
        remaining: 2,
        closes_at_ms: T - 1,
        ..Default::default()
    });
    s.store().put_user(&user).await.unwrap();
    let released = s.reply(1, "your taxi is here", MessageStatus::Held).await;
    assert_eq!(s.dispatch.process(&released).await, DispatchOutcome::Held);
    assert_eq!(s.user().await.held, std::slice::from_ref(&released));
    // A queued reply finding the window closed is told so.
    let queued = s.reply(2, "anything else?", MessageStatus::Queued).await;
    assert_eq!(
        s.dispatch.process(&queued).await,
        DispatchOutcome::WindowClosed
    );
}

impl Setup {
    /// WeChat answers the next send with `errcode`.
    fn wechat_answers(&self, errcode: i64) {
        self.memory.wechat.answer(CUSTOM_SEND, errcode);
    }
}

#[tokio::test]
async fn wechats_45047_and_45015_hold_a_released_reply_for_the_next_message() {
    for errcode in [45047, 45015] {
        let s = setup();
        s.window(3).await;
        let released = s.reply(1, "your taxi is here", MessageStatus::Held).await;
        s.wechat_answers(errcode);
        assert_eq!(
            s.dispatch.process(&released).await,
            DispatchOutcome::Held,
            "{errcode}"
        );
        assert_eq!(s.message(&released).await.status, MessageStatus::Held);
        let user = s.user().await;
        assert_eq!(user.held, std::slice::from_ref(&released), "{errcode}");
        let window = user.window.unwrap();
        match errcode {
            45047 => assert_eq!(window.remaining, 0),
            _ => assert!(window.closes_at_ms <= T, "closed by WeChat's word"),
        }
        assert!(s.texts().is_empty());
        assert!(
            s.memory.webhooks.deliveries().is_empty(),
            "held is not final"
        );
    }
}

#[tokio::test]
async fn a_45047_leaves_alone_a_window_the_user_opened_meanwhile() {
    let s = setup();
    s.window(1).await;
    let reply = s.reply(1, "one more thing", MessageStatus::Queued).await;
    s.wechat_answers(45047);
    // The user writes after WeChat's answer, before the bridge marks the quota used.
    s.store().before_next_put_user(|user| {
        user.window = Some(ReplyWindow {
            remaining: 5,
            closes_at_ms: T + 48 * 3_600_000,
            ..Default::default()
        })
    });
    assert!(matches!(
        s.dispatch.process(&reply).await,
        DispatchOutcome::Retry(_)
    ));
    assert_eq!(s.user().await.window.unwrap().remaining, 5);
    assert_eq!(s.message(&reply).await.status, MessageStatus::Queued);
    // Tried again, it goes out in the fresh window.
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);
}

#[tokio::test(start_paused = true)]
async fn an_image_url_that_does_not_answer_fails_its_reply_and_releases_the_next() {
    use wxbridge_core::ports::media::FetchError;
    use wxbridge_core::services::images::FETCH_TRIES;
    let s = setup();
    s.window(5).await;
    let url = "https://img.example/gone.png";
    s.memory.images.fail(
        url,
        FetchError::Unreachable("the image URL did not answer: no connection".into()),
    );
    let content = serde_json::json!({"type": "image", "url": url});
    let target = s
        .stored_reply("out_image", T - 9_000, content, MessageStatus::Queued)
        .await;
    let DispatchOutcome::Failed(failure) = s.dispatch.process(&target).await else {
        panic!("an unreachable image must fail its reply, not hold the conversation")
    };
    assert!(failure.to_string().contains("3 tries"), "{failure}");
    assert_eq!(s.memory.images.fetches().len(), FETCH_TRIES as usize);
    assert_eq!(s.message(&target).await.status, MessageStatus::Failed);
    let reported: Vec<String> = s
        .memory
        .webhooks
        .deliveries()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(reported, ["out_image:failed"]);
    // The conversation's next reply is not held behind it.
    let next = s
        .reply(1, "Here is the address instead.", MessageStatus::Queued)
        .await;
    assert_eq!(s.dispatch.process(&next).await, DispatchOutcome::Sent);
}

/// The `message.status` reports delivered, as (status, reason).
fn reported(s: &Setup) -> Vec<(String, Option<String>)> {
    s.memory
        .webhooks
        .deliveries()
        .iter()
        .map(|(_, body)| {
            let message = &body["message"];
            (
                message["status"].as_str().unwrap_or_default().to_owned(),
                message["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn by_default_a_send_whose_answer_was_lost_is_sent_again_and_reported_as_perhaps_twice() {
    let s = setup();
    s.window(5).await;
    let reply = s.reply(1, "see you at 3", MessageStatus::Queued).await;
    s.memory.wechat.lose_answer(CUSTOM_SEND);
    assert!(matches!(
        s.dispatch.process(&reply).await,
        DispatchOutcome::Retry(_)
    ));
    let waiting = s.message(&reply).await;
    assert_eq!(waiting.status, MessageStatus::Queued);
    assert_eq!(
        waiting.status_reason.as_deref(),
        Some(lost_answer::RETRYING)
    );
    assert!(reported(&s).is_empty(), "not settled yet");

    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);
    assert_eq!(s.texts().len(), 2, "WeChat took both sends");
    let sent = s.message(&reply).await;
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(
        reported(&s),
        [("sent".to_owned(), Some(lost_answer::RESENT.to_owned()))]
    );
}

#[tokio::test]
async fn reporting_lost_answers_a_send_whose_answer_was_lost_ends_uncertain_and_is_not_sent_again()
{
    let s = setup_losing_answers("report");
    s.window(5).await;
    let reply = s.reply(1, "see you at 3", MessageStatus::Queued).await;
    s.memory.wechat.lose_answer(CUSTOM_SEND);
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Uncertain);
    assert_eq!(s.message(&reply).await.status, MessageStatus::Uncertain);
    assert_eq!(
        reported(&s),
        [(
            "uncertain".to_owned(),
            Some(lost_answer::UNCERTAIN.to_owned())
        )]
    );
    // A redelivery sends nothing.
    assert_eq!(
        s.dispatch.process(&reply).await,
        DispatchOutcome::AlreadyDone
    );
    assert_eq!(s.texts().len(), 1);
    assert_eq!(reported(&s).len(), 1);
}

#[tokio::test]
async fn a_reply_found_mid_send_follows_the_setting() {
    // A function stopped between `sending` and the answer.
    let s = setup_losing_answers("report");
    s.window(5).await;
    let reply = s.reply(1, "interrupted", MessageStatus::Sending).await;
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Uncertain);
    assert!(s.texts().is_empty(), "not sent again");
    assert_eq!(s.message(&reply).await.status, MessageStatus::Uncertain);

    let s = setup_losing_answers("resend");
    s.window(5).await;
    let reply = s.reply(1, "interrupted", MessageStatus::Sending).await;
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);
    assert_eq!(s.texts().len(), 1);
    assert_eq!(
        reported(&s),
        [("sent".to_owned(), Some(lost_answer::RESENT.to_owned()))]
    );
}

#[tokio::test]
async fn an_upload_whose_answer_was_lost_is_only_retried() {
    // Nothing reached the user: even when reporting lost answers, the image is retried.
    let s = setup_losing_answers("report");
    s.window(5).await;
    let content = serde_json::json!({"type": "image", "base64": BASE64_GIF});
    let target = s
        .stored_reply("out_img", T - 5_000, content, MessageStatus::Queued)
        .await;
    s.memory.wechat.lose_answer(UPLOAD);
    assert!(matches!(
        s.dispatch.process(&target).await,
        DispatchOutcome::Retry(_)
    ));
    assert_eq!(s.message(&target).await.status, MessageStatus::Queued);
    assert_eq!(s.dispatch.process(&target).await, DispatchOutcome::Sent);
    assert_eq!(reported(&s), [("sent".to_owned(), None)]);
}

#[tokio::test]
async fn a_sent_image_asks_for_its_copy_by_the_media_id_sent_and_an_unsent_one_does_not() {
    use wxbridge_core::model::MediaStatus;
    use wxbridge_core::ports::media::FetchError;
    use wxbridge_core::services::partner::MediaView;
    let s = setup();
    let dispatch = Dispatch::new(
        s.memory.bridge(s.dispatch.bridge().config.clone(), T),
        s.memory.images(),
        s.memory.outbound.clone(),
    )
    .with_media_queue(s.memory.media.clone());
    s.window(5).await;
    let content = serde_json::json!({"type": "image", "base64": BASE64_GIF});
    let sent = s
        .stored_reply("out_gif", T - 9_000, content, MessageStatus::Queued)
        .await;
    assert_eq!(dispatch.process(&sent).await, DispatchOutcome::Sent);
    let media_id = s.memory.wechat.sent()[0]["image"]["media_id"].clone();
    let jobs = s.memory.media.copies();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].message.clone(), &jobs[0].media_id),
        (sent, &media_id.as_str().unwrap().to_owned())
    );

    // An image that could not be sent asks for nothing, and reads unavailable.
    s.memory.images.fail(
        "https://img.example/gone.png",
        FetchError::Refused("the image URL answered 404".into()),
    );
    let content = serde_json::json!({"type": "image", "url": "https://img.example/gone.png"});
    let failed = s
        .stored_reply("out_gone", T - 8_000, content, MessageStatus::Queued)
        .await;
    assert!(matches!(
        dispatch.process(&failed).await,
        DispatchOutcome::Failed(_)
    ));
    assert_eq!(s.memory.media.copies().len(), 1);
    let message = s.store().message_at(&failed).await.unwrap().unwrap();
    let view = MediaView::of(&message).unwrap();
    assert_eq!(view.copy.status, MediaStatus::Unavailable);
    assert_eq!(view.copy.reason.as_deref(), Some("the image was not sent"));
}
