//! The fake answers as the WeChat docs say (protocol notes §3–§5), error codes included.

use serde_json::{json, Value};
use std::time::Duration;
use wechat_fake::{Fake, Injection};
use wxbridge::reply_window::UserAction;

const APP: &str = "wx0000000000000001";
const SECRET: &str = "app-secret";

async fn fake() -> (Fake, String, reqwest::Client) {
    let fake = Fake::default();
    fake.add_app(APP, SECRET);
    let url = fake.start().await;
    (fake, url, reqwest::Client::new())
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
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

async fn stable(client: &reqwest::Client, base: &str, force: bool) -> Value {
    let body = json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET, "force_refresh": force});
    post(client, format!("{base}/cgi-bin/stable_token"), body).await
}

async fn send_text(client: &reqwest::Client, base: &str, token: &str, openid: &str) -> i64 {
    let body = json!({"touser": openid, "msgtype": "text", "text": {"content": "hi"}});
    let answer = post(
        client,
        format!("{base}/cgi-bin/message/custom/send?access_token={token}"),
        body,
    )
    .await;
    answer["errcode"].as_i64().unwrap()
}

#[tokio::test]
async fn stable_token_is_the_same_while_valid_and_force_refresh_is_rate_limited() {
    let (fake, base, client) = fake().await;
    let first = stable(&client, &base, false).await;
    let token = first["access_token"].as_str().unwrap().to_owned();
    assert!(first["expires_in"].as_i64().unwrap() > 7000);
    assert_eq!(
        stable(&client, &base, false).await["access_token"],
        token.as_str()
    );
    let forced = stable(&client, &base, true).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(forced, token);
    assert_eq!(
        send_text(&client, &base, &token, "o1").await,
        40001,
        "the old token is void"
    );
    assert_eq!(
        stable(&client, &base, true).await["access_token"],
        forced.as_str(),
        "30 s between forced refreshes"
    );
    assert_eq!(fake.token_fetches(APP), 4, "every answered request counts");
}

#[tokio::test]
async fn bad_credentials_get_their_codes() {
    let (_, base, client) = fake().await;
    let bad_secret = json!({"grant_type": "client_credential", "appid": APP, "secret": "nope"});
    assert_eq!(
        post(&client, format!("{base}/cgi-bin/stable_token"), bad_secret).await["errcode"],
        40125
    );
    let bad_app = json!({"grant_type": "client_credential", "appid": "wx9", "secret": SECRET});
    assert_eq!(
        post(&client, format!("{base}/cgi-bin/stable_token"), bad_app).await["errcode"],
        40013
    );
    let classic = client
        .get(format!(
            "{base}/cgi-bin/token?grant_type=client_credential&appid={APP}&secret=nope"
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(classic["errcode"], 40001);
}

#[tokio::test]
async fn the_window_and_quota_follow_the_users_actions() {
    let (fake, base, client) = fake().await;
    let token = stable(&client, &base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(send_text(&client, &base, &token, "o_unknown").await, 40003);
    fake.user_acts(APP, "o_enter", UserAction::EnterSession);
    assert_eq!(send_text(&client, &base, &token, "o_enter").await, 0);
    assert_eq!(send_text(&client, &base, &token, "o_enter").await, 0);
    assert_eq!(send_text(&client, &base, &token, "o_enter").await, 45047);
    fake.user_acts(APP, "o_msg", UserAction::Message);
    for _ in 0..5 {
        assert_eq!(send_text(&client, &base, &token, "o_msg").await, 0);
    }
    assert_eq!(send_text(&client, &base, &token, "o_msg").await, 45047);
    fake.grant(APP, "o_silent", "tpl");
    assert_eq!(
        send_text(&client, &base, &token, "o_silent").await,
        45015,
        "no window"
    );
    assert_eq!(fake.sent().iter().filter(|s| s.api == "custom").count(), 7);
    let bad = json!({"touser": "o_msg", "msgtype": "text"});
    let answer = post(
        &client,
        format!("{base}/cgi-bin/message/custom/send?access_token={token}"),
        bad,
    )
    .await;
    assert_eq!(answer["errcode"], 47001);
}

#[tokio::test]
async fn expired_tokens_and_injected_failures() {
    let (fake, base, client) = fake().await;
    fake.user_acts(APP, "o1", UserAction::Message);
    let token = stable(&client, &base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.expire_tokens(APP);
    assert_eq!(send_text(&client, &base, &token, "o1").await, 42001);
    let token = stable(&client, &base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for code in [-1, 45009, 45011] {
        fake.inject(Injection {
            path: "/cgi-bin/message/custom/send".into(),
            errcode: Some(code),
            http_status: None,
            delay: Duration::ZERO,
            times: 1,
        });
        assert_eq!(send_text(&client, &base, &token, "o1").await, code);
    }
    fake.inject(Injection {
        path: "/cgi-bin/message/custom/send".into(),
        errcode: None,
        http_status: Some(503),
        delay: Duration::ZERO,
        times: 1,
    });
    let status = client
        .post(format!(
            "{base}/cgi-bin/message/custom/send?access_token={token}"
        ))
        .json(&json!({"touser": "o1", "msgtype": "text", "text": {"content": "x"}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 503);
    assert_eq!(
        send_text(&client, &base, &token, "o1").await,
        0,
        "injections are used up"
    );
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn subscribe_messages_need_a_grant_each() {
    let (fake, base, client) = fake().await;
    let token = stable(&client, &base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{base}/cgi-bin/message/subscribe/send?access_token={token}");
    let body =
        json!({"touser": "o1", "template_id": "tpl", "data": {"thing1": {"value": "Room ready"}}});
    assert_eq!(
        post(&client, url.clone(), body.clone()).await["errcode"],
        40003
    );
    fake.grant(APP, "o1", "tpl");
    assert_eq!(post(&client, url.clone(), body.clone()).await["errcode"], 0);
    assert_eq!(post(&client, url.clone(), body).await["errcode"], 43101);
    assert_eq!(
        post(&client, url, json!({"touser": "o1", "template_id": "tpl"})).await["errcode"],
        47003
    );
}

#[tokio::test]
async fn media_goes_up_and_comes_back_and_unknown_ids_are_json_errors() {
    let (_, base, client) = fake().await;
    let token = stable(&client, &base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = reqwest::multipart::Part::bytes(vec![0x89, b'P', b'N', b'G'])
        .mime_str("image/png")
        .unwrap()
        .file_name("a.png");
    let uploaded: Value = client
        .post(format!(
            "{base}/cgi-bin/media/upload?access_token={token}&type=image"
        ))
        .multipart(reqwest::multipart::Form::new().part("media", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media_id = uploaded["media_id"].as_str().unwrap();
    let got = client
        .get(format!(
            "{base}/cgi-bin/media/get?access_token={token}&media_id={media_id}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(
        got.bytes().await.unwrap().as_ref(),
        &[0x89, b'P', b'N', b'G']
    );
    let missing: Value = client
        .get(format!(
            "{base}/cgi-bin/media/get?access_token={token}&media_id=nope"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing["errcode"], 40007);
}

#[tokio::test]
async fn uploads_take_images_up_to_2_mb_and_are_counted() {
    let (fake, base, client) = fake().await;
    let token = stable(&client, &base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let upload = |bytes: Vec<u8>, mime: &'static str| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let part = reqwest::multipart::Part::bytes(bytes)
                .mime_str(mime)
                .unwrap()
                .file_name("a");
            client
                .post(format!(
                    "{base}/cgi-bin/media/upload?access_token={token}&type=image"
                ))
                .multipart(reqwest::multipart::Form::new().part("media", part))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        upload(b"<html>".to_vec(), "text/html").await["errcode"],
        40005
    );
    assert_eq!(
        upload(vec![0xFF; 2 * 1024 * 1024 + 1], "image/jpeg").await["errcode"],
        40006
    );
    assert_eq!(fake.uploads(), 0);
    let uploaded = upload(vec![0xFF, 0xD8, 0xFF], "image/jpeg").await;
    assert_eq!(uploaded["type"], "image");
    let media_id = uploaded["media_id"].as_str().unwrap();
    assert_eq!(fake.uploads(), 1);
    assert_eq!(
        fake.media(media_id),
        Some(("image/jpeg".to_owned(), vec![0xFF, 0xD8, 0xFF]))
    );
    fake.expire_media();
    assert_eq!(fake.media(media_id), None);
}

#[tokio::test]
async fn the_control_api_drives_the_user_and_shows_what_they_received() {
    let (_, base, client) = fake().await;
    let token = stable(&client, &base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let control = |path: &str| format!("{base}/_fake/{path}");
    assert_eq!(send_text(&client, &base, &token, "o_sim").await, 40003);
    let acted = post(
        &client,
        control("users/act"),
        json!({"appid": APP, "openid": "o_sim", "action": "message"}),
    )
    .await;
    assert_eq!(acted["ok"], true);
    assert_eq!(send_text(&client, &base, &token, "o_sim").await, 0);
    let refused = client
        .post(control("users/act"))
        .json(&json!({"appid": APP, "openid": "o_sim", "action": "dance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    post(
        &client,
        control("users/grant"),
        json!({"appid": APP, "openid": "o_sim", "template_id": "tpl"}),
    )
    .await;
    let subscribe =
        json!({"touser": "o_sim", "template_id": "tpl", "data": {"thing1": {"value": "Ready"}}});
    let url = format!("{base}/cgi-bin/message/subscribe/send?access_token={token}");
    assert_eq!(post(&client, url, subscribe).await["errcode"], 0);

    post(
        &client,
        control("users/close-window"),
        json!({"appid": APP, "openid": "o_sim"}),
    )
    .await;
    assert_eq!(
        send_text(&client, &base, &token, "o_sim").await,
        45015,
        "the window ran out"
    );

    let sent: Value = client
        .get(control("sent?touser=o_sim"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = sent["sent"].as_array().unwrap();
    let apis: Vec<&str> = sent.iter().map(|s| s["api"].as_str().unwrap()).collect();
    assert_eq!(apis, ["custom", "subscribe"]);
    assert_eq!(sent[0]["body"]["text"]["content"], "hi");
    assert_eq!(sent[1]["index"], 1);
    let others: Value = client
        .get(control("sent?touser=o_other"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(others["sent"], json!([]));

    let image = b"\x89PNG\r\n\x1a\n-an-image".to_vec();
    let added: Value = client
        .post(control("media"))
        .header("content-type", "image/png")
        .body(image.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media_id = added["media_id"].as_str().unwrap();
    let fetched = client
        .get(format!(
            "{base}/cgi-bin/media/get?access_token={token}&media_id={media_id}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), image);
    let by_pic_url = client
        .get(format!("{base}{}", added["pic_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_pic_url.bytes().await.unwrap().to_vec(), image);
}
