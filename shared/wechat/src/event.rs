//! Typed WeChat push events and the loose-field rules that read them.
//!
//! XML and JSON pushes are both read into a [`Node`] first (see [`crate::document`]),
//! then into a [`CallbackEvent`] here. WeChat's JSON is loose: `MsgId` may be a number or
//! a string, `CreateTime` and `PopupScene` may be strings, and a single list entry may be an
//! object instead of an array (protocol notes §2, §5.1). A push of a type the bridge does not
//! know becomes [`EventKind::Raw`] with all its fields: kept, never dropped.

use crate::document::{Fields, Node};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EventError {
    #[error("push body is not an object")]
    NotAnObject,
    #[error("push is missing required field {0}")]
    MissingField(&'static str),
    #[error("push field {0} has an invalid value")]
    InvalidField(&'static str),
}

/// One push from WeChat to the bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackEvent {
    /// The mini program's original id (`gh_…`).
    pub to_user_name: String,
    /// The user's openid.
    pub from_user_name: String,
    /// Seconds since the epoch, as WeChat stamped it.
    pub create_time: i64,
    /// The customer-service sub-merchant whose session the push comes from (`BusinessId`,
    /// protocol notes §10), as WeChat wrote it; `None` for the mini program's own session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Text {
        msg_id: String,
        content: String,
    },
    Image {
        msg_id: String,
        pic_url: String,
        media_id: String,
    },
    MiniProgramPage {
        msg_id: String,
        title: String,
        app_id: String,
        page_path: String,
        thumb_url: String,
        thumb_media_id: String,
    },
    /// The user entered the customer-service session; `session_from` is the contact
    /// button's `session-from`. Serialized under WeChat's own event name; records stored
    /// before under `user_enter_temp_session` are still read.
    #[serde(rename = "user_enter_tempsession", alias = "user_enter_temp_session")]
    UserEnterTempSession {
        session_from: String,
    },
    /// The user answered a subscribe pop-up.
    SubscribePopup {
        entries: Vec<SubscribeDecision>,
    },
    /// The user changed a subscription later (today only rejections are pushed).
    SubscribeChange {
        entries: Vec<SubscribeDecision>,
    },
    /// The outcome of a subscribe message the bridge sent.
    SubscribeSent {
        entries: Vec<SubscribeSendResult>,
    },
    /// Any push the bridge does not model, with every field as WeChat sent it.
    Raw {
        msg_type: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
        fields: Map<String, Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeDecision {
    pub template_id: String,
    /// `accept` or `reject` (kept verbatim so later values are not lost).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub popup_scene: Option<i64>,
}

impl SubscribeDecision {
    pub fn accepted(&self) -> bool {
        self.status == "accept"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeSendResult {
    pub template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<String>,
}

impl CallbackEvent {
    /// WeChat's own message id, where the push has one.
    pub fn msg_id(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Text { msg_id, .. }
            | EventKind::Image { msg_id, .. }
            | EventKind::MiniProgramPage { msg_id, .. } => Some(msg_id),
            EventKind::Raw { msg_id, .. } => msg_id.as_deref(),
            _ => None,
        }
    }

    /// WeChat's `MsgType` of this push.
    pub fn msg_type(&self) -> &str {
        match &self.kind {
            EventKind::Text { .. } => "text",
            EventKind::Image { .. } => "image",
            EventKind::MiniProgramPage { .. } => "miniprogrampage",
            EventKind::Raw { msg_type, .. } => msg_type,
            _ => "event",
        }
    }

    /// WeChat's `Event` of this push, for event pushes.
    pub fn event_name(&self) -> Option<&str> {
        match &self.kind {
            EventKind::UserEnterTempSession { .. } => Some("user_enter_tempsession"),
            EventKind::SubscribePopup { .. } => Some("subscribe_msg_popup_event"),
            EventKind::SubscribeChange { .. } => Some("subscribe_msg_change_event"),
            EventKind::SubscribeSent { .. } => Some("subscribe_msg_sent_event"),
            EventKind::Raw { event, .. } => event.as_deref(),
            _ => None,
        }
    }

    /// A key that is the same for every retry of this push and differs between pushes:
    /// `MsgId` where there is one, else `FromUserName + CreateTime + Event` (§1.5) plus a
    /// digest of the content, because two events of one user in the same second (two
    /// subscribe-send results, say) must not collapse into one.
    pub fn dedupe_key(&self) -> String {
        match self.msg_id() {
            Some(msg_id) => format!("msg:{msg_id}"),
            None => format!(
                "evt:{}:{}:{}:{}",
                self.from_user_name,
                self.create_time,
                self.event_name().unwrap_or(self.msg_type()),
                self.content_digest()
            ),
        }
    }

    /// 12 hex digits of the SHA-256 of the event's content and session; retries carry the
    /// same. (Entering two sub-merchant sessions in one second are two events.)
    fn content_digest(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(serde_json::to_vec(&self.kind).unwrap_or_default());
        if let Some(business_id) = &self.business_id {
            digest.update(b"\0business:");
            digest.update(business_id.as_bytes());
        }
        hex::encode(&digest.finalize()[..6])
    }

    /// Reads a push already turned into a document (from XML or JSON).
    pub fn from_document(document: Node<'_>) -> Result<Self, EventError> {
        let Node::Object(fields) = document else {
            return Err(EventError::NotAnObject);
        };
        let to_user_name = account_id(&fields, "ToUserName")?;
        let from_user_name = account_id(&fields, "FromUserName")?;
        let create_time = fields
            .get("CreateTime")
            .and_then(Node::loose_i64)
            .ok_or(EventError::MissingField("CreateTime"))?;
        let msg_type = match fields.get("MsgType") {
            Some(Node::Text(msg_type)) if !msg_type.is_empty() => msg_type,
            Some(Node::Null) | None => return Err(EventError::MissingField("MsgType")),
            Some(Node::Text(_)) => return Err(EventError::MissingField("MsgType")),
            Some(_) => return Err(EventError::InvalidField("MsgType")),
        };
        let kind = typed_kind(msg_type, &fields)
            .unwrap_or_else(|| raw_kind(msg_type.to_string(), &fields));
        let business_id = text(&fields, "BusinessId").filter(|id| !id.is_empty());
        Ok(Self {
            to_user_name,
            from_user_name,
            create_time,
            business_id,
            kind,
        })
    }
}

fn text(fields: &Fields<'_>, key: &str) -> Option<String> {
    fields.get(key).and_then(Node::loose_string)
}

/// A message id. WeChat's are 64-bit numbers, sent as a JSON number, a JSON string or XML
/// text; one written with leading zeros or blanks is the same number, so it gets the same
/// id (and the same dedupe key). An id that is not a number is kept as it came.
fn msg_id(fields: &Fields<'_>, key: &str) -> Option<String> {
    let id = text(fields, key)?;
    Some(match id.trim().parse::<u64>() {
        Ok(number) if id.trim().bytes().all(|b| b.is_ascii_digit()) => number.to_string(),
        _ => id,
    })
}

/// The typed reading of a known push; `None` when the type is unknown or a field the type
/// needs is missing, so the caller keeps the push as a raw event.
fn typed_kind(msg_type: &str, fields: &Fields<'_>) -> Option<EventKind> {
    let text = |key: &str| text(fields, key);
    Some(match msg_type {
        "text" => EventKind::Text {
            msg_id: msg_id(fields, "MsgId")?,
            content: text("Content")?,
        },
        "image" => EventKind::Image {
            msg_id: msg_id(fields, "MsgId")?,
            pic_url: text("PicUrl")?,
            media_id: text("MediaId")?,
        },
        "miniprogrampage" => EventKind::MiniProgramPage {
            msg_id: msg_id(fields, "MsgId")?,
            title: text("Title").unwrap_or_default(),
            app_id: text("AppId").unwrap_or_default(),
            page_path: text("PagePath")?,
            thumb_url: text("ThumbUrl").unwrap_or_default(),
            thumb_media_id: text("ThumbMediaId").unwrap_or_default(),
        },
        "event" => match fields.get("Event").and_then(Node::as_str)? {
            "user_enter_tempsession" => EventKind::UserEnterTempSession {
                session_from: text("SessionFrom").unwrap_or_default(),
            },
            "subscribe_msg_popup_event" => EventKind::SubscribePopup {
                entries: read_entries(fields, "SubscribeMsgPopupEvent", decision)?,
            },
            "subscribe_msg_change_event" => EventKind::SubscribeChange {
                entries: read_entries(fields, "SubscribeMsgChangeEvent", decision)?,
            },
            "subscribe_msg_sent_event" => EventKind::SubscribeSent {
                entries: read_entries(fields, "SubscribeMsgSentEvent", send_result)?,
            },
            _ => return None,
        },
        _ => return None,
    })
}

fn raw_kind(msg_type: String, fields: &Fields<'_>) -> EventKind {
    EventKind::Raw {
        event: text(fields, "Event"),
        msg_id: msg_id(fields, "MsgId"),
        msg_type,
        fields: fields.to_map(),
    }
}

/// Every entry of a subscribe event read by `read`; `None` (keep it raw) when there is no
/// entry or one cannot be read.
fn read_entries<T>(
    fields: &Fields<'_>,
    wrapper: &str,
    read: fn(&Fields<'_>) -> Option<T>,
) -> Option<Vec<T>> {
    let entries: Vec<T> = entries(fields, wrapper).map(read).collect::<Option<_>>()?;
    (!entries.is_empty()).then_some(entries)
}

/// The `List` entries of a subscribe event: inside its wrapper element (XML) or at the top
/// level (JSON), as an array or as a single object.
fn entries<'f, 'a>(fields: &'f Fields<'a>, wrapper: &str) -> impl Iterator<Item = &'f Fields<'a>> {
    let list = fields
        .get(wrapper)
        .and_then(|w| w.get("List"))
        .or_else(|| fields.get("List"));
    let items: &[Node<'a>] = match list {
        Some(Node::Array(items)) => items,
        Some(single) => std::slice::from_ref(single),
        None => &[],
    };
    items.iter().filter_map(|item| match item {
        Node::Object(entry) => Some(entry),
        _ => None,
    })
}

fn decision(entry: &Fields<'_>) -> Option<SubscribeDecision> {
    Some(SubscribeDecision {
        template_id: text(entry, "TemplateId")?,
        status: text(entry, "SubscribeStatusString")?,
        popup_scene: entry.get("PopupScene").and_then(Node::loose_i64),
    })
}

fn send_result(entry: &Fields<'_>) -> Option<SubscribeSendResult> {
    Some(SubscribeSendResult {
        template_id: text(entry, "TemplateId")?,
        msg_id: msg_id(entry, "MsgID").or_else(|| msg_id(entry, "MsgId")),
        error_code: entry.get("ErrorCode").and_then(Node::loose_i64),
        error_status: text(entry, "ErrorStatus"),
    })
}

/// The longest account id a push may carry. WeChat's are short (an openid is 28
/// characters, an original id 15): a longer one is not WeChat's, and would make keys no
/// store takes.
pub const MAX_ACCOUNT_ID_BYTES: usize = 128;

/// `ToUserName` or `FromUserName`: present, and an id WeChat could have given.
fn account_id(fields: &Fields<'_>, key: &'static str) -> Result<String, EventError> {
    let id = required_string(fields, key)?;
    if id.len() > MAX_ACCOUNT_ID_BYTES || id.chars().any(char::is_control) {
        return Err(EventError::InvalidField(key));
    }
    Ok(id)
}

fn required_string(fields: &Fields<'_>, key: &'static str) -> Result<String, EventError> {
    match fields.get(key) {
        None | Some(Node::Null) => Err(EventError::MissingField(key)),
        Some(node) => match node.loose_string() {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(EventError::MissingField(key)),
            None => Err(EventError::InvalidField(key)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::parse_document;
    use serde_json::json;

    fn event(document: &str) -> CallbackEvent {
        CallbackEvent::from_document(parse_document(document).unwrap()).unwrap()
    }

    const HEAD_XML: &str = "<ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName><CreateTime>1700000000</CreateTime>";

    #[test]
    fn text_from_xml_and_json_with_msgid_as_number_or_string() {
        let from_xml = event(&format!(
            "<xml>{HEAD_XML}<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content><MsgId>6054768590064713728</MsgId></xml>"
        ));
        let from_json = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":1700000000,"MsgType":"text","Content":"你好","MsgId":6054768590064713728}"#,
        );
        let from_cloud = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":"1700000000","MsgType":"text","Content":"你好","MsgId":"6054768590064713728"}"#,
        );
        let expected = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: "o_user".into(),
            create_time: 1_700_000_000,
            business_id: None,
            kind: EventKind::Text {
                msg_id: "6054768590064713728".into(),
                content: "你好".into(),
            },
        };
        assert_eq!(from_xml, expected);
        assert_eq!(from_json, expected);
        assert_eq!(from_cloud, expected);
        assert_eq!(expected.dedupe_key(), "msg:6054768590064713728");
    }

    #[test]
    fn a_msgid_with_leading_zeros_or_blanks_is_the_same_message() {
        // Found by the xml_reader fuzz target: the id read and the id written back differed.
        let padded = event(&format!(
            "<xml>{HEAD_XML}<MsgType>text</MsgType><Content>hi</Content><MsgId> 000123 </MsgId></xml>"
        ));
        let plain = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":1700000000,"MsgType":"text","Content":"hi","MsgId":123}"#,
        );
        assert_eq!(padded, plain);
        assert_eq!(padded.dedupe_key(), "msg:123");
        let named = event(&format!(
            "<xml>{HEAD_XML}<MsgType>text</MsgType><Content>hi</Content><MsgId>0x7b</MsgId></xml>"
        ));
        assert_eq!(named.msg_id(), Some("0x7b"));
    }

    #[test]
    fn image_and_miniprogram_card() {
        let image = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":1,"MsgType":"image","PicUrl":"http://p/1","MediaId":"m1","MsgId":7}"#,
        );
        assert_eq!(
            image.kind,
            EventKind::Image {
                msg_id: "7".into(),
                pic_url: "http://p/1".into(),
                media_id: "m1".into()
            }
        );
        let card = event(&format!(
            "<xml>{HEAD_XML}<MsgType>miniprogrampage</MsgType><MsgId>8</MsgId><Title>Hotel</Title><AppId>wx1</AppId><PagePath>pages/order?id=9</PagePath><ThumbUrl>http://t</ThumbUrl><ThumbMediaId>tm</ThumbMediaId></xml>"
        ));
        assert_eq!(
            card.kind,
            EventKind::MiniProgramPage {
                msg_id: "8".into(),
                title: "Hotel".into(),
                app_id: "wx1".into(),
                page_path: "pages/order?id=9".into(),
                thumb_url: "http://t".into(),
                thumb_media_id: "tm".into()
            }
        );
    }

    #[test]
    fn session_entry_dedupes_by_user_time_and_event() {
        let entry = event(&format!(
            "<xml>{HEAD_XML}<MsgType>event</MsgType><Event>user_enter_tempsession</Event><SessionFrom>partner=hotel-9</SessionFrom></xml>"
        ));
        assert_eq!(
            entry.kind,
            EventKind::UserEnterTempSession {
                session_from: "partner=hotel-9".into()
            }
        );
        let key = entry.dedupe_key();
        let prefix = "evt:o_user:1700000000:user_enter_tempsession:";
        assert!(
            key.starts_with(prefix) && key.len() == prefix.len() + 12,
            "{key}"
        );
        assert_eq!(entry.clone().dedupe_key(), key, "a retry has the same key");
        // Another entry in the same second, from another page, is another push.
        let other = CallbackEvent {
            kind: EventKind::UserEnterTempSession {
                session_from: "partner=airline-2".into(),
            },
            ..entry
        };
        assert_ne!(other.dedupe_key(), key);
    }

    #[test]
    fn subscribe_popup_in_every_shape() {
        let xml = event(&format!(
            "<xml>{HEAD_XML}<MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List><TemplateId>t1</TemplateId><SubscribeStatusString>accept</SubscribeStatusString><PopupScene>0</PopupScene></List><List><TemplateId>t2</TemplateId><SubscribeStatusString>reject</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>"
        ));
        let json_list = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":"1700000000","MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"t1","SubscribeStatusString":"accept","PopupScene":"0"},{"TemplateId":"t2","SubscribeStatusString":"reject","PopupScene":0}]}"#,
        );
        assert_eq!(xml, json_list);
        let EventKind::SubscribePopup { entries } = &xml.kind else {
            panic!("{xml:?}")
        };
        assert_eq!(entries.len(), 2);
        assert!(entries[0].accepted() && !entries[1].accepted());
        assert_eq!(entries[0].popup_scene, Some(0));

        let single = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event","List":{"TemplateId":"t1","SubscribeStatusString":"accept","PopupScene":"0"}}"#,
        );
        let EventKind::SubscribePopup { entries } = single.kind else {
            panic!()
        };
        assert_eq!(entries[0].template_id, "t1");
    }

    #[test]
    fn subscribe_change_and_sent_events() {
        let change = event(&format!(
            "<xml>{HEAD_XML}<MsgType>event</MsgType><Event>subscribe_msg_change_event</Event><SubscribeMsgChangeEvent><List><TemplateId>t1</TemplateId><SubscribeStatusString>reject</SubscribeStatusString></List></SubscribeMsgChangeEvent></xml>"
        ));
        assert_eq!(
            change.kind,
            EventKind::SubscribeChange {
                entries: vec![SubscribeDecision {
                    template_id: "t1".into(),
                    status: "reject".into(),
                    popup_scene: None
                }]
            }
        );
        let sent = event(&format!(
            "<xml>{HEAD_XML}<MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List><TemplateId>t1</TemplateId><MsgID>1700</MsgID><ErrorCode>0</ErrorCode><ErrorStatus>success</ErrorStatus></List></SubscribeMsgSentEvent></xml>"
        ));
        assert_eq!(
            sent.kind,
            EventKind::SubscribeSent {
                entries: vec![SubscribeSendResult {
                    template_id: "t1".into(),
                    msg_id: Some("1700".into()),
                    error_code: Some(0),
                    error_status: Some("success".into())
                }]
            }
        );
    }

    #[test]
    fn unknown_types_are_kept_raw_with_all_fields() {
        let voice = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":5,"MsgType":"voice","MediaId":"v","MsgId":42}"#,
        );
        let EventKind::Raw {
            msg_type,
            msg_id,
            fields,
            ..
        } = &voice.kind
        else {
            panic!("{voice:?}")
        };
        assert_eq!(
            (msg_type.as_str(), msg_id.as_deref()),
            ("voice", Some("42"))
        );
        assert_eq!(fields.get("MediaId"), Some(&json!("v")));
        assert_eq!(voice.dedupe_key(), "msg:42");

        let debug = event(crate::vectors::MP_PLAIN_BODY);
        assert_eq!(debug.event_name(), Some("debug_demo"));
        assert!(debug
            .dedupe_key()
            .starts_with("evt:o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1714037059:debug_demo:"));
    }

    #[test]
    fn a_subscribe_event_without_entries_is_kept_raw() {
        let empty = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event","Extra":"kept"}"#,
        );
        let EventKind::Raw { event, fields, .. } = &empty.kind else {
            panic!("{empty:?}")
        };
        assert_eq!(event.as_deref(), Some("subscribe_msg_popup_event"));
        assert_eq!(fields.get("Extra"), Some(&json!("kept")));
    }

    #[test]
    fn a_known_type_missing_its_fields_is_kept_raw() {
        let text_without_content = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":5,"MsgType":"text","MsgId":1}"#,
        );
        assert!(matches!(text_without_content.kind, EventKind::Raw { .. }));
    }

    #[test]
    fn missing_common_fields_are_errors() {
        let of =
            |doc: &str| CallbackEvent::from_document(parse_document(doc).unwrap()).unwrap_err();
        assert_eq!(
            of(r#"{"ToUserName":"gh_1","CreateTime":1,"MsgType":"text"}"#),
            EventError::MissingField("FromUserName")
        );
        assert_eq!(
            of(r#"{"ToUserName":"gh_1","FromUserName":"o","MsgType":"text"}"#),
            EventError::MissingField("CreateTime")
        );
        assert_eq!(
            of(r#"{"ToUserName":"gh_1","FromUserName":"o","CreateTime":1}"#),
            EventError::MissingField("MsgType")
        );
        assert_eq!(
            of(r#"{"ToUserName":"gh_1","FromUserName":{"x":1},"CreateTime":1,"MsgType":"text"}"#),
            EventError::InvalidField("FromUserName")
        );
        assert_eq!(
            CallbackEvent::from_document(parse_document("<xml>text</xml>").unwrap()).unwrap_err(),
            EventError::NotAnObject
        );
    }

    #[test]
    fn the_enter_session_event_uses_wechats_name_and_reads_the_old_one() {
        let event = CallbackEvent {
            to_user_name: "gh_1".into(),
            from_user_name: "o_user".into(),
            create_time: 1_700_000_000,
            business_id: None,
            kind: EventKind::UserEnterTempSession {
                session_from: "partner=hotel-9".into(),
            },
        };
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(written["type"], "user_enter_tempsession");
        let mut stored_before = written.clone();
        stored_before["type"] = "user_enter_temp_session".into();
        let read: CallbackEvent = serde_json::from_value(stored_before).unwrap();
        assert_eq!(read, event);
    }

    #[test]
    fn a_sub_merchant_sessions_business_id_is_read_from_xml_and_json() {
        let from_xml = event(&format!(
            "<xml>{HEAD_XML}<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>9</MsgId><BusinessId>1001</BusinessId></xml>"
        ));
        let from_json = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":1700000000,"MsgType":"text","Content":"hi","MsgId":9,"BusinessId":1001}"#,
        );
        let as_string = event(
            r#"{"ToUserName":"gh_1","FromUserName":"o_user","CreateTime":1700000000,"MsgType":"text","Content":"hi","MsgId":9,"BusinessId":"1001"}"#,
        );
        for read in [&from_xml, &from_json, &as_string] {
            assert_eq!(read.business_id.as_deref(), Some("1001"));
        }
        let main_session = event(&format!(
            "<xml>{HEAD_XML}<MsgType>text</MsgType><Content>hi</Content><MsgId>9</MsgId><BusinessId></BusinessId></xml>"
        ));
        assert_eq!(
            main_session.business_id, None,
            "an empty id is the main session"
        );
    }

    #[test]
    fn entering_two_sessions_in_one_second_is_two_events() {
        let enter = |business: &str| {
            event(&format!(
                "<xml>{HEAD_XML}<MsgType>event</MsgType><Event>user_enter_tempsession</Event><SessionFrom>s</SessionFrom>{business}</xml>"
            ))
        };
        let main = enter("");
        let hotel = enter("<BusinessId>1001</BusinessId>");
        let airline = enter("<BusinessId>1002</BusinessId>");
        assert_ne!(main.dedupe_key(), hotel.dedupe_key());
        assert_ne!(hotel.dedupe_key(), airline.dedupe_key());
        assert_eq!(
            hotel.dedupe_key(),
            enter("<BusinessId>1001</BusinessId>").dedupe_key()
        );
    }

    #[test]
    fn an_account_id_no_wechat_user_has_is_refused() {
        let push = |from: &str| {
            format!(
                r#"{{"ToUserName":"gh_1","FromUserName":"{from}","CreateTime":1,"MsgType":"text","Content":"hi","MsgId":1}}"#
            )
        };
        let read = |text: &str| CallbackEvent::from_document(serde_json::from_str(text).unwrap());
        assert!(read(&push("o9AgO5Kd5ggOC-bXrbNODIiE3bGY")).is_ok());
        assert_eq!(
            read(&push(&"o".repeat(2000))),
            Err(EventError::InvalidField("FromUserName"))
        );
        assert_eq!(
            read(&push("o\\u0000x")),
            Err(EventError::InvalidField("FromUserName"))
        );
    }
}
