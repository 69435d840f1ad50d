//! Sample events for the SQS functions and the partner API (`events/inbound-*.json`,
//! `events/api-*.json`, `events/dispatch-*.json`, `events/push-*.json`,
//! `events/media-*.json`), built here and each run through its real handler against the
//! emulator, the WeChat fake and a loopback partner — one user's first message, the
//! partner's answer through the API, a reply sent by dispatch, an app notification sent by
//! push while the window is open, and a user's image copied into the bucket.
//!
//! The API event is signed for a fixed time, so it is run with the clock at that time; to
//! call a running API use `scripts/partner_request.sh`, which signs for now.
//!
//! `WXBRIDGE_WRITE_EVENTS=1 cargo test -p wxbridge-integration --test sample_events_functions`
//! rewrites the files; otherwise the test fails when they drift from what is built here.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use wechat_fake::{Fake, UserAction};
use wxbridge_core::config::{BridgeConfig, Secret};
use wxbridge_core::model::{
    Conversation, InboundMessage, MediaJob, MediaStatus, MessageStatus, OutboundRef, StoredMessage,
};
use wxbridge_core::ports::store::{MessageStore, PushStore};
use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_core::services::inbound::Inbound;
use wxbridge_core::services::media::MediaKeeper;
use wxbridge_core::services::partner::auth::{self as api_auth, SignedRequest};
use wxbridge_core::services::partner::PartnerApi;
use wxbridge_core::services::push::Push;
use wxbridge_integration::*;
use wxbridge_lambda::api::{router, ApiState};
use wxbridge_lambda::bootstrap::BatchHandler;
use wxbridge_lambda::sqs::dispatch::DispatchHandler;
use wxbridge_lambda::sqs::inbound::InboundHandler;
use wxbridge_lambda::sqs::media::MediaHandler;
use wxbridge_lambda::sqs::push::PushHandler;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const APP: &str = "wx00000000000000e1";
const OPENID: &str = "o_sample_user";
const HOTEL_SECRET: &str = "hotel-secret-456789";
/// When the user wrote (2025-11-26 09:40 UTC); the partner answers a minute later.
const WROTE_AT_MS: i64 = 1_764_150_000_000;
const API_CALLED_AT_MS: i64 = WROTE_AT_MS + 60_000;
const DISPATCHED_AT_MS: i64 = WROTE_AT_MS + 120_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An SQS event as Lambda's event source mapping hands it to a function.
fn sqs_event(queue: &str, group: &str, deduplication_id: &str, body: &Value) -> Value {
    json!({ "Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": body.to_string(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": WROTE_AT_MS.to_string(),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": WROTE_AT_MS.to_string(),
            "MessageGroupId": group,
            "MessageDeduplicationId": deduplication_id,
            "SequenceNumber": "18849496460467696128"
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
        "awsRegion": "us-east-1"
    }]})
}

fn inbound_event() -> Value {
    let message = InboundMessage::new(
        "mp",
        CallbackEvent {
            to_user_name: "gh_sample".into(),
            from_user_name: OPENID.into(),
            create_time: WROTE_AT_MS / 1000,
            business_id: None,
            kind: EventKind::Text {
                msg_id: "24602948207352816".into(),
                content: "Is breakfast included?".into(),
            },
        },
        WROTE_AT_MS,
    );
    sqs_event(
        "wxbridge-inbound.fifo",
        &message.group_id(),
        &message.deduplication_id(),
        &serde_json::to_value(&message).unwrap(),
    )
}

fn api_event() -> Value {
    let body =
        json!({"conversation_id": format!("mp:{OPENID}:hotel-9"), "client_message_id": "desk-4711",
                      "content": {"type": "text", "text": "Breakfast is included."}})
        .to_string();
    let path = "/v1/messages";
    let signed = SignedRequest {
        method: "POST",
        path_and_query: path,
        body: body.as_bytes(),
    };
    let mut headers = serde_json::Map::new();
    headers.insert("content-type".into(), json!("application/json"));
    headers.insert("host".into(), json!("localhost"));
    for (name, value) in api_auth::sign(
        "hotel-9",
        &Secret::new(HOTEL_SECRET),
        &signed,
        API_CALLED_AT_MS / 1000,
        "sample-nonce-0001",
    ) {
        headers.insert(name.into(), json!(value));
    }
    json!({
        "version": "2.0",
        "routeKey": "ANY /v1/{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "pathParameters": { "proxy": "messages" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": { "method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "curl/8" },
            "requestId": "sample-api-request",
            "routeKey": "ANY /v1/{proxy+}",
            "stage": "$default",
            "time": "26/Nov/2025:09:41:00 +0000",
            "timeEpoch": API_CALLED_AT_MS
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// A reply stored by the API, as `outbound.fifo` names it.
fn sample_reply() -> StoredMessage {
    serde_json::from_value(json!({
        "id": "out_sample_reply",
        "conversation_id": format!("mp:{OPENID}:hotel-9"),
        "channel": "mp",
        "openid": OPENID,
        "partner": "hotel-9",
        "direction": "out",
        "status": "queued",
        "created_at_ms": API_CALLED_AT_MS,
        "content": {"type": "text", "text": "We open at 7."}
    }))
    .unwrap()
}

/// An app notification stored by the API, as `push.fifo` names it.
fn sample_push() -> StoredMessage {
    serde_json::from_value(json!({
        "id": "push_sample_order",
        "conversation_id": format!("mp:{OPENID}:hotel-9"),
        "channel": "mp",
        "openid": OPENID,
        "partner": "hotel-9",
        "direction": "push",
        "status": "queued",
        "created_at_ms": API_CALLED_AT_MS + 1,
        "content": {"type": "text", "text": "Your order 42 is confirmed."},
        "push": {"push_id": "order-42", "to": {"channel": "mp", "openid": OPENID}}
    }))
    .unwrap()
}

fn push_event() -> Value {
    let push = sample_push();
    sqs_event(
        "wxbridge-push.fifo",
        &push.conversation_id,
        &push.id,
        &serde_json::to_value(OutboundRef::to(&push)).unwrap(),
    )
}

fn dispatch_event() -> Value {
    let reply = sample_reply();
    sqs_event(
        "wxbridge-outbound.fifo",
        &reply.conversation_id,
        &reply.id,
        &serde_json::to_value(OutboundRef::to(&reply)).unwrap(),
    )
}

/// A user's image, stored by `inbound` with its copy pending.
fn sample_image() -> StoredMessage {
    serde_json::from_value(json!({
        "id": "in_sample_image",
        "conversation_id": format!("mp:{OPENID}:hotel-9"),
        "channel": "mp",
        "openid": OPENID,
        "partner": "hotel-9",
        "direction": "in",
        "status": "delivered",
        "created_at_ms": WROTE_AT_MS + 2,
        "content": {"type": "image", "msg_id": "24602948207352999",
                    "pic_url": "http://mmbiz.qpic.cn/sample", "media_id": SAMPLE_MEDIA_ID},
        "media": {"status": "pending"}
    }))
    .unwrap()
}

const SAMPLE_MEDIA_ID: &str = "sample-media-id";

fn media_event() -> Value {
    let image = sample_image();
    let job = MediaJob::of(&image, SAMPLE_MEDIA_ID, image.created_at_ms);
    sqs_event(
        "wxbridge-media.fifo",
        &job.deduplication_id(),
        &job.deduplication_id(),
        &serde_json::to_value(job).unwrap(),
    )
}

/// Writes or checks one sample file; returns its text.
fn sample(file: &str, event: &Value) -> String {
    let path = root().join("events").join(file);
    let text = serde_json::to_string_pretty(event).unwrap() + "\n";
    if std::env::var("WXBRIDGE_WRITE_EVENTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(
        on_disk, text,
        "{file} drifted; rewrite with WXBRIDGE_WRITE_EVENTS=1"
    );
    on_disk
}

#[tokio::test]
async fn function_samples_run_through_their_handlers() {
    let fake = Fake::default();
    fake.add_app(APP, "the-app-secret");
    let fake_url = fake.start().await;
    let hotel = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_sample","token":"t","mode":"plaintext","push_format":"json","app_secret":"the-app-secret"}}],
          "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"{HOTEL_SECRET}"}}],
          "dialog":{{"mode":"merged","default_partner":"hotel-9"}},"wechat_api_base":"{fake_url}"}}"#,
        hotel.url
    ))
    .unwrap();
    let sqs = sqs_client().await;
    let inbound_queues = create_inbound_queues(&sqs).await;
    let outbound_queues = create_fifo_queues(&sqs, "outbound").await;
    let table = new_table().await;
    let store = table.store();
    let outbound = || fifo_queue(&sqs, &outbound_queues.queue_url);

    // inbound: the user's first message is stored and delivered to the hotel.
    let event = sample("inbound-text.json", &inbound_event());
    let inbound = InboundHandler::new(
        Inbound::new(bridge_on(&config, &table), outbound()),
        parking(&sqs, &inbound_queues),
    );
    let response = inbound
        .handle(serde_json::from_str(&event).unwrap(), None)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let delivered = hotel.received();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].json()["conversation"]["id"],
        format!("mp:{OPENID}:hotel-9")
    );

    // api: the hotel's answer is accepted at the time it was signed.
    let event = sample("api-post-message.json", &api_event());
    let api = router(Arc::new(ApiState {
        api: PartnerApi::new(
            bridge_on(&config, &table).with_clock(|| API_CALLED_AT_MS),
            outbound(),
        ),
        nonces: table.nonces(),
    }));
    let event: Value = serde_json::from_str(&event).unwrap();
    let (status, answer) = api_answer(&api, http_request(&event)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        drain(&sqs, &outbound_queues.queue_url).await.len(),
        1,
        "enqueued"
    );

    // dispatch: a stored reply named by outbound.fifo reaches the user.
    let event = sample("dispatch-reply.json", &dispatch_event());
    let reply = sample_reply();
    let conversation = Conversation {
        id: reply.conversation_id.clone(),
        channel: reply.channel.clone(),
        openid: reply.openid.clone(),
        partner: reply.partner.clone(),
        created_at_ms: WROTE_AT_MS,
        last_message_at_ms: reply.created_at_ms,
        idle_at_ms: None,
    };
    store
        .put_outbound(&reply, &conversation, "sample")
        .await
        .unwrap();
    fake.user_acts(APP, OPENID, UserAction::Message);
    let dispatch = DispatchHandler::new(
        Dispatch::new(
            bridge_on(&config, &table).with_clock(|| DISPATCHED_AT_MS),
            images_on(&config, &table),
            outbound(),
        ),
        parking(&sqs, &outbound_queues),
    );
    let response = dispatch
        .handle(serde_json::from_str(&event).unwrap(), None)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].touser.as_str(), &sent[0].body["text"]["content"]),
        (OPENID, &json!("【Hotel Lotus】We open at 7."))
    );
    let stored = store
        .message(&reply.conversation_id, reply.created_at_ms, &reply.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, MessageStatus::Sent);

    // push: an app notification goes out as a customer-service message (the window is open).
    let event = sample("push-order.json", &push_event());
    let notification = sample_push();
    store
        .put_push(&notification, &conversation, "order-42")
        .await
        .unwrap();
    let push = PushHandler::new(
        Push::new(
            bridge_on(&config, &table).with_clock(|| DISPATCHED_AT_MS + 1),
            outbound(),
        ),
        parking(&sqs, &outbound_queues),
    );
    let response = push
        .handle(serde_json::from_str(&event).unwrap(), None)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].body["text"]["content"],
        "【Hotel Lotus】Your order 42 is confirmed."
    );
    let stored = store
        .message(
            &notification.conversation_id,
            notification.created_at_ms,
            &notification.id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, MessageStatus::Sent);

    // media: the user's image is copied from WeChat into the bucket.
    let event = sample("media-copy.json", &media_event());
    let image = sample_image();
    store
        .put_outbound(&image, &conversation, "sample-image")
        .await
        .unwrap();
    fake.add_media_as(SAMPLE_MEDIA_ID, "image/png", png());
    let bucket = Bucket::new().await;
    let media = MediaHandler::new(
        MediaKeeper::new(
            bridge_on(&config, &table).with_clock(|| WROTE_AT_MS + 3),
            bucket.archive(),
        ),
        parking(&sqs, &outbound_queues),
    );
    let response = media
        .handle(serde_json::from_str(&event).unwrap(), None)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let kept = store
        .message(&image.conversation_id, image.created_at_ms, &image.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.media.unwrap().status, MediaStatus::Stored);
    let job = MediaJob::of(&image, SAMPLE_MEDIA_ID, image.created_at_ms);
    assert_eq!(
        bucket.object(&job.object_key()).await.as_deref(),
        Some(png().as_slice())
    );

    let known = [
        "inbound-text.json",
        "api-post-message.json",
        "dispatch-reply.json",
        "push-order.json",
        "media-copy.json",
    ];
    for entry in std::fs::read_dir(root().join("events")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let here = ["inbound-", "api-", "dispatch-", "push-", "media-"]
            .iter()
            .any(|p| name.starts_with(p));
        assert!(
            !here || known.contains(&name.as_str()),
            "{name} is not checked here"
        );
    }
}
