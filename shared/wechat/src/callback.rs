//! Opening a WeChat push: verify, check the clock, decrypt, parse.
//!
//! Works for both push formats (XML and JSON, told apart by the body's first byte) and all
//! three encryption modes. A request with `encrypt_type=aes` is read from its `Encrypt`
//! field under `msg_signature`, which covers the body; otherwise the body is read as
//! plaintext under `signature`, which does not — so a channel configured as compatible or
//! safe refuses plaintext requests instead of trusting an unsigned body.

use crate::crypto::CryptoError;
use crate::document::Node;
use crate::endpoint::{EncryptionMode, PushEndpoint};
use crate::event::{CallbackEvent, EventError, EventKind, MAX_ACCOUNT_ID_BYTES};
use crate::signature::{msg_signature, signature_matches, url_signature};
use crate::xml::{self, XmlError};
use serde::Deserialize;
use std::borrow::Cow;
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
    /// An encrypted push to an endpoint that takes plaintext (no EncodingAESKey): the
    /// request does not match the endpoint's message-push settings.
    #[error("this channel takes plaintext pushes: no EncodingAESKey is configured for it")]
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
    /// A sentence for the answer and the logs. Parser messages can quote the request, so
    /// those are replaced by fixed sentences; the full message is only logged at debug.
    pub fn reason(&self) -> Cow<'static, str> {
        match self {
            Self::Json(_) => "body is not valid JSON".into(),
            Self::Xml(XmlError::Entity(_)) => {
                "XML entity references other than the five predefined ones are refused".into()
            }
            Self::Xml(XmlError::Malformed(_)) => "XML is not well formed".into(),
            other => other.to_string().into(),
        }
    }

    /// A stable machine-readable name for the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingParameter(_) => "missing_parameter",
            Self::BadSignature => "bad_signature",
            Self::BadTimestamp => "bad_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::EncryptionRequired => "encryption_required",
            Self::NoKey => "encryption_not_configured",
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
    pub openid: Option<String>,
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
                "openid" => &mut query.openid,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        query
    }

    fn required<'q>(
        value: &'q Option<String>,
        name: &'static str,
    ) -> Result<&'q str, CallbackError> {
        value
            .as_deref()
            .ok_or(CallbackError::MissingParameter(name))
    }

    fn is_encrypted(&self) -> bool {
        self.encrypt_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("aes"))
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
pub fn verify_url<'q>(
    endpoint: &PushEndpoint,
    query: &'q PushQuery,
    freshness: Freshness,
) -> Result<&'q str, CallbackError> {
    let timestamp = freshness.check(query)?;
    let nonce = PushQuery::required(&query.nonce, "nonce")?;
    let signature = PushQuery::required(&query.signature, "signature")?;
    let echostr = PushQuery::required(&query.echostr, "echostr")?;
    if !signature_matches(
        signature,
        &url_signature(endpoint.token(), timestamp, nonce),
    ) {
        return Err(CallbackError::BadSignature);
    }
    Ok(echostr)
}

/// POST: verifies and opens a push into its event.
pub fn open_push(
    endpoint: &PushEndpoint,
    query: &PushQuery,
    body: &[u8],
    freshness: Freshness,
) -> Result<CallbackEvent, CallbackError> {
    let timestamp = freshness.check(query)?;
    let nonce = PushQuery::required(&query.nonce, "nonce")?;
    let token = endpoint.token();
    let body = std::str::from_utf8(body).map_err(|_| CallbackError::BodyNotUtf8)?;

    if query.is_encrypted() {
        let received = PushQuery::required(&query.msg_signature, "msg_signature")?;
        let encrypt = encrypt_field(body)?;
        if !signature_matches(received, &msg_signature(token, timestamp, nonce, &encrypt)) {
            return Err(CallbackError::BadSignature);
        }
        let key = endpoint.key.as_ref().ok_or(CallbackError::NoKey)?;
        let plaintext = key.decrypt(&encrypt, &endpoint.app_id)?;
        // From here the push is WeChat's: refusing it would lose it after WeChat's retries.
        return Ok(read_event(&plaintext).unwrap_or_else(|error| {
            unreadable_event(endpoint, query, timestamp, &plaintext, &error)
        }));
    }
    if endpoint.mode != EncryptionMode::Plaintext {
        return Err(CallbackError::EncryptionRequired);
    }
    let received = PushQuery::required(&query.signature, "signature")?;
    if !signature_matches(received, &url_signature(token, timestamp, nonce)) {
        return Err(CallbackError::BadSignature);
    }
    // The URL signature does not cover the body: nothing vouches for an unreadable one, and
    // a readable one must at least be addressed to this channel.
    let event = read_event(body)?;
    if event.to_user_name != endpoint.original_id {
        return Err(CallbackError::WrongRecipient);
    }
    Ok(event)
}

fn read_event(plaintext: &str) -> Result<CallbackEvent, CallbackError> {
    Ok(CallbackEvent::from_document(parse_document(plaintext)?)?)
}

/// An authenticated push the bridge cannot read, kept as a raw `unreadable` event with its
/// text and the reason, so that it reaches the store and an operator.
fn unreadable_event(
    endpoint: &PushEndpoint,
    query: &PushQuery,
    timestamp: &str,
    plaintext: &str,
    error: &CallbackError,
) -> CallbackEvent {
    tracing::warn!(channel = %endpoint.name, code = error.code(), "authenticated push is unreadable; kept raw");
    let fields = serde_json::Map::from_iter([
        ("body".to_owned(), serde_json::Value::from(plaintext)),
        ("error".to_owned(), serde_json::Value::from(error.reason())),
    ]);
    CallbackEvent {
        to_user_name: endpoint.original_id.clone(),
        // The query's openid is not signed: kept only when it could be an openid.
        from_user_name: query
            .openid
            .clone()
            .filter(|openid| openid.len() <= MAX_ACCOUNT_ID_BYTES && !openid.is_empty())
            .filter(|openid| !openid.chars().any(char::is_control))
            .unwrap_or_else(|| "unknown".to_owned()),
        create_time: timestamp.parse().unwrap_or_default(),
        business_id: None,
        kind: EventKind::Raw {
            msg_type: UNREADABLE.to_owned(),
            event: None,
            msg_id: None,
            fields,
        },
    }
}

/// The `msg_type` of a raw event the bridge could authenticate but not read.
pub const UNREADABLE: &str = "unreadable";

/// The `Encrypt` field of an encrypted push. Only that field matters in the envelope, so
/// JSON is read straight into it, skipping the rest.
fn encrypt_field(body: &str) -> Result<Cow<'_, str>, CallbackError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "Encrypt", borrow, default)]
        encrypt: Option<Cow<'a, str>>,
    }
    let missing = || CallbackError::Event(EventError::MissingField("Encrypt"));
    let body = without_leading_blanks(body);
    if body.starts_with('{') {
        let envelope: Envelope =
            serde_json::from_str(body).map_err(|e| CallbackError::Json(e.to_string()))?;
        return envelope.encrypt.ok_or_else(missing);
    }
    match parse_document(body)? {
        Node::Object(fields) => fields
            .0
            .into_iter()
            .find(|(name, _)| name == "Encrypt")
            .and_then(|(_, node)| match node {
                Node::Text(text) => Some(text),
                _ => None,
            })
            .ok_or_else(missing),
        _ => Err(missing()),
    }
}

fn without_leading_blanks(text: &str) -> &str {
    text.trim_start_matches('\u{feff}').trim_start()
}

/// Reads an XML or JSON document, told apart by its first non-blank character.
pub fn parse_document(text: &str) -> Result<Node<'_>, CallbackError> {
    let text = without_leading_blanks(text);
    match text.as_bytes().first() {
        Some(b'<') => Ok(xml::parse(text)?),
        Some(b'{') => serde_json::from_str(text).map_err(|e| CallbackError::Json(e.to_string())),
        _ => Err(CallbackError::UnknownFormat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::PushFormat;
    use crate::event::EventKind;
    use crate::vectors::*;
    use proptest::prelude::Strategy;
    use std::collections::HashMap;

    /// The official mini-program endpoint in each mode, and the Official Accounts sample.
    fn channels() -> HashMap<&'static str, PushEndpoint> {
        let mp = |name: &str, mode| {
            PushEndpoint::new(
                name,
                MP_APPID,
                MP_ORIGINAL_ID,
                MP_TOKEN,
                Some(MP_ENCODING_AES_KEY),
                mode,
                PushFormat::Json,
            )
            .unwrap()
        };
        let oa = PushEndpoint::new(
            "oa",
            OA_APPID,
            OA_ORIGINAL_ID,
            OA_TOKEN,
            Some(OA_ENCODING_AES_KEY),
            EncryptionMode::Compatible,
            PushFormat::Xml,
        )
        .unwrap();
        HashMap::from([
            ("plain", mp("plain", EncryptionMode::Plaintext)),
            ("safe", mp("safe", EncryptionMode::Safe)),
            ("oa", oa),
        ])
    }

    fn query(pairs: &[(&str, &str)]) -> PushQuery {
        PushQuery::from_pairs(pairs.iter().copied())
    }

    fn at(timestamp: &str) -> Freshness {
        Freshness {
            now_secs: timestamp.parse().unwrap(),
            tolerance_secs: Some(300),
        }
    }

    fn safe_query() -> Vec<(&'static str, &'static str)> {
        MP_SAFE_QUERY.to_vec()
    }

    fn open_safe(pairs: &[(&str, &str)], body: &str) -> Result<CallbackEvent, CallbackError> {
        open_push(
            channels().get("safe").unwrap(),
            &query(pairs),
            body.as_bytes(),
            at(MP_SAFE_TIMESTAMP),
        )
    }

    #[test]
    fn get_verification_vector_answers_echostr() {
        let channels = channels();
        let q = query(&[
            ("signature", MP_GET_SIGNATURE),
            ("timestamp", MP_GET_TIMESTAMP),
            ("nonce", MP_GET_NONCE),
            ("echostr", MP_GET_ECHOSTR),
        ]);
        assert_eq!(
            verify_url(channels.get("plain").unwrap(), &q, at(MP_GET_TIMESTAMP)),
            Ok(MP_GET_ECHOSTR)
        );
        let forged = query(&[
            ("signature", MP_PLAIN_SIGNATURE),
            ("timestamp", MP_GET_TIMESTAMP),
            ("nonce", MP_GET_NONCE),
            ("echostr", MP_GET_ECHOSTR),
        ]);
        assert_eq!(
            verify_url(
                channels.get("plain").unwrap(),
                &forged,
                at(MP_GET_TIMESTAMP)
            ),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn plaintext_post_vector_opens() {
        let channels = channels();
        let q = query(&[
            ("signature", MP_PLAIN_SIGNATURE),
            ("timestamp", MP_PLAIN_TIMESTAMP),
            ("nonce", MP_PLAIN_NONCE),
        ]);
        let event = open_push(
            channels.get("plain").unwrap(),
            &q,
            MP_PLAIN_BODY.as_bytes(),
            at(MP_PLAIN_TIMESTAMP),
        )
        .unwrap();
        assert_eq!(event.from_user_name, MP_OPENID);
        assert_eq!(event.event_name(), Some("debug_demo"));
        let EventKind::Raw { fields, .. } = event.kind else {
            panic!()
        };
        assert_eq!(fields["debug_str"], "hello world");
    }

    #[test]
    fn safe_mode_json_vector_opens() {
        let event = open_safe(&safe_query(), MP_SAFE_BODY).unwrap();
        assert_eq!(event.create_time, 1714112445);
        assert_eq!(event.from_user_name, MP_OPENID);
        assert_eq!(event.event_name(), Some("debug_demo"));
    }

    #[test]
    fn compatible_mode_xml_vector_opens_from_the_ciphertext() {
        let channels = channels();
        // The outer plaintext is deliberately different: only the signed ciphertext counts.
        let body = format!(
            "<xml><ToUserName><![CDATA[{OA_ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[{OA_OPENID}]]></FromUserName><CreateTime>1409735669</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[tampered]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[{OA_ENCRYPT}]]></Encrypt></xml>"
        );
        let q = query(&[
            ("timestamp", OA_TIMESTAMP),
            ("nonce", OA_NONCE),
            ("encrypt_type", "aes"),
            ("msg_signature", OA_MSG_SIGNATURE),
        ]);
        let event = open_push(
            channels.get("oa").unwrap(),
            &q,
            body.as_bytes(),
            at(OA_TIMESTAMP),
        )
        .unwrap();
        assert_eq!(event.from_user_name, OA_OPENID);
        assert_eq!(
            event.kind,
            EventKind::Text {
                msg_id: "6054768590064713728".into(),
                content: "abcdteT".into()
            }
        );
    }

    fn replace(
        pairs: &[(&'static str, &'static str)],
        name: &str,
        value: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        pairs
            .iter()
            .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
            .collect()
    }

    fn without(
        pairs: &[(&'static str, &'static str)],
        name: &str,
    ) -> Vec<(&'static str, &'static str)> {
        pairs.iter().copied().filter(|(k, _)| *k != name).collect()
    }

    #[test]
    fn each_bad_input_has_its_own_error() {
        let good = safe_query();
        let body = MP_SAFE_BODY.to_owned();
        // A valid plain `signature` does not stand in for the body-covering msg_signature.
        assert_eq!(
            open_safe(&replace(&good, "msg_signature", MP_SAFE_SIGNATURE), &body),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(
            open_safe(&without(&good, "msg_signature"), &body),
            Err(CallbackError::MissingParameter("msg_signature"))
        );
        assert_eq!(
            open_safe(&without(&good, "timestamp"), &body),
            Err(CallbackError::MissingParameter("timestamp"))
        );
        assert_eq!(
            open_safe(&without(&good, "nonce"), &body),
            Err(CallbackError::MissingParameter("nonce"))
        );
        assert_eq!(
            open_safe(&replace(&good, "timestamp", "soon"), &body),
            Err(CallbackError::BadTimestamp)
        );
        assert_eq!(
            open_push(
                channels().get("safe").unwrap(),
                &query(&good),
                body.as_bytes(),
                at("1714112746")
            ),
            Err(CallbackError::StaleTimestamp)
        );
        // A plaintext request to a safe channel is refused even with a valid URL signature.
        assert_eq!(
            open_safe(&without(&good, "encrypt_type"), MP_PLAIN_BODY),
            Err(CallbackError::EncryptionRequired)
        );
        assert_eq!(
            open_safe(&good, r#"{"ToUserName":"gh_97417a04a28d"}"#),
            Err(CallbackError::Event(EventError::MissingField("Encrypt")))
        );
        assert_eq!(
            open_safe(&good, "not a document"),
            Err(CallbackError::UnknownFormat)
        );
        assert!(matches!(
            open_safe(&good, "{broken"),
            Err(CallbackError::Json(_))
        ));
        assert_eq!(
            open_safe(
                &good,
                "<!DOCTYPE x [<!ENTITY e \"e\">]><xml><Encrypt>&e;</Encrypt></xml>"
            ),
            Err(CallbackError::Xml(XmlError::Doctype))
        );
        assert_eq!(
            open_push(
                channels().get("safe").unwrap(),
                &query(&good),
                &[0xff, 0xfe],
                at(MP_SAFE_TIMESTAMP)
            ),
            Err(CallbackError::BodyNotUtf8)
        );
    }

    #[test]
    fn wrong_appid_and_wrong_recipient_are_refused() {
        let channels = channels();
        let mut other_app = channels.get("safe").unwrap().clone();
        other_app.app_id = "wx0000000000000000".into();
        let q = query(&safe_query());
        assert_eq!(
            open_push(
                &other_app,
                &q,
                MP_SAFE_BODY.as_bytes(),
                at(MP_SAFE_TIMESTAMP)
            ),
            Err(CallbackError::Crypto(CryptoError::AppIdMismatch))
        );
        // A plaintext push, which nothing signs, must be addressed to the channel.
        let mut other_recipient = channels.get("plain").unwrap().clone();
        other_recipient.original_id = "gh_other".into();
        let plain = query(&[
            ("signature", MP_PLAIN_SIGNATURE),
            ("timestamp", MP_PLAIN_TIMESTAMP),
            ("nonce", MP_PLAIN_NONCE),
        ]);
        assert_eq!(
            open_push(
                &other_recipient,
                &plain,
                MP_PLAIN_BODY.as_bytes(),
                at(MP_PLAIN_TIMESTAMP)
            ),
            Err(CallbackError::WrongRecipient)
        );
    }

    #[test]
    fn an_authenticated_but_unreadable_push_is_kept_raw_not_refused() {
        let channels = channels();
        let channel = channels.get("safe").unwrap();
        let encrypt = channel
            .key
            .as_ref()
            .unwrap()
            .encrypt(b"<xml><Content>half a push", MP_APPID);
        let signature = crate::signature::to_text(&msg_signature(
            MP_TOKEN,
            MP_SAFE_TIMESTAMP,
            MP_SAFE_NONCE,
            &encrypt,
        ));
        let pairs = replace(&safe_query(), "msg_signature", "placeholder");
        let mut q = query(&pairs);
        q.msg_signature = Some(signature);
        let body = format!(r#"{{"ToUserName":"{MP_ORIGINAL_ID}","Encrypt":"{encrypt}"}}"#);
        let event = open_push(channel, &q, body.as_bytes(), at(MP_SAFE_TIMESTAMP)).unwrap();
        assert_eq!(event.msg_type(), UNREADABLE);
        assert_eq!(
            event.from_user_name, MP_OPENID,
            "the openid comes from the query"
        );
        let EventKind::Raw { fields, .. } = &event.kind else {
            panic!("{event:?}")
        };
        assert_eq!(fields["body"], "<xml><Content>half a push");
        assert_eq!(fields["error"], "XML is not well formed");
    }

    #[test]
    fn reasons_never_quote_the_request() {
        let quoting = [
            CallbackError::Json("invalid type: string \"secret\"".into()),
            CallbackError::Xml(XmlError::Entity("secret".into())),
            CallbackError::Xml(XmlError::Malformed("close tag </secret>".into())),
        ];
        for error in quoting {
            assert!(!error.reason().contains("secret"), "{error:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Signed plaintext requests reach the parsers with any body: errors, never a panic.
        #[test]
        fn the_parsers_never_panic_on_any_body(
            body in proptest::prelude::prop_oneof![
                proptest::prelude::any::<Vec<u8>>(),
                "(<[a-zA-Z!?/&;#\\[\\]]{0,3}|[A-Za-z0-9 \"=&;<>]{0,8}|\\{|\\}|:|,){0,40}".prop_map(String::into_bytes),
            ]
        ) {
            let channels = channels();
            let q = query(&[("signature", MP_PLAIN_SIGNATURE), ("timestamp", MP_PLAIN_TIMESTAMP), ("nonce", MP_PLAIN_NONCE)]);
            let _ = open_push(channels.get("plain").unwrap(), &q, &body, at(MP_PLAIN_TIMESTAMP));
            let encrypted = query(&MP_SAFE_QUERY);
            let _ = open_push(channels.get("safe").unwrap(), &encrypted, &body, at(MP_SAFE_TIMESTAMP));
        }
    }
}
