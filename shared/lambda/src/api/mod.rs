//! The `api` function: the partners' HTTP API under `/v1`, an axum [`Router`] that
//! `lambda_http` runs (as the runtime's `http-axum` example does).
//!
//! Every request goes through the [`signature`] layer first (413, 401, 503), is then routed
//! (404, 405) with typed path and query extractors, and its JSON is read into the
//! operation's [`wire`] request type ([`extract`], 400 naming the field), handed to the
//! partner operations as core's values. They decide; [`error`] gives each refusal its
//! status and code. Answers are JSON written from core's answers by [`wire`], except media
//! (the image bytes).

pub mod error;
pub mod extract;
pub mod openapi;
pub mod signature;
#[cfg(test)]
mod tests;
pub mod wire;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use error::ApiError;
use extract::{Partner, PartnerJson};
use serde::Deserialize;
use std::sync::Arc;
use wire::{
    BindRequest, Binding, CloseRequest, ConversationList, ConversationView, ConversationsQuery,
    HandoverAnswer, HandoverRequest, HistoryPage, PushAccepted, PushRequest, ReplyAccepted,
    SendRequest, TypingAnswer, TypingRequest,
};
use wxbridge_core::metrics;
use wxbridge_core::ports::nonces::NonceStore;
use wxbridge_core::ports::wechat::Media;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::partner::{PartnerApi, PartnerError};

pub use signature::MAX_REQUEST_BYTES;

/// What the handlers share: the partner operations and where nonces are kept.
pub struct ApiState<P: Ports, N> {
    pub api: PartnerApi<P>,
    pub nonces: N,
}

type Shared<P, N> = State<Arc<ApiState<P, N>>>;
type Answer<T> = Result<T, ApiError>;

/// The partner API: every route, behind the signature layer.
pub fn router<P: Ports, N: NonceStore + 'static>(state: Arc<ApiState<P, N>>) -> Router {
    let routes = Router::new()
        .route("/v1/messages", post(send_message::<P, N>))
        .route("/v1/pushes", post(push::<P, N>))
        .route("/v1/conversations", get(conversations::<P, N>))
        .route(
            "/v1/conversations/{conversation_id}",
            get(conversation::<P, N>),
        )
        .route(
            "/v1/conversations/{conversation_id}/messages",
            get(history::<P, N>),
        )
        .route(
            "/v1/conversations/{conversation_id}/typing",
            post(typing::<P, N>),
        )
        .route(
            "/v1/conversations/{conversation_id}/handover",
            post(handover::<P, N>),
        )
        .route(
            "/v1/conversations/{conversation_id}/close",
            post(close::<P, N>),
        )
        .route("/v1/bindings/{channel}/{openid}", put(bind::<P, N>))
        .route(
            "/v1/conversations/{conversation_id}/media/{message_id}",
            get(kept_media::<P, N>),
        )
        .route("/v1/media/{channel}/{media_id}", get(media::<P, N>))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::WrongMethod })
        .with_state(Arc::clone(&state));
    Router::new()
        .fallback_service(routes)
        .layer(from_fn_with_state(state, signature::check::<P, N>))
}

/// Answers one request (as `lambda_http` hands it over) with the router.
pub async fn answer(router: &Router, request: lambda_http::Request) -> Response {
    use tower::ServiceExt;
    match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Reply to a user: stored as `queued`, sent by `dispatch` in order per conversation; a
/// repeat of the same `client_message_id` answers the first message. The answer says
/// whether the window will hold it (`will_hold`) and how the window stands.
#[utoipa::path(
    post,
    path = "/v1/messages",
    request_body = SendRequest,
    responses(
        openapi::AnyRoute,
        (status = 202, description = "Accepted: stored and queued", body = ReplyAccepted),
        (status = 403, response = openapi::Forbidden),
        (status = 409, response = openapi::Conflict),
    )
)]
async fn send_message<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    PartnerJson(request): PartnerJson<SendRequest>,
) -> Answer<(StatusCode, Json<ReplyAccepted>)> {
    let accepted = state.api.send(&partner, request.into()).await?;
    metrics::count("replies_accepted");
    Ok((StatusCode::ACCEPTED, Json(accepted.into())))
}

/// Push an app notification: a customer-service message while the window allows, else a
/// subscribe message the user granted, else kept in the app inbox (undeliverable); reported
/// by a `push.status` webhook. A repeat of the same `push_id` answers the first push.
#[utoipa::path(
    post,
    path = "/v1/pushes",
    request_body = PushRequest,
    responses(
        openapi::AnyRoute,
        (status = 202, description = "Accepted: stored and queued", body = PushAccepted),
        (status = 403, response = openapi::Forbidden),
        (status = 409, response = openapi::Conflict),
    )
)]
async fn push<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    PartnerJson(request): PartnerJson<PushRequest>,
) -> Answer<(StatusCode, Json<PushAccepted>)> {
    let accepted = state.api.push(&partner, request.into()).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted.into())))
}

/// The partner's conversations with a channel user (`channel` and `openid`), or with the
/// users bound to an app user (`app_user_id`, and `channel` to keep to one), latest first.
#[utoipa::path(
    get,
    path = "/v1/conversations",
    params(ConversationsQuery),
    responses(
        openapi::AnyRoute,
        (status = 200, description = "The partner's conversations", body = ConversationList),
        (status = 403, response = openapi::Forbidden),
    )
)]
async fn conversations<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    query: Result<Query<ConversationsQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<Json<ConversationList>> {
    let Query(query) = query.map_err(|_| PartnerError::field("query", "cannot be read"))?;
    let conversations = state.api.conversations(&partner, &query.into()).await?;
    Ok(Json(ConversationList {
        conversations: conversations.into_iter().map(Into::into).collect(),
    }))
}

/// One of the partner's conversations: its user's app user, the active partner (merged
/// mode) and the window — sends left, until when, the entry allowance, the user's grants
/// and last message.
#[utoipa::path(
    get,
    path = "/v1/conversations/{conversation_id}",
    params(("conversation_id" = String, Path, description = "The conversation, as webhooks and answers name it")),
    responses(
        openapi::AnyRoute,
        (status = 200, description = "The conversation and its window now", body = ConversationView),
    )
)]
async fn conversation<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path(conversation_id): Path<String>,
) -> Answer<Json<ConversationView>> {
    let view = state.api.conversation(&partner, &conversation_id).await?;
    Ok(Json(view.into()))
}

/// `GET /v1/conversations/{id}/messages`: `limit` (1–100) and `cursor` as given.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many messages, 1 to 100 (20 unless given).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    #[serde(default)]
    pub limit: Option<String>,
    /// Where the page starts: the `next_cursor` of the page before.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A conversation's messages, newest first, a page at a time (pass `next_cursor` as
/// `cursor` for the next, older page).
#[utoipa::path(
    get,
    path = "/v1/conversations/{conversation_id}/messages",
    params(("conversation_id" = String, Path, description = "The conversation, as webhooks and answers name it"), HistoryQuery),
    responses(
        openapi::AnyRoute,
        (status = 200, description = "A page of messages", body = HistoryPage),
    )
)]
async fn history<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path(conversation_id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<Json<HistoryPage>> {
    let Query(query) = query.map_err(|_| PartnerError::field("query", "cannot be read"))?;
    let page = state
        .api
        .history(
            &partner,
            &conversation_id,
            query.limit.as_deref(),
            query.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page.into()))
}

/// Hand the user over to another partner (merged mode): the user's next message goes to it;
/// `note_to_user` is sent as this partner's reply; the receiving partner gets a
/// `conversation.handed_over` webhook with the latest messages and `note_to_partner`.
/// Who may hand to whom is configuration (`partners[].handover_to`).
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/handover",
    params(("conversation_id" = String, Path, description = "The handing partner's conversation")),
    request_body = HandoverRequest,
    responses(
        openapi::AnyRoute,
        (status = 200, description = "Handed over; the receiving partner has the webhook", body = HandoverAnswer),
        (status = 403, response = openapi::Forbidden),
        (status = 409, response = openapi::Conflict),
    )
)]
async fn handover<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path(conversation_id): Path<String>,
    PartnerJson(request): PartnerJson<HandoverRequest>,
) -> Answer<Json<HandoverAnswer>> {
    let done = state
        .api
        .hand_over(&partner, &conversation_id, request.into())
        .await?;
    metrics::count("handovers");
    Ok(Json(done.into()))
}

/// Close the conversation, after sending `closing_text` as a reply: it is `closed` until
/// the user writes again (which reaches the partner as `conversation.reopened`); the
/// partner gets `conversation.closed`. A repeat keeps the first close.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/close",
    params(("conversation_id" = String, Path, description = "The conversation, as webhooks and answers name it")),
    request_body = CloseRequest,
    responses(
        openapi::AnyRoute,
        (status = 200, description = "Closed: the conversation as it is now", body = ConversationView),
        (status = 409, response = openapi::Conflict),
    )
)]
async fn close<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path(conversation_id): Path<String>,
    PartnerJson(request): PartnerJson<CloseRequest>,
) -> Answer<Json<ConversationView>> {
    let closed = state
        .api
        .close(&partner, &conversation_id, request.into())
        .await?;
    metrics::count("conversations_closed");
    Ok(Json(closed.into()))
}

/// Show (or stop) the typing indicator in the user's WeChat chat (it lasts 15 s).
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/typing",
    params(("conversation_id" = String, Path, description = "The conversation, as webhooks and answers name it")),
    request_body = TypingRequest,
    responses(
        openapi::AnyRoute,
        (status = 200, description = "The indicator is shown (or stopped)", body = TypingAnswer),
        (status = 403, response = openapi::Forbidden),
        (status = 409, response = openapi::Conflict),
        (status = 502, response = openapi::WeChatUnavailable),
    )
)]
async fn typing<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path(conversation_id): Path<String>,
    PartnerJson(request): PartnerJson<TypingRequest>,
) -> Answer<Json<TypingAnswer>> {
    let answer = state
        .api
        .typing(&partner, &conversation_id, request.into())
        .await?;
    Ok(Json(answer.into()))
}

/// Bind a WeChat user (channel and openid) the partner talks with to an app user; only
/// partners with `can_bind` may, and rebinding needs `replace`.
#[utoipa::path(
    put,
    path = "/v1/bindings/{channel}/{openid}",
    params(
        ("channel" = String, Path, description = "The channel (mini program) id"),
        ("openid" = String, Path, description = "The user's openid on that channel"),
    ),
    request_body = BindRequest,
    responses(
        openapi::AnyRoute,
        (status = 200, description = "The user is bound", body = Binding),
        (status = 403, response = openapi::Forbidden),
        (status = 409, response = openapi::Conflict),
    )
)]
async fn bind<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path((channel, openid)): Path<(String, String)>,
    PartnerJson(request): PartnerJson<BindRequest>,
) -> Answer<Json<Binding>> {
    let binding = state
        .api
        .bind(&partner, &channel, &openid, request.into())
        .await?;
    Ok(Json(binding.into()))
}

/// An image a user sent in one of the partner's conversations (its `MediaId`), as WeChat
/// holds it for 3 days: the bytes, with WeChat's content type. Another partner's user's
/// image is not found, exactly as a media id no user sent.
#[utoipa::path(
    get,
    path = "/v1/media/{channel}/{media_id}",
    params(
        ("channel" = String, Path, description = "The channel (mini program) id"),
        ("media_id" = String, Path, description = "The MediaId of the user's message (1-256 of A-Z a-z 0-9 - _ . : @)",
            pattern = r"^[A-Za-z0-9._:@-]+$", min_length = 1, max_length = 256),
    ),
    responses(
        openapi::AnyRoute,
        (status = 200, description = "The image", content_type = "image/*", body = Vec<u8>),
        (status = 403, response = openapi::Forbidden),
        (status = 502, response = openapi::WeChatUnavailable),
    )
)]
async fn media<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path((channel, media_id)): Path<(String, String)>,
) -> Answer<Response> {
    let media = state.api.media(&partner, &channel, &media_id).await?;
    Ok(image_answer(media))
}

/// An image message's copy, as the bridge keeps it in the stack's bucket (from either
/// side, for as long as the bucket's retention): the bytes, with their type. The message's
/// `media.status` says whether it is kept yet.
#[utoipa::path(
    get,
    path = "/v1/conversations/{conversation_id}/media/{message_id}",
    params(
        ("conversation_id" = String, Path, description = "The conversation id"),
        ("message_id" = String, Path, description = "The id of the image message (1-256 of A-Z a-z 0-9 - _ . : @)",
            pattern = r"^[A-Za-z0-9._:@-]+$", min_length = 1, max_length = 256),
    ),
    responses(
        openapi::AnyRoute,
        (status = 200, description = "The image", content_type = "image/*", body = Vec<u8>),
    )
)]
async fn kept_media<P: Ports, N: NonceStore>(
    State(state): Shared<P, N>,
    Extension(Partner(partner)): Extension<Partner>,
    Path((conversation_id, message_id)): Path<(String, String)>,
) -> Answer<Response> {
    let media = state
        .api
        .kept_media(&partner, &conversation_id, &message_id)
        .await?;
    Ok(image_answer(media))
}

fn image_answer(media: Media) -> Response {
    let content_type = HeaderValue::try_from(media.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, content_type)], media.bytes).into_response()
}
