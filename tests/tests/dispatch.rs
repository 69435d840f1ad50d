//! Partner replies sent to WeChat: the DynamoDB store on the emulator, the local WeChat
//! fake, partners on loopback receivers.

use std::time::Duration;
use wechat_fake::{Fake, Injection};
use wxbridge::config::BridgeConfig;
use wxbridge::dispatch::{Dispatch, DispatchOutcome, OutboundRef};
use wxbridge::handlers::callback::system_clock_ms;
use wxbridge::reply_window::{ReplyWindow, UserAction};
use wxbridge::store::dynamo::DynamoStore;
use wxbridge::store::{
    ChannelUser, Conversation, Direction, MessageStatus, Recorded, Store, StoredMessage,
};
use wxbridge::token::Tokens;
use wxbridge::webhook::HttpWebhookSender;
use wxbridge::wechat_api::WeChatApi;
use wxbridge_integration::{create_table, dynamodb_client, WebhookReceiver};

const APP: &str = "wx0000000000000077";

struct Setup {
    fake: Fake,
    fake_url: String,
    hotel: WebhookReceiver,
    dispatch: Dispatch<DynamoStore, DynamoStore, HttpWebhookSender>,
}

async fn setup() -> Setup {
    let fake = Fake::default();
    fake.add_app(APP, "the-app-secret");
    let fake_url = fake.start().await;
    let hotel = WebhookReceiver::start();
    let client = dynamodb_client().await;
    let store = DynamoStore::new(client.clone(), create_table(&client).await);
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"the-app-secret"}}],
        "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"hotel-secret-456789"}}],
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}},"wechat_api_base":"{fake_url}"}}"#,
        hotel.url
    ))
    .unwrap();
    let api = WeChatApi::new(&fake_url);
    let tokens = Tokens::new(store.clone(), api.clone());
    let dispatch = Dispatch::new(
        config,
        store,
        tokens,
        api,
        HttpWebhookSender::new(),
        system_clock_ms,
    );
    Setup {
        fake,
        fake_url,
        hotel,
        dispatch,
    }
}

impl Setup {
    /// The user wrote: WeChat opens the window, and so does the bridge's record of it.
    async fn user_writes(&self, openid: &str) {
        self.fake.user_acts(APP, openid, UserAction::Message);
        let store = self.dispatch.store();
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

    async fn reply(&self, openid: &str, n: u32, text: &str) -> OutboundRef {
        let message = StoredMessage {
            id: format!("out_{openid}_{n}"),
            conversation_id: format!("mp:{openid}:hotel-9"),
            channel: "mp".into(),
            openid: openid.into(),
            partner: "hotel-9".into(),
            direction: Direction::Out,
            status: MessageStatus::Queued,
            status_reason: None,
            created_at_ms: system_clock_ms() + n as i64,
            dedupe_key: None,
            wechat_msg_id: None,
            content: serde_json::json!({"type": "text", "text": text}),
        };
        let conversation = Conversation {
            id: message.conversation_id.clone(),
            channel: message.channel.clone(),
            openid: message.openid.clone(),
            partner: message.partner.clone(),
            created_at_ms: message.created_at_ms,
            last_message_at_ms: message.created_at_ms,
        };
        assert_eq!(
            self.dispatch
                .store()
                .put_outbound(&message, &conversation, &message.id)
                .await
                .unwrap(),
            Recorded::New
        );
        OutboundRef {
            conversation_id: message.conversation_id,
            created_at_ms: message.created_at_ms,
            message_id: message.id,
        }
    }

    async fn status(&self, target: &OutboundRef) -> MessageStatus {
        let store = self.dispatch.store();
        store
            .message(
                &target.conversation_id,
                target.created_at_ms,
                &target.message_id,
            )
            .await
            .unwrap()
            .unwrap()
            .status
    }

    fn statuses(&self) -> Vec<String> {
        self.hotel
            .received()
            .iter()
            .map(|h| h.json()["message"]["status"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_reply_reaches_the_user_with_the_partners_name_once() {
    let s = setup().await;
    s.user_writes("o_amy").await;
    let reply = s.reply("o_amy", 1, "Breakfast is included.").await;
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);
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
        s.dispatch.process(&reply).await,
        DispatchOutcome::AlreadyDone
    );
    assert_eq!(s.fake.sent().len(), 1);
    let user = s
        .dispatch
        .store()
        .user("mp", "o_amy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.window.unwrap().remaining, 4);
    assert_eq!(user.routing.active.unwrap().partner, "hotel-9");
}

#[tokio::test]
async fn the_sixth_reply_is_held_and_a_closed_window_is_reported() {
    let s = setup().await;
    s.user_writes("o_ben").await;
    for n in 1..=5 {
        let reply = s.reply("o_ben", n, &format!("reply {n}")).await;
        assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);
    }
    let sixth = s.reply("o_ben", 6, "reply 6").await;
    assert_eq!(s.dispatch.process(&sixth).await, DispatchOutcome::Held);
    assert_eq!(s.status(&sixth).await, MessageStatus::Held);
    // The user writes again: the held reply goes out.
    s.user_writes("o_ben").await;
    assert_eq!(s.dispatch.process(&sixth).await, DispatchOutcome::Sent);
    assert_eq!(s.fake.sent().len(), 6);

    let silent = s.reply("o_cal", 1, "anyone?").await;
    assert_eq!(
        s.dispatch.process(&silent).await,
        DispatchOutcome::WindowClosed
    );
    assert_eq!(s.status(&silent).await, MessageStatus::WindowClosed);
    assert_eq!(
        s.statuses().last().map(String::as_str),
        Some("window_closed")
    );
}

#[tokio::test]
async fn a_token_voided_mid_flight_is_refreshed_and_the_send_retried_once() {
    let s = setup().await;
    s.user_writes("o_dan").await;
    let first = s.reply("o_dan", 1, "one").await;
    assert_eq!(s.dispatch.process(&first).await, DispatchOutcome::Sent);
    // Someone force-refreshes the stable token: the cached one answers 40001 now.
    WeChatApi::new(&s.fake_url)
        .stable_token(APP, "the-app-secret", true, 0)
        .await
        .unwrap();
    let second = s.reply("o_dan", 2, "two").await;
    assert_eq!(s.dispatch.process(&second).await, DispatchOutcome::Sent);
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
        http_status: None,
        delay: Duration::ZERO,
        times: 1,
    });
    assert!(matches!(
        s.dispatch.process(&reply).await,
        DispatchOutcome::Retry(_)
    ));
    assert_eq!(s.status(&reply).await, MessageStatus::Queued);
    assert_eq!(s.dispatch.process(&reply).await, DispatchOutcome::Sent);

    // The bridge thinks the window is open; WeChat knows better (45047): final.
    s.fake.inject(Injection {
        path: "/cgi-bin/message/custom/send".into(),
        errcode: Some(45047),
        http_status: None,
        delay: Duration::ZERO,
        times: 1,
    });
    let refused = s.reply("o_eve", 2, "one more").await;
    let DispatchOutcome::Failed(reason) = s.dispatch.process(&refused).await else {
        panic!()
    };
    assert!(reason.contains("45047"), "{reason}");
    assert_eq!(s.status(&refused).await, MessageStatus::Failed);
    assert_eq!(s.statuses(), ["sent", "failed"]);
}

#[tokio::test]
async fn the_dispatch_function_sends_a_conversations_replies_in_order_from_outbound_fifo() {
    use wxbridge::handlers::dispatch::DispatchHandler;
    use wxbridge::queue::SqsParking;
    use wxbridge_integration::{
        create_fifo_queues, drain, receive_batch, settle_batch, sqs_client,
    };

    let s = setup().await;
    s.user_writes("o_fin").await;
    let replies = [
        s.reply("o_fin", 1, "first").await,
        s.reply("o_fin", 2, "second").await,
    ];
    let sqs = sqs_client().await;
    let queues = create_fifo_queues(&sqs, "outbound").await;
    let ghost = OutboundRef {
        conversation_id: "mp:o_fin:hotel-9".into(),
        created_at_ms: 1,
        message_id: "out_ghost".into(),
    };
    for target in replies.iter().chain([&ghost]) {
        sqs.send_message()
            .queue_url(&queues.queue_url)
            .message_group_id(&target.conversation_id)
            .message_deduplication_id(&target.message_id)
            .message_body(serde_json::to_string(target).unwrap())
            .send()
            .await
            .unwrap();
    }
    let Setup { fake, dispatch, .. } = s;
    let handler = DispatchHandler::new(
        dispatch,
        SqsParking::new(sqs.clone(), &queues.queue_url, &queues.dlq_url),
    );
    let event = receive_batch(&sqs, &queues.queue_url).await;
    assert_eq!(event.records.len(), 3);
    let response = handler.handle(event.clone(), None).await;
    assert!(response.batch_item_failures.is_empty());
    settle_batch(&sqs, &queues.queue_url, &event, &response).await;
    let texts: Vec<String> = fake
        .sent()
        .iter()
        .map(|s| s.body["text"]["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["【Hotel Lotus】first", "【Hotel Lotus】second"]);
    let parked = drain(&sqs, &queues.dlq_url).await;
    assert_eq!(
        parked.len(),
        1,
        "a record naming no stored message is parked"
    );
    assert!(parked[0].body.contains("out_ghost"));
    assert!(receive_batch(&sqs, &queues.queue_url)
        .await
        .records
        .is_empty());
}
