//! Access tokens shared by concurrent instances, against the local WeChat fake and the
//! DynamoDB store on the emulator.

use std::sync::Arc;
use wechat_fake::{Fake, UserAction as UserDid};
use wxbridge_aws::{DynamoTokenStore, Table};
use wxbridge_core::clock::{system_clock_ms, SharedClock, SystemClock};
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::reply_window::UserAction;
use wxbridge_core::ports::tokens::TokenStore;
use wxbridge_core::ports::wechat::{Remedy, WechatApi};
use wxbridge_core::services::tokens::Tokens;
use wxbridge_http::WechatClient;
use wxbridge_integration::new_table;

const APP: &str = "wx0000000000000042";

/// The tokens of one function instance, with a memory of its own.
fn instance(
    store: &DynamoTokenStore,
    config: &BridgeConfig,
) -> Tokens<DynamoTokenStore, WechatClient> {
    let clock: SharedClock = Arc::new(SystemClock);
    Tokens::new(store.clone(), WechatClient::for_config(config), clock)
}

async fn setup() -> (Fake, String, Table, BridgeConfig) {
    let fake = Fake::default();
    fake.add_app(APP, "the-app-secret");
    let url = fake.start().await;
    let table = new_table().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_1","token":"t","mode":"plaintext",
        "push_format":"json","app_secret":"the-app-secret"}}],"wechat_api_base":"{url}"}}"#
    ))
    .unwrap();
    (fake, url, table, config)
}

#[tokio::test]
async fn twenty_instances_with_no_token_fetch_it_once() {
    let (fake, _, table, config) = setup().await;
    let mut instances = tokio::task::JoinSet::new();
    for _ in 0..20 {
        // Each instance has its own memory, as separate Lambda instances do.
        let tokens = instance(&table.tokens(), &config);
        let channel = config.channels[0].clone();
        instances.spawn(async move { tokens.get(&channel).await.unwrap() });
    }
    let tokens: Vec<String> = instances.join_all().await;
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(fake.token_fetches(APP), 1);
}

#[tokio::test]
async fn a_stale_token_is_expired_once_and_replaced() {
    let (fake, _, table, config) = setup().await;
    let store = table.tokens();
    let channel = &config.channels[0];
    let api = WechatClient::for_config(&config);
    let tokens = Arc::new(instance(&store, &config));
    fake.user_acts(APP, "o1", UserDid::Message);
    let first = tokens.get(channel).await.unwrap();
    let text = serde_json::json!({"msgtype": "text", "text": {"content": "hi"}});
    api.send_custom(&first, "o1", None, &text).await.unwrap();

    fake.expire_tokens(APP);
    let error = api
        .send_custom(&first, "o1", None, &text)
        .await
        .unwrap_err();
    assert_eq!(
        (error.errcode(), error.remedy()),
        (Some(42001), Remedy::RefreshToken)
    );
    tokens.expire(APP, &first).await.unwrap();
    let second = tokens.get(channel).await.unwrap();
    assert_ne!(first, second);
    api.send_custom(&second, "o1", None, &text).await.unwrap();
    assert_eq!(fake.token_fetches(APP), 2);

    // A late failure of the old token does not throw the new one away.
    let other_instance = instance(&store, &config);
    other_instance.expire(APP, &first).await.unwrap();
    assert_eq!(store.cached(APP).await.unwrap().unwrap().value, second);
    assert_eq!(other_instance.get(channel).await.unwrap(), second);
    assert_eq!(fake.token_fetches(APP), 2);
    assert_eq!(fake.sent().len(), 2);
}

/// Twenty dispatchers, each holding the token WeChat has just voided, each sending a reply:
/// one of them fetches the next token, the others wait for it, every reply goes out.
#[tokio::test]
async fn twenty_dispatchers_with_a_voided_token_fetch_one_new_token() {
    use wxbridge_core::model::reply_window::ReplyWindow;
    use wxbridge_core::model::ChannelUser;
    use wxbridge_core::ports::store::UserStore;
    use wxbridge_core::services::dispatch::{Dispatch, DispatchOutcome};
    use wxbridge_core::services::Bridge;
    use wxbridge_http::HttpWebhookSender;
    use wxbridge_integration::{
        create_fifo_queues, fifo_queue, images_on, sqs_client, store_reply, WebhookReceiver,
    };

    let (fake, url, table, _) = setup().await;
    let store = table.store();
    let sqs = sqs_client().await;
    let outbound = create_fifo_queues(&sqs, "outbound").await;
    let hotel = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_1","token":"t","mode":"plaintext",
        "push_format":"json","app_secret":"the-app-secret"}}],
        "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"hotel-secret-456789"}}],
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}},"wechat_api_base":"{url}"}}"#,
        hotel.url
    ))
    .unwrap();
    let channel = config.channels[0].clone();
    let mut replies = Vec::new();
    for n in 0..20 {
        let openid = format!("o_user_{n}");
        fake.user_acts(APP, &openid, UserDid::Message);
        let mut user = ChannelUser::new("mp", &openid);
        user.window = Some(ReplyWindow::after(
            None,
            UserAction::Message,
            system_clock_ms(),
        ));
        store.put_user(&user).await.unwrap();
        let text = serde_json::json!({"type": "text", "text": format!("reply {n}")});
        replies.push(store_reply(&store, &openid, 1, text).await);
    }
    // Every dispatcher has the current token in memory; then WeChat voids it.
    let mut dispatchers = Vec::new();
    for _ in 0..20 {
        let bridge = Bridge::new(
            config.clone(),
            table.store(),
            table.tokens(),
            WechatClient::for_config(&config),
            HttpWebhookSender::new(),
        );
        bridge.tokens.get(&channel).await.unwrap();
        dispatchers.push(Arc::new(Dispatch::new(
            bridge,
            images_on(&config, &table),
            fifo_queue(&sqs, &outbound.queue_url),
        )));
    }
    assert_eq!(fake.token_fetches(APP), 1);
    fake.expire_tokens(APP);

    let mut sends = tokio::task::JoinSet::new();
    for (dispatcher, reply) in dispatchers.into_iter().zip(replies) {
        sends.spawn(async move { dispatcher.process(&reply).await });
    }
    let outcomes = sends.join_all().await;
    assert!(
        outcomes.iter().all(|o| *o == DispatchOutcome::Sent),
        "{outcomes:?}"
    );
    assert_eq!(fake.sent().len(), 20);
    assert_eq!(fake.token_fetches(APP), 2, "one new token for all twenty");
}
