//! Customer-service sub-merchants (protocol notes §10): management with its errcodes, and
//! sends and typing into a sub-merchant's session, each session with its own window.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use serde_json::{json, Value};
use wechat_fake::{Fake, UserAction};

mod common;
use common::{fake, post, APP, SECRET};

struct Wechat {
    fake: Fake,
    base: String,
    client: reqwest::Client,
    token: String,
}

async fn wechat() -> Wechat {
    let (fake, base, client) = fake().await;
    let body = json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET});
    let answer = post(&client, format!("{base}/cgi-bin/stable_token"), body).await;
    let token = answer["access_token"].as_str().unwrap().to_owned();
    Wechat {
        fake,
        base,
        client,
        token,
    }
}

impl Wechat {
    async fn call(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/cgi-bin/{path}?access_token={}", self.base, self.token);
        post(&self.client, url, body).await
    }

    async fn errcode(&self, path: &str, body: Value) -> i64 {
        self.call(path, body).await["errcode"].as_i64().unwrap()
    }

    /// `GET /_fake/{path}` of the control API.
    async fn look(&self, path: &str) -> Value {
        let url = format!("{}/_fake/{path}", self.base);
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn icon(&self) -> String {
        self.fake
            .add_media("image/png", b"\x89PNG\r\n\x1a\n".to_vec())
    }

    async fn register(&self, account_name: &str, nickname: &str) -> Value {
        let body = json!({"account_name": account_name, "nickname": nickname, "icon_media_id": self.icon()});
        self.call("business/register", body).await
    }

    async fn send(&self, openid: &str, business_id: Option<Value>) -> i64 {
        let mut body = json!({"touser": openid, "msgtype": "text", "text": {"content": "hi"}});
        let path = match business_id {
            Some(id) => {
                body["businessid"] = id;
                "message/custom/business/send"
            }
            None => "message/custom/send",
        };
        self.errcode(path, body).await
    }
}

#[tokio::test]
async fn sub_merchants_are_registered_once_found_updated_and_listed_with_wechats_errcodes() {
    let w = wechat().await;
    let first = w.register("hotel_lotus_9", "HotelLotus").await;
    assert_eq!(
        (first["errcode"].as_i64(), first["business_id"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(w.register("sky_air_2", "莲花航空").await["business_id"], 2);
    assert_eq!(w.register("hotel_lotus_9", "Again").await["errcode"], 45070);
    assert_eq!(
        w.register("hotel_x", "Hot").await["errcode"],
        45078,
        "too short"
    );
    assert_eq!(
        w.register("hotel_x", "Hotel Lotus").await["errcode"],
        45078,
        "a space"
    );
    assert_eq!(w.register("short", "HotelLotus").await["errcode"], 40097);
    let no_icon = json!({"account_name": "hotel_y", "nickname": "HotelY", "icon_media_id": "nope"});
    assert_eq!(w.errcode("business/register", no_icon).await, 40007);
    let text = w.fake.add_media("text/plain", b"hello".to_vec());
    let not_an_image =
        json!({"account_name": "hotel_y", "nickname": "HotelY", "icon_media_id": text});
    assert_eq!(w.errcode("business/register", not_an_image).await, 40004);

    let found = w
        .call("business/get", json!({"account_name": "hotel_lotus_9"}))
        .await;
    assert_eq!(found["business_info"]["business_id"], 1);
    assert_eq!(found["business_info"]["nickname"], "HotelLotus");
    assert_eq!(
        w.errcode("business/get", json!({"account_name": "nobody_here"}))
            .await,
        45071
    );
    assert_eq!(w.errcode("business/get", json!({})).await, 40097);

    let renamed = json!({"business_id": 1, "nickname": "LotusHotel", "icon_media_id": ""});
    assert_eq!(w.errcode("business/update", renamed).await, 0);
    let by_id = w.call("business/get", json!({"business_id": "1"})).await;
    assert_eq!(by_id["business_info"]["nickname"], "LotusHotel");
    let unknown = json!({"business_id": 9, "nickname": "LotusHotel"});
    assert_eq!(w.errcode("business/update", unknown).await, 45071);
    let bad_name = json!({"business_id": 1, "nickname": "L"});
    assert_eq!(w.errcode("business/update", bad_name).await, 45078);

    let page = w
        .call("business/list", json!({"offset": 1, "count": 100}))
        .await;
    assert_eq!(page["list"].as_array().unwrap().len(), 1);
    assert_eq!(page["list"][0]["account_name"], "sky_air_2");
    assert_eq!(
        w.errcode("business/list", json!({"offset": 0, "count": 201}))
            .await,
        40097
    );
    assert_eq!(w.fake.businesses(APP).len(), 2);
}

#[tokio::test]
async fn each_sub_merchant_session_has_its_own_window() {
    let w = wechat().await;
    w.register("hotel_lotus_9", "HotelLotus").await;
    w.register("sky_air_2", "SkyAir").await;
    w.fake.user_acts_in(APP, "o1", Some(1), UserAction::Message);
    for _ in 0..5 {
        assert_eq!(w.send("o1", Some(json!(1))).await, 0);
    }
    assert_eq!(
        w.send("o1", Some(json!(1))).await,
        45047,
        "the session's 5 are spent"
    );
    assert_eq!(
        w.send("o1", None).await,
        45015,
        "the main session never opened"
    );
    assert_eq!(
        w.send("o1", Some(json!("2"))).await,
        45015,
        "nor the airline's"
    );
    assert_eq!(
        w.send("o1", Some(json!(7))).await,
        45071,
        "no such sub-merchant"
    );
    assert_eq!(
        w.send("o1", Some(Value::Null)).await,
        45071,
        "the business send needs one"
    );
    w.fake.user_acts(APP, "o1", UserAction::Message);
    assert_eq!(w.send("o1", None).await, 0, "the main session's own window");

    let sent = w.fake.sent();
    assert_eq!(sent.iter().filter(|s| s.business_id == Some(1)).count(), 5);
    assert_eq!(sent.last().unwrap().business_id, None);

    // Typing in a session follows that session's window.
    let typing =
        |business: Value| json!({"touser": "o1", "command": "Typing", "businessid": business});
    assert_eq!(
        w.errcode("message/custom/business/typing", typing(json!(2)))
            .await,
        45015,
        "the airline's session is closed"
    );
    assert_eq!(
        w.errcode("message/custom/business/typing", typing(json!(9)))
            .await,
        45071
    );
    w.fake.close_window(APP, "o1");
    assert_eq!(w.send("o1", None).await, 45015, "every session runs out");
}

#[tokio::test]
async fn the_control_api_acts_in_a_session_and_shows_sends_by_session() {
    let w = wechat().await;
    w.register("hotel_lotus_9", "HotelLotus").await;
    let act = |business_id: Value| json!({"appid": APP, "openid": "o1", "action": "message", "business_id": business_id});
    let control = |path: &str, body: Value| {
        w.client
            .post(format!("{}/_fake/{path}", w.base))
            .json(&body)
            .send()
    };
    assert_eq!(
        control("users/act", act(json!(1))).await.unwrap().status(),
        200
    );
    assert_eq!(
        control("users/act", act(json!(5))).await.unwrap().status(),
        404
    );
    assert_eq!(w.send("o1", Some(json!(1))).await, 0);
    let sent = w.look(&format!("sent?appid={APP}&touser=o1")).await;
    assert_eq!(sent["sent"][0]["business_id"], 1);
    assert_eq!(sent["sent"][0]["business_nickname"], "HotelLotus");
    let listed = w.look(&format!("businesses?appid={APP}")).await;
    assert_eq!(listed["businesses"][0]["account_name"], "hotel_lotus_9");
}
