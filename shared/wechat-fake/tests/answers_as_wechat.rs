//! The fake answers as the WeChat docs say (protocol notes §3–§5), error codes included.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use serde_json::{json, Value};
use std::time::Duration;
use wechat_fake::{EntryPolicy, Fake, Injection, UserAction};

mod common;
use common::{fake, post, APP, SECRET};

async fn stable(client: &reqwest::Client, base: &str, force: bool) -> Value {
    let body = json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET, "force_refresh": force});
    post(client, format!("{base}/cgi-bin/stable_token"), body).await
}

/// A valid access token (no forced refresh).
async fn access_token(client: &reqwest::Client, base: &str) -> String {
    stable(client, base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
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
    let token = access_token(&client, &base).await;
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
    let token = access_token(&client, &base).await;
    fake.expire_tokens(APP);
    assert_eq!(send_text(&client, &base, &token, "o1").await, 42001);
    let token = access_token(&client, &base).await;
    for code in [-1, 45009, 45011] {
        fake.inject(Injection {
            path: "/cgi-bin/message/custom/send".into(),
            errcode: Some(code),
            times: 1,
            ..Default::default()
        });
        assert_eq!(send_text(&client, &base, &token, "o1").await, code);
    }
    fake.inject(Injection {
        path: "/cgi-bin/message/custom/send".into(),
        http_status: Some(503),
        times: 1,
        ..Default::default()
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
async fn a_lost_answer_is_a_send_carried_out_whose_answer_breaks_off() {
    let (fake, base, client) = fake().await;
    fake.user_acts(APP, "o1", UserAction::Message);
    let token = access_token(&client, &base).await;
    fake.inject(Injection {
        path: "/cgi-bin/message/custom/send".into(),
        times: 1,
        lose_answer: true,
        ..Default::default()
    });
    let answer = client
        .post(format!(
            "{base}/cgi-bin/message/custom/send?access_token={token}"
        ))
        .json(&json!({"touser": "o1", "msgtype": "text", "text": {"content": "x"}}))
        .send()
        .await;
    let whole = match answer {
        Ok(answer) => answer.bytes().await.is_ok(),
        Err(error) => {
            assert!(!error.is_connect(), "the request went out: {error}");
            false
        }
    };
    assert!(!whole, "the answer breaks off");
    assert_eq!(fake.sent().len(), 1, "the user has it");
    assert_eq!(send_text(&client, &base, &token, "o1").await, 0);
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test]
async fn subscribe_messages_need_a_grant_each() {
    let (fake, base, client) = fake().await;
    let token = access_token(&client, &base).await;
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
    let token = access_token(&client, &base).await;
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
    let token = access_token(&client, &base).await;
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
    let token = access_token(&client, &base).await;
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

    // Three days pass: the media is gone (40007), and so is the token (42001).
    let three_days = 3 * 24 * 3600;
    post(
        &client,
        control("time-passes"),
        json!({"secs": three_days - 60}),
    )
    .await;
    let stale = send_text(&client, &base, &token, "o_sim").await;
    assert_eq!(stale, 42001, "the token ran out");
    let fresh = access_token(&client, &base).await;
    let media_get = format!("{base}/cgi-bin/media/get?access_token={fresh}&media_id={media_id}");
    let kept = client.get(&media_get).send().await.unwrap();
    assert_eq!(kept.bytes().await.unwrap().to_vec(), image, "not yet gone");
    post(&client, control("time-passes"), json!({"secs": 60})).await;
    let gone: Value = client
        .get(&media_get)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone["errcode"], 40007);
}

// ---------------------------------------------------------------------------------------
// Each rule against the documented answer, with the fake's clock moved where time matters.

const HOUR: Duration = Duration::from_secs(3600);

async fn token(client: &reqwest::Client, base: &str) -> String {
    stable(client, base, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(client: &reqwest::Client, base: &str, token: &str, body: Value) -> i64 {
    post(
        client,
        format!("{base}/cgi-bin/message/custom/send?access_token={token}"),
        body,
    )
    .await["errcode"]
        .as_i64()
        .unwrap()
}

/// Sends text until WeChat refuses; returns how many were accepted and the refusal.
async fn sends_until_refused(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    openid: &str,
) -> (u32, i64) {
    for accepted in 0..10 {
        let code = send_text(client, base, token, openid).await;
        if code != 0 {
            return (accepted, code);
        }
    }
    panic!("more than 10 sends accepted");
}

async fn typing(client: &reqwest::Client, base: &str, token: &str, command: &str) -> i64 {
    post(
        client,
        format!("{base}/cgi-bin/message/custom/business/typing?access_token={token}"),
        json!({"touser": "o1", "command": command}),
    )
    .await["errcode"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn outside_the_window_sends_answer_45015() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    fake.grant(APP, "o_never_wrote", "tpl");
    assert_eq!(
        send_text(&client, &base, &token, "o_never_wrote").await,
        45015,
        "a known user who never acted has no window"
    );

    fake.user_acts(APP, "o1", UserAction::Message);
    fake.advance(48 * HOUR - Duration::from_secs(10));
    let token = self::token(&client, &base).await;
    assert_eq!(send_text(&client, &base, &token, "o1").await, 0, "47:59:50");
    fake.advance(Duration::from_secs(10));
    assert_eq!(
        send_text(&client, &base, &token, "o1").await,
        45015,
        "48 hours after the message"
    );
    let token = self::token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::Message);
    fake.close_window(APP, "o1");
    assert_eq!(send_text(&client, &base, &token, "o1").await, 45015);
    assert_eq!(fake.sent().len(), 1, "refused sends are not recorded");
}

#[tokio::test]
async fn a_message_allows_5_sends_then_45047() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::Message);
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o1").await,
        (5, 45047)
    );
    fake.advance(47 * HOUR);
    let token = self::token(&client, &base).await;
    assert_eq!(
        send_text(&client, &base, &token, "o1").await,
        45047,
        "the count does not come back with time"
    );
}

#[tokio::test]
async fn a_new_message_resets_the_count_to_5_without_adding_what_was_left() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::Message);
    for _ in 0..3 {
        assert_eq!(send_text(&client, &base, &token, "o1").await, 0);
    }
    fake.advance(40 * HOUR);
    let token = self::token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::Message);
    // 5, not 2 (kept) and not 7 (accumulated).
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o1").await,
        (5, 45047)
    );

    fake.user_acts(APP, "o2", UserAction::Message);
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o2").await,
        (5, 45047)
    );
    fake.advance(HOUR);
    fake.user_acts(APP, "o2", UserAction::Message);
    fake.advance(47 * HOUR + Duration::from_secs(59 * 60));
    let token = self::token(&client, &base).await;
    assert_eq!(
        send_text(&client, &base, &token, "o2").await,
        0,
        "a used-up quota comes back, for 48 hours from the new message"
    );
}

#[tokio::test]
async fn entering_the_session_allows_2_sends_within_1_minute() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::EnterSession);
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o1").await,
        (2, 45047)
    );

    fake.user_acts(APP, "o2", UserAction::EnterSession);
    fake.advance(Duration::from_secs(55));
    assert_eq!(send_text(&client, &base, &token, "o2").await, 0);
    fake.advance(Duration::from_secs(5));
    assert_eq!(
        send_text(&client, &base, &token, "o2").await,
        45015,
        "one minute after entering"
    );
    fake.user_acts(APP, "o2", UserAction::EnterSession);
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o2").await,
        (2, 45047),
        "a new entry opens 2 new sends"
    );
    fake.user_acts(APP, "o2", UserAction::Message);
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o2").await,
        (5, 45047),
        "a message after an entry opens 5"
    );
}

/// What an entry does to a window a message opened, one send of five spent; returns the
/// sends accepted right after the entry and the refusal, and whether a send is accepted
/// two minutes later in a fresh window of the same shape.
async fn entry_after_message(policy: EntryPolicy) -> ((u32, i64), i64) {
    let (fake, base, client) = fake().await;
    let fake = fake.with_entry_policy(policy);
    assert_eq!(fake.entry_policy(), policy);
    let token = token(&client, &base).await;
    for openid in ["o1", "o2"] {
        fake.user_acts(APP, openid, UserAction::Message);
        assert_eq!(send_text(&client, &base, &token, openid).await, 0);
        fake.user_acts(APP, openid, UserAction::EnterSession);
    }
    let now = sends_until_refused(&client, &base, &token, "o1").await;
    fake.advance(Duration::from_secs(120));
    (now, send_text(&client, &base, &token, "o2").await)
}

#[tokio::test]
async fn an_entry_keeps_an_open_message_window_by_default_or_replaces_it_when_told() {
    assert_eq!(
        entry_after_message(EntryPolicy::KeepsOpenWindow).await,
        ((4, 45047), 0),
        "keep: the 4 sends left stay, for the 48 hours"
    );
    assert_eq!(
        entry_after_message(EntryPolicy::Replaces).await,
        ((2, 45047), 45015),
        "replace: 2 sends, for 1 minute"
    );
    assert_eq!(Fake::default().entry_policy(), EntryPolicy::KeepsOpenWindow);
}

#[tokio::test]
async fn under_either_policy_an_entry_opens_2_sends_when_no_window_is_usable() {
    for policy in [EntryPolicy::KeepsOpenWindow, EntryPolicy::Replaces] {
        let (fake, base, client) = fake().await;
        fake.set_entry_policy(policy);
        let token = token(&client, &base).await;
        fake.user_acts(APP, "o1", UserAction::Message);
        assert_eq!(
            sends_until_refused(&client, &base, &token, "o1").await,
            (5, 45047)
        );
        fake.user_acts(APP, "o1", UserAction::EnterSession);
        assert_eq!(
            sends_until_refused(&client, &base, &token, "o1").await,
            (2, 45047),
            "{policy:?}: a spent window"
        );
        fake.user_acts(APP, "o2", UserAction::Message);
        fake.advance(48 * HOUR);
        let token = self::token(&client, &base).await;
        fake.user_acts(APP, "o2", UserAction::EnterSession);
        assert_eq!(
            sends_until_refused(&client, &base, &token, "o2").await,
            (2, 45047),
            "{policy:?}: a window run out"
        );
    }
}

#[tokio::test]
async fn the_entry_policy_is_set_over_the_control_api_too() {
    let (fake, base, client) = fake().await;
    let set = |policy: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .post(format!("{base}/_fake/entry-policy"))
                .json(&json!({ "policy": policy }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(set("replace").await, 200);
    assert_eq!(fake.entry_policy(), EntryPolicy::Replaces);
    assert_eq!(set("shrink").await, 400);
    assert_eq!(fake.entry_policy(), EntryPolicy::Replaces);
    assert_eq!(set("keep").await, 200);
    assert_eq!(fake.entry_policy(), EntryPolicy::KeepsOpenWindow);
}

#[tokio::test]
async fn subscribe_sends_need_an_unspent_grant_of_that_template() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    let url = format!("{base}/cgi-bin/message/subscribe/send?access_token={token}");
    let body = |template: &str| json!({"touser": "o1", "template_id": template, "data": {"thing1": {"value": "Ready"}}});
    fake.user_acts(APP, "o1", UserAction::Message);
    assert_eq!(
        post(&client, url.clone(), body("tpl")).await["errcode"],
        43101,
        "an open window is no grant"
    );
    fake.grant(APP, "o1", "tpl");
    fake.grant(APP, "o1", "tpl");
    fake.grant(APP, "o1", "tpl-other");
    assert_eq!(post(&client, url.clone(), body("tpl")).await["errcode"], 0);
    assert_eq!(
        post(&client, url.clone(), body("tpl")).await["errcode"],
        0,
        "two acceptances, two sends"
    );
    assert_eq!(
        post(&client, url.clone(), body("tpl")).await["errcode"],
        43101,
        "each grant is spent once"
    );
    fake.advance(365 * 24 * HOUR);
    let token = self::token(&client, &base).await;
    let url = format!("{base}/cgi-bin/message/subscribe/send?access_token={token}");
    assert_eq!(
        post(&client, url.clone(), body("tpl-other")).await["errcode"],
        0,
        "a one-time grant does not expire"
    );
    let subscribes = fake.sent().iter().filter(|s| s.api == "subscribe").count();
    assert_eq!(subscribes, 3);
    assert_eq!(
        post(&client, url, json!({"touser": "o1", "data": {}})).await["errcode"],
        40037
    );
}

#[tokio::test]
async fn bad_tokens_answer_41001_40001_and_42001() {
    let (fake, base, client) = fake().await;
    fake.user_acts(APP, "o1", UserAction::Message);
    let body = json!({"touser": "o1", "msgtype": "text", "text": {"content": "hi"}});
    let missing = post(
        &client,
        format!("{base}/cgi-bin/message/custom/send"),
        body.clone(),
    )
    .await;
    assert_eq!(missing["errcode"], 41001);
    assert_eq!(send_text(&client, &base, "not-a-token", "o1").await, 40001);

    let first = token(&client, &base).await;
    fake.advance(Duration::from_secs(7190));
    assert_eq!(send_text(&client, &base, &first, "o1").await, 0);
    fake.advance(Duration::from_secs(10));
    assert_eq!(
        send_text(&client, &base, &first, "o1").await,
        42001,
        "7200 s after it was issued"
    );
    let second = token(&client, &base).await;
    assert_ne!(second, first);
    fake.expire_tokens(APP);
    assert_eq!(send_text(&client, &base, &second, "o1").await, 42001);
}

#[tokio::test]
async fn a_stable_token_is_renewed_in_its_last_5_minutes_and_the_old_one_works_to_its_end() {
    let (fake, base, client) = fake().await;
    fake.user_acts(APP, "o1", UserAction::Message);
    let first = stable(&client, &base, false).await;
    let token = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(first["expires_in"], 7200);
    fake.advance(Duration::from_secs(7200 - 310));
    let same = stable(&client, &base, false).await;
    assert_eq!(same["access_token"], token.as_str());
    let left = same["expires_in"].as_i64().unwrap();
    assert!((300..=310).contains(&left), "{left}");
    fake.advance(Duration::from_secs(11));
    let renewed = stable(&client, &base, false).await;
    assert_ne!(renewed["access_token"], token.as_str());
    assert_eq!(renewed["expires_in"], 7200);
    assert_eq!(
        send_text(&client, &base, &token, "o1").await,
        0,
        "the overlap"
    );
    fake.advance(Duration::from_secs(285));
    assert_eq!(send_text(&client, &base, &token, "o1").await, 0);
    fake.advance(Duration::from_secs(15));
    assert_eq!(
        send_text(&client, &base, &token, "o1").await,
        42001,
        "its own 7200 s are over"
    );
}

/// Moves the fake's clock (at its start: the system clock) to one second past the next
/// midnight in China Standard Time, so that a test of daily quotas stays inside one day.
fn to_start_of_next_quota_day(fake: &Fake) {
    const DAY_MS: u128 = 86_400_000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let into_day = (now_ms + 8 * 3_600_000) % DAY_MS;
    fake.advance(Duration::from_millis((DAY_MS - into_day + 1000) as u64));
}

#[tokio::test]
async fn force_refresh_is_30_s_apart_and_20_a_day() {
    let (fake, base, client) = fake().await;
    to_start_of_next_quota_day(&fake);
    let mut current = token(&client, &base).await;
    for n in 0..20 {
        let forced = stable(&client, &base, true).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(forced, current, "forced refresh {n}");
        current = forced;
        assert_eq!(
            stable(&client, &base, true).await["access_token"],
            current.as_str(),
            "refresh {n}: not again within 30 s"
        );
        fake.advance(Duration::from_secs(30));
    }
    assert_eq!(
        stable(&client, &base, true).await["access_token"],
        current.as_str(),
        "the 21st of the day is no refresh"
    );
    fake.add_app("wx0000000000000002", "other");
    let other = json!({"grant_type": "client_credential", "appid": "wx0000000000000002",
                       "secret": "other", "force_refresh": true});
    let first = post(
        &client,
        format!("{base}/cgi-bin/stable_token"),
        other.clone(),
    )
    .await;
    let second = post(&client, format!("{base}/cgi-bin/stable_token"), other).await;
    assert_eq!(
        first["access_token"], second["access_token"],
        "per app: another app's first forced refresh counts from itself"
    );
    fake.advance(24 * HOUR);
    assert_ne!(
        stable(&client, &base, true).await["access_token"],
        current.as_str(),
        "a new day"
    );
}

#[tokio::test]
async fn a_classic_token_replaced_works_5_more_minutes_then_is_not_latest_and_2000_a_day() {
    let (fake, base, client) = fake().await;
    fake.user_acts(APP, "o1", UserAction::Message);
    to_start_of_next_quota_day(&fake);
    let classic = || {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!(
                    "{base}/cgi-bin/token?grant_type=client_credential&appid={APP}&secret={SECRET}"
                ))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let first = classic().await["access_token"].as_str().unwrap().to_owned();
    let stable_token = token(&client, &base).await;
    let second = classic().await["access_token"].as_str().unwrap().to_owned();
    fake.advance(Duration::from_secs(290));
    assert_eq!(send_text(&client, &base, &first, "o1").await, 0);
    fake.advance(Duration::from_secs(10));
    assert_eq!(send_text(&client, &base, &first, "o1").await, 40001);
    assert_eq!(send_text(&client, &base, &second, "o1").await, 0);
    assert_eq!(
        send_text(&client, &base, &stable_token, "o1").await,
        0,
        "classic tokens leave the stable one alone"
    );
    let fetches = fake.token_fetches(APP);
    for _ in 2..2000 {
        assert!(classic().await["access_token"].is_string());
    }
    assert_eq!(classic().await["errcode"], 45009);
    assert_eq!(
        fake.token_fetches(APP),
        fetches + 1998,
        "refusals are not fetches"
    );
    assert!(
        stable(&client, &base, false).await["access_token"].is_string(),
        "the stable API has its own quota"
    );
    fake.advance(24 * HOUR);
    assert!(classic().await["access_token"].is_string());
}

#[tokio::test]
async fn media_ids_must_be_live_for_image_and_card_sends() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::Message);
    let image = |id: &str| json!({"touser": "o1", "msgtype": "image", "image": {"media_id": id}});
    let card = |id: &str| {
        json!({"touser": "o1", "msgtype": "miniprogrampage",
               "miniprogrampage": {"title": "T", "pagepath": "pages/a", "thumb_media_id": id}})
    };
    assert_eq!(send(&client, &base, &token, image("nope")).await, 40007);
    assert_eq!(send(&client, &base, &token, card("nope")).await, 40007);
    let media_id = fake.add_media("image/png", vec![1, 2, 3]);
    assert_eq!(send(&client, &base, &token, image(&media_id)).await, 0);
    assert_eq!(send(&client, &base, &token, card(&media_id)).await, 0);
    fake.advance(72 * HOUR);
    let token = self::token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::Message);
    assert_eq!(
        send(&client, &base, &token, image(&media_id)).await,
        40007,
        "3 days later"
    );
    assert_eq!(fake.media(&media_id), None);
    assert_eq!(
        fake.sent().len(),
        2,
        "a refused send spends nothing and is not recorded"
    );
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o1").await,
        (5, 45047)
    );
}

#[tokio::test]
async fn openids_are_per_app_and_unknown_ones_answer_40003() {
    let (fake, base, client) = fake().await;
    fake.add_app("wx0000000000000002", "other");
    fake.user_acts("wx0000000000000002", "o_elsewhere", UserAction::Message);
    let token = token(&client, &base).await;
    assert_eq!(
        send_text(&client, &base, &token, "o_elsewhere").await,
        40003
    );
    assert_eq!(send_text(&client, &base, &token, "").await, 40003);
    let subscribe = json!({"touser": "o_elsewhere", "template_id": "tpl", "data": {}});
    let url = format!("{base}/cgi-bin/message/subscribe/send?access_token={token}");
    assert_eq!(post(&client, url, subscribe).await["errcode"], 40003);
    fake.user_acts(APP, "o_elsewhere", UserAction::Message);
    assert_eq!(send_text(&client, &base, &token, "o_elsewhere").await, 0);
}

#[tokio::test]
async fn typing_needs_the_window_a_recent_exchange_and_no_typing_already() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::EnterSession);
    assert_eq!(
        typing(&client, &base, &token, "Typing").await,
        45080,
        "entering is no message exchange"
    );
    fake.user_acts(APP, "o1", UserAction::Message);
    assert_eq!(typing(&client, &base, &token, "Dance").await, 45072);
    assert_eq!(typing(&client, &base, &token, "Typing").await, 0);
    assert_eq!(typing(&client, &base, &token, "Typing").await, 45081);
    fake.advance(Duration::from_secs(15));
    assert_eq!(
        typing(&client, &base, &token, "Typing").await,
        0,
        "15 s later"
    );
    assert_eq!(typing(&client, &base, &token, "CancelTyping").await, 0);
    assert_eq!(
        typing(&client, &base, &token, "Typing").await,
        0,
        "after a cancel"
    );
    assert_eq!(send_text(&client, &base, &token, "o1").await, 0);
    assert_eq!(
        typing(&client, &base, &token, "Typing").await,
        0,
        "a send ends the typing state"
    );
    fake.advance(Duration::from_secs(30));
    assert_eq!(
        typing(&client, &base, &token, "Typing").await,
        45080,
        "30 s after the last exchange"
    );
    assert_eq!(send_text(&client, &base, &token, "o1").await, 0);
    fake.close_window(APP, "o1");
    assert_eq!(typing(&client, &base, &token, "Typing").await, 45015);
    let apis = fake.sent().iter().map(|s| s.api).collect::<Vec<_>>();
    assert_eq!(
        apis,
        ["typing", "typing", "typing", "typing", "custom", "typing", "custom"]
    );
}

#[tokio::test]
async fn typing_answers_45047_when_the_sends_are_spent() {
    let (fake, base, client) = fake().await;
    let token = token(&client, &base).await;
    fake.user_acts(APP, "o1", UserAction::Message);
    assert_eq!(
        sends_until_refused(&client, &base, &token, "o1").await,
        (5, 45047)
    );
    assert_eq!(typing(&client, &base, &token, "Typing").await, 45047);
    assert_eq!(
        typing(&client, &base, &token, "CancelTyping").await,
        0,
        "a cancel is always taken"
    );
}

#[tokio::test]
async fn injections_answer_on_every_path_before_the_rules_and_run_out() {
    let (fake, base, client) = fake().await;
    let inject = |path: &str, errcode: Option<i64>, http_status: Option<u16>, delay: Duration| {
        fake.inject(Injection {
            path: path.into(),
            errcode,
            http_status,
            delay,
            times: 1,
            ..Default::default()
        })
    };
    inject("/cgi-bin/stable_token", Some(-1), None, Duration::ZERO);
    assert_eq!(stable(&client, &base, false).await["errcode"], -1);
    assert_eq!(fake.token_fetches(APP), 0);
    let token = token(&client, &base).await;

    inject(
        "/cgi-bin/message/custom/send",
        Some(40014),
        None,
        Duration::ZERO,
    );
    assert_eq!(
        send_text(&client, &base, &token, "o_unknown").await,
        40014,
        "before the openid check"
    );
    assert_eq!(send_text(&client, &base, &token, "o_unknown").await, 40003);

    fake.user_acts(APP, "o1", UserAction::Message);
    inject(
        "/cgi-bin/message/custom/business/typing",
        Some(45011),
        None,
        Duration::ZERO,
    );
    assert_eq!(typing(&client, &base, &token, "Typing").await, 45011);
    assert_eq!(typing(&client, &base, &token, "Typing").await, 0);

    inject("/cgi-bin/media/get", None, Some(502), Duration::ZERO);
    let status = client
        .get(format!(
            "{base}/cgi-bin/media/get?access_token={token}&media_id=x"
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 502);

    inject(
        "/cgi-bin/message/subscribe/send",
        Some(45009),
        None,
        Duration::from_millis(300),
    );
    let started = std::time::Instant::now();
    let url = format!("{base}/cgi-bin/message/subscribe/send?access_token={token}");
    let body = json!({"touser": "o1", "template_id": "tpl", "data": {}});
    assert_eq!(
        post(&client, url.clone(), body.clone()).await["errcode"],
        45009
    );
    assert!(started.elapsed() >= Duration::from_millis(300), "the delay");
    assert_eq!(post(&client, url, body).await["errcode"], 43101);
}

#[tokio::test]
async fn failures_injected_through_the_control_api_come_in_order_then_end() {
    let (fake, base, client) = fake().await;
    fake.user_acts(APP, "o1", UserAction::Message);
    let token = access_token(&client, &base).await;
    let inject = |body: Value| {
        client
            .post(format!("{base}/_fake/inject"))
            .json(&body)
            .send()
    };
    let accepted =
        inject(json!({"path": "/cgi-bin/message/custom/send", "errcode": -1, "times": 2}))
            .await
            .unwrap();
    assert_eq!(accepted.status(), 200);
    for refused in [
        json!({"path": "/_fake/sent", "errcode": -1, "times": 1}),
        json!({"path": "/cgi-bin/message/custom/send", "errcode": -1, "times": 0}),
        json!({"path": "/cgi-bin/message/custom/send"}),
    ] {
        assert!(
            inject(refused.clone())
                .await
                .unwrap()
                .status()
                .is_client_error(),
            "{refused}"
        );
    }
    assert_eq!(send_text(&client, &base, &token, "o1").await, -1);
    assert_eq!(send_text(&client, &base, &token, "o1").await, -1);
    assert_eq!(send_text(&client, &base, &token, "o1").await, 0);
    assert_eq!(fake.sent().len(), 1);
}
