//! Opening a WeChat push: verify, check the clock, decrypt, parse.
//!
//! Works for both push formats (XML and JSON, told apart by the body's first byte) and all
//! three encryption modes. A request with `encrypt_type=aes` is read from its `Encrypt`
//! field under `msg_signature`, which covers the body; otherwise the body is read as
//! plaintext under `signature`, which does not — so a channel configured as compatible or
//! safe refuses plaintext requests instead of trusting an unsigned body.

use crate::config::{Channel, EncryptionMode};
use crate::crypto::CryptoError;
use crate::event::{CallbackEvent, EventError};
use crate::signature::{msg_signature, signature_matches, url_signature};
use crate::xml::{self, XmlError};
use serde_json::Value;
use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CallbackError {
    #[error("query parameter {0} is missing")]
    MissingParameter(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("timestamp is not a number")]
    BadTimestamp,
    #[error("timestamp is outside the accepted window")]
    StaleTimestamp,
    #[error("this channel accepts only encrypted pushes (encrypt_type=aes)")]
    EncryptionRequired,
    #[error("this channel has no EncodingAESKey configured")]
    NoKey,
    #[error("body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("body is not UTF-8")]
    BodyNotUtf8,
    #[error("body is neither XML nor JSON")]
    UnknownFormat,
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("ToUserName does not match this channel")]
    WrongRecipient,
}

impl CallbackError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingParameter(_)
            | Self::BadSignature
            | Self::BadTimestamp
            | Self::StaleTimestamp
            | Self::EncryptionRequired => 401,
            Self::BodyTooLarge(_) => 413,
            Self::NoKey => 500,
            _ => 400,
        }
    }

    /// A stable machine-readable name for the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingParameter(_) => "missing_parameter",
            Self::BadSignature => "bad_signature",
            Self::BadTimestamp | Self::StaleTimestamp => "stale_timestamp",
            Self::EncryptionRequired => "encryption_required",
            Self::NoKey => "channel_misconfigured",
            Self::BodyTooLarge(_) => "body_too_large",
            Self::WrongRecipient => "wrong_recipient",
            Self::Crypto(CryptoError::AppIdMismatch) => "wrong_appid",
            Self::Crypto(_) => "bad_ciphertext",
            _ => "malformed_body",
        }
    }
}

/// The query parameters WeChat puts on the push URL.
#[derive(Debug, Default, Clone)]
pub struct PushQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
}

impl PushQuery {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut query = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                "signature" => &mut query.signature,
                "timestamp" => &mut query.timestamp,
                "nonce" => &mut query.nonce,
                "echostr" => &mut query.echostr,
                "encrypt_type" => &mut query.encrypt_type,
                "msg_signature" => &mut query.msg_signature,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        query
    }

    fn required<'q>(value: &'q Option<String>, name: &'static str) -> Result<&'q str, CallbackError> {
        value.as_deref().ok_or(CallbackError::MissingParameter(name))
    }

    fn is_encrypted(&self) -> bool {
        self.encrypt_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("aes"))
    }
}

/// Clock rules for a request: now, and how far a `timestamp` may drift from it.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub now_secs: i64,
    pub tolerance_secs: Option<u64>,
}

impl Freshness {
    fn check<'q>(&self, query: &'q PushQuery) -> Result<&'q str, CallbackError> {
        let timestamp = PushQuery::required(&query.timestamp, "timestamp")?;
        let Some(tolerance) = self.tolerance_secs else {
            return Ok(timestamp);
        };
        let stamped: i64 = timestamp.parse().map_err(|_| CallbackError::BadTimestamp)?;
        if self.now_secs.abs_diff(stamped) > tolerance {
            return Err(CallbackError::StaleTimestamp);
        }
        Ok(timestamp)
    }
}

/// GET URL verification: the `echostr` to answer with, when the signature holds.
pub fn verify_url<'q>(channel: &Channel, query: &'q PushQuery, freshness: Freshness) -> Result<&'q str, CallbackError> {
    let timestamp = freshness.check(query)?;
    let nonce = PushQuery::required(&query.nonce, "nonce")?;
    let signature = PushQuery::required(&query.signature, "signature")?;
    let echostr = PushQuery::required(&query.echostr, "echostr")?;
    if !signature_matches(signature, &url_signature(channel.config.token.expose(), timestamp, nonce)) {
        return Err(CallbackError::BadSignature);
    }
    Ok(echostr)
}

/// POST: verifies and opens a push into its event.
pub fn open_push(
    channel: &Channel,
    query: &PushQuery,
    body: &[u8],
    freshness: Freshness,
) -> Result<CallbackEvent, CallbackError> {
    let timestamp = freshness.check(query)?;
    let nonce = PushQuery::required(&query.nonce, "nonce")?;
    let token = channel.config.token.expose();
    let body = std::str::from_utf8(body).map_err(|_| CallbackError::BodyNotUtf8)?;

    let document = if query.is_encrypted() {
        let received = PushQuery::required(&query.msg_signature, "msg_signature")?;
        let outer = parse_document(body)?;
        let encrypt = outer
            .get("Encrypt")
            .and_then(Value::as_str)
            .ok_or(EventError::MissingField("Encrypt"))?;
        if !signature_matches(received, &msg_signature(token, timestamp, nonce, encrypt)) {
            return Err(CallbackError::BadSignature);
        }
        let key = channel.key.as_ref().ok_or(CallbackError::NoKey)?;
        parse_document(&key.decrypt(encrypt, &channel.config.app_id)?)?
    } else {
        if channel.config.mode != EncryptionMode::Plaintext {
            return Err(CallbackError::EncryptionRequired);
        }
        let received = PushQuery::required(&query.signature, "signature")?;
        if !signature_matches(received, &url_signature(token, timestamp, nonce)) {
            return Err(CallbackError::BadSignature);
        }
        parse_document(body)?
    };

    let event = CallbackEvent::from_value(document)?;
    if event.to_user_name != channel.config.original_id {
        return Err(CallbackError::WrongRecipient);
    }
    Ok(event)
}

/// Reads an XML or JSON document, told apart by its first non-blank character.
pub fn parse_document(text: &str) -> Result<Value, CallbackError> {
    let text = text.trim_start_matches('\u{feff}').trim_start();
    match text.as_bytes().first() {
        Some(b'<') => Ok(xml::parse(text)?),
        Some(b'{') => serde_json::from_str(text).map_err(|e| CallbackError::Json(e.to_string())),
        _ => Err(CallbackError::UnknownFormat),
    }
}

/// Query pairs of a request, for callers that hold them as a map.
pub fn query_from_map(map: &HashMap<String, String>) -> PushQuery {
    PushQuery::from_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}
