//! Partner replies sent to WeChat: the DynamoDB store and `outbound.fifo` on the emulator,
//! the local WeChat fake, the real `inbound` for the user's messages (which release held
//! replies), partners on loopback receivers.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::time::Duration;
use wechat_fake::{Fake, Injection, UserAction};
use wxbridge_aws::{DynamoStore, SqsParking};
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::message::lost_answer;
use wxbridge_core::model::{InboundMessage, MessageStatus, OutboundRef, StoredMessage};
use wxbridge_core::ports::queue::OutboundQueue;
use wxbridge_core::ports::store::{MessageStore, UserStore};
use wxbridge_core::ports::wechat::WechatApi;
use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome};
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::webhook;
use wxbridge_http::WechatClient;
use wxbridge_integration::{
    bridge_on, create_fifo_queues, drain, fifo_queue, images_on, new_table, parking, poll_handler,
    sqs_client, store_reply, AwsPorts, FifoQueues, WebhookReceiver,
};
use wxbridge_lambda::sqs::dispatch::DispatchHandler;
use wxbridge_testkit_aws::event_source::EventSourceMapping;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const APP: &str = "wx0000000000000077";

type Handler = DispatchHandler<AwsPorts, SqsParking>;

struct Setup {
    fake: Fake,
    fake_url: String,
    hotel: WebhookReceiver,
    sqs: aws_sdk_sqs::Client,
    outbound: FifoQueues,
    handler: Handler,
    inbound: Inbound<AwsPorts>,
    config: BridgeConfig,
    msg_ids: std::sync::atomic::AtomicU64,
}

async fn setup() -> Setup {
    setup_with("").await
}

/// With more top-level settings: `extra` is `,"name":value…`.
async fn setup_with(extra: &str) -> Setup {
    let fake = Fake::default();
    fake.add_app(APP, "the-app-secret");
    let fake_url = fake.start().await;
    let hotel = WebhookReceiver::start().await;
    let table = new_table().await;
    let sqs = sqs_client().await;
    let outbound = create_fifo_queues(&sqs, "outbound").await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"the-app-secret"}}],
        "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"hotel-secret-456789"}}],
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}},"wechat_api_base":"{fake_url}"{extra}}}"#,
        hotel.url
    ))
    .unwrap();
    let queue = fifo_queue(&sqs, &outbound.queue_url);
    let dispatch = Dispatch::new(
        bridge_on(&config, &table),
        images_on(&config, &table),
        queue.clone(),
    );
    let handler = DispatchHandler::new(dispatch, parking(&sqs, &outbound));
    let inbound = Inbound::new(bridge_on(&config, &table), queue);
    Setup {
        fake,
        fake_url,
        hotel,
        sqs,
        outbound,
        handler,
        inbound,
        config,
        msg_ids: std::sync::atomic::AtomicU64::new(1),
    }
}

impl Setup {
    fn dispatch(&self) -> &Dispatch<AwsPorts> {
        self.handler.dispatch()
    }

    fn store(&self) -> &DynamoStore {
        &self.dispatch().bridge().store
    }

    /// The user writes: WeChat opens the window, and the bridge's `inbound` stores the
    /// message (opening its record of the window and releasing held replies).
    async fn user_writes(&self, openid: &str) {
        self.fake.user_acts(APP, openid, UserAction::Message);
        let n = self
            .msg_ids
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = system_clock_ms();
        let event = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: openid.into(),
            create_time: now / 1000,
            business_id: None,
            kind: EventKind::Text {
                msg_id: format!("{openid}-{n}"),
                content: format!("message {n}"),
            },
        };
        let message = InboundMessage::new("mp", event, now);
        assert_eq!(
            self.inbound.process(&message, now).await,
            Outcome::Delivered
        );
    }

    async fn reply(&self, openid: &str, n: u32, text: &str) -> OutboundRef {
        let text = serde_json::json!({"type": "text", "text": text});
        store_reply(self.store(), openid, n, text).await
    }

    async fn stored(&self, target: &OutboundRef) -> StoredMessage {
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

    async fn status(&self, target: &OutboundRef) -> MessageStatus {
        self.stored(target).await.status
    }

    /// The `message.status` webhooks the hotel received.
    fn status_hooks(&self) -> Vec<wxbridge_integration::ReceivedWebhook> {
        self.hotel
            .received()
            .into_iter()
            .filter(|h| h.json()["type"] == "message.status")
            .collect()
    }

    fn statuses(&self) -> Vec<String> {
        self.status_hooks()
            .iter()
            .map(|h| h.json()["message"]["status"].as_str().unwrap().to_owned())
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        self.fake
            .sent()
            .iter()
            .map(|s| {
                s.body["text"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// One batch of `outbound.fifo` through the `dispatch` handler, settled as Lambda does.
    async fn poll(&self) -> (SqsEvent, SqsBatchResponse) {
        poll_handler(&self.sqs, &self.source(), &self.handler).await
    }

    /// `dispatch` fed from `outbound.fifo`, as the template maps it.
    fn source(&self) -> EventSourceMapping {
        self.outbound.event_source("dispatch")
    }

    /// Whether `outbound.fifo` has nothing to receive.
    async fn outbound_is_empty(&self) -> bool {
        self.source()
            .receive(&self.sqs, Duration::ZERO)
            .await
            .expect("receive")
            .records
            .is_empty()
    }
}

#[tokio::test]
async fn a_reply_reaches_the_user_with_the_partners_name_once() {
    let s = setup().await;
    s.user_writes("o_amy").await;
    let reply = s.reply("o_amy", 1, "Breakfast is included.").await;
    assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Sent);
    let sent = s.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].touser, "o_amy");
    assert_eq!(
        sent[0].body["text"]["content"],
        "【Hotel Lotus】Breakfast is included."
    );
    assert_eq!(s.status(&reply).await, MessageStatus::Sent);
    assert_eq!(s.statuses(), ["sent"]);
    // A redelivery after the recorded send sends nothing.
    assert_eq!(
        s.dispatch().process(&reply).await,
        DispatchOutcome::AlreadyDone
    );
    assert_eq!(s.fake.sent().len(), 1);
    let user = s.store().user("mp", "o_amy").await.unwrap().unwrap();
    assert_eq!(user.window.unwrap().remaining, 4);
    assert_eq!(user.routing.active.unwrap().partner, "hotel-9");
}

#[tokio::test]
async fn the_sixth_reply_is_held_and_released_by_the_users_next_message() {
    let s = setup().await;
    s.user_writes("o_ben").await;
    for n in 1..=5 {
        let reply = s.reply("o_ben", n, &format!("reply {n}")).await;
        assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Sent);
    }
    let sixth = s.reply("o_ben", 6, "reply 6").await;
    assert_eq!(s.dispatch().process(&sixth).await, DispatchOutcome::Held);
    assert_eq!(s.status(&sixth).await, MessageStatus::Held);
    let store = s.store();
    let user = store.user("mp", "o_ben").await.unwrap().unwrap();
    assert_eq!(user.held, std::slice::from_ref(&sixth));
    assert!(s.outbound_is_empty().await);

    // The user writes again: inbound releases the held reply onto outbound.fifo, and the
    // dispatch function sends it from there; it stays listed until sent, so a reply
    // queued before the release goes behind it.
    s.user_writes("o_ben").await;
    let listed = store.user("mp", "o_ben").await.unwrap().unwrap().held;
    assert_eq!(listed, std::slice::from_ref(&sixth));
    let (event, response) = s.poll().await;
    assert_eq!(event.records.len(), 1);
    assert_eq!(
        event.records[0].attributes.get("MessageGroupId"),
        Some(&sixth.conversation_id)
    );
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(s.fake.sent().len(), 6);
    assert_eq!(s.texts()[5], "【Hotel Lotus】reply 6");
    assert_eq!(s.status(&sixth).await, MessageStatus::Sent);
    assert_eq!(s.statuses(), ["sent"; 6]);
    assert!(s.poll().await.0.records.is_empty());
    let user = store.user("mp", "o_ben").await.unwrap().unwrap();
    assert!(user.held.is_empty(), "sent: off the list");
}

/// A reply queued before the user's message released the held one goes behind it: WeChat
/// receives 1 … 7 in order, though `outbound.fifo` holds r7 before r6's release.
#[tokio::test]
async fn a_reply_queued_before_a_release_reaches_wechat_after_the_released_one() {
    let s = setup().await;
    let queue = fifo_queue(&s.sqs, &s.outbound.queue_url);
    s.user_writes("o_ray").await;
    for n in 1..=6 {
        let reply = s.reply("o_ray", n, &format!("reply {n}")).await;
        queue.enqueue(&reply, &reply.message_id).await.unwrap();
    }
    while !s.poll().await.0.records.is_empty() {}
    assert_eq!(s.texts().len(), 5, "the sixth is held");
    // r7 is accepted while dispatch is busy elsewhere; then the user writes, and r6's
    // release is queued behind r7.
    let seventh = s.reply("o_ray", 7, "reply 7").await;
    queue.enqueue(&seventh, &seventh.message_id).await.unwrap();
    s.user_writes("o_ray").await;
    let (event, response) = s.poll().await;
    let queued: Vec<String> = event
        .records
        .iter()
        .map(|r| r.body.clone().unwrap_or_default())
        .collect();
    assert_eq!(queued.len(), 2, "r7, then r6's release: {queued:?}");
    assert!(queued[0].contains("out_o_ray_7") && queued[1].contains("out_o_ray_6"));
    assert!(response.batch_item_failures.is_empty());
    let texts = s.texts();
    let expected: Vec<String> = (1..=7)
        .map(|n| format!("【Hotel Lotus】reply {n}"))
        .collect();
    assert_eq!(texts, expected);
    while !s.poll().await.0.records.is_empty() {}
    assert_eq!(s.texts().len(), 7, "each once");
    let user = s.store().user("mp", "o_ray").await.unwrap().unwrap();
    assert!(user.held.is_empty(), "sent: off the list");
}

#[tokio::test]
async fn seven_held_texts_go_out_packed_after_one_user_message() {
    let s = setup().await;
    s.user_writes("o_pia").await;
    for n in 1..=5 {
        let reply = s.reply("o_pia", n, &format!("reply {n}")).await;
        assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Sent);
    }
    let mut held = Vec::new();
    for n in 1..=7 {
        let update = s.reply("o_pia", 10 + n, &format!("update {n}")).await;
        assert_eq!(s.dispatch().process(&update).await, DispatchOutcome::Held);
        held.push(update);
    }
    s.user_writes("o_pia").await;
    let (event, response) = s.poll().await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(event.records.len(), 1, "one release for seven texts");
    let texts = s.texts();
    assert_eq!(texts.len(), 6, "five replies, then one send for the seven");
    let expected: Vec<String> = (1..=7).map(|n| format!("update {n}")).collect();
    assert_eq!(texts[5], format!("【Hotel Lotus】{}", expected.join("\n")));
    for update in &held {
        assert_eq!(s.status(update).await, MessageStatus::Sent);
    }
    assert_eq!(s.statuses().len(), 12, "each message reported");
    let user = s.store().user("mp", "o_pia").await.unwrap().unwrap();
    assert_eq!(user.window.unwrap().remaining, 4, "one send spent");
}

#[tokio::test]
async fn a_closed_window_is_reported() {
    let s = setup().await;
    let silent = s.reply("o_cal", 1, "anyone?").await;
    assert_eq!(
        s.dispatch().process(&silent).await,
        DispatchOutcome::WindowClosed
    );
    assert_eq!(s.status(&silent).await, MessageStatus::WindowClosed);
    assert_eq!(s.statuses(), ["window_closed"]);
}

#[tokio::test]
async fn a_status_webhook_refused_with_503_is_retried_from_the_queue_and_delivered_once() {
    let s = setup().await;
    s.user_writes("o_rex").await;
    let reply = s.reply("o_rex", 1, "your taxi is here").await;
    let queue = fifo_queue(&s.sqs, &s.outbound.queue_url);
    queue.enqueue(&reply, &reply.message_id).await.unwrap();
    s.hotel.answer(503);
    let (_, response) = s.poll().await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the reply is sent; the report waits elsewhere"
    );
    assert_eq!(s.texts(), ["【Hotel Lotus】your taxi is here"]);
    assert_eq!(s.stored(&reply).await.reported, None);

    // The report job, in a group of its own, goes out on the next poll.
    let (event, response) = s.poll().await;
    assert_eq!(event.records.len(), 1);
    assert_eq!(
        event.records[0]
            .attributes
            .get("MessageGroupId")
            .map(String::as_str),
        Some(format!("report:{}", reply.message_id).as_str())
    );
    assert!(response.batch_item_failures.is_empty());
    let hooks = s.status_hooks();
    assert_eq!(hooks.len(), 2);
    let delivery_id = format!("{}:sent", reply.message_id);
    for hook in &hooks {
        assert_eq!(hook.header(webhook::DELIVERY_HEADER), delivery_id);
        assert_eq!(hook.json()["message"]["status"], "sent");
    }
    assert_eq!(s.stored(&reply).await.reported, Some(MessageStatus::Sent));
    assert!(s.poll().await.0.records.is_empty());

    // A repeat of the job tells the partner nothing more; nothing is sent again.
    let mut job = reply.clone();
    job.report = true;
    queue.enqueue(&job, "a-repeat").await.unwrap();
    let (event, response) = s.poll().await;
    assert_eq!(event.records.len(), 1);
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(s.status_hooks().len(), 2);
    assert_eq!(s.fake.sent().len(), 1);
}

#[tokio::test]
async fn a_token_voided_mid_flight_is_refreshed_and_the_send_retried_once() {
    let s = setup().await;
    s.user_writes("o_dan").await;
    let first = s.reply("o_dan", 1, "one").await;
    assert_eq!(s.dispatch().process(&first).await, DispatchOutcome::Sent);
    // Someone force-refreshes the stable token: the cached one answers 40001 now.
    WechatClient::new(&s.fake_url, &s.config.typing_path)
        .stable_token(APP, "the-app-secret", true, 0)
        .await
        .unwrap();
    let second = s.reply("o_dan", 2, "two").await;
    assert_eq!(s.dispatch().process(&second).await, DispatchOutcome::Sent);
    assert_eq!(s.fake.sent().len(), 2);
    assert_eq!(
        s.fake.token_fetches(APP),
        3,
        "first fetch, the forced refresh, one refetch"
    );
}

#[tokio::test]
async fn transient_errors_retry_and_final_ones_are_reported() {
    let s = setup().await;
    s.user_writes("o_eve").await;
    let reply = s.reply("o_eve", 1, "hello").await;
    s.fake.inject(Injection {
        path: "/cgi-bin/message/custom/send".into(),
        errcode: Some(-1),
        times: 1,
        ..Default::default()
    });
    // "System busy": tried again soon.
    assert!(matches!(
        s.dispatch().process(&reply).await,
        DispatchOutcome::RetrySoon(_)
    ));
    assert_eq!(s.status(&reply).await, MessageStatus::Queued);
    assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Sent);
    // 45011, the minute's quota: the long backoff.
    let later = s.reply("o_eve", 9, "in a minute").await;
    s.fake.inject(Injection {
        path: "/cgi-bin/message/custom/send".into(),
        errcode: Some(45011),
        times: 1,
        ..Default::default()
    });
    assert!(matches!(
        s.dispatch().process(&later).await,
        DispatchOutcome::Retry(_)
    ));
    assert_eq!(s.dispatch().process(&later).await, DispatchOutcome::Sent);

    let inject = |errcode| {
        s.fake.inject(Injection {
            path: "/cgi-bin/message/custom/send".into(),
            errcode: Some(errcode),
            times: 1,
            ..Default::default()
        })
    };
    // A final refusal: failed, with WeChat's errcode, and reported.
    inject(48001);
    let refused = s.reply("o_eve", 2, "one more").await;
    let DispatchOutcome::Failed(failure) = s.dispatch().process(&refused).await else {
        panic!()
    };
    assert_eq!(failure.errcode(), Some(48001), "{failure}");
    assert_eq!(s.status(&refused).await, MessageStatus::Failed);

    // The bridge thinks sends are left; WeChat counts the quota used up (45047): held
    // until the user writes again, not failed.
    inject(45047);
    let over = s.reply("o_eve", 3, "over the quota").await;
    assert_eq!(s.dispatch().process(&over).await, DispatchOutcome::Held);
    assert_eq!(s.status(&over).await, MessageStatus::Held);
    let user = s.store().user("mp", "o_eve").await.unwrap().unwrap();
    assert_eq!(user.window.unwrap().remaining, 0);
    assert_eq!(user.held.len(), 1);

    // WeChat says the window has closed (45015): window_closed, not failed.
    s.user_writes("o_eve").await;
    inject(45015);
    let late = s.reply("o_eve", 4, "too late").await;
    assert_eq!(
        s.dispatch().process(&late).await,
        DispatchOutcome::WindowClosed
    );
    assert_eq!(s.statuses(), ["sent", "sent", "failed", "window_closed"]);
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_is_sent_again_or_reported_uncertain_as_set() {
    let lose_answer = Injection {
        path: "/cgi-bin/message/custom/send".into(),
        times: 1,
        lose_answer: true,
        ..Default::default()
    };
    let reasons = |s: &Setup| -> Vec<String> {
        s.status_hooks()
            .iter()
            .map(|h| {
                h.json()["message"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    // Default: sent again; the user may have it twice, and the report says so.
    let s = setup().await;
    s.user_writes("o_lou").await;
    let reply = s.reply("o_lou", 1, "Your taxi is booked.").await;
    s.fake.inject(lose_answer.clone());
    assert!(matches!(
        s.dispatch().process(&reply).await,
        DispatchOutcome::Retry(_)
    ));
    assert_eq!(s.dispatch().process(&reply).await, DispatchOutcome::Sent);
    assert_eq!(s.texts().len(), 2, "WeChat took both");
    assert_eq!(s.statuses(), ["sent"]);
    assert_eq!(reasons(&s), [lost_answer::RESENT]);

    // `report`: not sent again; `uncertain`, reported once.
    let s = setup_with(r#","lost_send_answer":"report""#).await;
    s.user_writes("o_lou").await;
    let reply = s.reply("o_lou", 1, "Your taxi is booked.").await;
    s.fake.inject(lose_answer);
    assert_eq!(
        s.dispatch().process(&reply).await,
        DispatchOutcome::Uncertain
    );
    assert_eq!(
        s.dispatch().process(&reply).await,
        DispatchOutcome::AlreadyDone
    );
    assert_eq!(s.texts().len(), 1, "WeChat took it once");
    assert_eq!(s.status(&reply).await, MessageStatus::Uncertain);
    assert_eq!(s.statuses(), ["uncertain"]);
    assert_eq!(reasons(&s), [lost_answer::UNCERTAIN]);
}

#[tokio::test]
async fn the_dispatch_function_sends_a_conversations_replies_in_order_from_outbound_fifo() {
    let s = setup().await;
    s.user_writes("o_fin").await;
    let replies = [
        s.reply("o_fin", 1, "first").await,
        s.reply("o_fin", 2, "second").await,
    ];
    let ghost = OutboundRef::new("mp:o_fin:hotel-9", 1, "out_ghost");
    let queue = fifo_queue(&s.sqs, &s.outbound.queue_url);
    for target in replies.iter().chain([&ghost]) {
        queue.enqueue(target, &target.message_id).await.unwrap();
    }
    let (event, response) = s.poll().await;
    assert_eq!(event.records.len(), 3);
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(s.texts(), ["【Hotel Lotus】first", "【Hotel Lotus】second"]);
    let parked = drain(&s.sqs, &s.outbound.dlq_url).await;
    assert_eq!(
        parked.len(),
        1,
        "a record naming no stored message is parked"
    );
    assert!(parked[0].body.contains("out_ghost"));
    assert!(s.outbound_is_empty().await);
}
