//! What the fuzz targets (`fuzz/`, `make fuzz`) check on arbitrary bytes. The checks live
//! here, not in the targets, so that every input a fuzzer kept — the seed corpus and each
//! input that once broke a check — is replayed by `cargo test` on the stable toolchain
//! (`tests/fuzz_inputs.rs`). Each check panics when a property fails.

use std::sync::OnceLock;
use wxbridge_core::config::{BridgeConfig, Channels, Secret};
use wxbridge_core::services::partner::auth::{self, AuthError, SignedRequest};
use wxbridge_wechat::callback::{self, Freshness, PushQuery};
use wxbridge_wechat::encode;
use wxbridge_wechat::endpoint::{EncryptionMode, PushEndpoint, PushFormat};
use wxbridge_wechat::event::{CallbackEvent, EventKind};
use wxbridge_wechat::signature::{msg_signature, to_text, url_signature};
use wxbridge_wechat::vectors::{
    MP_APPID, MP_ENCODING_AES_KEY, MP_OPENID, MP_ORIGINAL_ID, MP_TOKEN,
};
use wxbridge_wechat::xml;

/// A property checked on one input: panics when it fails.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name: the name of a folder under `fuzz/seeds` and
/// `fuzz/regressions`, and of a binary of `fuzz/`.
pub const TARGETS: [(&str, Check); 4] = [
    ("open_push", open_push),
    ("xml_reader", xml_reader),
    ("api_signature", api_signature),
    ("config", config),
];

/// The clock of the signed cases: pushes and API requests are stamped around it.
pub const NOW_SECS: i64 = 1_764_150_000;
const TOLERANCE_SECS: u64 = 300;

/// The first line of an input, then the rest split at its first newline.
fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// The official mini-program channel (token, key, AppID) in a mode and format.
fn endpoint(mode: &str, format: &str) -> Option<PushEndpoint> {
    let mode = match mode {
        "plaintext" => EncryptionMode::Plaintext,
        "compatible" => EncryptionMode::Compatible,
        "safe" => EncryptionMode::Safe,
        _ => return None,
    };
    let format = match format {
        "xml" => PushFormat::Xml,
        "json" => PushFormat::Json,
        _ => return None,
    };
    let endpoint = PushEndpoint::new(
        "fuzz",
        MP_APPID,
        MP_ORIGINAL_ID,
        MP_TOKEN,
        Some(MP_ENCODING_AES_KEY),
        mode,
        format,
    );
    Some(endpoint.expect("the official key decodes"))
}

/// Opening a push, every mode and format. An input is a line `MODE FORMAT HOW` (`plaintext`
/// / `compatible` / `safe`, `xml` / `json`), then:
///
/// - `as-is`: a query line and the body, opened as they are, at the query's own timestamp;
///   nothing is opened unless its signature was computed with the channel's token;
/// - `sealed`: a nonce line and a plaintext, encrypted with the channel's key, put in an
///   envelope in the format and signed as WeChat does: never refused (what cannot be read
///   is kept raw), as WeChat would only send it again;
/// - `message`: a nonce line and a user's text, written and sealed by the bridge's encoder
///   as WeChat writes it: it opens to the same message.
///
/// Never a panic.
pub fn open_push(data: &[u8]) {
    let (head, rest) = split_line(data);
    let head = String::from_utf8_lossy(head);
    let mut words = head.split(' ');
    let (Some(mode), Some(format), Some(how)) = (words.next(), words.next(), words.next()) else {
        return;
    };
    let Some(endpoint) = endpoint(mode, format) else {
        return;
    };
    let (line, body) = split_line(rest);
    let line = String::from_utf8_lossy(line);
    match how {
        "as-is" => open_as_is(&endpoint, &line, body),
        "sealed" => open_sealed(&endpoint, &line, body),
        "message" => open_message(&endpoint, &line, body),
        _ => {}
    }
}

fn open_as_is(endpoint: &PushEndpoint, query: &str, body: &[u8]) {
    let query = PushQuery::from_pairs(query_pairs(query).iter().map(|(k, v)| (&**k, &**v)));
    let freshness = Freshness {
        now_secs: NOW_SECS,
        tolerance_secs: None,
    };
    let Ok(event) = callback::open_push(endpoint, &query, body, freshness) else {
        return;
    };
    let timestamp = query.timestamp.as_deref().unwrap_or_default();
    let nonce = query.nonce.as_deref().unwrap_or_default();
    let encrypted = query
        .encrypt_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("aes"));
    if encrypted {
        let document = callback::parse_document(std::str::from_utf8(body).expect("opened as text"))
            .expect("an opened envelope reads");
        let encrypt = document
            .get("Encrypt")
            .and_then(|node| node.as_str())
            .unwrap_or_default();
        let expected = to_text(&msg_signature(MP_TOKEN, timestamp, nonce, encrypt));
        assert!(same_hex(&query.msg_signature, &expected), "{event:?}");
    } else {
        let expected = to_text(&url_signature(MP_TOKEN, timestamp, nonce));
        assert!(same_hex(&query.signature, &expected), "{event:?}");
        assert_eq!(endpoint.mode, EncryptionMode::Plaintext);
        assert_eq!(event.to_user_name, MP_ORIGINAL_ID);
    }
}

/// A signature as sent against the one computed: hex digits in either case are the same
/// digest.
fn same_hex(sent: &Option<String>, computed: &str) -> bool {
    sent.as_deref()
        .is_some_and(|sent| sent.eq_ignore_ascii_case(computed))
}

/// `name=value` pairs joined by `&`, taken as written (the seeds carry no escapes).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn fresh() -> Freshness {
    Freshness {
        now_secs: NOW_SECS,
        tolerance_secs: Some(TOLERANCE_SECS),
    }
}

fn open_sealed(endpoint: &PushEndpoint, nonce: &str, plaintext: &[u8]) {
    // WeChat's plaintext is text: a non-UTF-8 one is refused, and WeChat never sends one.
    if std::str::from_utf8(plaintext).is_err() {
        return;
    }
    let key = endpoint
        .key
        .as_ref()
        .expect("every fuzzed endpoint has a key");
    let encrypt = key.encrypt(plaintext, MP_APPID);
    let timestamp = NOW_SECS.to_string();
    let envelope = serde_json::Map::from_iter([
        ("ToUserName".to_owned(), serde_json::json!(MP_ORIGINAL_ID)),
        ("Encrypt".to_owned(), serde_json::json!(encrypt)),
    ]);
    let body = match endpoint.format {
        PushFormat::Xml => encode::fields_to_xml(&envelope),
        PushFormat::Json => serde_json::Value::Object(envelope).to_string(),
    };
    let query = PushQuery {
        signature: Some(to_text(&url_signature(MP_TOKEN, &timestamp, nonce))),
        timestamp: Some(timestamp.clone()),
        nonce: Some(nonce.to_owned()),
        encrypt_type: Some("aes".to_owned()),
        msg_signature: Some(to_text(&msg_signature(
            MP_TOKEN, &timestamp, nonce, &encrypt,
        ))),
        openid: Some(MP_OPENID.to_owned()),
        echostr: None,
    };
    let opened = callback::open_push(endpoint, &query, body.as_bytes(), fresh());
    assert!(
        opened.is_ok(),
        "an authenticated push was refused: {opened:?}"
    );
    let tampered = PushQuery {
        msg_signature: Some(to_text(&msg_signature(
            MP_TOKEN, &timestamp, nonce, "tampered",
        ))),
        ..query
    };
    assert!(callback::open_push(endpoint, &tampered, body.as_bytes(), fresh()).is_err());
}

fn open_message(endpoint: &PushEndpoint, nonce: &str, content: &[u8]) {
    let Some(event) = std::str::from_utf8(content).ok().and_then(text_event) else {
        return;
    };
    let push = encode::seal(endpoint, &event, NOW_SECS, nonce);
    let opened = callback::open_push(endpoint, &push.push_query(), push.body.as_bytes(), fresh());
    let expected = as_read_from(event, endpoint.format);
    assert_eq!(
        opened.as_ref().ok(),
        Some(&expected),
        "{push:?} → {opened:?}"
    );
}

/// An event as it reads after being written in `format`: an XML 1.0 reader ends every line
/// of a text with `\n` (XML 1.0, section 2.11), inside CDATA too.
fn as_read_from(event: CallbackEvent, format: PushFormat) -> CallbackEvent {
    match (format, event.kind) {
        (PushFormat::Xml, EventKind::Text { msg_id, content }) => CallbackEvent {
            kind: EventKind::Text {
                msg_id,
                content: content.replace("\r\n", "\n").replace('\r', "\n"),
            },
            ..event
        },
        (_, kind) => CallbackEvent { kind, ..event },
    }
}

/// A text message from the official vectors' user, or `None` for content WeChat cannot
/// carry (the characters XML 1.0 forbids).
fn text_event(content: &str) -> Option<CallbackEvent> {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r') || !c.is_control() || c >= '\u{80}';
    content.chars().all(allowed).then(|| CallbackEvent {
        to_user_name: MP_ORIGINAL_ID.to_owned(),
        from_user_name: MP_OPENID.to_owned(),
        create_time: NOW_SECS,
        business_id: None,
        kind: EventKind::Text {
            msg_id: (content.len() as u64 + 1).to_string(),
            content: content.to_owned(),
        },
    })
}

/// The XML reader and the event reader behind it, on any text. Never a panic; an event read
/// from a document and written back as WeChat writes it reads the same.
pub fn xml_reader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xml::parse(text);
    let Ok(document) = callback::parse_document(text) else {
        return;
    };
    let Ok(event) = CallbackEvent::from_document(document) else {
        return;
    };
    if matches!(event.kind, EventKind::Raw { .. }) {
        return;
    }
    for format in [PushFormat::Xml, PushFormat::Json] {
        let written = encode::encode(&event, format);
        let again = callback::parse_document(&written)
            .map_err(|e| e.to_string())
            .and_then(|d| CallbackEvent::from_document(d).map_err(|e| e.to_string()));
        let expected = as_read_from(event.clone(), format);
        assert_eq!(again.as_ref(), Ok(&expected), "{format:?}: {written}");
    }
}

const API_PARTNER: &str = "hotel-9";
const API_SECRET: &str = "hotel-secret-456789";

fn api_config() -> &'static BridgeConfig {
    static CONFIG: OnceLock<BridgeConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        BridgeConfig::from_json(&format!(
            r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}}],
            "partners":[{{"id":"{API_PARTNER}","display_name":"Hotel","webhook_url":"http://h/h","signing_secret":"{API_SECRET}"}}]}}"#
        ))
        .expect("the fuzz configuration is valid")
    })
}

/// The partner API's signature check. An input is the method, the path with its query,
/// `name: value` header lines, an empty line and the body; a signature header `sign` is
/// replaced by the signature of partner `hotel-9` over exactly this request. Accepted only
/// when the partner is known, the timestamp is within 5 minutes of the clock, the nonce is
/// 8–64 of `A-Za-z0-9-_` and the signature is the partner's over these bytes; then the same
/// nonce again is a replay, and the same headers on another body are refused. Never a panic.
pub fn api_signature(data: &[u8]) {
    let (method, rest) = split_line(data);
    let (path_and_query, mut rest) = split_line(rest);
    let (Ok(method), Ok(path_and_query)) = (
        std::str::from_utf8(method),
        std::str::from_utf8(path_and_query),
    ) else {
        return;
    };
    let mut headers = Vec::new();
    let body = loop {
        let (line, after) = split_line(rest);
        if line.is_empty() || after.is_empty() {
            break after;
        }
        rest = after;
        let line = String::from_utf8_lossy(line);
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    };
    let request = SignedRequest {
        method,
        path_and_query,
        body,
    };
    let value = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    // `sign` stamps the decimal form; a timestamp written otherwise (`0176…`, `+176…`) is
    // signed as written, so a signature over the decimal form does not hold for it.
    let timestamp_text = value(auth::TIMESTAMP_HEADER);
    let timestamp = timestamp_text
        .as_deref()
        .and_then(|t| t.parse::<i64>().ok());
    let decimal = timestamp.map(|t| t.to_string()) == timestamp_text;
    let nonce = value(auth::NONCE_HEADER).unwrap_or_default();
    let secret = Secret::new(API_SECRET);
    let right_signature = timestamp.map(|timestamp| {
        let signed = auth::sign(API_PARTNER, &secret, &request, timestamp, &nonce);
        signed[3].1.clone()
    });
    let signature = match value(auth::SIGNATURE_HEADER) {
        Some(given) if given == "sign" => right_signature.clone(),
        given => given,
    };
    let header = |name: &str| match name {
        auth::SIGNATURE_HEADER => signature.clone(),
        _ => value(name),
    };
    let nonces = crate::MemoryStore::default();
    let check = |request: SignedRequest<'_>| {
        block_on(auth::authenticate(
            api_config(),
            &nonces,
            &request,
            &header,
            NOW_SECS,
        ))
    };
    let accepted = check(request);
    let should_pass = value(auth::PARTNER_HEADER).as_deref() == Some(API_PARTNER)
        && timestamp.is_some_and(|t| t.abs_diff(NOW_SECS) <= auth::TIMESTAMP_TOLERANCE_SECS)
        && (8..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && signature.is_some()
        && signature == right_signature
        && decimal;
    if !should_pass {
        assert!(accepted.is_err(), "accepted: {headers:?}");
        return;
    }
    assert_eq!(accepted.as_deref(), Ok(API_PARTNER), "{headers:?}");
    assert_eq!(check(request), Err(AuthError::Replayed));
    let other_body = [body, b"!"].concat();
    let other = SignedRequest {
        body: &other_body,
        ..request
    };
    assert_eq!(check(other), Err(AuthError::BadSignature));
}

/// The configuration reader on any text. Never a panic; a configuration it accepts gives
/// every channel an endpoint.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = BridgeConfig::from_json(text) else {
        return;
    };
    let channels = Channels::new(&config);
    for channel in &config.channels {
        assert!(channels.get(&channel.id).is_some(), "{}", channel.id);
    }
    let _ = config.check_partners();
}

/// Runs a future of the memory adapters, which never wait.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}
