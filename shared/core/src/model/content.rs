//! What partners send, checked field by field, and the WeChat customer-service message it
//! becomes (protocol notes §3.1): in merged mode text carries the partner's name by the
//! sender template; held texts can go out together when the quota is scarce.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

/// WeChat's limit for a customer-service text, in bytes (as for WeCom's `send_msg`).
pub const MAX_TEXT_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        /// At most 2048 bytes (UTF-8), with the sender's name in merged mode; not blank.
        text: String,
    },
    /// An image at a URL the dispatcher downloads (or base64 bytes), uploaded to WeChat.
    Image {
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        base64: Option<String>,
    },
    Link {
        title: String,
        description: String,
        url: String,
        thumb_url: String,
    },
    #[serde(rename = "miniprogrampage")]
    MiniProgramPage {
        title: String,
        /// A page of the mini program (not an http URL).
        pagepath: String,
        thumb_media_id: String,
    },
}

/// A field the partner got wrong: the API answers 400 naming it.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: &'static str,
}

fn field(field: &'static str, reason: &'static str) -> Result<(), FieldError> {
    Err(FieldError { field, reason })
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(char::is_whitespace)
        && url.len() <= 2048
}

impl Content {
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            Content::Text { text } if text.trim().is_empty() => {
                field("content.text", "must not be empty")
            }
            Content::Text { text } if text.len() > MAX_TEXT_BYTES => {
                field("content.text", "at most 2048 bytes")
            }
            Content::Image {
                url: None,
                base64: None,
            }
            | Content::Image {
                url: Some(_),
                base64: Some(_),
            } => field("content", "an image has exactly one of url or base64"),
            Content::Image { url: Some(url), .. } if !is_http_url(url) => {
                field("content.url", "must be an http(s) URL")
            }
            Content::Image {
                base64: Some(encoded),
                ..
            } => super::image::decode_base64(encoded)
                .map(drop)
                .or_else(|reason| field("content.base64", reason)),
            Content::Link { title, .. } if title.trim().is_empty() => {
                field("content.title", "must not be empty")
            }
            Content::Link { url, .. } if !is_http_url(url) => {
                field("content.url", "must be an http(s) URL")
            }
            Content::Link { thumb_url, .. } if !is_http_url(thumb_url) => {
                field("content.thumb_url", "must be an http(s) URL")
            }
            Content::MiniProgramPage { title, .. } if title.trim().is_empty() => {
                field("content.title", "must not be empty")
            }
            Content::MiniProgramPage { pagepath, .. }
                if pagepath.trim().is_empty() || pagepath.starts_with("http") =>
            {
                field("content.pagepath", "must be a page of the mini program")
            }
            Content::MiniProgramPage { thumb_media_id, .. } if thumb_media_id.is_empty() => {
                field("content.thumb_media_id", "must not be empty")
            }
            _ => Ok(()),
        }
    }

    /// The `custom/send` body (without `touser`). `sender` is the merged-mode prefix for
    /// text; `media_id` is the uploaded image's.
    pub fn wechat_body(&self, sender: Option<&str>, media_id: Option<&str>) -> Value {
        match self {
            Content::Text { text } => json!({
                "msgtype": "text",
                "text": { "content": format!("{}{text}", sender.unwrap_or_default()) }
            }),
            Content::Image { .. } => {
                json!({ "msgtype": "image", "image": { "media_id": media_id.unwrap_or_default() } })
            }
            Content::Link {
                title,
                description,
                url,
                thumb_url,
            } => json!({
                "msgtype": "link",
                "link": { "title": title, "description": description, "url": url, "thumb_url": thumb_url }
            }),
            Content::MiniProgramPage {
                title,
                pagepath,
                thumb_media_id,
            } => json!({
                "msgtype": "miniprogrampage",
                "miniprogrampage": { "title": title, "pagepath": pagepath, "thumb_media_id": thumb_media_id }
            }),
        }
    }
}

/// Packs held texts into as few sends as fit `MAX_TEXT_BYTES` each, in order, one per line,
/// when there are more texts than sends left. Never splits a text.
pub fn pack_texts(texts: &[String], sends_left: usize) -> Vec<String> {
    let sizes: Vec<Option<usize>> = texts.iter().map(|t| Some(t.len())).collect();
    pack_runs(&sizes, sends_left, MAX_TEXT_BYTES)
        .into_iter()
        .map(|run| {
            run.iter()
                .map(|&i| texts[i].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Which held messages go out together, as runs of indexes in order. `sizes[i]` is the
/// byte length of message `i`'s text, `None` for a message that is not a text (an image,
/// link or card always goes alone). Only when there are more messages than `sends_left`
/// are they packed: then consecutive texts share one send while the joined text (one per
/// line) stays within `limit` bytes. Never splits a text; a text over the limit goes alone.
pub fn pack_runs(sizes: &[Option<usize>], sends_left: usize, limit: usize) -> Vec<Vec<usize>> {
    if sizes.len() <= sends_left {
        return (0..sizes.len()).map(|i| vec![i]).collect();
    }
    let mut runs: Vec<(Vec<usize>, Option<usize>)> = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        match (runs.last_mut(), size) {
            (Some((run, Some(joined))), Some(size)) if *joined + 1 + size <= limit => {
                run.push(i);
                *joined += 1 + size;
            }
            _ => runs.push((vec![i], *size)),
        }
    }
    runs.into_iter().map(|(run, _)| run).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_content_is_checked_and_the_bad_field_named() {
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let cases = [
            (Content::Text { text: " ".into() }, "content.text"),
            (Content::Text { text: long }, "content.text"),
            (
                Content::Image {
                    url: None,
                    base64: None,
                },
                "content",
            ),
            (
                Content::Image {
                    url: Some("ftp://x".into()),
                    base64: None,
                },
                "content.url",
            ),
            (
                Content::Image {
                    url: None,
                    base64: Some("not base64".into()),
                },
                "content.base64",
            ),
            (
                Content::Image {
                    url: None,
                    base64: Some("PGh0bWw+".into()),
                },
                "content.base64",
            ),
            (
                Content::Link {
                    title: "t".into(),
                    description: "d".into(),
                    url: "https://a".into(),
                    thumb_url: "nope".into(),
                },
                "content.thumb_url",
            ),
            (
                Content::MiniProgramPage {
                    title: "t".into(),
                    pagepath: "https://x".into(),
                    thumb_media_id: "m".into(),
                },
                "content.pagepath",
            ),
        ];
        for (content, expected) in cases {
            assert_eq!(
                content.validate().unwrap_err().field,
                expected,
                "{content:?}"
            );
        }
        assert!(Content::Text {
            text: "hello".into()
        }
        .validate()
        .is_ok());
        assert!(Content::Image {
            url: None,
            base64: Some("R0lGODlhAQABAAAAACw=".into()),
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn text_carries_the_sender_in_merged_mode() {
        let body = Content::Text {
            text: "Breakfast is included.".into(),
        }
        .wechat_body(Some("【Hotel Lotus】"), None);
        assert_eq!(
            body,
            json!({"msgtype": "text", "text": {"content": "【Hotel Lotus】Breakfast is included."}})
        );
        let plain = Content::Text { text: "Hi".into() }.wechat_body(None, None);
        assert_eq!(plain["text"]["content"], "Hi");
        let image = Content::Image {
            url: Some("https://i/x.png".into()),
            base64: None,
        }
        .wechat_body(None, Some("m1"));
        assert_eq!(
            image,
            json!({"msgtype": "image", "image": {"media_id": "m1"}})
        );
    }

    #[test]
    fn content_reads_from_the_api_shape() {
        let card: Content = serde_json::from_value(json!({"type": "miniprogrampage", "title": "Order", "pagepath": "pages/order?id=1", "thumb_media_id": "m"})).unwrap();
        assert!(matches!(card, Content::MiniProgramPage { .. }));
        assert!(serde_json::from_value::<Content>(json!({"type": "video"})).is_err());
    }

    #[test]
    fn held_texts_are_packed_only_when_sends_are_scarce() {
        let texts: Vec<String> = (1..=4).map(|n| format!("update {n}")).collect();
        assert_eq!(pack_texts(&texts, 5), texts);
        assert_eq!(
            pack_texts(&texts, 2),
            ["update 1\nupdate 2\nupdate 3\nupdate 4"]
        );
        let big = vec!["a".repeat(1500), "b".repeat(1000), "c".into()];
        assert_eq!(
            pack_texts(&big, 1),
            [big[0].clone(), format!("{}\nc", big[1])]
        );
    }

    #[test]
    fn only_texts_pack_and_order_is_kept() {
        let sizes = [Some(5), Some(5), None, Some(5), Some(5), Some(5)];
        assert_eq!(
            pack_runs(&sizes, 6, 100),
            [[0], [1], [2], [3], [4], [5]].map(|r| r.to_vec()),
            "enough sends: nothing packs"
        );
        assert_eq!(
            pack_runs(&sizes, 2, 100),
            [vec![0, 1], vec![2], vec![3, 4, 5]],
            "the card goes alone, between the texts around it"
        );
        assert_eq!(
            pack_runs(&sizes, 2, 11),
            [vec![0, 1], vec![2], vec![3, 4], vec![5]],
            "a joined text stays within the limit"
        );
    }
}
