//! The partner API's one mapping from a refusal to its HTTP status and stable code. The
//! answer is `{"error": code, "reason": text}`; the text names fields and rules, never
//! their content.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use wxbridge_core::ports::nonces::NonceError;
use wxbridge_core::services::partner::auth::AuthError;
use wxbridge_core::services::partner::{ConflictCode, PartnerError};

/// Why the API did not do a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The partner operations refused it.
    #[error(transparent)]
    Partner(#[from] PartnerError),
    /// The request is not signed by a partner, or is a replay.
    #[error(transparent)]
    Unauthorized(AuthError),
    /// The nonces cannot be checked now.
    #[error("cannot check the request now; retry")]
    NoncesUnavailable(NonceError),
    #[error("the body is not JSON")]
    InvalidJson,
    #[error("the body is over 512 KiB")]
    TooLarge,
    /// The request could not be finished before the function's deadline (the store was
    /// slow): what was done is safe to do again, so the partner repeats the request.
    #[error("the request could not be finished in time; repeat it as it was")]
    OutOfTime,
    #[error("no such route")]
    NoRoute,
    #[error("this path takes another method")]
    WrongMethod,
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unavailable(error) => Self::NoncesUnavailable(error),
            error => Self::Unauthorized(error),
        }
    }
}

/// What a refused request answered, for the access log and metrics.
#[derive(Debug, Clone, Copy)]
pub struct Refused(pub &'static str);

impl ApiError {
    /// The HTTP status and the stable code of the answer.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use PartnerError as P;
        match self {
            Self::Partner(error) => match error {
                P::InvalidField { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
                P::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                P::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
                P::Conflict { code, .. } => (StatusCode::CONFLICT, conflict_code(*code)),
                P::Store(_) | P::NotQueued(_) | P::NotDelivered(_) | P::PushesNotSetUp => {
                    (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                }
                P::WeChatRefused(_) => (StatusCode::CONFLICT, "wechat_refused"),
                P::SubMerchantNotRegistered(_) => {
                    (StatusCode::CONFLICT, "sub_merchant_not_registered")
                }
                P::WeChatUnavailable => (StatusCode::BAD_GATEWAY, "wechat_unavailable"),
                P::MediaNotFound(_) => (StatusCode::NOT_FOUND, "media_not_found"),
                P::MediaTooLarge => (StatusCode::BAD_GATEWAY, "media_too_large"),
                P::MediaNotStored(_) => (StatusCode::NOT_FOUND, "media_not_stored"),
                P::ArchiveUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            },
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NoncesUnavailable(_) | Self::OutOfTime => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            Self::InvalidJson => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            Self::WrongMethod => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }
}

fn conflict_code(code: ConflictCode) -> &'static str {
    match code {
        ConflictCode::ClientMessageIdReused => "client_message_id_reused",
        ConflictCode::PushIdReused => "push_id_reused",
        ConflictCode::AmbiguousRecipient => "ambiguous_recipient",
        ConflictCode::AlreadyBound => "already_bound",
        ConflictCode::Changed => "conflict",
        ConflictCode::HandoverNotInThisMode => "handover_not_supported",
        ConflictCode::NotActivePartner => "not_active_partner",
        ConflictCode::HandoverIdReused => "handover_id_reused",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::NoncesUnavailable(error) = &self {
            tracing::warn!(%error, "nonce store unavailable");
        }
        let (status, code) = self.status_and_code();
        let body = serde_json::json!({ "error": code, "reason": self.to_string() });
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(Refused(code));
        response
    }
}
