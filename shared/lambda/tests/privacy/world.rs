//! A whole bridge on memory adapters, driven the way WeChat, the partners and the clock
//! drive it, that records everything each partner receives: every webhook (from the memory
//! webhooks adapter) and every answer the API gives it.

use axum::body::to_bytes;
use lambda_http::{Body, Request};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use wxbridge_core::config::{BridgeConfig, Secret};
use wxbridge_core::model::{InboundMessage, SubMerchant};
use wxbridge_core::ports::store::SubMerchantStore;
use wxbridge_core::ports::wechat::Media;
use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_core::services::inbound::Inbound;
use wxbridge_core::services::media::MediaKeeper;
use wxbridge_core::services::partner::auth::{self, SignedRequest};
use wxbridge_core::services::partner::PartnerApi;
use wxbridge_core::services::push::Push;
use wxbridge_core::services::{idle, Bridge};
use wxbridge_lambda::api::{self, ApiState};
use wxbridge_testkit::{Memory, MemoryPorts, MemoryStore};
use wxbridge_wechat::event::{CallbackEvent, EventKind, SubscribeDecision, SubscribeSendResult};

pub const T0: i64 = 1_764_150_000_000;
pub const CHANNEL: &str = "mp";
pub const SESSION_FROM_SECRET: &str = "session-from-secret-1";
/// A PNG's first bytes: what WeChat holds for every image a user sends here.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-user-image";

/// A partner of the world: id, display name, signing secret, webhook URL.
#[derive(Debug, Clone, Copy)]
pub struct Partner {
    pub id: &'static str,
    pub name: &'static str,
    pub secret: &'static str,
    pub url: &'static str,
}

pub const PLATFORM: Partner = Partner {
    id: "platform",
    name: "Trip Service",
    secret: "platform-secret-0123",
    url: "http://platform/w",
};
pub const HOTEL: Partner = Partner {
    id: "hotel-9",
    name: "Hotel Lotus",
    secret: "hotel-secret-456789",
    url: "http://hotel/w",
};
pub const SHOP: Partner = Partner {
    id: "shop-3",
    name: "Shop Three",
    secret: "shop-secret-0123456",
    url: "http://shop/w",
};
pub const AIR: Partner = Partner {
    id: "air-2",
    name: "Sky Air",
    secret: "airline-secret-0000",
    url: "http://air/w",
};

/// The dialog modes the privacy rules are checked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The platform (default, binds), the hotel and the shop share the user's chat.
    Merged,
    /// The platform answers the mini program's own chat; the hotel and the airline each
    /// have a sub-merchant chat of their own.
    SubMerchant,
}

impl Mode {
    pub fn partners(self) -> [Partner; 3] {
        match self {
            Mode::Merged => [PLATFORM, HOTEL, SHOP],
            Mode::SubMerchant => [PLATFORM, HOTEL, AIR],
        }
    }

    fn config(self) -> BridgeConfig {
        let partners = match self {
            Mode::Merged => format!(
                r#"{platform},
                {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/w","signing_secret":"hotel-secret-456789",
                  "subscribe_templates":["tpl-hotel"],"welcome":[{{"type":"text","text":"Welcome to Hotel Lotus"}}],
                  "idle_close_after_secs":600,"handover_to":["platform","shop-3"],
                  "reply_fallback":{{"template_id":"tpl-hotel","field":"thing1","data":{{"name2":"{{partner}}"}}}}}},
                {{"id":"shop-3","display_name":"Shop Three","webhook_url":"http://shop/w","signing_secret":"shop-secret-0123456",
                  "subscribe_templates":["tpl-shop"],"handover_to":["platform","hotel-9"]}}"#,
                platform = PLATFORM_CONFIG
            ),
            Mode::SubMerchant => format!(
                r#"{platform},
                {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/w","signing_secret":"hotel-secret-456789",
                  "subscribe_templates":["tpl-hotel"],"welcome":[{{"type":"text","text":"Welcome to Hotel Lotus"}}],
                  "idle_close_after_secs":600,
                  "sub_merchant":{{"account_name":"hotel_lotus_9","nickname":"HotelLotus","avatar_url":"https://cdn/lotus.png"}}}},
                {{"id":"air-2","display_name":"Sky Air","webhook_url":"http://air/w","signing_secret":"airline-secret-0000",
                  "subscribe_templates":["tpl-air"],
                  "sub_merchant":{{"account_name":"sky_air_2","nickname":"SkyAir","avatar_url":"https://cdn/sky.png"}}}}"#,
                platform = PLATFORM_CONFIG
            ),
        };
        let mode = match self {
            Mode::Merged => "merged",
            Mode::SubMerchant => "sub_merchant",
        };
        BridgeConfig::from_json(&format!(
            r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json","app_secret":"s"}}],
            "partners":[{partners}],
            "dialog":{{"mode":"{mode}","default_partner":"platform"}},
            "session_from_secret":"{SESSION_FROM_SECRET}"}}"#
        ))
        .expect("the world's configuration")
    }
}

const PLATFORM_CONFIG: &str = r#"{"id":"platform","display_name":"Trip Service","webhook_url":"http://platform/w","signing_secret":"platform-secret-0123","can_bind":true,"subscribe_templates":["tpl-trip"]}"#;

/// The business id WeChat gave a partner's sub-merchant (sub-merchant mode).
pub fn business_id(partner: &str) -> Option<u64> {
    match partner {
        "hotel-9" => Some(1001),
        "air-2" => Some(1002),
        _ => None,
    }
}

/// Something a partner received.
#[derive(Debug, Clone)]
pub struct Received {
    pub partner: &'static str,
    /// The webhook's event type, or the route and status of an answer
    /// (`GET /v1/conversations/{conversation_id} 200`); `error` for any refusal.
    pub kind: String,
    /// The JSON body; `None` for an answer that is not JSON (an image's bytes).
    pub json: Option<Value>,
    /// The body as it went over the wire.
    pub bytes: Vec<u8>,
}

/// An API answer: status, JSON body (or `Null`), and the bytes.
pub type Answer = (u16, Value, Vec<u8>);

pub struct World {
    pub mode: Mode,
    pub memory: Memory,
    clock: Arc<AtomicI64>,
    inbound: Inbound<MemoryPorts>,
    dispatch: Dispatch<MemoryPorts>,
    push: Push<MemoryPorts>,
    keeper: MediaKeeper<MemoryPorts>,
    lifecycle: Bridge<MemoryPorts>,
    router: axum::Router,
    nonce: AtomicU64,
    seen_posts: usize,
    done_outbound: usize,
    done_pushes: usize,
    done_copies: usize,
    dedup_done: HashSet<String>,
    /// Everything received so far, in order.
    pub received: Vec<Received>,
    /// A sequence number for pushes' message ids and other unique values.
    pub n: i64,
}

impl World {
    pub async fn new(mode: Mode) -> Self {
        let memory = Memory::default();
        let clock = Arc::new(AtomicI64::new(T0));
        let config = mode.config();
        let bridge = || {
            let clock = Arc::clone(&clock);
            Bridge::<MemoryPorts>::new(
                config.clone(),
                memory.store.clone(),
                memory.store.clone(),
                memory.wechat.clone(),
                memory.webhooks.clone(),
            )
            .with_clock(move || clock.load(Ordering::SeqCst))
        };
        if mode == Mode::SubMerchant {
            for partner in [HOTEL, AIR] {
                memory
                    .store
                    .put_sub_merchant(&SubMerchant {
                        channel: CHANNEL.into(),
                        partner: partner.id.into(),
                        business_id: business_id(partner.id).unwrap(),
                        account_name: partner.id.replace('-', "_"),
                        nickname: partner.name.replace(' ', ""),
                        avatar_sha256: String::new(),
                        updated_at_ms: T0,
                    })
                    .await
                    .unwrap();
            }
        }
        let inbound =
            Inbound::new(bridge(), memory.outbound.clone()).with_media_queue(memory.media.clone());
        let dispatch = Dispatch::new(bridge(), memory.images(), memory.outbound.clone())
            .with_media_queue(memory.media.clone())
            .with_push_queue(memory.pushes.clone());
        let push = Push::new(bridge(), memory.pushes.clone());
        let keeper = MediaKeeper::new(bridge(), memory.archive.clone());
        let api = PartnerApi::new(bridge(), memory.outbound.clone())
            .with_push_queue(memory.pushes.clone())
            .with_archive(memory.archive.clone());
        let router = api::router(Arc::new(ApiState::<MemoryPorts, MemoryStore> {
            api,
            nonces: MemoryStore::default(),
        }));
        Self {
            mode,
            lifecycle: bridge(),
            memory,
            clock,
            inbound,
            dispatch,
            push,
            keeper,
            router,
            nonce: AtomicU64::new(0),
            seen_posts: 0,
            done_outbound: 0,
            done_pushes: 0,
            done_copies: 0,
            dedup_done: HashSet::new(),
            received: Vec::new(),
            n: 0,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Time passes.
    pub fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    fn partner(&self, id: &str) -> Partner {
        self.mode
            .partners()
            .into_iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no partner {id} in {:?}", self.mode))
    }

    /// A push from `openid`, in the chat of `chat`'s sub-merchant (sub-merchant mode) or
    /// the mini program's own, handled by `inbound` and everything it leads to.
    pub async fn user_pushes(&mut self, openid: &str, chat: Option<&str>, kind: EventKind) {
        self.advance(1_000);
        self.n += 1;
        let now = self.now_ms();
        let event = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: openid.into(),
            create_time: now / 1000,
            business_id: chat.and_then(business_id).map(|id| id.to_string()),
            kind,
        };
        let message = InboundMessage::new(CHANNEL, event, now);
        self.inbound.process(&message, now).await;
        self.settle().await;
    }

    pub async fn enters(&mut self, openid: &str, chat: Option<&str>, session_from: &str) {
        let kind = EventKind::UserEnterTempSession {
            session_from: session_from.into(),
        };
        self.user_pushes(openid, chat, kind).await;
    }

    pub async fn writes(&mut self, openid: &str, chat: Option<&str>, text: &str) {
        let kind = EventKind::Text {
            msg_id: format!("{}", 7_000_000 + self.n),
            content: text.into(),
        };
        self.user_pushes(openid, chat, kind).await;
    }

    /// The user sends an image; WeChat holds it under the media id answered.
    pub async fn sends_image(&mut self, openid: &str, chat: Option<&str>) -> String {
        let media_id = format!("MEDIA-{openid}-{}", self.n + 1);
        self.memory.wechat.hold_media(
            &media_id,
            Media {
                content_type: "image/png".into(),
                bytes: PNG.to_vec(),
            },
        );
        let kind = EventKind::Image {
            msg_id: format!("{}", 7_000_000 + self.n),
            pic_url: "http://mmbiz.qpic.cn/user-image".into(),
            media_id: media_id.clone(),
        };
        self.user_pushes(openid, chat, kind).await;
        media_id
    }

    /// The user sends an image WeChat no longer holds when the bridge copies it.
    pub async fn sends_lost_image(&mut self, openid: &str) {
        let kind = EventKind::Image {
            msg_id: format!("{}", 7_000_000 + self.n),
            pic_url: "http://mmbiz.qpic.cn/lost-image".into(),
            media_id: format!("LOST-{openid}-{}", self.n + 1),
        };
        self.user_pushes(openid, None, kind).await;
    }

    /// The user accepts a subscribe template in the pop-up.
    pub async fn grants(&mut self, openid: &str, chat: Option<&str>, template: &str) {
        let kind = EventKind::SubscribePopup {
            entries: vec![SubscribeDecision {
                template_id: template.into(),
                status: "accept".into(),
                popup_scene: Some(0),
            }],
        };
        self.user_pushes(openid, chat, kind).await;
    }

    /// WeChat reports a subscribe message it sent.
    pub async fn subscribe_sent(&mut self, openid: &str, template: &str) {
        let kind = EventKind::SubscribeSent {
            entries: vec![SubscribeSendResult {
                template_id: template.into(),
                msg_id: Some("2000".into()),
                error_code: Some(0),
                error_status: Some("success".into()),
            }],
        };
        self.user_pushes(openid, None, kind).await;
    }

    /// A push of a type the bridge does not model (kept whole).
    pub async fn raw(&mut self, openid: &str) {
        let mut fields = serde_json::Map::new();
        fields.insert("Recognition".into(), json!("hello"));
        let kind = EventKind::Raw {
            msg_type: "voice".into(),
            event: None,
            msg_id: Some(format!("{}", 7_000_000 + self.n)),
            fields,
        };
        self.user_pushes(openid, None, kind).await;
    }

    /// The idle sweep, once the idle timeout is long past.
    pub async fn idle_sweep(&mut self) {
        self.advance(700_000);
        idle::sweep(&self.lifecycle).await.unwrap();
        self.settle().await;
    }

    /// A signed API request of `partner`; the answer is recorded as received under
    /// `route` (the route's template) and its status.
    pub async fn api(
        &mut self,
        partner: &str,
        method: &str,
        route: &str,
        path: &str,
        body: Value,
    ) -> Answer {
        self.advance(10);
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let nonce = format!("nonce-{:08}", self.nonce.fetch_add(1, Ordering::SeqCst));
        let signed = SignedRequest {
            method,
            path_and_query: path,
            body: body.as_bytes(),
        };
        let who = self.partner(partner);
        let mut builder = http::Request::builder().method(method).uri(path);
        for (name, value) in auth::sign(
            who.id,
            &Secret::new(who.secret),
            &signed,
            self.now_ms() / 1000,
            &nonce,
        ) {
            builder = builder.header(name, value);
        }
        let request: Request = builder.body(Body::Text(body)).unwrap();
        let response = api::answer(&self.router, request).await;
        let status = response.status().as_u16();
        let json_answer = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        let json = json_answer.then(|| serde_json::from_slice::<Value>(&bytes).unwrap());
        let kind = match status {
            400.. => "error".to_owned(),
            _ => format!("{method} {route} {status}"),
        };
        self.received.push(Received {
            partner: who.id,
            kind,
            json: json.clone(),
            bytes: bytes.clone(),
        });
        self.settle().await;
        (status, json.unwrap_or(Value::Null), bytes)
    }

    /// Runs every queue dry, as the functions would: replies and releases (`dispatch`),
    /// pushes and fallbacks (`push`), image copies (`media`); then collects the webhooks.
    pub async fn settle(&mut self) {
        loop {
            let outbound = self.memory.outbound.sent();
            let pushes = self.memory.pushes.sent();
            let copies = self.memory.media.copies();
            if self.done_outbound == outbound.len()
                && self.done_pushes == pushes.len()
                && self.done_copies == copies.len()
            {
                break;
            }
            for (target, dedup) in &outbound[self.done_outbound..] {
                if self.dedup_done.insert(format!("outbound:{dedup}")) {
                    self.dispatch.process(target).await;
                }
            }
            self.done_outbound = outbound.len();
            for (target, dedup) in &pushes[self.done_pushes..] {
                if self.dedup_done.insert(format!("push:{dedup}")) {
                    self.push.process(target).await;
                }
            }
            self.done_pushes = pushes.len();
            for job in &copies[self.done_copies..] {
                self.keeper.copy(job).await;
            }
            self.done_copies = copies.len();
        }
        let posts = self.memory.webhooks.posts();
        for post in &posts[self.seen_posts..] {
            let partner = self
                .mode
                .partners()
                .into_iter()
                .find(|p| p.url == post.url)
                .unwrap_or_else(|| panic!("a webhook to no partner: {}", post.url));
            self.received.push(Received {
                partner: partner.id,
                kind: post.body["type"].as_str().unwrap_or("?").to_owned(),
                bytes: serde_json::to_vec(&post.body).unwrap(),
                json: Some(post.body.clone()),
            });
        }
        self.seen_posts = posts.len();
    }

    /// The conversation of `partner` with `openid`.
    pub fn conversation_id(&self, partner: &str, openid: &str) -> String {
        format!("{CHANNEL}:{openid}:{partner}")
    }

    /// What a partner reads of a user: its conversations with them, each conversation and
    /// its history.
    pub async fn reads(&mut self, partner: &str, openid: &str) {
        let (_, listed, _) = self
            .api(
                partner,
                "GET",
                "/v1/conversations",
                &format!("/v1/conversations?channel={CHANNEL}&openid={openid}"),
                Value::Null,
            )
            .await;
        let ids: Vec<String> = listed["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect();
        for id in ids {
            self.api(
                partner,
                "GET",
                "/v1/conversations/{conversation_id}",
                &format!("/v1/conversations/{id}"),
                Value::Null,
            )
            .await;
            self.api(
                partner,
                "GET",
                "/v1/conversations/{conversation_id}/messages",
                &format!("/v1/conversations/{id}/messages?limit=100"),
                Value::Null,
            )
            .await;
        }
    }
}

/// A `session-from` as the app writes it, signed when `vouched`.
pub fn session_from(pairs: &[(&str, &str)], vouched: bool, now_ms: i64) -> String {
    // The test's values need no escaping.
    let mut text = pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    if vouched {
        text.push_str(&format!("&ts={}", now_ms / 1000));
        wxbridge_core::model::session_from::sign(&text, &Secret::new(SESSION_FROM_SECRET))
    } else {
        text
    }
}
