//! A small, strict XML reader for WeChat push bodies.
//!
//! WeChat's XML is flat (`<xml><Field>value</Field>…</xml>`) with a few nested lists
//! (`<SubscribeMsgPopupEvent><List>…</List></SubscribeMsgPopupEvent>`). It is read into a
//! [`Node`] tree so that XML and JSON pushes share one typed reader downstream: leaf
//! elements become text (borrowed from the input where possible), elements with children
//! become objects, and a repeated child name becomes an array.
//!
//! Hostile input is refused, never expanded: a DOCTYPE (the door to entity expansion and
//! external entities) is an error, and only the five predefined entities and character
//! references are resolved.

use crate::document::{Fields, Node};
use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;
use std::borrow::Cow;
use thiserror::Error;

/// Deeper nesting, or more children, than WeChat ever sends is refused rather than followed
/// (sibling lookup is linear, so an unbounded count would cost quadratic time).
const MAX_DEPTH: usize = 8;
const MAX_CHILDREN: usize = 256;

/// Element names of WeChat pushes, so that reading them allocates nothing.
const KNOWN_NAMES: &[&str] = &[
    "xml",
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "PicUrl",
    "MediaId",
    "Title",
    "AppId",
    "PagePath",
    "ThumbUrl",
    "ThumbMediaId",
    "Event",
    "SessionFrom",
    "Encrypt",
    "List",
    "TemplateId",
    "SubscribeStatusString",
    "PopupScene",
    "MsgID",
    "ErrorCode",
    "ErrorStatus",
    "SubscribeMsgPopupEvent",
    "SubscribeMsgChangeEvent",
    "SubscribeMsgSentEvent",
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("XML with a DOCTYPE is refused")]
    Doctype,
    #[error("XML entity reference &{0}; is not allowed")]
    Entity(String),
    #[error("XML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("an XML element has more than {MAX_CHILDREN} children")]
    TooManyChildren,
    #[error("XML is not well formed: {0}")]
    Malformed(String),
    #[error("XML has no root element")]
    Empty,
}

struct Frame<'a> {
    name: Cow<'a, str>,
    text: Option<Cow<'a, str>>,
    children: Fields<'a>,
    child_count: usize,
}

impl<'a> Frame<'a> {
    fn new(name: &str) -> Self {
        let name = match KNOWN_NAMES.iter().find(|known| **known == name) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(name.to_owned()),
        };
        Self {
            name,
            text: None,
            children: Fields::default(),
            child_count: 0,
        }
    }

    /// Text usually arrives in one piece and stays borrowed; pieces split by references
    /// are joined.
    fn append(&mut self, piece: Cow<'a, str>) {
        match &mut self.text {
            None => self.text = Some(piece),
            Some(text) => text.to_mut().push_str(&piece),
        }
    }

    fn adopt(&mut self, name: Cow<'a, str>, node: Node<'a>) -> Result<(), XmlError> {
        self.child_count += 1;
        if self.child_count > MAX_CHILDREN {
            return Err(XmlError::TooManyChildren);
        }
        self.children.push_child(name, node);
        Ok(())
    }

    /// An element with children is an object; whitespace between children is layout.
    fn into_node(self) -> Node<'a> {
        if self.children.is_empty() {
            Node::Text(self.text.unwrap_or_default())
        } else {
            Node::Object(self.children)
        }
    }
}

fn malformed(error: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(error.to_string())
}

/// Parses an XML document into a [`Node`]: the root element's content (the root's own
/// name, `xml` for WeChat, is not kept).
pub fn parse(input: &str) -> Result<Node<'_>, XmlError> {
    let mut reader = Reader::from_str(input);
    let mut stack: Vec<Frame<'_>> = Vec::with_capacity(MAX_DEPTH);
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(Frame::new(start.local_name().as_ref()));
            }
            Event::Empty(empty) => {
                let frame = Frame::new(empty.local_name().as_ref());
                match stack.last_mut() {
                    Some(parent) => parent.adopt(frame.name, Node::Text(Cow::Borrowed("")))?,
                    None => return finish(&mut reader, Node::Text(Cow::Borrowed(""))),
                }
            }
            Event::End(_) => {
                let frame = stack.pop().ok_or_else(|| malformed("unexpected end tag"))?;
                let name = frame.name.clone();
                let node = frame.into_node();
                match stack.last_mut() {
                    Some(parent) => parent.adopt(name, node)?,
                    None => return finish(&mut reader, node),
                }
            }
            Event::Text(text) => append_text(&mut stack, text.xml10_content())?,
            Event::CData(cdata) => append_text(&mut stack, cdata.xml10_content())?,
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                append_text(&mut stack, Cow::Owned(resolved.to_string()))?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                return Err(if stack.is_empty() {
                    XmlError::Empty
                } else {
                    malformed("document ends inside an element")
                })
            }
        }
    }
}

/// After the root element closes only comments, processing instructions and whitespace
/// may follow.
fn finish<'a>(reader: &mut Reader<&'a [u8]>, root: Node<'a>) -> Result<Node<'a>, XmlError> {
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Eof => return Ok(root),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(text) if text.xml10_content().trim().is_empty() => {}
            Event::DocType(_) => return Err(XmlError::Doctype),
            _ => return Err(malformed("content after the root element")),
        }
    }
}

fn append_text<'a>(stack: &mut [Frame<'a>], text: Cow<'a, str>) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(frame) => {
            frame.append(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

fn resolve_reference(reference: &BytesRef<'_>) -> Result<char, XmlError> {
    let name = reference.borrow().into_inner();
    if reference.is_char_ref() {
        return reference
            .resolve_char_ref()
            .ok()
            .flatten()
            .ok_or_else(|| XmlError::Entity(name.into_owned()));
    }
    match name.as_ref() {
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

    fn parse_value(input: &str) -> Result<serde_json::Value, XmlError> {
        parse(input).map(|node| node.to_value())
    }

    #[test]
    fn reads_a_flat_push_with_cdata_and_numbers() {
        let value = parse_value(
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
            parse_value("<xml><A>a &lt;&gt;&amp;&apos;&quot; &#20320;&#x597D;</A></xml>").unwrap();
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
        let value = parse_value(
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
        let wide: String = (0..300).map(|n| format!("<f{n}/>")).collect();
        assert_eq!(
            parse(&format!("<xml>{wide}</xml>")),
            Err(XmlError::TooManyChildren)
        );
    }
}
