//! A push body read once, borrowing from the input: the common ground of XML and JSON.
//!
//! Both formats are read into a [`Node`] tree whose strings borrow from the request body
//! wherever no unescaping was needed, so opening a push allocates little beyond the
//! strings the typed event keeps. Lookups are linear: a WeChat push has a dozen fields.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Text(Cow<'a, str>),
    Number(Number),
    Bool(bool),
    Null,
    Array(Vec<Node<'a>>),
    Object(Fields<'a>),
}

/// The children of an object, in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields<'a>(pub Vec<(Cow<'a, str>, Node<'a>)>);

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a child; a repeated name turns into an array, as XML lists do.
    pub fn push_child(&mut self, key: Cow<'a, str>, node: Node<'a>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            None => self.0.push((key, node)),
            Some((_, Node::Array(items))) => items.push(node),
            Some((_, existing)) => {
                let first = std::mem::replace(existing, Node::Null);
                *existing = Node::Array(vec![first, node]);
            }
        }
    }

    /// An owned JSON object, for fields kept verbatim (raw events).
    pub fn to_map(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_value()))
            .collect()
    }
}

impl<'a> Node<'a> {
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(fields) => fields.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Text(text) => Some(text),
            _ => None,
        }
    }

    /// A string, or a number or bool written as one (`MsgId` arrives both ways).
    pub fn loose_string(&self) -> Option<String> {
        match self {
            Node::Text(text) => Some(text.to_string()),
            Node::Number(n) => Some(n.to_string()),
            Node::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// An integer, or a string holding one (`CreateTime` and `PopupScene` arrive both ways).
    pub fn loose_i64(&self) -> Option<i64> {
        match self {
            Node::Number(n) => n.as_i64(),
            Node::Text(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Node::Text(text) => Value::String(text.to_string()),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Bool(b) => Value::Bool(*b),
            Node::Null => Value::Null,
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(fields) => Value::Object(fields.to_map()),
        }
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Node::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Node::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Node::Text(Cow::Owned(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Node::Null, Node::Number))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Node::Bool(v))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // A push has about a dozen fields: one allocation for all of them.
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key::<Node<'de>>()? {
            let Node::Text(key) = key else {
                return Err(serde::de::Error::custom("object keys are strings"));
            };
            fields.push((key, map.next_value()?));
        }
        Ok(Node::Object(Fields(fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_strings_borrow_unless_escaped() {
        let node: Node =
            serde_json::from_str(r#"{"a":"plain","b":"esc\/aped","c":12,"d":[true,null]}"#)
                .unwrap();
        assert!(matches!(
            node.get("a"),
            Some(Node::Text(Cow::Borrowed("plain")))
        ));
        assert_eq!(node.get("b").and_then(Node::as_str), Some("esc/aped"));
        assert_eq!(
            node.get("c").and_then(Node::loose_string).as_deref(),
            Some("12")
        );
        assert_eq!(
            node.to_value(),
            json!({"a":"plain","b":"esc/aped","c":12,"d":[true,null]})
        );
    }

    #[test]
    fn repeated_children_become_an_array() {
        let mut fields = Fields::default();
        for n in 0..3 {
            fields.push_child("List".into(), Node::Number(n.into()));
        }
        assert_eq!(Node::Object(fields).to_value(), json!({"List": [0, 1, 2]}));
    }
}
