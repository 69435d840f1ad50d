//! Writes pushes the way WeChat sends them, so tests, sample events and the local WeChat
//! simulator produce the exact bytes the bridge must accept.

use crate::config::{ChannelConfig, EncryptionMode, PushFormat};
use crate::crypto::AesKey;
use crate::event::{CallbackEvent, EventKind, SubscribeDecision};
use crate::signature::{msg_signature, url_signature};
use serde_json::{json, Map, Value};
use std::fmt::Write;

/// The event's fields under WeChat's names, in WeChat's order.
pub fn wechat_fields(event: &CallbackEvent, format: PushFormat) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut put = |key: &str, value: Value| {
        fields.insert(key.to_owned(), value);
    };
    put("ToUserName", json!(event.to_user_name));
    put("FromUserName", json!(event.from_user_name));
    put("CreateTime", json!(event.create_time));
    put("MsgType", json!(event.msg_type()));
    if let Some(name) = event.event_name() {
        put("Event", json!(name));
    }
    match &event.kind {
        EventKind::Text { content, .. } => put("Content", json!(content)),
        EventKind::Image { pic_url, media_id, .. } => {
            put("PicUrl", json!(pic_url));
            put("MediaId", json!(media_id));
        }
        EventKind::MiniProgramPage { title, app_id, page_path, thumb_url, thumb_media_id, .. } => {
            put("Title", json!(title));
            put("AppId", json!(app_id));
            put("PagePath", json!(page_path));
            put("ThumbUrl", json!(thumb_url));
            put("ThumbMediaId", json!(thumb_media_id));
        }
        EventKind::UserEnterTempSession { session_from } => put("SessionFrom", json!(session_from)),
        EventKind::SubscribePopup { entries } => {
            put_list(&mut put, format, "SubscribeMsgPopupEvent", entries.iter().map(decision_fields).collect())
        }
        EventKind::SubscribeChange { entries } => {
            put_list(&mut put, format, "SubscribeMsgChangeEvent", entries.iter().map(decision_fields).collect())
        }
        EventKind::SubscribeSent { entries } => put_list(
            &mut put,
            format,
            "SubscribeMsgSentEvent",
            entries
                .iter()
                .map(|e| {
                    let mut entry = Map::new();
                    entry.insert("TemplateId".into(), json!(e.template_id));
                    if let Some(id) = &e.msg_id {
                        entry.insert("MsgID".into(), json!(id));
                    }
                    if let Some(code) = e.error_code {
                        entry.insert("ErrorCode".into(), json!(code));
                    }
                    if let Some(status) = &e.error_status {
                        entry.insert("ErrorStatus".into(), json!(status));
                    }
                    Value::Object(entry)
                })
                .collect(),
        ),
        EventKind::Raw { fields: raw, .. } => {
            for (key, value) in raw {
                put(key, value.clone());
            }
        }
    }
    // MsgId last, as WeChat writes it; a number in JSON when it is one.
    if let (Some(msg_id), false) = (event.msg_id(), matches!(event.kind, EventKind::Raw { .. })) {
        let value = msg_id.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(msg_id));
        put("MsgId", value);
    }
    fields
}

fn decision_fields(entry: &SubscribeDecision) -> Value {
    let mut fields = Map::new();
    fields.insert("TemplateId".into(), json!(entry.template_id));
    fields.insert("SubscribeStatusString".into(), json!(entry.status));
    if let Some(scene) = entry.popup_scene {
        fields.insert("PopupScene".into(), json!(scene));
    }
    Value::Object(fields)
}

/// XML wraps subscribe entries in their event element; JSON lists them at the top level.
fn put_list(put: &mut impl FnMut(&str, Value), format: PushFormat, wrapper: &str, entries: Vec<Value>) {
    match format {
        PushFormat::Xml => put(wrapper, json!({ "List": entries })),
        PushFormat::Json => put("List", Value::Array(entries)),
    }
}

/// Renders fields as a WeChat XML document: strings in CDATA, numbers bare.
pub fn fields_to_xml(fields: &Map<String, Value>) -> String {
    let mut out = String::from("<xml>");
    for (name, value) in fields {
        write_xml_element(&mut out, name, value);
    }
    out.push_str("</xml>");
    out
}

fn write_xml_element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| write_xml_element(out, name, item)),
        Value::Object(children) => {
            let _ = write!(out, "<{name}>");
            for (child, value) in children {
                write_xml_element(out, child, value);
            }
            let _ = write!(out, "</{name}>");
        }
        Value::String(text) => {
            // "]]>" cannot stand inside CDATA: close the section around it.
            let _ = write!(out, "<{name}><![CDATA[{}]]></{name}>", text.replace("]]>", "]]]]><![CDATA[>"));
        }
        Value::Null => {
            let _ = write!(out, "<{name}></{name}>");
        }
        other => {
            let _ = write!(out, "<{name}>{other}</{name}>");
        }
    }
}

/// The event as a push body in the given format.
pub fn encode(event: &CallbackEvent, format: PushFormat) -> String {
    let fields = wechat_fields(event, format);
    match format {
        PushFormat::Xml => fields_to_xml(&fields),
        PushFormat::Json => Value::Object(fields).to_string(),
    }
}

/// A push as WeChat would send it: query parameters and body.
#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: Vec<(String, String)>,
    pub body: String,
}

impl SignedPush {
    pub fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Signs (and, in compatible and safe mode, encrypts) an event for a channel.
pub fn seal(channel: &ChannelConfig, event: &CallbackEvent, timestamp: i64, nonce: &str) -> SignedPush {
    let token = channel.token.expose();
    let timestamp = timestamp.to_string();
    let mut query = vec![
        ("signature".to_owned(), url_signature(token, &timestamp, nonce)),
        ("timestamp".to_owned(), timestamp.clone()),
        ("nonce".to_owned(), nonce.to_owned()),
        ("openid".to_owned(), event.from_user_name.clone()),
    ];
    let plain = encode(event, channel.push_format);
    if channel.mode == EncryptionMode::Plaintext {
        return SignedPush { query, body: plain };
    }
    let key = channel
        .encoding_aes_key
        .as_ref()
        .and_then(|k| AesKey::from_encoding_aes_key(k.expose()).ok())
        .expect("a compatible or safe channel has a valid EncodingAESKey");
    let encrypt = key.encrypt(plain.as_bytes(), &channel.app_id);
    query.push(("encrypt_type".to_owned(), "aes".to_owned()));
    query.push(("msg_signature".to_owned(), msg_signature(token, &timestamp, nonce, &encrypt)));
    // Compatible mode carries the plaintext fields beside the ciphertext; safe mode only
    // the recipient.
    let mut outer = match channel.mode {
        EncryptionMode::Compatible => wechat_fields(event, channel.push_format),
        _ => Map::from_iter([("ToUserName".to_owned(), json!(event.to_user_name))]),
    };
    outer.insert("Encrypt".to_owned(), json!(encrypt));
    let body = match channel.push_format {
        PushFormat::Xml => fields_to_xml(&outer),
        PushFormat::Json => Value::Object(outer).to_string(),
    };
    SignedPush { query, body }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
