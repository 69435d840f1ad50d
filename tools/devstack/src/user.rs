//! A WeChat user, simulated: the pushes WeChat sends to the bridge's callback when the
//! user acts, and what the WeChat fake is told so that its reply window opens as WeChat's
//! would.

use serde_json::{json, Value};
use wxbridge_core::config::{BridgeConfig, Channels, PushFormat, Secret};
use wxbridge_wechat::encode::{seal, SignedPush};
use wxbridge_wechat::endpoint::PushEndpoint;
use wxbridge_wechat::event::{CallbackEvent, EventKind, SubscribeDecision};

/// What the user does.
#[derive(Debug, Clone, PartialEq)]
pub enum UserInput {
    Text(String),
    Image {
        pic_url: String,
        media_id: String,
    },
    /// A mini-program card (`miniprogrampage`) shared into the chat.
    Card {
        title: String,
        page_path: String,
        thumb_url: String,
        thumb_media_id: String,
    },
    /// Tapping the contact button: entering the session with its `session-from`.
    Enter {
        session_from: String,
    },
    /// Answering a subscribe pop-up.
    Subscribe {
        template_id: String,
        accept: bool,
    },
}

/// What WeChat knows once the user acted, told to the fake (`/_fake/users/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeAction {
    /// `message` or `enter_session`: the reply window opens.
    Act(&'static str),
    /// A subscribe pop-up accepted: one subscribe message for the template.
    Grant(String),
}

impl UserInput {
    pub fn fake_action(&self) -> Option<FakeAction> {
        match self {
            UserInput::Text(_) | UserInput::Image { .. } | UserInput::Card { .. } => {
                Some(FakeAction::Act("message"))
            }
            UserInput::Enter { .. } => Some(FakeAction::Act("enter_session")),
            UserInput::Subscribe {
                template_id,
                accept: true,
            } => Some(FakeAction::Grant(template_id.clone())),
            UserInput::Subscribe { accept: false, .. } => None,
        }
    }
}

/// A message id as WeChat writes them: a 64-bit number.
pub fn new_msg_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let number = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")) >> 2;
    number.to_string()
}

/// The push event for what the user did.
pub fn event(
    channel: &PushEndpoint,
    openid: &str,
    input: &UserInput,
    now_secs: i64,
) -> CallbackEvent {
    let msg_id = new_msg_id();
    let kind = match input.clone() {
        UserInput::Text(content) => EventKind::Text { msg_id, content },
        UserInput::Image { pic_url, media_id } => EventKind::Image {
            msg_id,
            pic_url,
            media_id,
        },
        UserInput::Card {
            title,
            page_path,
            thumb_url,
            thumb_media_id,
        } => EventKind::MiniProgramPage {
            msg_id,
            title,
            app_id: channel.app_id.clone(),
            page_path,
            thumb_url,
            thumb_media_id,
        },
        UserInput::Enter { session_from } => EventKind::UserEnterTempSession { session_from },
        UserInput::Subscribe {
            template_id,
            accept,
        } => EventKind::SubscribePopup {
            entries: vec![SubscribeDecision {
                template_id,
                status: if accept { "accept" } else { "reject" }.to_owned(),
                popup_scene: Some(0),
            }],
        },
    };
    CallbackEvent {
        to_user_name: channel.original_id.clone(),
        from_user_name: openid.to_owned(),
        create_time: now_secs,
        business_id: None,
        kind,
    }
}

/// The push as WeChat sends it for `channel`: signed, encrypted in safe and compatible mode.
pub fn push(channel: &PushEndpoint, event: &CallbackEvent, now_secs: i64) -> SignedPush {
    let nonce = (u32::from_be_bytes(
        uuid::Uuid::new_v4().into_bytes()[..4]
            .try_into()
            .expect("4 bytes"),
    ) % 1_000_000_000)
        .to_string();
    seal(channel, event, now_secs, &nonce)
}

/// A `session-from` signed as the app signs it:
/// `partner=…[&uid=…&openid=…][&order=…]&ts=…&sig=…`. With `uid` it names the user's
/// `openid` too (the app has it from `code2Session`): only then does it bind the user.
pub fn signed_session_from(
    secret: &Secret,
    partner: &str,
    uid: Option<&str>,
    openid: &str,
    order: Option<&str>,
    now_secs: i64,
) -> String {
    let mut pairs = form_pairs(&[
        ("partner", Some(partner)),
        ("uid", uid),
        ("openid", uid.map(|_| openid)),
        ("order", order),
    ]);
    pairs.push_str(&format!("&ts={now_secs}"));
    wxbridge_core::model::session_from::sign(&pairs, secret)
}

fn form_pairs(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(name, value)| {
            value.map(|v| format!("{name}={}", wxbridge_wechat::encode::percent_encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The channel a user writes on: `wanted`, or else the first channel the bridge can answer
/// on (one with an `app_secret`), or else the first.
pub fn pick_channel(config: &BridgeConfig, wanted: Option<&str>) -> Result<PushEndpoint, String> {
    let channels = Channels::new(config);
    let id = match wanted {
        Some(id) => id.to_owned(),
        None => config
            .channels
            .iter()
            .find(|c| c.app_secret.is_some())
            .or(config.channels.first())
            .map(|c| c.id.clone())
            .ok_or("the configuration has no channel")?,
    };
    channels.get(&id).cloned().ok_or_else(|| {
        let known: Vec<&str> = config.channels.iter().map(|c| c.id.as_str()).collect();
        format!("no channel {id} (channels: {})", known.join(", "))
    })
}

/// A user on a running stack: pushes go to the callback URL, actions to the fake.
pub struct Simulator {
    pub client: reqwest::Client,
    /// `…/wechat`: the channel id is appended.
    pub callback_url: String,
    pub fake_url: String,
    pub channel: PushEndpoint,
    pub openid: String,
    /// The sub-merchant session the user is in (`None`: the mini program's own).
    pub business_id: Option<u64>,
}

/// The callback's answer to a push.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Simulator {
    /// Tells the fake, then pushes to the callback as WeChat does.
    pub async fn act(&self, input: &UserInput) -> Result<Answer, String> {
        let event = self.prepare(input).await?;
        self.deliver(&self.seal(&event)).await
    }

    /// Tells the fake what the user did (an action, a grant) and gives the push event for
    /// it, with a message id of its own: what [`Simulator::act`] pushes.
    pub async fn prepare(&self, input: &UserInput) -> Result<CallbackEvent, String> {
        let appid = &self.channel.app_id;
        match input.fake_action() {
            Some(FakeAction::Act(action)) => {
                let act = json!({"appid": appid, "openid": self.openid, "action": action,
                    "business_id": self.business_id});
                self.control("users/act", act).await?
            }
            Some(FakeAction::Grant(template_id)) => {
                self.control(
                    "users/grant",
                    json!({"appid": appid, "openid": self.openid, "template_id": template_id}),
                )
                .await?
            }
            None => Value::Null,
        };
        let now_secs = crate::now_ms() / 1000;
        let mut event = event(&self.channel, &self.openid, input, now_secs);
        event.business_id = self.business_id.map(|id| id.to_string());
        Ok(event)
    }

    /// `event` signed and sealed now, with a nonce of its own: WeChat signs each retry of
    /// a push afresh, around the same message (its `MsgId` and `CreateTime`).
    pub fn seal(&self, event: &CallbackEvent) -> SignedPush {
        push(&self.channel, event, crate::now_ms() / 1000)
    }

    /// Sends a sealed push to the callback, as WeChat does; the same push may be delivered
    /// again (WeChat's retry of a push the callback was slow to answer).
    pub async fn deliver(&self, push: &SignedPush) -> Result<Answer, String> {
        let url = format!(
            "{}/{}?{}",
            self.callback_url.trim_end_matches('/'),
            self.channel.name,
            push.query_string()
        );
        let content_type = match self.channel.format {
            PushFormat::Xml => "text/xml",
            PushFormat::Json => "application/json",
        };
        let response = self
            .client
            .post(url)
            .header("content-type", content_type)
            .body(push.body.clone())
            .send()
            .await
            .map_err(|e| format!("the callback did not answer: {e}"))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok(Answer { status, body })
    }

    /// Hands an image to the fake, as WeChat keeps what a user sends: its media id and URL.
    pub async fn upload_image(
        &self,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(String, String), String> {
        let answer: Value = self
            .client
            .post(format!("{}/_fake/media", self.fake_url))
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .map_err(|e| format!("the WeChat fake did not answer: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the WeChat fake's answer: {e}"))?;
        let media_id = answer["media_id"].as_str().ok_or("no media_id")?.to_owned();
        let pic_url = format!(
            "{}{}",
            self.fake_url,
            answer["pic_url"].as_str().unwrap_or_default()
        );
        Ok((media_id, pic_url))
    }

    /// The sub-merchant `name` names — its `business_id`, or its account name as registered
    /// at the fake.
    pub async fn business_id_of(&self, name: &str) -> Result<u64, String> {
        if let Ok(id) = name.parse() {
            return Ok(id);
        }
        let appid = self.channel.app_id.as_str();
        let answer = self.look("businesses", &[("appid", appid)]).await?;
        let businesses = answer["businesses"].as_array().cloned().unwrap_or_default();
        businesses
            .iter()
            .find(|b| b["account_name"] == name)
            .and_then(|b| b["business_id"].as_u64())
            .ok_or_else(|| format!("no sub-merchant {name} is registered at the WeChat fake"))
    }

    /// The reply window runs out at the fake (as if 48 hours passed).
    pub async fn close_window(&self) -> Result<(), String> {
        self.control(
            "users/close-window",
            json!({"appid": self.channel.app_id, "openid": self.openid}),
        )
        .await
        .map(|_| ())
    }

    /// The fake's clock moves on `secs`: windows, tokens and temporary media run out.
    pub async fn time_passes(&self, secs: u64) -> Result<(), String> {
        self.control("time-passes", json!({ "secs": secs }))
            .await
            .map(|_| ())
    }

    /// What the user received so far (CS messages, subscribe messages, typing), oldest first.
    pub async fn received(&self) -> Result<Vec<Value>, String> {
        let query = [
            ("appid", self.channel.app_id.as_str()),
            ("touser", self.openid.as_str()),
        ];
        let answer = self.look("sent", &query).await?;
        Ok(answer["sent"].as_array().cloned().unwrap_or_default())
    }

    /// `GET /_fake/{path}` of the control API.
    async fn look(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        self.client
            .get(format!("{}/_fake/{path}", self.fake_url))
            .query(query)
            .send()
            .await
            .map_err(|e| format!("the WeChat fake did not answer: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the WeChat fake's answer: {e}"))
    }

    async fn control(&self, path: &str, body: Value) -> Result<Value, String> {
        let response = self
            .client
            .post(format!("{}/_fake/{path}", self.fake_url))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("the WeChat fake did not answer: {e}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("the WeChat fake refused {path}: {answer}"));
        }
        Ok(answer)
    }
}

/// The session a received item came in: the mini program's own, or a sub-merchant's.
pub fn session_of_received(sent: &Value) -> String {
    match (
        sent["business_id"].as_u64(),
        sent["business_nickname"].as_str(),
    ) {
        (Some(id), Some(nickname)) => format!("{nickname}, sub-merchant {id}"),
        (Some(id), None) => format!("sub-merchant {id}"),
        (None, _) => "main".to_owned(),
    }
}

/// One received item as the user sees it in the chat.
pub fn describe_received(sent: &Value) -> String {
    let body = &sent["body"];
    match sent["api"].as_str() {
        Some("custom") => match body["msgtype"].as_str() {
            Some("text") => body["text"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Some("image") => format!(
                "[image] media {}",
                body["image"]["media_id"].as_str().unwrap_or("?")
            ),
            Some("link") => format!("[link] {}", body["link"]["title"].as_str().unwrap_or("?")),
            Some("miniprogrampage") => format!(
                "[card] {}",
                body["miniprogrampage"]["title"].as_str().unwrap_or("?")
            ),
            other => format!("[{}] {body}", other.unwrap_or("?")),
        },
        Some("subscribe") => {
            let fields: Vec<String> = body["data"]
                .as_object()
                .map(|data| {
                    data.iter()
                        .map(|(k, v)| format!("{k}: {}", v["value"].as_str().unwrap_or("?")))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "[subscribe message {}] {}",
                body["template_id"].as_str().unwrap_or("?"),
                fields.join(", ")
            )
        }
        Some("typing") => format!("[typing: {}]", body["command"].as_str().unwrap_or("?")),
        other => format!("[{}] {body}", other.unwrap_or("?")),
    }
}
