//! Images that outlive WeChat's three days, on real parts: a user's image goes through the
//! real `inbound` service into DynamoDB with its copy `pending` and a job on a real
//! `media.fifo`; the real `media` handler (fed by the local event source mapping) copies
//! it from the WeChat fake into a bucket on the emulator's S3; the real `api` router serves
//! it after the fake has expired the media. A partner's image is kept the same way after
//! the real `dispatch` sends it.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wechat_fake::{Fake, UserAction};
use wxbridge_aws::{DynamoNonceStore, SqsParking, Table};
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::media::object_key;
use wxbridge_core::model::{InboundMessage, MediaJob, MediaStatus, StoredMessage};
use wxbridge_core::ports::store::MessageStore;
use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome};
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_core::services::media::{CopyOutcome, MediaKeeper};
use wxbridge_core::services::partner::PartnerApi;
use wxbridge_integration::*;
use wxbridge_lambda::api::{router, ApiState};
use wxbridge_lambda::sqs::media::MediaHandler;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const APP: &str = "wx0000000000000099";
const APP_SECRET: &str = "the-app-secret";
const HOTEL: (&str, &str) = ("hotel-9", "hotel-secret-456789");
const AIRLINE: (&str, &str) = ("air-3", "air-secret-0123456");
const THREE_DAYS: Duration = Duration::from_secs(3 * 24 * 3600);

fn jpeg(seed: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..3000u32).map(|n| (n as u8).wrapping_mul(seed)));
    bytes
}

struct Stack {
    fake: Fake,
    hotel: WebhookReceiver,
    config: BridgeConfig,
    table: Table,
    bucket: Bucket,
    sqs: aws_sdk_sqs::Client,
    media_queues: FifoQueues,
    outbound_url: String,
    /// `inbound` on clients that count its requests (DynamoDB, SQS).
    inbound: Inbound<AwsPorts>,
    inbound_requests: (RequestCounter, RequestCounter),
    /// `media` on a client that counts its DynamoDB requests (S3's: the bucket's).
    media: MediaHandler<AwsPorts, SqsParking>,
    media_requests: RequestCounter,
    api: axum::Router,
}

async fn stack() -> Stack {
    let fake = Fake::default();
    fake.add_app(APP, APP_SECRET);
    let fake_url = fake.start().await;
    let hotel = WebhookReceiver::start().await;
    let airline = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_mp","token":"mp-token","mode":"plaintext","push_format":"json","app_secret":"{APP_SECRET}"}}],
          "partners":[
            {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"{}"}},
            {{"id":"air-3","display_name":"Blue Air","webhook_url":"{}/hooks","signing_secret":"{}"}}],
          "dialog":{{"mode":"merged","default_partner":"hotel-9"}},
          "wechat_api_base":"{fake_url}","allow_private_image_hosts":true}}"#,
        hotel.url, HOTEL.1, airline.url, AIRLINE.1
    ))
    .unwrap();
    let table = new_table().await;
    let bucket = Bucket::new().await;
    let sqs = sqs_client().await;
    let media_queues = create_fifo_queues(&sqs, "media").await;
    let outbound = create_fifo_queues(&sqs, "outbound").await;
    let (counted_sqs, sqs_requests) = counted_sqs_client().await;
    let (counted_dynamodb, dynamodb_requests) = counted_dynamodb_client().await;
    let inbound = Inbound::new(
        bridge_on(&config, &Table::new(counted_dynamodb, table.name())),
        fifo_queue(&sqs, &outbound.queue_url),
    )
    .with_media_queue(fifo_queue(&counted_sqs, &media_queues.queue_url));
    let (media_dynamodb, media_requests) = counted_dynamodb_client().await;
    let media = MediaHandler::new(
        MediaKeeper::new(
            bridge_on(&config, &Table::new(media_dynamodb, table.name())),
            bucket.archive(),
        ),
        parking(&sqs, &media_queues),
    );
    let api = router(Arc::new(ApiState::<AwsPorts, DynamoNonceStore> {
        api: PartnerApi::new(
            bridge_on(&config, &table),
            fifo_queue(&sqs, &outbound.queue_url),
        )
        .with_archive(bucket.archive()),
        nonces: table.nonces(),
    }));
    Stack {
        fake,
        hotel,
        config,
        table,
        bucket,
        sqs,
        media_queues,
        outbound_url: outbound.queue_url,
        inbound,
        inbound_requests: (dynamodb_requests, sqs_requests),
        media,
        media_requests,
        api,
    }
}

impl Stack {
    /// The user writes `kind` (WeChat has it as a push, received now).
    async fn user_sends(&self, openid: &str, kind: EventKind) -> Outcome {
        let event = CallbackEvent {
            to_user_name: "gh_mp".into(),
            from_user_name: openid.into(),
            create_time: system_clock_ms() / 1000,
            business_id: None,
            kind,
        };
        let inbound = InboundMessage::new("mp", event, system_clock_ms());
        self.inbound.process(&inbound, system_clock_ms()).await
    }

    /// The user sends `bytes` as an image: WeChat keeps them under a media id.
    async fn user_sends_image(&self, openid: &str, msg_id: &str, bytes: Vec<u8>) -> String {
        self.fake.user_acts(APP, openid, UserAction::Message);
        let media_id = self.fake.add_media("image/jpeg", bytes);
        let kind = EventKind::Image {
            msg_id: msg_id.into(),
            pic_url: "http://mmbiz.example/pic".into(),
            media_id: media_id.clone(),
        };
        assert_eq!(self.user_sends(openid, kind).await, Outcome::Delivered);
        media_id
    }

    fn requests(&self) -> usize {
        self.inbound_requests.0.count() + self.inbound_requests.1.count()
    }

    /// The last webhook's `message`.
    fn last_webhook_message(&self) -> Value {
        self.hotel.received().last().unwrap().json()["message"].clone()
    }

    /// One batch of `media.fifo` through the `media` handler: its records and failures.
    async fn copy_batch(&self) -> (usize, usize) {
        let source = self.media_queues.event_source("media");
        let (event, response) = poll_handler(&self.sqs, &source, &self.media).await;
        (event.records.len(), response.batch_item_failures.len())
    }

    async fn message(&self, conversation_id: &str, id: &str) -> StoredMessage {
        let history = self
            .table
            .store()
            .history(conversation_id, 50)
            .await
            .unwrap();
        history.into_iter().find(|m| m.id == id).unwrap()
    }

    /// A signed GET on the partner API: status, content type and body.
    async fn get(&self, partner: (&str, &str), path: &str) -> (u16, String, Vec<u8>) {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let request = signed_request(partner, "GET", path, "", &nonce);
        let response = wxbridge_lambda::api::answer(&self.api, request).await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, content_type, body)
    }
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_users_image_is_kept_and_served_after_wechat_expired_it() {
    let s = stack().await;
    let bytes = jpeg(7);
    let media_id = s.user_sends_image("o-alice", "1001", bytes.clone()).await;

    // The partner has the message at once, its copy pending and where it will be served.
    let message = s.last_webhook_message();
    assert_eq!(message["content"]["media_id"], media_id.as_str());
    assert_eq!(message["media"]["status"], "pending");
    let path = message["media"]["path"].as_str().unwrap().to_owned();
    let (conversation_id, message_id) = ("mp:o-alice:hotel-9", message["id"].as_str().unwrap());
    assert_eq!(
        path,
        format!("/v1/conversations/{conversation_id}/media/{message_id}")
    );
    assert_eq!(
        error_code(&s.get(HOTEL, &path).await.2),
        "media_not_stored",
        "not kept yet"
    );

    assert_eq!(s.copy_batch().await, (1, 0));
    let key = object_key("mp", conversation_id, message_id);
    assert_eq!(s.bucket.object(&key).await, Some(bytes.clone()));
    let stored = s.message(conversation_id, message_id).await.media.unwrap();
    assert_eq!(stored.status, MediaStatus::Stored);
    assert_eq!(stored.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(stored.bytes, Some(bytes.len() as u64));

    // WeChat's three days pass: its copy is gone, the bridge's is not.
    s.fake.advance(THREE_DAYS + Duration::from_secs(60));
    let (status, _, body) = s.get(HOTEL, &format!("/v1/media/mp/{media_id}")).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "media_not_found")
    );
    let (status, content_type, body) = s.get(HOTEL, &path).await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(body, bytes);
    // The history says so too.
    let (status, _, body) = s
        .get(
            HOTEL,
            &format!("/v1/conversations/{conversation_id}/messages"),
        )
        .await;
    assert_eq!(status, 200);
    let history: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(history["messages"][0]["media"]["status"], "stored");
    assert_eq!(history["messages"][0]["media"]["path"], path.as_str());

    // A repeat of the job (a redelivery) keeps what is kept and writes nothing new.
    let job = MediaJob::of(&s.message(conversation_id, message_id).await, &media_id, 0);
    assert_eq!(s.media.keeper().copy(&job).await, CopyOutcome::AlreadyDone);
}

#[tokio::test]
async fn another_partner_cannot_read_a_kept_image() {
    let s = stack().await;
    s.user_sends_image("o-bob", "2001", jpeg(3)).await;
    let path = s.last_webhook_message()["media"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.copy_batch().await, (1, 0));
    assert_eq!(s.get(HOTEL, &path).await.0, 200);
    let (status, _, body) = s.get(AIRLINE, &path).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "not_found"),
        "answered as a conversation that does not exist"
    );
    // The airline's own conversation with the same user does not reach the hotel's image
    // by its message id either: the key is the conversation's.
    let outcome = s
        .user_sends(
            "o-bob",
            EventKind::Text {
                msg_id: "2002".into(),
                content: "#air-3".into(),
            },
        )
        .await;
    assert_eq!(outcome, Outcome::Delivered);
    let message_id = path.rsplit('/').next().unwrap();
    let own = format!("/v1/conversations/mp:o-bob:air-3/media/{message_id}");
    let (status, _, body) = s.get(AIRLINE, &own).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "media_not_stored")
    );
}

#[tokio::test]
async fn an_unreachable_bucket_keeps_the_copy_pending_and_it_is_kept_later() {
    let s = stack().await;
    let bytes = jpeg(5);
    s.user_sends_image("o-carol", "3001", bytes.clone()).await;
    let message_id = s.last_webhook_message()["id"].as_str().unwrap().to_owned();
    let conversation_id = "mp:o-carol:hotel-9";

    // The bucket does not answer: the job fails and stays on the queue, the message says
    // why its copy is still pending.
    let down = MediaHandler::new(
        MediaKeeper::new(bridge_on(&s.config, &s.table), unreachable_archive().await),
        parking(&s.sqs, &s.media_queues),
    );
    let source = s.media_queues.event_source("media");
    let (event, response) = poll_handler(&s.sqs, &source, &down).await;
    assert_eq!(
        (event.records.len(), response.batch_item_failures.len()),
        (1, 1)
    );
    let pending = s.message(conversation_id, &message_id).await.media.unwrap();
    assert_eq!(pending.status, MediaStatus::Pending);
    assert!(pending.reason.is_some(), "{pending:?}");
    assert!(s
        .bucket
        .object(&object_key("mp", conversation_id, &message_id))
        .await
        .is_none());

    // The backoff passes (the record is made visible again) and the bucket answers.
    let receipt = event.records[0].receipt_handle.clone().unwrap();
    s.sqs
        .change_message_visibility()
        .queue_url(&s.media_queues.queue_url)
        .receipt_handle(receipt)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(s.copy_batch().await, (1, 0));
    let kept = s.message(conversation_id, &message_id).await.media.unwrap();
    assert_eq!((kept.status, kept.reason), (MediaStatus::Stored, None));
    let path = format!("/v1/conversations/{conversation_id}/media/{message_id}");
    assert_eq!(s.get(HOTEL, &path).await.2, bytes);
    assert!(drain(&s.sqs, &s.media_queues.dlq_url).await.is_empty());
}

#[tokio::test]
async fn an_image_wechat_no_longer_has_is_unavailable_with_the_reason() {
    let s = stack().await;
    s.user_sends_image("o-dave", "4001", jpeg(9)).await;
    let message_id = s.last_webhook_message()["id"].as_str().unwrap().to_owned();
    s.fake.expire_media();
    assert_eq!(
        s.copy_batch().await,
        (1, 0),
        "done: trying again cannot help"
    );
    let conversation_id = "mp:o-dave:hotel-9";
    let copy = s.message(conversation_id, &message_id).await.media.unwrap();
    assert_eq!(copy.status, MediaStatus::Unavailable);
    assert!(
        copy.reason.as_deref().unwrap().contains("40007"),
        "{copy:?}"
    );
    let path = format!("/v1/conversations/{conversation_id}/media/{message_id}");
    let (status, _, body) = s.get(HOTEL, &path).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "media_not_stored")
    );
}

#[tokio::test]
async fn a_partners_image_is_kept_once_sent() {
    let s = stack().await;
    let images = ImageServer::start().await;
    images.serve("/room.png", 200, "image/png", png());
    s.user_sends(
        "o-erin",
        EventKind::Text {
            msg_id: "5001".into(),
            content: "a photo of the room?".into(),
        },
    )
    .await;
    s.fake.user_acts(APP, "o-erin", UserAction::Message);
    let reply = store_reply(
        &s.table.store(),
        "o-erin",
        1,
        json!({"type": "image", "url": format!("{}/room.png", images.url)}),
    )
    .await;
    let queued = s.message(&reply.conversation_id, &reply.message_id).await;
    assert_eq!(queued.media.unwrap().status, MediaStatus::Pending);
    let dispatch = Dispatch::new(
        bridge_on(&s.config, &s.table),
        images_on(&s.config, &s.table),
        fifo_queue(&s.sqs, &s.outbound_url),
    )
    .with_media_queue(fifo_queue(&s.sqs, &s.media_queues.queue_url));
    assert_eq!(dispatch.process(&reply).await, DispatchOutcome::Sent);
    let sent_media = s.fake.sent().last().unwrap().body["image"]["media_id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(s.copy_batch().await, (1, 0));
    let kept = s.message(&reply.conversation_id, &reply.message_id).await;
    assert_eq!(kept.media.unwrap().status, MediaStatus::Stored);
    let path = format!(
        "/v1/conversations/{}/media/{}",
        reply.conversation_id, reply.message_id
    );
    let (status, content_type, body) = s.get(HOTEL, &path).await;
    assert_eq!(
        (status, content_type.as_str(), body),
        (200, "image/png", png())
    );
    // Kept from what WeChat took, not fetched from the partner again.
    assert_eq!(s.fake.media(&sent_media).unwrap().1, png());
    assert_eq!(images.hits("/room.png"), 1);
}

/// AWS requests: a text costs `inbound` 3 (unchanged); an image one more (the copy job on
/// `media.fifo`); the `media` function then reads the message, writes the object and
/// records it (with the access token cached: measured on a second image).
#[tokio::test]
async fn an_image_costs_inbound_one_request_more_than_a_text() {
    let s = stack().await;
    s.fake.user_acts(APP, "o-fay", UserAction::Message);
    let before = s.requests();
    s.user_sends(
        "o-fay",
        EventKind::Text {
            msg_id: "6001".into(),
            content: "hello".into(),
        },
    )
    .await;
    let text = s.requests() - before;
    let before = s.requests();
    s.user_sends_image("o-fay", "6002", jpeg(11)).await;
    let image = s.requests() - before;
    assert_eq!((text, image), (3, 4));

    assert_eq!(s.copy_batch().await, (1, 0));
    s.user_sends_image("o-fay", "6003", jpeg(13)).await;
    let (dynamodb, s3) = (s.media_requests.count(), s.bucket.requests.count());
    assert_eq!(s.copy_batch().await, (1, 0));
    let copy = (
        s.media_requests.count() - dynamodb,
        s.bucket.requests.count() - s3,
    );
    println!(
        "AWS requests per image copy (warm token): DynamoDB {}, S3 {}",
        copy.0, copy.1
    );
    assert_eq!(
        copy,
        (2, 1),
        "message read and copy recorded; one object written"
    );
}

#[tokio::test]
async fn a_message_whose_copy_cannot_be_queued_is_kept_and_retried_not_lost() {
    // The copy job cannot be queued (media.fifo gone): the message is stored, not
    // delivered without its job, and retried; nothing is lost.
    let s = stack().await;
    s.sqs
        .delete_queue()
        .queue_url(&s.media_queues.queue_url)
        .send()
        .await
        .unwrap();
    s.fake.user_acts(APP, "o-gus", UserAction::Message);
    let media_id = s.fake.add_media("image/jpeg", jpeg(2));
    let kind = EventKind::Image {
        msg_id: "7001".into(),
        pic_url: "http://mmbiz.example/pic".into(),
        media_id,
    };
    assert!(
        matches!(s.user_sends("o-gus", kind).await, Outcome::RetrySoon(reason) if reason.contains("image copy not queued"))
    );
    let history = s
        .table
        .store()
        .history("mp:o-gus:hotel-9", 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "stored, to be delivered on the retry");
    assert!(s.hotel.received().is_empty());
}
