//! A local fake of the WeChat server API, answering as WeChat does, error codes included
//! (protocol notes §3–§5). For the tests and the local stack; the bridge reaches it by
//! configuration only (the WeChat base URL).
//!
//! The fake is a test oracle: its rules ([`rules`], [`tokens`]) are written from the
//! protocol notes (`shared/wechat-protocol.md`) and the official pages they cite, and it
//! depends on no crate of the bridge. Its [`UserAction`] is its own.
//!
//! What it enforces:
//! - access tokens ([`tokens`], §4): `stable_token` returns the same token while it has 5
//!   minutes left, then renews it; `force_refresh` at most every 30 s and 20 times a day;
//!   `cgi-bin/token` replaces the previous classic token, which keeps working 5 minutes;
//!   41001 without a token, 40001 for an unknown or replaced one, 42001 for an expired one;
//!   45009 / 45011 when a token API's quota is used up;
//! - openids it was told about, per app (40003 otherwise);
//! - the reply window and quota per user ([`rules::Window`], §3.2), driven by the user
//!   actions it is told about: a message opens 5 sends for 48 hours, entering the session 2
//!   sends for 1 minute; 45015 outside the window, 45047 when its sends are used;
//! - typing (§3.3): the send conditions, an exchange in the last 30 s (45080), 15 s of
//!   typing that cannot be repeated (45081), ended by a send;
//! - subscribe grants (§5): one send per acceptance, 43101 without one;
//! - customer-service sub-merchants ([`business`], §10): register / update / get / list
//!   with their errcodes, and sends and typing into a sub-merchant's session
//!   (`message/custom/business/send`, `businessid`), each session with its own window;
//! - uploads (§3.4): images only, at most 2 MB (40004, 40005, 40006); media ids live 3
//!   days (40007 after, and for unknown ids).
//!
//! It can be told to inject an errcode (-1, 45009, 45011, …), an HTTP status, a delay, or a
//! lost answer (a send carried out whose answer breaks off) for the next N calls of a
//! path. It records every accepted send and every upload. Its
//! clock is the system clock plus what [`Fake::advance`] added, so tests can let windows,
//! tokens and media run out.
//!
//! # Entering the session while a window is open
//!
//! WeChat's docs leave open whether the user entering the session (2 sends, 1 minute)
//! narrows a window a user message opened (5 sends, 48 hours). The fake does either, by
//! [`EntryPolicy`]:
//! - [`EntryPolicy::KeepsOpenWindow`] (the default): the open window stays as it is, its
//!   closing time and its count left;
//! - [`EntryPolicy::Replaces`]: the entry's window replaces it, 2 sends for 1 minute.
//!
//! Set it with [`Fake::with_entry_policy`] or [`Fake::set_entry_policy`], on the binary
//! with `--entry-policy keep|replace`, or at run time with `POST /_fake/entry-policy
//! {"policy": "keep" | "replace"}`. The other open points are decided in [`rules`] and
//! [`tokens`], each marked **Open point**.
//!
//! # Control API
//!
//! Run as a server (`wechat-fake`, for the local stack), it also answers a control API
//! under `/_fake/` that no WeChat path can collide with: what the user did (sent a message,
//! entered the session, accepted a subscribe pop-up, let the window run out), images the
//! user sends, and what the user received — and failures to inject into the next calls of a
//! path (`/_fake/inject`, for `make faults`). The WeChat user simulator drives it.

pub mod business;
pub mod rules;
pub mod tokens;

pub use rules::{EntryPolicy, UserAction};

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use business::{Business, Businesses};
use rules::{errcode, Grants, UserState, WxError, MAX_IMAGE_BYTES, MEDIA_LIFETIME_MS};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokens::Tokens;

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn errcode(code: i64, message: &str) -> Response {
    Json(json!({ "errcode": code, "errmsg": message })).into_response()
}

/// WeChat's error answer: HTTP 200 with `errcode` and `errmsg`.
fn refuse(error: WxError) -> Response {
    errcode(error.errcode, error.errmsg)
}

fn ok() -> Response {
    errcode(0, "ok")
}

/// One accepted send, as the user would see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub appid: String,
    /// `custom`, `subscribe` or `typing`.
    pub api: &'static str,
    pub touser: String,
    /// The sub-merchant whose session it went into; `None`: the mini program's own.
    pub business_id: Option<u64>,
    pub body: Value,
    /// When WeChat accepted it, by the wall clock (not the fake's movable one): what a
    /// load run measures latency against.
    pub accepted_at_ms: u64,
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Sent {
    fn to_json(&self) -> Value {
        json!({
            "appid": self.appid,
            "api": self.api,
            "touser": self.touser,
            "business_id": self.business_id,
            "body": self.body,
            "accepted_at_ms": self.accepted_at_ms,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Injection {
    /// The API path, e.g. `/cgi-bin/message/custom/send`.
    pub path: String,
    pub errcode: Option<i64>,
    pub http_status: Option<u16>,
    pub delay: Duration,
    pub times: u32,
    /// The call is carried out as WeChat would (a send reaches the user), and then its
    /// answer is lost: the connection drops before a whole answer is out. Only the
    /// sends (`custom/send`, `subscribe/send`) take it.
    pub lose_answer: bool,
}

/// A temporary media: an upload, or an image a user sent.
///
/// **Open point**: WeChat scopes media ids to an account; the fake does not (an image a user
/// sends is added without an app), so any app's token reads any media id.
#[derive(Debug, Clone)]
struct Media {
    content_type: String,
    bytes: Vec<u8>,
    /// 3 days after it was made (protocol notes §3.4).
    expires_at_ms: i64,
}

#[derive(Debug, Default)]
struct World {
    /// Added to the system clock by [`Fake::advance`].
    clock_offset_ms: i64,
    entry_policy: EntryPolicy,
    secrets: HashMap<String, String>,
    tokens: Tokens,
    /// Every (appid, openid) the fake was told about (the others answer 40003), with the
    /// state of the mini program's own session.
    users: HashMap<(String, String), UserState>,
    /// The state of each user's session with a sub-merchant: (appid, openid, business id).
    business_sessions: HashMap<(String, String, u64), UserState>,
    /// Each app's sub-merchants.
    businesses: HashMap<String, Businesses>,
    grants: HashMap<(String, String, String), Grants>,
    media: HashMap<String, Media>,
    uploads: u32,
    sent: Vec<Sent>,
    injections: Vec<Injection>,
    token_fetches: HashMap<String, u32>,
}

impl World {
    fn now_ms(&self) -> i64 {
        system_now_ms() + self.clock_offset_ms
    }

    fn live_media(&self, media_id: &str) -> Option<&Media> {
        let now = self.now_ms();
        self.media.get(media_id).filter(|m| now < m.expires_at_ms)
    }

    fn add_media(&mut self, content_type: String, bytes: Vec<u8>) -> String {
        let media_id = format!("media-{}", uuid::Uuid::new_v4().simple());
        self.add_media_as(media_id, content_type, bytes)
    }

    fn add_media_as(&mut self, media_id: String, content_type: String, bytes: Vec<u8>) -> String {
        let expires_at_ms = self.now_ms() + MEDIA_LIFETIME_MS;
        self.media.insert(
            media_id.clone(),
            Media {
                content_type,
                bytes,
                expires_at_ms,
            },
        );
        media_id
    }

    fn user(&mut self, appid: &str, openid: &str) -> &mut UserState {
        self.users
            .entry((appid.to_owned(), openid.to_owned()))
            .or_default()
    }

    /// The user's session: the mini program's own, or a sub-merchant's. The user becomes
    /// known to the app either way.
    fn session(&mut self, appid: &str, openid: &str, business_id: Option<u64>) -> &mut UserState {
        match business_id {
            None => self.user(appid, openid),
            Some(id) => {
                self.user(appid, openid);
                self.business_sessions
                    .entry((appid.to_owned(), openid.to_owned(), id))
                    .or_default()
            }
        }
    }

    fn businesses(&mut self, appid: &str) -> &mut Businesses {
        self.businesses.entry(appid.to_owned()).or_default()
    }
}

/// A handle on the fake: tell it about apps and users, inject failures, read what was sent.
#[derive(Debug, Clone, Default)]
pub struct Fake {
    world: Arc<Mutex<World>>,
}

impl Fake {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("fake lock")
    }

    /// The fake with `policy` for entries into the session while a window is open (see the
    /// crate docs).
    pub fn with_entry_policy(self, policy: EntryPolicy) -> Self {
        self.set_entry_policy(policy);
        self
    }

    /// Sets the policy for entries into the session from now on (see the crate docs).
    pub fn set_entry_policy(&self, policy: EntryPolicy) {
        self.world().entry_policy = policy;
    }

    pub fn entry_policy(&self) -> EntryPolicy {
        self.world().entry_policy
    }

    /// Moves the fake's clock forward: windows, tokens, typing and media run out as if the
    /// time had passed.
    pub fn advance(&self, by: Duration) {
        self.world().clock_offset_ms += i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
    }

    pub fn add_app(&self, appid: &str, secret: &str) {
        self.world()
            .secrets
            .insert(appid.to_owned(), secret.to_owned());
    }

    /// The user sent a message / entered the session: the window opens as WeChat opens it
    /// ([`rules::Window::after`], under the fake's [`EntryPolicy`]).
    pub fn user_acts(&self, appid: &str, openid: &str, action: UserAction) {
        self.user_acts_in(appid, openid, None, action);
    }

    /// As [`Self::user_acts`], in the session of the sub-merchant `business_id` (`None`:
    /// the mini program's own); only that session's window opens.
    pub fn user_acts_in(
        &self,
        appid: &str,
        openid: &str,
        business_id: Option<u64>,
        action: UserAction,
    ) {
        let mut world = self.world();
        let (now, policy) = (world.now_ms(), world.entry_policy);
        world
            .session(appid, openid, business_id)
            .acts(action, policy, now);
    }

    /// The user's windows, in every session, run out now (as if 48 hours passed since the
    /// last action).
    pub fn close_window(&self, appid: &str, openid: &str) {
        let mut guard = self.world();
        let world = &mut *guard;
        let now = world.now_ms();
        let key = (appid.to_owned(), openid.to_owned());
        let main = world.users.get_mut(&key);
        let sub_merchants = world
            .business_sessions
            .iter_mut()
            .filter(|((a, o, _), _)| *a == key.0 && *o == key.1)
            .map(|(_, state)| state);
        for session in main.into_iter().chain(sub_merchants) {
            if let Some(window) = session.window.as_mut() {
                window.close(now);
            }
        }
    }

    /// The sub-merchants of `appid`, in the order registered.
    pub fn businesses(&self, appid: &str) -> Vec<Business> {
        self.world().businesses(appid).all().to_vec()
    }

    /// An image a user sends: WeChat keeps it under a media id (and a `PicUrl`), 3 days.
    pub fn add_media(&self, content_type: &str, bytes: Vec<u8>) -> String {
        self.world().add_media(content_type.to_owned(), bytes)
    }

    /// As [`Fake::add_media`], under a given media id (sample events name theirs).
    pub fn add_media_as(&self, media_id: &str, content_type: &str, bytes: Vec<u8>) {
        self.world()
            .add_media_as(media_id.to_owned(), content_type.to_owned(), bytes);
    }

    /// The user accepted a subscribe pop-up for `template_id`: one more send of it. The
    /// user becomes known to the app (no more 40003); no window opens.
    pub fn grant(&self, appid: &str, openid: &str, template_id: &str) {
        let mut world = self.world();
        world.user(appid, openid);
        world
            .grants
            .entry((appid.to_owned(), openid.to_owned(), template_id.to_owned()))
            .or_default()
            .accept();
    }

    pub fn inject(&self, injection: Injection) {
        self.world().injections.push(injection);
    }

    /// Ends every token of `appid` now (as if its lifetime ran out): 42001.
    pub fn expire_tokens(&self, appid: &str) {
        let mut world = self.world();
        let now = world.now_ms();
        world.tokens.expire(appid, now);
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.world().sent.clone()
    }

    /// How many uploads were accepted.
    pub fn uploads(&self) -> u32 {
        self.world().uploads
    }

    /// The content type and bytes a live media id holds.
    pub fn media(&self, media_id: &str) -> Option<(String, Vec<u8>)> {
        self.world()
            .live_media(media_id)
            .map(|m| (m.content_type.clone(), m.bytes.clone()))
    }

    /// Ends every media id now (as if their 3 days ran out): sends with one answer 40007.
    pub fn expire_media(&self) {
        self.world().media.clear();
    }

    /// How many token requests for `appid` were answered with a token (both APIs).
    pub fn token_fetches(&self, appid: &str) -> u32 {
        self.world().token_fetches.get(appid).copied().unwrap_or(0)
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/token", get(classic_token))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .route("/cgi-bin/message/custom/business/send", post(business_send))
            .route("/cgi-bin/business/register", post(business_register))
            .route("/cgi-bin/business/update", post(business_update))
            .route("/cgi-bin/business/get", post(business_get))
            .route("/cgi-bin/business/list", post(business_list))
            // Both typing paths, with the same rules (protocol notes §3.3, §9: the docs
            // disagree on the path).
            .route("/cgi-bin/message/custom/typing", post(typing))
            .route("/cgi-bin/message/custom/business/typing", post(typing))
            .route("/cgi-bin/message/subscribe/send", post(subscribe_send))
            // Larger bodies than axum's default 2 MB, so that the fake itself answers 40006.
            .route(
                "/cgi-bin/media/upload",
                post(media_upload).layer(DefaultBodyLimit::max(4 * MAX_IMAGE_BYTES)),
            )
            .route("/cgi-bin/media/get", get(media_get))
            .route("/_fake/users/act", post(control_act))
            .route("/_fake/users/grant", post(control_grant))
            .route("/_fake/users/close-window", post(control_close_window))
            .route("/_fake/time-passes", post(control_time_passes))
            .route("/_fake/inject", post(control_inject))
            .route("/_fake/entry-policy", post(control_entry_policy))
            .route("/_fake/sent", get(control_sent))
            .route("/_fake/businesses", get(control_businesses))
            .route(
                "/_fake/media",
                post(control_add_media).layer(DefaultBodyLimit::max(4 * MAX_IMAGE_BYTES)),
            )
            .route("/_fake/media/{media_id}", get(control_media))
            .with_state(self.clone())
    }

    /// Serves on a free loopback port; returns the base URL.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await.expect("fake serves") });
        url
    }

    /// An injected failure for `path`, if one is due: it is counted off. Injections come
    /// before every rule, so they answer even without a valid token.
    async fn injected(&self, path: &str) -> Option<Response> {
        let injection = {
            let mut world = self.world();
            let found = world
                .injections
                .iter_mut()
                .find(|i| i.path == path && i.times > 0 && !i.lose_answer)?;
            found.times -= 1;
            found.clone()
        };
        tokio::time::sleep(injection.delay).await;
        if let Some(status) = injection.http_status {
            return Some(
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    "injected",
                )
                    .into_response(),
            );
        }
        injection.errcode.map(|code| errcode(code, "injected"))
    }

    /// The answer to a call carried out: `ok`, or — when a lost answer is injected for
    /// `path` — a body that breaks off after its first bytes.
    fn carried_out(&self, path: &str) -> Response {
        let lost = {
            let mut world = self.world();
            let found = world
                .injections
                .iter_mut()
                .find(|i| i.path == path && i.times > 0 && i.lose_answer);
            found.map(|injection| injection.times -= 1).is_some()
        };
        if !lost {
            return ok();
        }
        let broken = futures_util::stream::iter([
            Ok(axum::body::Bytes::from_static(b"{\"errcode\":")),
            Err(std::io::Error::other("the answer is lost")),
        ]);
        (
            [(header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(broken),
        )
            .into_response()
    }

    /// The app a valid token belongs to, or WeChat's answer for a bad one.
    fn app_of(&self, token: Option<&String>) -> Result<String, WxError> {
        let world = self.world();
        world
            .tokens
            .check(token.map(String::as_str), world.now_ms())
    }

    /// An answered token request is counted.
    fn fetched(world: &mut World, appid: &str, issued: tokens::Issued) -> Response {
        *world.token_fetches.entry(appid.to_owned()).or_default() += 1;
        Json(json!({ "access_token": issued.access_token, "expires_in": issued.expires_in_s }))
            .into_response()
    }
}

type Params = Query<HashMap<String, String>>;

#[derive(Deserialize)]
struct StableTokenRequest {
    grant_type: String,
    appid: String,
    secret: String,
    #[serde(default)]
    force_refresh: bool,
}

/// `POST /cgi-bin/stable_token` (protocol notes §4.2).
async fn stable_token(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/stable_token").await {
        return injected;
    }
    let Ok(request) = serde_json::from_slice::<StableTokenRequest>(&body) else {
        return refuse(errcode::DATA_FORMAT);
    };
    if request.grant_type != "client_credential" {
        return refuse(errcode::INVALID_GRANT_TYPE);
    }
    let mut world = fake.world();
    match world.secrets.get(&request.appid) {
        None => return refuse(errcode::INVALID_APPID),
        Some(secret) if *secret != request.secret => return refuse(errcode::INVALID_SECRET_STABLE),
        Some(_) => {}
    }
    let now = world.now_ms();
    match world
        .tokens
        .stable(&request.appid, request.force_refresh, now)
    {
        Ok(issued) => Fake::fetched(&mut world, &request.appid, issued),
        Err(error) => refuse(error),
    }
}

/// `GET /cgi-bin/token` (protocol notes §4.1).
async fn classic_token(State(fake): State<Fake>, Query(params): Params) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/token").await {
        return injected;
    }
    if params.get("grant_type").map(String::as_str) != Some("client_credential") {
        return refuse(errcode::INVALID_GRANT_TYPE);
    }
    let appid = params.get("appid").cloned().unwrap_or_default();
    let mut world = fake.world();
    match world.secrets.get(&appid) {
        None => return refuse(errcode::INVALID_APPID),
        Some(secret) if Some(secret) != params.get("secret") => {
            return refuse(errcode::INVALID_SECRET_CLASSIC)
        }
        Some(_) => {}
    }
    let now = world.now_ms();
    match world.tokens.classic(&appid, now) {
        Ok(issued) => Fake::fetched(&mut world, &appid, issued),
        Err(error) => refuse(error),
    }
}

/// Checks token, JSON and openid, in that order; returns (appid, touser, body).
fn authorize(
    fake: &Fake,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<(String, String, Value), WxError> {
    let appid = fake.app_of(params.get("access_token"))?;
    let body: Value = serde_json::from_slice(body).map_err(|_| errcode::DATA_FORMAT)?;
    let touser = body["touser"].as_str().unwrap_or_default().to_owned();
    if !fake
        .world()
        .users
        .contains_key(&(appid.clone(), touser.clone()))
    {
        return Err(errcode::INVALID_OPENID);
    }
    Ok((appid, touser, body))
}

/// The fields each `msgtype` needs (protocol notes §3.1); anything else is 47001.
fn valid_custom(body: &Value) -> bool {
    match body["msgtype"].as_str() {
        Some("text") => body["text"]["content"].is_string(),
        Some("image") => body["image"]["media_id"].is_string(),
        Some("link") => ["title", "description", "url", "thumb_url"]
            .iter()
            .all(|f| body["link"][f].is_string()),
        Some("miniprogrampage") => ["title", "pagepath", "thumb_media_id"]
            .iter()
            .all(|f| body["miniprogrampage"][f].is_string()),
        _ => false,
    }
}

/// The media ids a customer-service message refers to: an image's `media_id`, a card's
/// `thumb_media_id` (protocol notes §3.1). Each must be live, or 40007.
fn media_ids(body: &Value) -> impl Iterator<Item = &str> {
    [
        body["image"]["media_id"].as_str(),
        body["miniprogrampage"]["thumb_media_id"].as_str(),
    ]
    .into_iter()
    .flatten()
}

/// `POST /cgi-bin/message/custom/send` (protocol notes §3.1, §3.2). Checked in this order:
/// token (41001/40001/42001), JSON (47001), openid (40003), the message's fields (47001),
/// its media (40007), then the window (45015) and its count (45047).
async fn custom_send(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    send_in_session(fake, params, body, "/cgi-bin/message/custom/send").await
}

/// `POST /cgi-bin/message/custom/business/send` (protocol notes §10): as `custom/send`,
/// into the session of the sub-merchant `businessid` names (45071 when the app has none
/// by that id), whose own window decides.
async fn business_send(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    send_in_session(fake, params, body, "/cgi-bin/message/custom/business/send").await
}

async fn send_in_session(
    fake: Fake,
    params: HashMap<String, String>,
    body: axum::body::Bytes,
    path: &'static str,
) -> Response {
    if let Some(injected) = fake.injected(path).await {
        return injected;
    }
    let (appid, touser, body) = match authorize(&fake, &params, &body) {
        Ok(found) => found,
        Err(answer) => return refuse(answer),
    };
    let business_id = match path.contains("/business/") {
        false => None,
        true => match session_of(&fake, &appid, &body, "businessid") {
            Ok(id) => id,
            Err(refusal) => return refuse(refusal),
        },
    };
    if business_id.is_none() && path.contains("/business/") {
        return refuse(business::errcode::NO_SUCH_BUSINESS);
    }
    if !valid_custom(&body) {
        return refuse(errcode::DATA_FORMAT);
    }
    let mut world = fake.world();
    if media_ids(&body).any(|id| world.live_media(id).is_none()) {
        return refuse(errcode::INVALID_MEDIA_ID);
    }
    let now = world.now_ms();
    let session = world.session(&appid, &touser, business_id);
    if let Err(refusal) = session.check_send(now) {
        return refuse(refusal);
    }
    session.sent(now);
    world.sent.push(Sent {
        accepted_at_ms: wall_clock_ms(),
        appid,
        api: "custom",
        touser,
        business_id,
        body,
    });
    drop(world);
    fake.carried_out(path)
}

/// The sub-merchant session a body's `field` names: `None` when it names none, 45071 when
/// it names one the app has not registered.
fn session_of(fake: &Fake, appid: &str, body: &Value, field: &str) -> Result<Option<u64>, WxError> {
    let named = &body[field];
    if named.is_null() {
        return Ok(None);
    }
    let id = business::loose_id(named).ok_or(business::errcode::NO_SUCH_BUSINESS)?;
    match fake.world().businesses(appid).by_id(id) {
        Some(_) => Ok(Some(id)),
        None => Err(business::errcode::NO_SUCH_BUSINESS),
    }
}

/// `POST /cgi-bin/message/custom/typing` and `…/custom/business/typing` (protocol notes
/// §3.3, §10): token, JSON, openid, the sub-merchant `businessid` names if any (45071),
/// `command` (45072), then [`UserState::start_typing`] in that session for `Typing`;
/// `CancelTyping` is always accepted.
async fn typing(
    State(fake): State<Fake>,
    uri: axum::http::Uri,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    if let Some(injected) = fake.injected(uri.path()).await {
        return injected;
    }
    let (appid, touser, body) = match authorize(&fake, &params, &body) {
        Ok(found) => found,
        Err(answer) => return refuse(answer),
    };
    let business_id = match session_of(&fake, &appid, &body, "businessid") {
        Ok(id) => id,
        Err(refusal) => return refuse(refusal),
    };
    let mut world = fake.world();
    let now = world.now_ms();
    let user = world.session(&appid, &touser, business_id);
    match body["command"].as_str() {
        Some("Typing") => {
            if let Err(refusal) = user.start_typing(now) {
                return refuse(refusal);
            }
        }
        Some("CancelTyping") => user.cancel_typing(),
        _ => return refuse(errcode::INVALID_COMMAND),
    }
    world.sent.push(Sent {
        accepted_at_ms: wall_clock_ms(),
        appid,
        api: "typing",
        touser,
        business_id,
        body,
    });
    ok()
}

/// `POST /cgi-bin/message/subscribe/send` (protocol notes §5): token, JSON, openid,
/// `template_id` (40037), `data` (47003), then one grant of the template (43101). The
/// customer-service window plays no part.
async fn subscribe_send(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/message/subscribe/send").await {
        return injected;
    }
    let (appid, touser, body) = match authorize(&fake, &params, &body) {
        Ok(found) => found,
        Err(answer) => return refuse(answer),
    };
    let Some(template) = body["template_id"].as_str().map(str::to_owned) else {
        return refuse(errcode::INVALID_TEMPLATE_ID);
    };
    if !body["data"].is_object() {
        return refuse(errcode::DATA_EMPTY);
    }
    let mut world = fake.world();
    let spent = world
        .grants
        .entry((appid.clone(), touser.clone(), template))
        .or_default()
        .spend();
    if let Err(refusal) = spent {
        return refuse(refusal);
    }
    world.sent.push(Sent {
        accepted_at_ms: wall_clock_ms(),
        appid,
        api: "subscribe",
        touser,
        business_id: None,
        body,
    });
    drop(world);
    fake.carried_out("/cgi-bin/message/subscribe/send")
}

/// `POST /cgi-bin/media/upload` (protocol notes §3.4): [`rules::check_upload`].
async fn media_upload(
    State(fake): State<Fake>,
    Query(params): Params,
    mut form: Multipart,
) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/media/upload").await {
        return injected;
    }
    if let Err(answer) = fake.app_of(params.get("access_token")) {
        return refuse(answer);
    }
    if params.get("type").map(String::as_str) != Some("image") {
        return refuse(errcode::INVALID_MEDIA_TYPE);
    }
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("media") {
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let Ok(bytes) = field.bytes().await else {
                return refuse(errcode::DATA_FORMAT);
            };
            let media_type = params.get("type").map(String::as_str);
            if let Err(refusal) = rules::check_upload(media_type, &content_type, bytes.len()) {
                return refuse(refusal);
            }
            let mut world = fake.world();
            world.uploads += 1;
            let media_id = world.add_media(content_type, bytes.to_vec());
            return Json(
                json!({ "type": "image", "media_id": media_id, "created_at": world.now_ms() / 1000 }),
            )
            .into_response();
        }
    }
    refuse(errcode::MEDIA_DATA_MISSING)
}

/// `GET /cgi-bin/media/get` (protocol notes §3.4): the bytes with their Content-Type, or a
/// JSON 40007 for an unknown or expired id.
async fn media_get(State(fake): State<Fake>, Query(params): Params) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/media/get").await {
        return injected;
    }
    if let Err(answer) = fake.app_of(params.get("access_token")) {
        return refuse(answer);
    }
    let found = params.get("media_id").and_then(|id| fake.media(id));
    match found {
        Some((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => refuse(errcode::INVALID_MEDIA_ID),
    }
}

/// A user of the control API: `{"appid", "openid"}` plus what the call needs.
#[derive(Deserialize)]
struct ControlUser {
    appid: String,
    openid: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    template_id: Option<String>,
    /// The sub-merchant session the user acts in (`None`: the mini program's own).
    #[serde(default)]
    business_id: Option<u64>,
}

fn control_error(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}

/// `POST /_fake/users/act` `{"appid", "openid", "action": "message" | "enter_session"
/// [, "business_id"]}`: in a sub-merchant's session when `business_id` names one.
async fn control_act(State(fake): State<Fake>, Json(user): Json<ControlUser>) -> Response {
    let action = match user.action.as_deref() {
        Some("message") => UserAction::Message,
        Some("enter_session") => UserAction::EnterSession,
        _ => return control_error(StatusCode::BAD_REQUEST, "action: message or enter_session"),
    };
    if let Some(id) = user.business_id {
        if fake.world().businesses(&user.appid).by_id(id).is_none() {
            return control_error(StatusCode::NOT_FOUND, "business_id: not registered");
        }
    }
    fake.user_acts_in(&user.appid, &user.openid, user.business_id, action);
    Json(json!({ "ok": true })).into_response()
}

/// `POST /_fake/users/grant` `{"appid", "openid", "template_id"}`: a subscribe pop-up accepted.
async fn control_grant(State(fake): State<Fake>, Json(user): Json<ControlUser>) -> Response {
    let Some(template_id) = user.template_id.as_deref().filter(|t| !t.is_empty()) else {
        return control_error(StatusCode::BAD_REQUEST, "template_id: required");
    };
    fake.grant(&user.appid, &user.openid, template_id);
    Json(json!({ "ok": true })).into_response()
}

/// `POST /_fake/users/close-window` `{"appid", "openid"}`: the window runs out now.
async fn control_close_window(State(fake): State<Fake>, Json(user): Json<ControlUser>) -> Response {
    fake.close_window(&user.appid, &user.openid);
    Json(json!({ "ok": true })).into_response()
}

#[derive(Deserialize)]
struct ControlInjection {
    path: String,
    errcode: Option<i64>,
    http_status: Option<u16>,
    #[serde(default)]
    delay_ms: u64,
    times: u32,
    #[serde(default)]
    lose_answer: bool,
}

/// `POST /_fake/inject` `{"path", "errcode"?, "http_status"?, "delay_ms"?, "times",
/// "lose_answer"?}`: the next `times` calls of `path` fail so (see [`Injection`]), for a
/// fault run from outside the process.
async fn control_inject(State(fake): State<Fake>, Json(asked): Json<ControlInjection>) -> Response {
    if !asked.path.starts_with("/cgi-bin/") || asked.times == 0 {
        return control_error(
            StatusCode::BAD_REQUEST,
            "path: a /cgi-bin/ path; times: at least 1",
        );
    }
    fake.inject(Injection {
        path: asked.path,
        errcode: asked.errcode,
        http_status: asked.http_status,
        delay: Duration::from_millis(asked.delay_ms),
        times: asked.times,
        lose_answer: asked.lose_answer,
    });
    Json(json!({ "ok": true })).into_response()
}

#[derive(Deserialize)]
struct ControlTime {
    secs: u64,
}

/// `POST /_fake/time-passes` `{"secs"}`: the fake's clock moves on; windows, access tokens,
/// typing and temporary media (3 days) run out as they would.
async fn control_time_passes(State(fake): State<Fake>, Json(time): Json<ControlTime>) -> Response {
    fake.advance(Duration::from_secs(time.secs));
    Json(json!({ "ok": true })).into_response()
}

#[derive(Deserialize)]
struct ControlPolicy {
    policy: String,
}

/// `POST /_fake/entry-policy` `{"policy": "keep" | "replace"}`: see [`EntryPolicy`].
async fn control_entry_policy(
    State(fake): State<Fake>,
    Json(request): Json<ControlPolicy>,
) -> Response {
    match request.policy.parse::<EntryPolicy>() {
        Ok(policy) => {
            fake.set_entry_policy(policy);
            Json(json!({ "ok": true, "policy": policy.as_str() })).into_response()
        }
        Err(reason) => control_error(StatusCode::BAD_REQUEST, &reason),
    }
}

/// `GET /_fake/sent[?appid=][&touser=]`: accepted sends, oldest first, each with its index
/// (and, in a sub-merchant's session, its `business_id` and `business_nickname`).
async fn control_sent(State(fake): State<Fake>, Query(params): Params) -> Response {
    let sent: Vec<Value> = fake
        .sent()
        .iter()
        .enumerate()
        .filter(|(_, s)| params.get("appid").is_none_or(|a| *a == s.appid))
        .filter(|(_, s)| params.get("touser").is_none_or(|t| *t == s.touser))
        .map(|(index, s)| {
            let mut value = s.to_json();
            value["index"] = json!(index);
            // The name the user sees the sub-merchant's session under.
            if let Some(id) = s.business_id {
                let businesses = fake.businesses(&s.appid);
                let found = businesses.iter().find(|b| b.business_id == id);
                value["business_nickname"] = json!(found.map(|b| b.nickname.clone()));
            }
            value
        })
        .collect();
    Json(json!({ "sent": sent })).into_response()
}

/// `POST /_fake/media` (the image as the body, with its Content-Type): an image a user
/// sends; answers its `media_id` and `pic_url`.
async fn control_add_media(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    if body.is_empty() {
        return control_error(StatusCode::BAD_REQUEST, "body: the image bytes");
    }
    let media_id = fake.add_media(&content_type, body.to_vec());
    Json(json!({ "media_id": media_id, "pic_url": format!("/_fake/media/{media_id}") }))
        .into_response()
}

/// `GET /_fake/media/{media_id}`: the image behind a `PicUrl`, without a token.
async fn control_media(State(fake): State<Fake>, Path(media_id): Path<String>) -> Response {
    match fake.media(&media_id) {
        Some((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => control_error(StatusCode::NOT_FOUND, "unknown media id"),
    }
}

/// `POST /cgi-bin/business/register` (§10): `account_name`, `nickname`, `icon_media_id`
/// checked as [`business`] says; answers `business_id`.
async fn business_register(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    let (appid, body) =
        match business_call(&fake, "/cgi-bin/business/register", &params, &body).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
    let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
    let (account_name, nickname, icon) = (
        text("account_name"),
        text("nickname"),
        text("icon_media_id"),
    );
    let checked = business::check_account_name(&account_name)
        .and_then(|()| business::check_nickname(&nickname))
        .and_then(|()| fake.check_icon(&icon));
    if let Err(refusal) = checked {
        return refuse(refusal);
    }
    match fake
        .world()
        .businesses(&appid)
        .register(&account_name, &nickname, &icon)
    {
        Ok(business_id) => {
            Json(json!({ "errcode": 0, "errmsg": "ok", "business_id": business_id }))
                .into_response()
        }
        Err(refusal) => refuse(refusal),
    }
}

/// `POST /cgi-bin/business/update` (§10): an empty `nickname` or `icon_media_id` keeps it.
async fn business_update(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    let (appid, body) = match business_call(&fake, "/cgi-bin/business/update", &params, &body).await
    {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(business_id) = business::loose_id(&body["business_id"]) else {
        return refuse(business::errcode::NO_SUCH_BUSINESS);
    };
    let nickname = body["nickname"].as_str().unwrap_or_default();
    let icon = body["icon_media_id"].as_str().unwrap_or_default();
    if !nickname.is_empty() {
        if let Err(refusal) = business::check_nickname(nickname) {
            return refuse(refusal);
        }
    }
    if !icon.is_empty() {
        if let Err(refusal) = fake.check_icon(icon) {
            return refuse(refusal);
        }
    }
    let mut world = fake.world();
    let found = match world.businesses(&appid).get_mut(business_id) {
        Ok(found) => found,
        Err(refusal) => return refuse(refusal),
    };
    if !nickname.is_empty() {
        found.nickname = nickname.to_owned();
    }
    if !icon.is_empty() {
        found.icon_media_id = icon.to_owned();
    }
    ok()
}

/// `POST /cgi-bin/business/get` (§10): by `business_id` or by `account_name`, one of them.
async fn business_get(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    let (appid, body) = match business_call(&fake, "/cgi-bin/business/get", &params, &body).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let mut world = fake.world();
    let businesses = world.businesses(&appid);
    let found = match (
        business::loose_id(&body["business_id"]),
        body["account_name"].as_str(),
    ) {
        (Some(id), None) => businesses.by_id(id),
        (None, Some(name)) => businesses.by_account_name(name),
        _ => return refuse(business::errcode::INVALID_ARGS),
    };
    match found {
        Some(found) => {
            Json(json!({ "errcode": 0, "errmsg": "ok", "business_info": found.to_json() }))
                .into_response()
        }
        None => refuse(business::errcode::NO_SUCH_BUSINESS),
    }
}

/// `POST /cgi-bin/business/list` (§10): `offset`, `count` (at most 200); `list`.
async fn business_list(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    let (appid, body) = match business_call(&fake, "/cgi-bin/business/list", &params, &body).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let offset = body["offset"].as_u64().unwrap_or(0);
    let count = body["count"].as_u64().unwrap_or(business::MAX_LIST_COUNT);
    match fake.world().businesses(&appid).page(offset, count) {
        Ok(list) => Json(json!({ "errcode": 0, "errmsg": "ok", "list": list })).into_response(),
        Err(refusal) => refuse(refusal),
    }
}

/// A management call: an injection, then the token and the JSON body (47001).
async fn business_call(
    fake: &Fake,
    path: &str,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<(String, Value), Response> {
    if let Some(injected) = fake.injected(path).await {
        return Err(injected);
    }
    let appid = fake.app_of(params.get("access_token")).map_err(refuse)?;
    let body: Value = serde_json::from_slice(body).map_err(|_| refuse(errcode::DATA_FORMAT))?;
    Ok((appid, body))
}

impl Fake {
    /// A sub-merchant's icon: a live media (40007) that is an image (40004).
    fn check_icon(&self, media_id: &str) -> Result<(), WxError> {
        let world = self.world();
        let media = world
            .live_media(media_id)
            .ok_or(errcode::INVALID_MEDIA_ID)?;
        if media.content_type.starts_with("image/") {
            Ok(())
        } else {
            Err(errcode::INVALID_MEDIA_TYPE)
        }
    }
}

/// `GET /_fake/businesses?appid=`: the app's sub-merchants, for the user simulator.
async fn control_businesses(State(fake): State<Fake>, Query(params): Params) -> Response {
    let Some(appid) = params.get("appid") else {
        return control_error(StatusCode::BAD_REQUEST, "appid: required");
    };
    let list: Vec<Value> = fake
        .businesses(appid)
        .iter()
        .map(Business::to_json)
        .collect();
    Json(json!({ "businesses": list })).into_response()
}
