//! Sub-merchant sessions end to end on real parts: registration against the WeChat fake
//! with the table on the emulator; a user's pushes through the real `callback` and
//! `inbound` handlers; replies through the real `dispatch` handler into the sub-merchant's
//! session, whose own window the fake enforces.

use wechat_fake::{Fake, UserAction};
use wxbridge_aws::{SqsFifoQueue, SqsParking, Table};
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::{BridgeConfig, Channels};
use wxbridge_core::model::{MessageStatus, OutboundRef};
use wxbridge_core::ports::queue::OutboundQueue;
use wxbridge_core::ports::store::{MessageStore, SubMerchantStore};
use wxbridge_core::ports::wechat::{BusinessProfile, WechatApi};
use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_core::services::inbound::Inbound;
use wxbridge_core::services::sub_merchants::registration::{register_all, Registration};
use wxbridge_http::Downloader;
use wxbridge_integration::*;
use wxbridge_lambda::callback::CallbackService;
use wxbridge_lambda::sqs::dispatch::DispatchHandler;
use wxbridge_lambda::sqs::inbound::InboundHandler;
use wxbridge_wechat::encode::seal;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

const APP: &str = "wx0000000000000123";

struct Setup {
    fake: Fake,
    avatars: ImageServer,
    desk: WebhookReceiver,
    hotel: WebhookReceiver,
    config: BridgeConfig,
    table: Table,
    sqs: aws_sdk_sqs::Client,
    inbound_queues: FifoQueues,
    outbound_queues: FifoQueues,
    callback: CallbackService<SqsFifoQueue>,
    inbound: InboundHandler<AwsPorts, SqsParking>,
    dispatch: DispatchHandler<AwsPorts, SqsParking>,
}

async fn setup() -> Setup {
    let fake = Fake::default();
    fake.add_app(APP, "the-app-secret");
    let fake_url = fake.start().await;
    let avatars = ImageServer::start().await;
    avatars.serve("/lotus.png", 200, "image/png", png());
    avatars.serve("/sky.png", 200, "image/png", png());
    let (desk, hotel) = (
        WebhookReceiver::start().await,
        WebhookReceiver::start().await,
    );
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_mp","token":"mp-token","mode":"plaintext","push_format":"xml","app_secret":"the-app-secret"}}],
        "partners":[
          {{"id":"platform","display_name":"Trip Service","webhook_url":"{desk}/hooks","signing_secret":"platform-secret-0123"}},
          {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{hotel}/hooks","signing_secret":"hotel-secret-456789",
            "sub_merchant":{{"account_name":"hotel_lotus_9","nickname":"HotelLotus","avatar_url":"{avatars}/lotus.png"}}}},
          {{"id":"air-2","display_name":"Sky Air","webhook_url":"{desk}/air","signing_secret":"airline-secret-0000",
            "sub_merchant":{{"account_name":"sky_air_2","nickname":"SkyAir","avatar_url":"{avatars}/sky.png"}}}}],
        "dialog":{{"mode":"sub_merchant","default_partner":"platform"}},
        "wechat_api_base":"{fake_url}","allow_private_image_hosts":true}}"#,
        desk = desk.url,
        hotel = hotel.url,
        avatars = avatars.url,
    ))
    .unwrap();
    let table = new_table().await;
    let sqs = sqs_client().await;
    let inbound_queues = create_inbound_queues(&sqs).await;
    let outbound_queues = create_fifo_queues(&sqs, "outbound").await;
    let outbound = fifo_queue(&sqs, &outbound_queues.queue_url);
    let callback = CallbackService::new(&config, fifo_queue(&sqs, &inbound_queues.queue_url));
    let inbound = InboundHandler::new(
        Inbound::new(bridge_on(&config, &table), outbound.clone()),
        parking(&sqs, &inbound_queues),
    );
    let dispatch = DispatchHandler::new(
        Dispatch::new(
            bridge_on(&config, &table),
            images_on(&config, &table),
            outbound,
        ),
        parking(&sqs, &outbound_queues),
    );
    Setup {
        fake,
        avatars,
        desk,
        hotel,
        config,
        table,
        sqs,
        inbound_queues,
        outbound_queues,
        callback,
        inbound,
        dispatch,
    }
}

impl Setup {
    async fn register(&self) -> Vec<(String, Registration, u64)> {
        let bridge = bridge_on(&self.config, &self.table);
        let avatars = Downloader::for_config(&self.config);
        let channel = self.config.channel("mp").unwrap();
        register_all(&bridge, &avatars, channel)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let (done, id) = r.outcome.unwrap();
                (r.partner, done, id)
            })
            .collect()
    }

    /// The user writes in a session (`business_id`, or the main one): WeChat opens its
    /// window and pushes; `inbound` takes the push from `inbound.fifo`.
    async fn user_writes(&self, business_id: Option<u64>, msg_id: u64, text: &str) {
        self.fake
            .user_acts_in(APP, "o_amy", business_id, UserAction::Message);
        let event = CallbackEvent {
            to_user_name: "gh_mp".into(),
            from_user_name: "o_amy".into(),
            create_time: system_clock_ms() / 1000,
            business_id: business_id.map(|id| id.to_string()),
            kind: EventKind::Text {
                msg_id: msg_id.to_string(),
                content: text.into(),
            },
        };
        let channels = Channels::new(&self.config);
        let push = seal(
            channels.get("mp").unwrap(),
            &event,
            event.create_time,
            "n0nce",
        );
        let answer = self.callback.handle(push_request(&push, "mp")).await;
        assert_eq!(answer.status(), 200);
        let source = self.inbound_queues.event_source("inbound");
        let (event, response) = poll_handler(&self.sqs, &source, &self.inbound).await;
        assert_eq!(
            (event.records.len(), response.batch_item_failures.len()),
            (1, 0)
        );
    }

    /// The hotel replies (stored as the API stores it) and `dispatch` takes it from
    /// `outbound.fifo`.
    async fn hotel_replies(&self, n: u32, text: &str) -> OutboundRef {
        let store = self.table.store();
        let content = serde_json::json!({"type": "text", "text": text});
        let reply = store_reply(&store, "o_amy", n, content).await;
        let queue = fifo_queue(&self.sqs, &self.outbound_queues.queue_url);
        queue.enqueue(&reply, &reply.message_id).await.unwrap();
        self.drain_outbound().await;
        reply
    }

    async fn drain_outbound(&self) {
        let source = self.outbound_queues.event_source("dispatch");
        loop {
            let (event, _) = poll_handler(&self.sqs, &source, &self.dispatch).await;
            if event.records.is_empty() {
                return;
            }
        }
    }

    async fn status(&self, reply: &OutboundRef) -> MessageStatus {
        let stored = self.table.store().message_at(reply).await.unwrap().unwrap();
        stored.status
    }

    /// The customer-service texts the fake accepted in a session.
    fn texts_in(&self, business_id: Option<u64>) -> Vec<String> {
        self.fake
            .sent()
            .iter()
            .filter(|s| s.api == "custom" && s.business_id == business_id)
            .map(|s| s.body["text"]["content"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn registration_is_idempotent_against_wechat_and_kept_in_the_table() {
    let s = setup().await;
    let first = s.register().await;
    assert_eq!(
        first,
        [
            ("hotel-9".to_owned(), Registration::Registered, 1),
            ("air-2".to_owned(), Registration::Registered, 2),
        ]
    );
    let at_wechat = s.fake.businesses(APP);
    assert_eq!(at_wechat[0].account_name, "hotel_lotus_9");
    assert_eq!(at_wechat[0].nickname, "HotelLotus");
    assert_eq!(
        s.fake.uploads(),
        2,
        "each avatar uploaded as temporary media"
    );

    let again = s.register().await;
    assert!(again
        .iter()
        .all(|(_, done, _)| *done == Registration::Unchanged));
    assert_eq!(s.fake.uploads(), 2);

    // A new avatar: uploaded and updated under the same id; nothing registered twice.
    let mut other = png();
    other.extend_from_slice(b"trailing");
    s.avatars.serve("/sky.png", 200, "image/png", other);
    let changed = s.register().await;
    assert_eq!(changed[1], ("air-2".to_owned(), Registration::Updated, 2));
    assert_eq!(s.fake.businesses(APP).len(), 2);
    let kept = s.table.store().sub_merchants("mp").await.unwrap();
    assert_eq!(kept.len(), 2);
}

#[tokio::test]
async fn a_user_writes_to_a_sub_merchant_and_the_reply_lands_in_that_session() {
    let s = setup().await;
    s.register().await;
    s.user_writes(Some(1), 1, "Is breakfast included?").await;
    let hooks = s.hotel.received();
    assert_eq!(hooks.len(), 1, "the hotel's own session goes to the hotel");
    assert_eq!(hooks[0].json()["conversation"]["id"], "mp:o_amy:hotel-9");
    assert!(s.desk.received().is_empty());

    let reply = s.hotel_replies(1, "Yes, from 7 to 10").await;
    assert_eq!(s.status(&reply).await, MessageStatus::Sent);
    assert_eq!(
        s.texts_in(Some(1)),
        ["Yes, from 7 to 10"],
        "in the hotel's session, under its own nickname (no sender line)"
    );
    assert!(s.texts_in(None).is_empty());

    // The main session is the platform's.
    s.user_writes(None, 2, "And my order?").await;
    let desk = s.desk.received();
    assert_eq!(desk[0].json()["conversation"]["id"], "mp:o_amy:platform");
}

#[tokio::test]
async fn a_held_reply_is_released_by_its_own_session_and_not_by_another() {
    let s = setup().await;
    s.register().await;
    s.user_writes(Some(1), 1, "hello hotel").await;
    for n in 1..=5 {
        s.hotel_replies(n, &format!("reply {n}")).await;
    }
    let held = s.hotel_replies(6, "reply 6").await;
    assert_eq!(
        s.status(&held).await,
        MessageStatus::Held,
        "the session's 5 are spent"
    );

    s.user_writes(None, 2, "hello platform").await;
    s.drain_outbound().await;
    assert_eq!(
        s.status(&held).await,
        MessageStatus::Held,
        "another session's message"
    );
    assert_eq!(s.texts_in(Some(1)).len(), 5);

    s.user_writes(Some(1), 3, "still there?").await;
    s.drain_outbound().await;
    assert_eq!(s.status(&held).await, MessageStatus::Sent);
    assert_eq!(s.texts_in(Some(1)).last().unwrap(), "reply 6");
}

#[tokio::test]
async fn a_push_from_an_unknown_sub_merchant_is_kept_and_handed_to_the_default_partner() {
    let s = setup().await;
    s.register().await;
    // Registered at WeChat behind the bridge's back: the table does not know it.
    s.fake.user_acts(APP, "o_amy", UserAction::Message);
    let bridge = bridge_on(&s.config, &s.table);
    let token = bridge
        .tokens
        .get(s.config.channel("mp").unwrap())
        .await
        .unwrap();
    let ghost_shop = BusinessProfile {
        account_name: "ghost_shop".into(),
        nickname: "GhostShop".into(),
        icon_media_id: s.fake.add_media("image/png", png()),
    };
    let ghost = bridge
        .wechat()
        .business_register(&token, &ghost_shop)
        .await
        .unwrap();
    s.user_writes(Some(ghost), 1, "hello?").await;
    let desk = s.desk.received();
    assert_eq!(desk.len(), 1);
    assert_eq!(
        desk[0].json()["message"]["content"]["business_id"],
        ghost.to_string()
    );
    let stored = s
        .table
        .store()
        .history("mp:o_amy:platform", 5)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
}
