//! A local fake of the WeChat server API, answering as WeChat does, error codes included
//! (protocol notes §3–§5). For the tests and the local stack; the bridge reaches it by
//! configuration only (the WeChat base URL).
//!
//! What it enforces: access tokens (`stable_token` returns the same token while valid;
//! `force_refresh` at most every 30 s and 20 times a day; `cgi-bin/token` replaces the
//! previous classic token, which stays valid 5 minutes) — 40001 for an unknown token, 42001
//! for an expired one; openids it was told about (40003 otherwise); the reply window and
//! quota per user, driven by the user actions it is told about (45015 closed, 45047 used);
//! subscribe grants (43101 without one); uploads (images only, at most 2 MB: 40004,
//! 40005, 40006) and media ids (40007). It can be told to inject an
//! errcode (-1, 45009, 45011, …), an HTTP status, or a delay, for the next N calls of a path.
//! It records every accepted send and every upload.
//!
//! Run as a server (`wechat-fake`, for the local stack), it also answers a control API
//! under `/_fake/` that no WeChat path can collide with: what the user did (sent a message,
//! entered the session, accepted a subscribe pop-up, let the window run out), images the
//! user sends, and what the user received. The WeChat user simulator drives it.

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wxbridge::reply_window::{Allowance, ReplyWindow, UserAction};

const TOKEN_LIFETIME_MS: i64 = 7_200_000;
const OVERLAP_MS: i64 = 300_000;
/// The image upload limit of the docs (§3.4).
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn errcode(code: i64, message: &str) -> Response {
    Json(json!({ "errcode": code, "errmsg": message })).into_response()
}

/// A WeChat error answer: HTTP 200 with `errcode` and `errmsg`, as WeChat sends them.
#[derive(Debug, Clone, Copy)]
struct WxError(i64, &'static str);

impl IntoResponse for WxError {
    fn into_response(self) -> Response {
        errcode(self.0, self.1)
    }
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
    pub body: Value,
}

impl Sent {
    fn to_json(&self) -> Value {
        json!({ "appid": self.appid, "api": self.api, "touser": self.touser, "body": self.body })
    }
}

#[derive(Debug, Clone)]
pub struct Injection {
    /// The API path, e.g. `/cgi-bin/message/custom/send`.
    pub path: String,
    pub errcode: Option<i64>,
    pub http_status: Option<u16>,
    pub delay: Duration,
    pub times: u32,
}

#[derive(Debug)]
struct Token {
    appid: String,
    expires_at_ms: i64,
}

#[derive(Debug, Default)]
struct World {
    secrets: HashMap<String, String>,
    tokens: HashMap<String, Token>,
    stable: HashMap<String, String>,
    classic: HashMap<String, String>,
    forced_at_ms: HashMap<String, i64>,
    forced_today: HashMap<String, u32>,
    windows: HashMap<(String, String), Option<ReplyWindow>>,
    grants: HashMap<(String, String, String), u32>,
    media: HashMap<String, (String, Vec<u8>)>,
    uploads: u32,
    sent: Vec<Sent>,
    injections: Vec<Injection>,
    token_fetches: HashMap<String, u32>,
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

    pub fn add_app(&self, appid: &str, secret: &str) {
        self.world()
            .secrets
            .insert(appid.to_owned(), secret.to_owned());
    }

    /// The user sent a message / entered the session: the window opens as WeChat opens it.
    pub fn user_acts(&self, appid: &str, openid: &str, action: UserAction) {
        let mut world = self.world();
        let key = (appid.to_owned(), openid.to_owned());
        let previous = world.windows.get(&key).copied().flatten();
        world
            .windows
            .insert(key, Some(ReplyWindow::after(previous, action, now_ms())));
    }

    /// The user's window runs out now (as if 48 hours passed since the last action).
    pub fn close_window(&self, appid: &str, openid: &str) {
        let mut world = self.world();
        if let Some(Some(window)) = world
            .windows
            .get_mut(&(appid.to_owned(), openid.to_owned()))
        {
            window.closes_at_ms = window.closes_at_ms.min(now_ms());
        }
    }

    /// An image a user sends: WeChat keeps it under a media id (and a `PicUrl`).
    pub fn add_media(&self, content_type: &str, bytes: Vec<u8>) -> String {
        let media_id = format!("media-{}", uuid::Uuid::new_v4().simple());
        self.world()
            .media
            .insert(media_id.clone(), (content_type.to_owned(), bytes));
        media_id
    }

    /// The user accepted a subscribe pop-up for `template_id`.
    pub fn grant(&self, appid: &str, openid: &str, template_id: &str) {
        let mut world = self.world();
        world
            .windows
            .entry((appid.to_owned(), openid.to_owned()))
            .or_default();
        *world
            .grants
            .entry((appid.to_owned(), openid.to_owned(), template_id.to_owned()))
            .or_default() += 1;
    }

    pub fn inject(&self, injection: Injection) {
        self.world().injections.push(injection);
    }

    /// Ends every token of `appid` now (as if its lifetime ran out).
    pub fn expire_tokens(&self, appid: &str) {
        for token in self
            .world()
            .tokens
            .values_mut()
            .filter(|t| t.appid == appid)
        {
            token.expires_at_ms = 0;
        }
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.world().sent.clone()
    }

    /// How many uploads were accepted.
    pub fn uploads(&self) -> u32 {
        self.world().uploads
    }

    /// The content type and bytes an uploaded media id holds.
    pub fn media(&self, media_id: &str) -> Option<(String, Vec<u8>)> {
        self.world().media.get(media_id).cloned()
    }

    /// Ends every media id now (as if their 3 days ran out): sends with one answer 40007.
    pub fn expire_media(&self) {
        self.world().media.clear();
    }

    /// How many token requests for `appid` were answered (both APIs).
    pub fn token_fetches(&self, appid: &str) -> u32 {
        self.world().token_fetches.get(appid).copied().unwrap_or(0)
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/token", get(classic_token))
            .route("/cgi-bin/message/custom/send", post(custom_send))
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
            .route("/_fake/sent", get(control_sent))
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

    /// An injected failure for `path`, if one is due: it is counted off.
    async fn injected(&self, path: &str) -> Option<Response> {
        let injection = {
            let mut world = self.world();
            let found = world
                .injections
                .iter_mut()
                .find(|i| i.path == path && i.times > 0)?;
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

    /// The app a valid token belongs to, or WeChat's answer for a bad one.
    fn app_of(&self, token: Option<&String>) -> Result<String, WxError> {
        let world = self.world();
        let Some(token) = token else {
            return Err(WxError(41001, "access_token missing"));
        };
        match world.tokens.get(token) {
            None => Err(WxError(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )),
            Some(t) if t.expires_at_ms <= now_ms() => Err(WxError(42001, "access_token expired")),
            Some(t) => Ok(t.appid.clone()),
        }
    }

    fn issue(&self, world: &mut World, appid: &str) -> String {
        let token = format!("fake-{}", uuid::Uuid::new_v4().simple());
        world.tokens.insert(
            token.clone(),
            Token {
                appid: appid.to_owned(),
                expires_at_ms: now_ms() + TOKEN_LIFETIME_MS,
            },
        );
        token
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

async fn stable_token(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/stable_token").await {
        return injected;
    }
    let Ok(request) = serde_json::from_slice::<StableTokenRequest>(&body) else {
        return errcode(47001, "data format error");
    };
    if request.grant_type != "client_credential" {
        return errcode(40002, "invalid grant_type");
    }
    let mut world = fake.world();
    match world.secrets.get(&request.appid) {
        None => return errcode(40013, "invalid appid"),
        Some(secret) if *secret != request.secret => return errcode(40125, "invalid appsecret"),
        Some(_) => {}
    }
    let now = now_ms();
    let current = world.stable.get(&request.appid).cloned();
    let valid = current
        .as_ref()
        .and_then(|t| world.tokens.get(t))
        .filter(|t| t.expires_at_ms > now);
    let force = request.force_refresh && {
        let recent = world
            .forced_at_ms
            .get(&request.appid)
            .is_some_and(|at| now - at < 30_000);
        let spent = world.forced_today.get(&request.appid).copied().unwrap_or(0) >= 20;
        !recent && !spent
    };
    let (token, expires_at_ms) = match (valid, force) {
        (Some(t), false) => (current.unwrap_or_default(), t.expires_at_ms),
        _ => {
            if force {
                world.forced_at_ms.insert(request.appid.clone(), now);
                *world.forced_today.entry(request.appid.clone()).or_default() += 1;
                // A forced refresh voids the previous token at once: "not latest" (40001).
                if let Some(old) = current {
                    world.tokens.remove(&old);
                }
            }
            let token = fake.issue(&mut world, &request.appid);
            world.stable.insert(request.appid.clone(), token.clone());
            (token, now + TOKEN_LIFETIME_MS)
        }
    };
    *world
        .token_fetches
        .entry(request.appid.clone())
        .or_default() += 1;
    Json(json!({ "access_token": token, "expires_in": (expires_at_ms - now) / 1000 }))
        .into_response()
}

async fn classic_token(State(fake): State<Fake>, Query(params): Params) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/token").await {
        return injected;
    }
    if params.get("grant_type").map(String::as_str) != Some("client_credential") {
        return errcode(40002, "invalid grant_type");
    }
    let appid = params.get("appid").cloned().unwrap_or_default();
    let mut world = fake.world();
    match world.secrets.get(&appid) {
        None => return errcode(40013, "invalid appid"),
        Some(secret) if Some(secret) != params.get("secret") => {
            return errcode(40001, "invalid appsecret")
        }
        Some(_) => {}
    }
    // A new classic token replaces the previous one, which keeps working 5 minutes.
    if let Some(previous) = world.classic.get(&appid).cloned() {
        if let Some(token) = world.tokens.get_mut(&previous) {
            token.expires_at_ms = token.expires_at_ms.min(now_ms() + OVERLAP_MS);
        }
    }
    let token = fake.issue(&mut world, &appid);
    *world.token_fetches.entry(appid.clone()).or_default() += 1;
    world.classic.insert(appid, token.clone());
    Json(json!({ "access_token": token, "expires_in": TOKEN_LIFETIME_MS / 1000 })).into_response()
}

/// Checks token, JSON and openid; returns (appid, touser, body).
fn authorize(
    fake: &Fake,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<(String, String, Value), WxError> {
    let appid = fake.app_of(params.get("access_token"))?;
    let body: Value =
        serde_json::from_slice(body).map_err(|_| WxError(47001, "data format error"))?;
    let touser = body["touser"].as_str().unwrap_or_default().to_owned();
    if !fake
        .world()
        .windows
        .contains_key(&(appid.clone(), touser.clone()))
    {
        return Err(WxError(40003, "invalid openid"));
    }
    Ok((appid, touser, body))
}

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

async fn custom_send(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/message/custom/send").await {
        return injected;
    }
    let (appid, touser, body) = match authorize(&fake, &params, &body) {
        Ok(found) => found,
        Err(answer) => return answer.into_response(),
    };
    if !valid_custom(&body) {
        return errcode(47001, "data format error");
    }
    let mut world = fake.world();
    if let Some(media_id) = body["image"]["media_id"].as_str() {
        if !world.media.contains_key(media_id) {
            return errcode(40007, "invalid media_id");
        }
    }
    let window = world
        .windows
        .get_mut(&(appid.clone(), touser.clone()))
        .and_then(Option::as_mut);
    match ReplyWindow::allowance(window.as_deref(), now_ms()) {
        Allowance::Closed => {
            return errcode(
                45015,
                "response out of time limit or subscription is canceled",
            )
        }
        Allowance::QuotaUsed => return errcode(45047, "out of response count limit"),
        Allowance::Open { .. } => {}
    }
    if let Some(window) = window {
        window.spend();
    }
    world.sent.push(Sent {
        appid,
        api: "custom",
        touser,
        body,
    });
    ok()
}

async fn typing(
    State(fake): State<Fake>,
    Query(params): Params,
    body: axum::body::Bytes,
) -> Response {
    let (appid, touser, body) = match authorize(&fake, &params, &body) {
        Ok(found) => found,
        Err(answer) => return answer.into_response(),
    };
    if !matches!(body["command"].as_str(), Some("Typing" | "CancelTyping")) {
        return errcode(45072, "command invalid");
    }
    fake.world().sent.push(Sent {
        appid,
        api: "typing",
        touser,
        body,
    });
    ok()
}

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
        Err(answer) => return answer.into_response(),
    };
    let Some(template) = body["template_id"].as_str().map(str::to_owned) else {
        return errcode(40037, "invalid template_id");
    };
    if !body["data"].is_object() {
        return errcode(47003, "argument invalid! data is empty");
    }
    let mut world = fake.world();
    let grants = world
        .grants
        .entry((appid.clone(), touser.clone(), template))
        .or_default();
    if *grants == 0 {
        return errcode(43101, "user refuse to accept the msg");
    }
    *grants -= 1;
    world.sent.push(Sent {
        appid,
        api: "subscribe",
        touser,
        body,
    });
    ok()
}

async fn media_upload(
    State(fake): State<Fake>,
    Query(params): Params,
    mut form: Multipart,
) -> Response {
    if let Some(injected) = fake.injected("/cgi-bin/media/upload").await {
        return injected;
    }
    if let Err(answer) = fake.app_of(params.get("access_token")) {
        return answer.into_response();
    }
    if params.get("type").map(String::as_str) != Some("image") {
        return errcode(40004, "invalid media type");
    }
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("media") {
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let Ok(bytes) = field.bytes().await else {
                return errcode(47001, "data format error");
            };
            if !matches!(
                content_type.as_str(),
                "image/jpeg" | "image/png" | "image/gif"
            ) {
                return errcode(40005, "invalid file type");
            }
            if bytes.len() > MAX_IMAGE_BYTES {
                // sic: WeChat's spelling.
                return errcode(40006, "invalid meida size");
            }
            let media_id = format!("media-{}", uuid::Uuid::new_v4().simple());
            let mut world = fake.world();
            world.uploads += 1;
            world
                .media
                .insert(media_id.clone(), (content_type, bytes.to_vec()));
            return Json(
                json!({ "type": "image", "media_id": media_id, "created_at": now_ms() / 1000 }),
            )
            .into_response();
        }
    }
    errcode(41005, "media data missing")
}

async fn media_get(State(fake): State<Fake>, Query(params): Params) -> Response {
    if let Err(answer) = fake.app_of(params.get("access_token")) {
        return answer.into_response();
    }
    let found = params
        .get("media_id")
        .and_then(|id| fake.world().media.get(id).cloned());
    match found {
        Some((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => errcode(40007, "invalid media_id"),
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
}

fn control_error(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}

/// `POST /_fake/users/act` `{"appid", "openid", "action": "message" | "enter_session"}`.
async fn control_act(State(fake): State<Fake>, Json(user): Json<ControlUser>) -> Response {
    let action = match user.action.as_deref() {
        Some("message") => UserAction::Message,
        Some("enter_session") => UserAction::EnterSession,
        _ => return control_error(StatusCode::BAD_REQUEST, "action: message or enter_session"),
    };
    fake.user_acts(&user.appid, &user.openid, action);
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

/// `GET /_fake/sent[?appid=][&touser=]`: accepted sends, oldest first, each with its index.
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
