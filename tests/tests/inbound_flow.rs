//! Pushes through the real `callback` handler into a real `inbound.fifo`, consumed by the
//! real `inbound` handler (batches as Lambda's event source mapping hands them over) with
//! the DynamoDB store on the emulator and partners on loopback HTTP receivers.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::time::Duration;
use wxbridge_aws::{DynamoStore, SqsFifoQueue, SqsParking, Table};
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::{BridgeConfig, Channels};
use wxbridge_core::model::session_from::sign;
use wxbridge_core::model::MessageStatus;
use wxbridge_core::ports::store::{ConversationStore, MessageStore};
use wxbridge_core::services::inbound::Inbound;
use wxbridge_core::services::webhook;
use wxbridge_integration::*;
use wxbridge_lambda::bootstrap::BatchHandler;
use wxbridge_lambda::callback::CallbackService;
use wxbridge_lambda::sqs::inbound::InboundHandler;
use wxbridge_testkit_aws::event_source::{EventSourceMapping, Invocation};
use wxbridge_wechat::encode::seal;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

struct Bridge {
    config: BridgeConfig,
    channels: Channels,
    callback: CallbackService<SqsFifoQueue>,
    inbound: InboundHandler<AwsPorts, SqsParking>,
    sqs: aws_sdk_sqs::Client,
    queues: FifoQueues,
    desk: WebhookReceiver,
    hotel: WebhookReceiver,
    requests: (RequestCounter, RequestCounter),
}

const SESSION_SECRET: &str = "session-from-secret-1";

async fn bridge() -> Bridge {
    bridge_in("merged").await
}

/// In separate mode the one channel belongs to the hotel.
async fn bridge_in(mode: &str) -> Bridge {
    let desk = WebhookReceiver::start().await;
    let hotel = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1111111111111111","original_id":"gh_mp","token":"mp-token",
            "encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","mode":"safe","push_format":"xml",
            "partner":"hotel-9"}}],
          "partners":[
            {{"id":"platform","display_name":"Trip Service","webhook_url":"{}/hooks","signing_secret":"platform-secret-0123"}},
            {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"hotel-secret-456789"}}],
          "dialog":{{"mode":"{mode}","default_partner":"platform"}},
          "session_from_secret":"{SESSION_SECRET}"}}"#,
        desk.url, hotel.url
    ))
    .unwrap();
    let sqs = sqs_client().await;
    let queues = create_inbound_queues(&sqs).await;
    let outbound = create_fifo_queues(&sqs, "outbound").await;
    let table = new_table().await;
    let (counted_sqs, sqs_requests) = counted_sqs_client().await;
    let (counted_dynamodb, dynamodb_requests) = counted_dynamodb_client().await;
    let counted_table = Table::new(counted_dynamodb, table.name());
    let callback = CallbackService::new(&config, fifo_queue(&sqs, &queues.queue_url));
    let inbound = InboundHandler::new(
        Inbound::new(
            bridge_on(&config, &counted_table),
            fifo_queue(&counted_sqs, &outbound.queue_url),
        ),
        parking(&counted_sqs, &queues),
    );
    Bridge {
        channels: Channels::new(&config),
        config,
        callback,
        inbound,
        sqs,
        queues,
        desk,
        hotel,
        requests: (dynamodb_requests, sqs_requests),
    }
}

impl Bridge {
    /// WeChat pushes an event for `openid` (`times` times: its retries).
    async fn push(&self, openid: &str, kind: EventKind, times: usize) {
        let event = CallbackEvent {
            to_user_name: "gh_mp".into(),
            from_user_name: openid.into(),
            create_time: system_clock_ms() / 1000,
            business_id: None,
            kind,
        };
        let push = seal(
            self.channels.get("mp").unwrap(),
            &event,
            event.create_time,
            "n0nce",
        );
        for _ in 0..times {
            assert_eq!(
                self.callback
                    .handle(push_request(&push, "mp"))
                    .await
                    .status(),
                200
            );
        }
    }

    async fn text(&self, openid: &str, msg_id: u64, content: &str) {
        self.push(
            openid,
            EventKind::Text {
                msg_id: msg_id.to_string(),
                content: content.into(),
            },
            1,
        )
        .await;
    }

    /// `inbound` fed from `inbound.fifo`, as the template maps it.
    fn source(&self) -> EventSourceMapping {
        self.queues.event_source("inbound")
    }

    /// One batch through the inbound handler, settled as Lambda settles it.
    async fn poll(&self) -> (SqsEvent, SqsBatchResponse) {
        poll_handler(&self.sqs, &self.source(), &self.inbound).await
    }

    /// Two consumers processing batches at once, as concurrent Lambda invocations do. Their
    /// receives take turns: the emulator's receive is not atomic under concurrent calls
    /// (SQS's is), so two racing receives could both get one group's messages. A consumer
    /// gives up its turn once its batch is received, before the handler runs.
    async fn drain_concurrently(&self) {
        let receiving = tokio::sync::Mutex::new(());
        let source = self.source();
        let consumer = || async {
            for _ in 0..20 {
                let turn = receiving.lock().await;
                let polled = source
                    .poll(&self.sqs, Duration::ZERO, move |event| {
                        drop(turn);
                        async move { Invocation::answered(&self.inbound.handle(event, None).await) }
                    })
                    .await
                    .expect("poll");
                if polled.records == 0 {
                    return;
                }
            }
        };
        tokio::join!(consumer(), consumer());
    }

    /// Makes the batch's records visible again at once: their backoff or the visibility
    /// timeout has elapsed.
    async fn make_visible(&self, event: &SqsEvent) {
        self.source()
            .make_visible(&self.sqs, event)
            .await
            .expect("records visible again");
    }

    /// Polls until the queue has nothing visible.
    async fn drain(&self) {
        for _ in 0..20 {
            if self.poll().await.0.records.is_empty() {
                return;
            }
        }
        panic!("inbound.fifo did not drain");
    }

    fn store(&self) -> &DynamoStore {
        &self.inbound.inbound().bridge().store
    }
}

fn contents(received: &[ReceivedWebhook], openid: &str) -> Vec<String> {
    received
        .iter()
        .map(ReceivedWebhook::json)
        .filter(|b| b["user"]["openid"] == openid)
        .map(|b| {
            b["message"]["content"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn messages_reach_the_partner_once_each_in_order_per_user() {
    let bridge = bridge().await;
    for n in 0..4u64 {
        bridge.text("o_alice", 100 + n, &format!("alice {n}")).await;
        bridge.text("o_bob", 200 + n, &format!("bob {n}")).await;
    }
    // A WeChat retry storm: the same push three times.
    bridge
        .push(
            "o_alice",
            EventKind::Text {
                msg_id: "104".into(),
                content: "alice 4".into(),
            },
            3,
        )
        .await;
    bridge.drain_concurrently().await;

    let received = bridge.desk.received();
    assert_eq!(received.len(), 9, "one webhook per push");
    assert_eq!(
        contents(&received, "o_alice"),
        ["alice 0", "alice 1", "alice 2", "alice 3", "alice 4"]
    );
    assert_eq!(
        contents(&received, "o_bob"),
        ["bob 0", "bob 1", "bob 2", "bob 3"]
    );
    let secret = &bridge.config.partner("platform").unwrap().signing_secret;
    for hook in &received {
        let timestamp: i64 = hook.header(webhook::TIMESTAMP_HEADER).parse().unwrap();
        let signature = hook.header(webhook::SIGNATURE_HEADER);
        assert!(webhook::verify(
            secret, timestamp, &hook.body, signature, timestamp, 300
        ));
    }
    let history = bridge
        .store()
        .history("mp:o_alice:platform", 50)
        .await
        .unwrap();
    assert_eq!(history.len(), 5);
    assert!(history.iter().all(|m| m.status == MessageStatus::Delivered));
}

#[tokio::test]
async fn an_sqs_redelivery_stores_and_delivers_nothing_twice() {
    let bridge = bridge().await;
    bridge.text("o_carol", 300, "hello").await;
    // The function processes the batch but dies before Lambda deletes it: to Lambda, a
    // function error, which leaves the whole batch.
    let processed = std::sync::Mutex::new(SqsEvent::default());
    let (inbound, processing) = (&bridge.inbound, &processed);
    let polled = bridge
        .source()
        .poll(&bridge.sqs, Duration::ZERO, move |event| async move {
            let response = inbound.handle(event.clone(), None).await;
            assert!(response.batch_item_failures.is_empty());
            *processing.lock().unwrap() = event;
            Invocation::FunctionError("the function died before answering".into())
        })
        .await
        .expect("poll");
    assert_eq!((polled.records, polled.deleted), (1, 0));
    bridge.make_visible(&processed.into_inner().unwrap()).await;
    bridge.drain().await;
    assert_eq!(bridge.desk.received().len(), 1);
    assert_eq!(
        bridge
            .store()
            .history("mp:o_carol:platform", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_partner_that_is_down_is_retried_and_gets_it_once_back() {
    let bridge = bridge().await;
    bridge.desk.answer(503);
    bridge.text("o_dave", 400, "anyone there?").await;
    bridge.text("o_dave", 401, "hello?").await;
    let (event, response) = bridge.poll().await;
    assert_eq!(event.records.len(), 2);
    // The first fails, and the second waits behind it: order per user.
    assert_eq!(response.batch_item_failures.len(), event.records.len());
    let stored = bridge
        .store()
        .history("mp:o_dave:platform", 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, MessageStatus::Received);
    // The backoff elapses; the partner is back.
    bridge.make_visible(&event).await;
    bridge.drain().await;
    let received = bridge.desk.received();
    assert_eq!(
        contents(&received, "o_dave"),
        ["anyone there?", "anyone there?", "hello?"]
    );
    assert_eq!(
        received[0].header(webhook::DELIVERY_HEADER),
        received[1].header(webhook::DELIVERY_HEADER)
    );
    let stored = bridge
        .store()
        .history("mp:o_dave:platform", 10)
        .await
        .unwrap();
    assert!(stored.iter().all(|m| m.status == MessageStatus::Delivered) && stored.len() == 2);
}

#[tokio::test]
async fn a_partner_refusal_ends_in_the_dead_letter_queue_marked_failed() {
    let bridge = bridge().await;
    bridge.desk.answer(400);
    bridge.text("o_erin", 500, "refund please").await;
    bridge.drain().await;
    let parked = drain(&bridge.sqs, &bridge.queues.dlq_url).await;
    assert_eq!(parked.len(), 1);
    assert!(parked[0].body.contains("refund please"));
    let stored = bridge
        .store()
        .history("mp:o_erin:platform", 10)
        .await
        .unwrap();
    assert_eq!(stored[0].status, MessageStatus::Failed);
    assert_eq!(
        stored[0].status_reason.as_deref(),
        Some("partner answered 400")
    );
}

#[tokio::test]
async fn merged_routing_follows_a_signed_session_from_and_the_users_switch() {
    let bridge = bridge().await;
    let now = system_clock_ms() / 1000;
    let from = sign(
        &format!("partner=hotel-9&uid=app-7&openid=o_fay&ts={now}"),
        &wxbridge_core::config::Secret::new(SESSION_SECRET),
    );
    bridge
        .push(
            "o_fay",
            EventKind::UserEnterTempSession { session_from: from },
            1,
        )
        .await;
    bridge.text("o_fay", 600, "late check-out?").await;
    bridge.text("o_fay", 601, "#Trip Service").await;
    bridge.text("o_fay", 602, "my refund?").await;
    bridge.drain().await;
    let hotel: Vec<serde_json::Value> = bridge
        .hotel
        .received()
        .iter()
        .map(ReceivedWebhook::json)
        .collect();
    assert_eq!(hotel.len(), 2);
    assert_eq!(hotel[0]["type"], "conversation.started");
    assert_eq!(hotel[1]["message"]["content"]["content"], "late check-out?");
    assert_eq!(hotel[1]["user"]["app_user_id"], "app-7");
    assert_eq!(
        contents(&bridge.desk.received(), "o_fay"),
        ["#Trip Service", "my refund?"]
    );
    let conversations = bridge.store().conversations("mp", "o_fay").await.unwrap();
    assert_eq!(conversations.len(), 2);
}

#[tokio::test]
async fn aws_requests_per_inbound_message_stay_within_four() {
    let bridge = bridge().await;
    let messages = 6u64;
    for n in 0..messages {
        bridge.text("o_gus", 700 + n, &format!("m{n}")).await;
    }
    bridge.drain().await;
    assert_eq!(bridge.desk.received().len() as u64, messages);
    let (dynamodb, sqs) = (bridge.requests.0.count(), bridge.requests.1.count());
    let per_message = (dynamodb + sqs) as f64 / messages as f64;
    println!("inbound AWS requests per message: {per_message:.2} (DynamoDB {dynamodb}, SQS {sqs}, {messages} messages; queue polling excluded)");
    assert!(per_message <= 4.0, "{per_message}");
}

#[tokio::test]
async fn the_documented_verification_script_accepts_a_real_webhook_and_refuses_a_tampered_one() {
    use std::io::Write;
    let bridge = bridge().await;
    bridge.text("o_hal", 800, "verify me").await;
    bridge.drain().await;
    let hook = bridge.desk.received().remove(0);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/verify_webhook.py");
    let run = |body: &[u8]| {
        let mut child = std::process::Command::new("python3")
            .args([
                script,
                "platform-secret-0123",
                hook.header(webhook::TIMESTAMP_HEADER),
                hook.header(webhook::SIGNATURE_HEADER),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        child.stdin.take().unwrap().write_all(body).unwrap();
        child.wait().unwrap().success()
    };
    assert!(run(&hook.body));
    let mut tampered = hook.body.clone();
    tampered[10] ^= 1;
    assert!(!run(&tampered));
}

#[tokio::test]
async fn separate_mode_routes_by_channel_whatever_the_user_writes() {
    let bridge = bridge_in("separate").await;
    bridge.text("o_ivy", 900, "#Trip Service").await;
    bridge.text("o_ivy", 901, "hello").await;
    bridge.drain().await;
    assert!(bridge.desk.received().is_empty());
    let hotel: Vec<serde_json::Value> = bridge
        .hotel
        .received()
        .iter()
        .map(ReceivedWebhook::json)
        .collect();
    assert_eq!(hotel.len(), 2);
    assert!(hotel.iter().all(|b| b["conversation"]["id"] == "mp:o_ivy"));
}
