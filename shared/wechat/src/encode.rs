//! Writes pushes the way WeChat sends them, so tests, sample events and the local WeChat
//! simulator produce the exact bytes the bridge must accept.

use crate::callback::PushQuery;
use crate::endpoint::{EncryptionMode, PushEndpoint, PushFormat};
use crate::event::{CallbackEvent, EventKind, SubscribeDecision};
use crate::signature::{msg_signature, to_text, url_signature};
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
        EventKind::Image {
            pic_url, media_id, ..
        } => {
            put("PicUrl", json!(pic_url));
            put("MediaId", json!(media_id));
        }
        EventKind::MiniProgramPage {
            title,
            app_id,
            page_path,
            thumb_url,
            thumb_media_id,
            ..
        } => {
            put("Title", json!(title));
            put("AppId", json!(app_id));
            put("PagePath", json!(page_path));
            put("ThumbUrl", json!(thumb_url));
            put("ThumbMediaId", json!(thumb_media_id));
        }
        EventKind::UserEnterTempSession { session_from } => put("SessionFrom", json!(session_from)),
        EventKind::SubscribePopup { entries } => put_list(
            &mut put,
            format,
            "SubscribeMsgPopupEvent",
            entries.iter().map(decision_fields).collect(),
        ),
        EventKind::SubscribeChange { entries } => put_list(
            &mut put,
            format,
            "SubscribeMsgChangeEvent",
            entries.iter().map(decision_fields).collect(),
        ),
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
        put("MsgId", number_if_numeric(msg_id));
    }
    // A raw push already holds every field it came with, its BusinessId among them.
    if let (Some(business_id), false) = (&event.business_id, fields.contains_key("BusinessId")) {
        fields.insert("BusinessId".into(), number_if_numeric(business_id));
    }
    fields
}

/// A JSON number where the id is one (as WeChat writes ids), else the string.
/// A number when the id is one written plainly; any other id (`+5`, `007`) stays a string,
/// so it reads back as it was.
fn number_if_numeric(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(number) if number.to_string() == id => Value::from(number),
        _ => json!(id),
    }
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
fn put_list(
    put: &mut impl FnMut(&str, Value),
    format: PushFormat,
    wrapper: &str,
    entries: Vec<Value>,
) {
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
        Value::Array(items) => items
            .iter()
            .for_each(|item| write_xml_element(out, name, item)),
        Value::Object(children) => {
            let _ = write!(out, "<{name}>");
            for (child, value) in children {
                write_xml_element(out, child, value);
            }
            let _ = write!(out, "</{name}>");
        }
        Value::String(text) => {
            // "]]>" cannot stand inside CDATA: close the section around it.
            let _ = write!(
                out,
                "<{name}><![CDATA[{}]]></{name}>",
                text.replace("]]>", "]]]]><![CDATA[>")
            );
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
    /// The query as the bridge reads it.
    pub fn push_query(&self) -> PushQuery {
        PushQuery::from_pairs(self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Signs (and, in compatible and safe mode, encrypts) an event for a channel.
pub fn seal(
    endpoint: &PushEndpoint,
    event: &CallbackEvent,
    timestamp: i64,
    nonce: &str,
) -> SignedPush {
    let token = endpoint.token();
    let timestamp = timestamp.to_string();
    let mut query = vec![
        (
            "signature".to_owned(),
            to_text(&url_signature(token, &timestamp, nonce)),
        ),
        ("timestamp".to_owned(), timestamp.clone()),
        ("nonce".to_owned(), nonce.to_owned()),
        ("openid".to_owned(), event.from_user_name.clone()),
    ];
    let plain = encode(event, endpoint.format);
    let Some(key) = endpoint
        .key
        .as_ref()
        .filter(|_| endpoint.mode != EncryptionMode::Plaintext)
    else {
        return SignedPush { query, body: plain };
    };
    let encrypt = key.encrypt(plain.as_bytes(), &endpoint.app_id);
    query.push(("encrypt_type".to_owned(), "aes".to_owned()));
    query.push((
        "msg_signature".to_owned(),
        to_text(&msg_signature(token, &timestamp, nonce, &encrypt)),
    ));
    // Compatible mode carries the plaintext fields beside the ciphertext; safe mode only
    // the recipient.
    let mut outer = match endpoint.mode {
        EncryptionMode::Compatible => wechat_fields(event, endpoint.format),
        _ => Map::from_iter([("ToUserName".to_owned(), json!(event.to_user_name))]),
    };
    outer.insert("Encrypt".to_owned(), json!(encrypt));
    let body = match endpoint.format {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::{open_push, Freshness};
    use crate::event::{EventKind, SubscribeSendResult};
    use proptest::prelude::*;

    fn endpoint(mode: EncryptionMode, format: PushFormat) -> PushEndpoint {
        PushEndpoint::new(
            "c",
            "wxapp",
            "gh_1",
            "tok",
            Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
            mode,
            format,
        )
        .unwrap()
    }

    fn sample_events() -> Vec<CallbackEvent> {
        let base = |kind| CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: "o_user".into(),
            create_time: 1_700_000_000,
            business_id: None,
            kind,
        };
        let mut raw_fields = Map::new();
        for (k, v) in [
            ("ToUserName", "gh_1"),
            ("FromUserName", "o_user"),
            ("CreateTime", "1700000000"),
            ("MsgType", "voice"),
            ("MediaId", "v1"),
        ] {
            raw_fields.insert(k.into(), json!(v));
        }
        vec![
            base(EventKind::Text {
                msg_id: "123".into(),
                content: "hi ]]> <b>&amp; 你好\n".into(),
            }),
            base(EventKind::Image {
                msg_id: "124".into(),
                pic_url: "http://p/1".into(),
                media_id: "m".into(),
            }),
            base(EventKind::MiniProgramPage {
                msg_id: "125".into(),
                title: "t".into(),
                app_id: "wx1".into(),
                page_path: "pages/a?b=1&c=2".into(),
                thumb_url: "http://t".into(),
                thumb_media_id: "tm".into(),
            }),
            base(EventKind::UserEnterTempSession {
                session_from: "partner=hotel-9&uid=1".into(),
            }),
            base(EventKind::SubscribePopup {
                entries: vec![
                    SubscribeDecision {
                        template_id: "t1".into(),
                        status: "accept".into(),
                        popup_scene: Some(0),
                    },
                    SubscribeDecision {
                        template_id: "t2".into(),
                        status: "reject".into(),
                        popup_scene: Some(0),
                    },
                ],
            }),
            base(EventKind::SubscribeChange {
                entries: vec![SubscribeDecision {
                    template_id: "t1".into(),
                    status: "reject".into(),
                    popup_scene: None,
                }],
            }),
            base(EventKind::SubscribeSent {
                entries: vec![SubscribeSendResult {
                    template_id: "t1".into(),
                    msg_id: Some("9".into()),
                    error_code: Some(0),
                    error_status: Some("success".into()),
                }],
            }),
            base(EventKind::Raw {
                msg_type: "voice".into(),
                event: None,
                msg_id: None,
                fields: raw_fields,
            }),
        ]
    }

    /// Every sample, and every sample again as it comes from a sub-merchant's session.
    fn sample_events_in_every_session() -> Vec<CallbackEvent> {
        let main = sample_events();
        let in_sub_merchant = main.clone().into_iter().map(|mut event| {
            if let EventKind::Raw { fields, .. } = &mut event.kind {
                fields.insert("BusinessId".into(), json!("1001"));
            }
            CallbackEvent {
                business_id: Some("1001".into()),
                ..event
            }
        });
        main.into_iter().chain(in_sub_merchant).collect()
    }

    #[test]
    fn every_event_survives_every_mode_and_format() {
        use EncryptionMode::*;
        for mode in [Plaintext, Compatible, Safe] {
            for format in [PushFormat::Xml, PushFormat::Json] {
                let channel = &endpoint(mode, format);
                for event in sample_events_in_every_session() {
                    let push = seal(channel, &event, 1_700_000_000, "n1");
                    let query = push.push_query();
                    let fresh = Freshness {
                        now_secs: 1_700_000_010,
                        tolerance_secs: Some(300),
                    };
                    let opened = open_push(channel, &query, push.body.as_bytes(), fresh)
                        .unwrap_or_else(|e| panic!("{mode:?}/{format:?} {event:?}: {e}"));
                    assert_eq!(opened, event, "{mode:?}/{format:?}");
                }
            }
        }
    }

    #[test]
    fn an_id_that_is_not_a_plain_number_is_written_as_it_is() {
        // Found by the xml_reader fuzz target: `+5` was written as 5 and read back as "5".
        assert_eq!(number_if_numeric("123"), json!(123));
        assert_eq!(number_if_numeric("+5"), json!("+5"));
        assert_eq!(number_if_numeric("007"), json!("007"));
    }

    #[test]
    fn xml_output_looks_like_wechat() {
        let event = &sample_events()[0];
        let xml = encode(event, PushFormat::Xml);
        assert!(
            xml.starts_with("<xml><ToUserName><![CDATA[gh_1]]></ToUserName>"),
            "{xml}"
        );
        assert!(xml.contains("<CreateTime>1700000000</CreateTime>"), "{xml}");
        assert!(xml.ends_with("<MsgId>123</MsgId></xml>"), "{xml}");
        let json = encode(event, PushFormat::Json);
        assert!(json.ends_with(r#""MsgId":123}"#), "{json}");
        let popup = encode(&sample_events()[4], PushFormat::Xml);
        assert!(
            popup.contains("<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[t1]]></TemplateId>"),
            "{popup}"
        );
    }

    #[test]
    fn percent_encoding_keeps_base64_intact() {
        assert_eq!(percent_encode("a+b/c=d e"), "a%2Bb%2Fc%3Dd%20e");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_text_survives_safe_mode(content in "(?s).{0,300}", msg_id in any::<u64>(), business_id in proptest::option::of(any::<u64>()), xml in any::<bool>()) {
            let channel = &endpoint(EncryptionMode::Safe, if xml { PushFormat::Xml } else { PushFormat::Json });
            let event = CallbackEvent { to_user_name: "gh_1".into(), from_user_name: "o".into(), create_time: 5, business_id: business_id.map(|id| id.to_string()), kind: EventKind::Text { msg_id: msg_id.to_string(), content } };
            let push = seal(channel, &event, 5, "n");
            let query = push.push_query();
            let opened = open_push(channel, &query, push.body.as_bytes(), Freshness { now_secs: 5, tolerance_secs: Some(300) });
            // XML 1.0 cannot carry most control characters or a bare CR; everything else must survive.
            let xml_unsafe = |c: char| c.is_control() && c != '\n' && c != '\t';
            if xml && event_content(&event).chars().any(xml_unsafe) {
                return Ok(());
            }
            prop_assert_eq!(opened.unwrap(), event);
        }
    }

    fn event_content(event: &CallbackEvent) -> &str {
        match &event.kind {
            EventKind::Text { content, .. } => content,
            _ => "",
        }
    }
}
