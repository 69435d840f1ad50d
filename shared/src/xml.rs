//! A small, strict XML reader for WeChat push bodies.
//!
//! WeChat's XML is flat (`<xml><Field>value</Field>…</xml>`) with a few nested lists
//! (`<SubscribeMsgPopupEvent><List>…</List></SubscribeMsgPopupEvent>`). It is read into a
//! `serde_json::Value` so that XML and JSON pushes share one typed parser downstream:
//! leaf elements become strings, elements with children become objects, and a repeated
//! child name becomes an array.
//!
//! Hostile input is refused, never expanded: a DOCTYPE (the door to entity expansion and
//! external entities) is an error, and only the five predefined entities and character
//! references are resolved.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};
use thiserror::Error;

/// Deeper nesting than WeChat ever sends is refused rather than followed.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("XML with a DOCTYPE is refused")]
    Doctype,
    #[error("XML entity reference &{0}; is not allowed")]
    Entity(String),
    #[error("XML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("XML is not well formed: {0}")]
    Malformed(String),
    #[error("XML has no root element")]
    Empty,
}

struct Frame {
    name: String,
    text: String,
    children: Map<String, Value>,
}

impl Frame {
    fn new(name: String) -> Self {
        Self {
            name,
            text: String::new(),
            children: Map::new(),
        }
    }

    /// An element with children is an object; whitespace between children is layout.
    fn into_value(self) -> Value {
        if self.children.is_empty() {
            Value::String(self.text)
        } else {
            Value::Object(self.children)
        }
    }

    fn add_child(&mut self, name: String, value: Value) {
        match self.children.get_mut(&name) {
            None => {
                self.children.insert(name, value);
            }
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
        }
    }
}

/// Parses an XML document into a JSON value: the root element's content (the root's own
/// name, `xml` for WeChat, is not kept).
pub fn parse(input: &str) -> Result<Value, XmlError> {
    let mut reader = Reader::from_str(input);
    let mut stack: Vec<Frame> = Vec::new();
    let malformed = |e: quick_xml::Error| XmlError::Malformed(e.to_string());
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(Frame::new(start.local_name().as_ref().to_owned()));
            }
            Event::Empty(empty) => {
                let name = empty.local_name().as_ref().to_owned();
                match stack.last_mut() {
                    Some(parent) => parent.add_child(name, Value::String(String::new())),
                    None => return finish(&mut reader, Value::String(String::new())),
                }
            }
            Event::End(_) => {
                let frame = stack
                    .pop()
                    .ok_or(XmlError::Malformed("unexpected end tag".into()))?;
                let name = frame.name.clone();
                let value = frame.into_value();
                match stack.last_mut() {
                    Some(parent) => parent.add_child(name, value),
                    None => return finish(&mut reader, value),
                }
            }
            Event::Text(text) => append_text(&mut stack, &text.xml10_content())?,
            Event::CData(cdata) => append_text(&mut stack, &cdata.xml10_content())?,
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                append_text(&mut stack, resolved.encode_utf8(&mut [0u8; 4]))?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                return Err(if stack.is_empty() {
                    XmlError::Empty
                } else {
                    XmlError::Malformed("document ends inside an element".into())
                })
            }
        }
    }
}

/// After the root element closes only comments, processing instructions and whitespace
/// may follow.
fn finish(reader: &mut Reader<&[u8]>, root: Value) -> Result<Value, XmlError> {
    loop {
        match reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?
        {
            Event::Eof => return Ok(root),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(text) if text.xml10_content().trim().is_empty() => {}
            Event::DocType(_) => return Err(XmlError::Doctype),
            _ => return Err(XmlError::Malformed("content after the root element".into())),
        }
    }
}

fn append_text(stack: &mut [Frame], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(frame) => {
            frame.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError::Malformed("text outside the root element".into())),
    }
}

fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<char, XmlError> {
    if reference.is_char_ref() {
        return reference
            .resolve_char_ref()
            .ok()
            .flatten()
            .ok_or_else(|| XmlError::Entity(reference.clone().into_inner().into_owned()));
    }
    match reference.borrow().into_inner().as_ref() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(XmlError::Entity(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_flat_push_with_cdata_and_numbers() {
        let value = parse(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1714037059</CreateTime>\n  <Content><![CDATA[ hi <b>&amp; ]]></Content></xml>",
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"ToUserName": "gh_1", "CreateTime": "1714037059", "Content": " hi <b>&amp; "})
        );
    }

    #[test]
    fn resolves_predefined_and_character_references_only() {
        let value =
            parse("<xml><A>a &lt;&gt;&amp;&apos;&quot; &#20320;&#x597D;</A></xml>").unwrap();
        assert_eq!(value, json!({"A": "a <>&'\" 你好"}));
        assert_eq!(
            parse("<xml><A>&custom;</A></xml>"),
            Err(XmlError::Entity("custom".into()))
        );
    }

    #[test]
    fn refuses_doctype_and_never_expands_entities() {
        let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><A>&lol2;</A></xml>"#;
        assert_eq!(parse(billion_laughs), Err(XmlError::Doctype));
        let external =
            r#"<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><A>&xxe;</A></xml>"#;
        assert_eq!(parse(external), Err(XmlError::Doctype));
    }

    #[test]
    fn repeated_children_become_arrays_and_single_ones_stay_objects() {
        let value = parse(
            "<xml><E><List><T>a</T></List><List><T>b</T></List></E><F><List><T>c</T></List></F><G/></xml>",
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"E": {"List": [{"T": "a"}, {"T": "b"}]}, "F": {"List": {"T": "c"}}, "G": ""})
        );
    }

    #[test]
    fn refuses_malformed_and_hostile_shapes() {
        assert!(matches!(
            parse("<xml><A>1</B></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<xml><A>1</A>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<xml></xml><xml></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("text<xml></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(parse(""), Err(XmlError::Empty));
        let deep = format!("<xml>{}{}</xml>", "<a>".repeat(20), "</a>".repeat(20));
        assert_eq!(parse(&deep), Err(XmlError::TooDeep));
    }
}
