//! The partner API's OpenAPI document, generated from the handlers and the wire types
//! ([`super::wire`]), with the webhooks partners receive under `webhooks`.
//! `api/openapi.json` is this document, committed; a test keeps the two equal
//! (`WXBRIDGE_WRITE_OPENAPI=1 cargo test -p wxbridge-lambda openapi` rewrites the file).

use super::wire::webhooks::{self, Webhooks};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse, ToSchema};

/// A refused request: a stable code (`error`) and a reason that names fields and rules,
/// never their content.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refusal {
    /// `invalid_request`, `invalid_json`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `client_message_id_reused`, `push_id_reused`,
    /// `ambiguous_recipient`, `already_bound`, `conflict`, `handover_not_supported`,
    /// `not_active_partner`, `handover_id_reused`, `wechat_refused`,
    /// `sub_merchant_not_registered`, `too_large`, `media_not_found`, `media_not_stored`,
    /// `media_too_large`, `wechat_unavailable` or `unavailable`.
    pub error: String,
    pub reason: String,
}

macro_rules! refusals {
    ($($name:ident: $description:literal),+ $(,)?) => {
        $(
            #[derive(ToResponse)]
            #[response(description = $description)]
            #[allow(dead_code)]
            pub struct $name(Refusal);
        )+
    };
}

refusals! {
    BadRequest: "`invalid_request` (the reason names the field) or `invalid_json`",
    Unauthorized: "`unauthorized`: not signed by a partner, stale, or a replay",
    Forbidden: "`forbidden`: another partner's channel, a template or right the partner lacks",
    NotFound: "`not_found` (nothing this partner may see by that name, or no such route), `media_not_found` (WeChat does not hold the media id) or `media_not_stored` (the message's image is not kept: its `media.status` says why)",
    MethodNotAllowed: "`method_not_allowed`: the path takes another method",
    Conflict: "`client_message_id_reused`, `push_id_reused`, `ambiguous_recipient`, `already_bound`, `conflict`, `handover_not_supported` (a hand-over outside merged mode), `not_active_partner` (a hand-over of a user who talks to another partner), `handover_id_reused`, `wechat_refused` or `sub_merchant_not_registered` (sub-merchant mode: register the partner's sub-merchant first)",
    TooLarge: "`too_large`: the body is over 512 KiB",
    WeChatUnavailable: "`wechat_unavailable` (retry) or `media_too_large`",
    Unavailable: "`unavailable`: the store, the queue or the nonces cannot be reached now; repeat the request with the same id",
}

/// What any route may answer besides its own answers.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AnyRoute {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 405)]
    MethodNotAllowed(#[ref_response] MethodNotAllowed),
    #[response(status = 413)]
    TooLarge(#[ref_response] TooLarge),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// The signature every request carries (the other headers it needs are in its
/// description).
struct PartnerSignature;

impl Modify for PartnerSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = ApiKey::Header(ApiKeyValue::with_description(
            "X-Wxbridge-Signature",
            "v1= + hex HMAC-SHA256(signing_secret, METHOD\\npath?query\\ntimestamp\\nnonce\\nhex SHA-256(body)), \
             with X-Wxbridge-Partner, X-Wxbridge-Timestamp (within 5 minutes) and X-Wxbridge-Nonce \
             (8-64 of A-Z a-z 0-9 - _, used once). A request is authenticated before it is routed.",
        ));
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("partnerSignature", SecurityScheme::ApiKey(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wxbridge partner API",
        version = "1",
        description = "Partners (the platform's agents, hotels, airlines, shops) answer WeChat users \
            from the app IM, and push app notifications to them, through this API. Every request is \
            signed (docs/partner-api.md, Authentication). A partner sees only its own conversations: \
            another partner's are not found."
    ),
    paths(
        super::send_message,
        super::push,
        super::conversations,
        super::conversation,
        super::history,
        super::typing,
        super::handover,
        super::close,
        super::bind,
        super::kept_media,
        super::media,
    ),
    components(
        schemas(
            Refusal,
            webhooks::UserEvent,
            webhooks::HandedOver,
            webhooks::ConversationClosed,
            webhooks::ReplyStatus,
            webhooks::PushStatus
        ),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            MethodNotAllowed,
            Conflict,
            TooLarge,
            WeChatUnavailable,
            Unavailable
        )
    ),
    modifiers(&PartnerSignature, &Webhooks),
    security(("partnerSignature" = []))
)]
pub struct ApiDoc;

/// The document as committed: pretty JSON with a final newline.
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes");
    json.push('\n');
    json
}
