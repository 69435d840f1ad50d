//! Access tokens shared by concurrent instances, against the local WeChat fake and the
//! DynamoDB store on the emulator.

use std::sync::Arc;
use wechat_fake::Fake;
use wxbridge::config::BridgeConfig;
use wxbridge::handlers::callback::system_clock_ms;
use wxbridge::reply_window::UserAction;
use wxbridge::store::dynamo::DynamoStore;
use wxbridge::token::{TokenStore, Tokens};
use wxbridge::wechat_api::{Remedy, WeChatApi};
use wxbridge_integration::{create_table, dynamodb_client};

const APP: &str = "wx0000000000000042";

async fn setup() -> (Fake, String, DynamoStore, BridgeConfig) {
    let fake = Fake::default();
    fake.add_app(APP, "the-app-secret");
    let url = fake.start().await;
    let client = dynamodb_client().await;
    let table = create_table(&client).await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"{APP}","original_id":"gh_1","token":"t","mode":"plaintext",
        "push_format":"json","app_secret":"the-app-secret"}}],"wechat_api_base":"{url}"}}"#
    ))
    .unwrap();
    (fake, url, DynamoStore::new(client, table), config)
}

#[tokio::test]
async fn twenty_instances_with_no_token_fetch_it_once() {
    let (fake, url, store, config) = setup().await;
    let mut instances = tokio::task::JoinSet::new();
    for _ in 0..20 {
        // Each instance has its own memory, as separate Lambda instances do.
        let tokens = Tokens::new(store.clone(), WeChatApi::new(&url));
        let channel = config.channels[0].clone();
        instances.spawn(async move { tokens.get(&channel, system_clock_ms).await.unwrap() });
    }
    let tokens: Vec<String> = instances.join_all().await;
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(fake.token_fetches(APP), 1);
}

#[tokio::test]
async fn a_stale_token_is_expired_once_and_replaced() {
    let (fake, url, store, config) = setup().await;
    let channel = &config.channels[0];
    let api = WeChatApi::new(&url);
    let tokens = Arc::new(Tokens::new(store.clone(), api.clone()));
    fake.user_acts(APP, "o1", UserAction::Message);
    let first = tokens.get(channel, system_clock_ms).await.unwrap();
    let text = serde_json::json!({"msgtype": "text", "text": {"content": "hi"}});
    api.send_custom(&first, "o1", &text).await.unwrap();

    fake.expire_tokens(APP);
    let error = api.send_custom(&first, "o1", &text).await.unwrap_err();
    assert_eq!(
        (error.errcode(), error.remedy()),
        (Some(42001), Remedy::RefreshToken)
    );
    tokens.expire(APP, &first).await.unwrap();
    let second = tokens.get(channel, system_clock_ms).await.unwrap();
    assert_ne!(first, second);
    api.send_custom(&second, "o1", &text).await.unwrap();
    assert_eq!(fake.token_fetches(APP), 2);

    // A late failure of the old token does not throw the new one away.
    let other_instance = Tokens::new(store.clone(), api);
    other_instance.expire(APP, &first).await.unwrap();
    assert_eq!(store.cached(APP).await.unwrap().unwrap().value, second);
    assert_eq!(
        other_instance.get(channel, system_clock_ms).await.unwrap(),
        second
    );
    assert_eq!(fake.token_fetches(APP), 2);
    assert_eq!(fake.sent().len(), 2);
}
