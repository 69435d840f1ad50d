//! What the fake's test files share: a fake serving one app, and a JSON POST.

use serde_json::Value;
use wechat_fake::Fake;

pub const APP: &str = "wx0000000000000001";
pub const SECRET: &str = "app-secret";

/// The fake serving `APP`: the handle, its base URL, a client.
pub async fn fake() -> (Fake, String, reqwest::Client) {
    let fake = Fake::default();
    fake.add_app(APP, SECRET);
    let url = fake.start().await;
    (fake, url, reqwest::Client::new())
}

/// POSTs `body` as JSON; WeChat's JSON answer.
pub async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    client
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
