//! Image replies: downloaded from the partner's URL on a loopback image server (or decoded
//! from base64), uploaded to the WeChat fake, cached in DynamoDB on the emulator, sent.

use wechat_fake::{Fake, UserAction as UserDid};
use wxbridge_aws::DynamoStore;
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::reply_window::{ReplyWindow, UserAction};
use wxbridge_core::model::{ChannelUser, MessageStatus, OutboundRef, StoredMessage};
use wxbridge_core::ports::store::{MessageStore, UserStore};
use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome};
use wxbridge_integration::{
    bridge_on, create_fifo_queues, fifo_queue, images_on, new_table, png, sqs_client, store_reply,
    AwsPorts, ImageServer, WebhookReceiver,
};

const APP: &str = "wx0000000000000078";

struct Setup {
    fake: Fake,
    hotel: WebhookReceiver,
    images: ImageServer,
    store: DynamoStore,
    dispatch: Dispatch<AwsPorts>,
}

async fn setup() -> Setup {
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
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}},"wechat_api_base":"{fake_url}","allow_private_image_hosts":true}}"#,
        hotel.url
    ))
    .unwrap();
    let dispatch = Dispatch::new(
        bridge_on(&config, &table),
        images_on(&config, &table),
        fifo_queue(&sqs, &outbound.queue_url),
    );
    Setup {
        fake,
        hotel,
        images: ImageServer::start().await,
        store: table.store(),
        dispatch,
    }
}

impl Setup {
    async fn user_writes(&self, openid: &str) {
        self.fake.user_acts(APP, openid, UserDid::Message);
        let store = &self.store;
        let mut user = store
            .user("mp", openid)
            .await
            .unwrap()
            .unwrap_or_else(|| ChannelUser::new("mp", openid));
        user.window = Some(ReplyWindow::after(
            user.window,
            UserAction::Message,
            system_clock_ms(),
        ));
        store.put_user(&user).await.unwrap();
    }

    async fn reply(&self, openid: &str, n: u32, content: serde_json::Value) -> OutboundRef {
        store_reply(&self.store, openid, n, content).await
    }

    async fn image_at(&self, openid: &str, n: u32, path: &str) -> OutboundRef {
        let url = format!("{}{path}", self.images.url);
        self.reply(openid, n, serde_json::json!({"type": "image", "url": url}))
            .await
    }

    async fn stored(&self, target: &OutboundRef) -> StoredMessage {
        self.store
            .message(
                &target.conversation_id,
                target.created_at_ms,
                &target.message_id,
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// The media ids of the images the fake accepted, in order.
    fn sent_media(&self) -> Vec<String> {
        self.fake
            .sent()
            .iter()
            .map(|s| {
                assert_eq!(s.body["msgtype"], "image", "{:?}", s.body);
                s.body["image"]["media_id"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// The `message.status` webhooks: (status, reason).
    fn reports(&self) -> Vec<(String, Option<String>)> {
        self.hotel
            .received()
            .iter()
            .map(|h| {
                let message = &h.json()["message"];
                (
                    message["status"].as_str().unwrap().to_owned(),
                    message["reason"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn an_image_by_url_is_downloaded_and_uploaded_once_then_sent_from_the_cache() {
    let s = setup().await;
    s.images.serve("/rooms/a.png", 200, "image/png", png());
    // Through one redirect, as image hosts often answer.
    s.images.redirect("/r/a", "/rooms/a.png");
    s.user_writes("o_amy").await;

    let first = s.image_at("o_amy", 1, "/r/a").await;
    assert_eq!(s.dispatch.process(&first).await, DispatchOutcome::Sent);
    let media = s.sent_media();
    assert_eq!(media.len(), 1);
    assert_eq!(s.fake.sent()[0].touser, "o_amy");
    assert_eq!(
        s.fake.media(&media[0]),
        Some(("image/png".to_owned(), png())),
        "WeChat holds the partner's bytes, typed by them"
    );
    assert_eq!(s.stored(&first).await.status, MessageStatus::Sent);

    // The same URL again: sent by the cached media id, no download, no upload.
    let second = s.image_at("o_amy", 2, "/r/a").await;
    assert_eq!(s.dispatch.process(&second).await, DispatchOutcome::Sent);
    assert_eq!(s.sent_media(), [media[0].clone(), media[0].clone()]);
    assert_eq!(s.fake.uploads(), 1);
    assert_eq!(s.images.hits("/rooms/a.png"), 1);
    assert_eq!(
        s.reports(),
        [("sent".to_owned(), None), ("sent".to_owned(), None)]
    );
}

#[tokio::test]
async fn a_base64_image_is_uploaded_once_per_content() {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let s = setup().await;
    s.user_writes("o_bea").await;
    let content = serde_json::json!({"type": "image", "base64": b64(&png())});
    let first = s.reply("o_bea", 1, content.clone()).await;
    assert_eq!(s.dispatch.process(&first).await, DispatchOutcome::Sent);
    let second = s.reply("o_bea", 2, content).await;
    assert_eq!(s.dispatch.process(&second).await, DispatchOutcome::Sent);
    let media = s.sent_media();
    assert_eq!(media.len(), 2);
    assert_eq!(media[0], media[1]);
    assert_eq!(s.fake.uploads(), 1);
    assert_eq!(s.fake.media(&media[0]).unwrap().1, png());
}

#[tokio::test]
async fn an_expired_media_id_is_forgotten_and_the_image_uploaded_again_once() {
    let s = setup().await;
    s.images.serve("/a.png", 200, "image/png", png());
    s.user_writes("o_cy").await;
    let first = s.image_at("o_cy", 1, "/a.png").await;
    assert_eq!(s.dispatch.process(&first).await, DispatchOutcome::Sent);
    // Three days later (for WeChat): the cached id answers 40007.
    s.fake.expire_media();
    let second = s.image_at("o_cy", 2, "/a.png").await;
    assert_eq!(s.dispatch.process(&second).await, DispatchOutcome::Sent);
    let third = s.image_at("o_cy", 3, "/a.png").await;
    assert_eq!(s.dispatch.process(&third).await, DispatchOutcome::Sent);
    let media = s.sent_media();
    assert_eq!(media.len(), 3);
    assert_ne!(media[0], media[1], "a new upload after 40007");
    assert_eq!(media[1], media[2], "the new id is the cached one now");
    assert_eq!(s.fake.uploads(), 2);
    assert_eq!(s.images.hits("/a.png"), 2);
}

#[tokio::test]
async fn images_the_partner_cannot_serve_fail_with_the_reason_and_are_reported() {
    let s = setup().await;
    let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big.resize(3 * 1024 * 1024, 7);
    s.images.serve("/big.jpg", 200, "image/jpeg", big);
    s.images.serve(
        "/page",
        200,
        "text/html",
        b"<!doctype html><p>hi</p>".to_vec(),
    );
    s.user_writes("o_dee").await;
    let cases = [
        ("/big.jpg", "larger than 2 MiB"),
        ("/page", "JPEG, PNG or GIF"),
        ("/gone.png", "HTTP 404"),
    ];
    for (n, (path, expected)) in (1..).zip(cases) {
        let reply = s.image_at("o_dee", n, path).await;
        let DispatchOutcome::Failed(failure) = s.dispatch.process(&reply).await else {
            panic!("{path} did not fail")
        };
        let reason = failure.to_string();
        assert!(reason.contains(expected), "{path}: {reason}");
        let stored = s.stored(&reply).await;
        assert_eq!(stored.status, MessageStatus::Failed);
        assert_eq!(stored.status_reason.as_deref(), Some(reason.as_str()));
        assert_eq!(
            s.reports().last(),
            Some(&("failed".to_owned(), Some(reason))),
            "{path}"
        );
        // Final: a redelivery does nothing.
        assert_eq!(
            s.dispatch.process(&reply).await,
            DispatchOutcome::AlreadyDone
        );
    }
    assert_eq!(s.reports().len(), 3);
    assert_eq!(s.fake.uploads(), 0);
    assert!(s.fake.sent().is_empty());
}

#[tokio::test]
async fn an_image_url_answering_503_is_tried_a_few_times_then_fails_and_releases_the_next() {
    let s = setup().await;
    s.images
        .serve("/busy.png", 503, "text/plain", b"busy".to_vec());
    s.user_writes("o_eli").await;
    let reply = s.image_at("o_eli", 1, "/busy.png").await;
    let DispatchOutcome::Failed(failure) = s.dispatch.process(&reply).await else {
        panic!("a busy image host must not hold the conversation")
    };
    let reason = failure.to_string();
    assert!(
        reason.contains("HTTP 503") && reason.contains("3 tries"),
        "{reason}"
    );
    assert_eq!(s.images.hits("/busy.png"), 3, "a short, bounded effort");
    assert_eq!(s.stored(&reply).await.status, MessageStatus::Failed);
    assert_eq!(s.reports(), [("failed".to_owned(), Some(reason))]);
    assert_eq!(s.fake.uploads(), 0);

    // The conversation's next reply goes out at once.
    s.images.serve("/ok.png", 200, "image/png", png());
    let next = s.image_at("o_eli", 2, "/ok.png").await;
    assert_eq!(s.dispatch.process(&next).await, DispatchOutcome::Sent);
    assert_eq!(s.sent_media().len(), 1);
}
