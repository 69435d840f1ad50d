//! What the partner API's handlers take from a request: the partner who signed it, and its
//! JSON body read into the operation's request type with refusals that name the field.

use super::error::ApiError;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use wxbridge_core::services::partner::PartnerError;

/// The partner a request is signed by (set by the signature layer).
#[derive(Debug, Clone)]
pub struct Partner(pub String);

/// A JSON body read into `T`; an empty body reads as `{}`.
#[derive(Debug)]
pub struct PartnerJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PartnerJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        // The signature layer has read the body whole, within its limit.
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        read_json(&body).map(PartnerJson)
    }
}

/// Reads a JSON body into `T`; a refusal names the field that is wrong. The body is a JSON
/// object, as the document says: serde would also read a struct from an array of its
/// fields in order (`[]` as a close with no closing text), a form nobody documents.
fn read_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => PartnerError::field("body", "must be a JSON object").into(),
                Err(_) => ApiError::InvalidJson,
            },
        );
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::InvalidJson;
        }
        // serde names fields and variants, not values, in these messages.
        let message = inner.to_string();
        let reason = ["missing field", "unknown field", "unknown variant"]
            .iter()
            .find(|prefix| message.starts_with(*prefix))
            .map(|_| {
                message
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_else(|| "has the wrong type or value".to_owned());
        let field = if path == "." { "body".to_owned() } else { path };
        PartnerError::field(field, reason).into()
    })
}
