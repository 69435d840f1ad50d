//! What a partner sends in a reply or a push: the content and the subscribe form, read from
//! JSON into core's values (which check them field by field).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use wxbridge_core::model;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        /// At most 2048 bytes (UTF-8), with the sender's name in merged mode; not blank.
        #[schema(
            pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
            min_length = 1,
            max_length = 2048
        )]
        text: String,
    },
    /// An image at a URL the dispatcher downloads (or base64 bytes), uploaded to WeChat.
    Image {
        #[serde(default)]
        #[schema(
            pattern = r"^https?://[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
            max_length = 2048
        )]
        url: Option<String>,
        #[serde(default)]
        base64: Option<String>,
    },
    Link {
        #[schema(
            pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
            min_length = 1
        )]
        title: String,
        description: String,
        #[schema(
            pattern = r"^https?://[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
            max_length = 2048
        )]
        url: String,
        #[schema(
            pattern = r"^https?://[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
            max_length = 2048
        )]
        thumb_url: String,
    },
    #[serde(rename = "miniprogrampage")]
    MiniProgramPage {
        #[schema(
            pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
            min_length = 1
        )]
        title: String,
        /// A page of the mini program (not an http URL).
        #[schema(
            pattern = r"^(?!http)[\s\S]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        )]
        pagepath: String,
        #[schema(min_length = 1)]
        thumb_media_id: String,
    },
}

impl From<Content> for model::Content {
    fn from(content: Content) -> Self {
        match content {
            Content::Text { text } => Self::Text { text },
            Content::Image { url, base64 } => Self::Image { url, base64 },
            Content::Link {
                title,
                description,
                url,
                thumb_url,
            } => Self::Link {
                title,
                description,
                url,
                thumb_url,
            },
            Content::MiniProgramPage {
                title,
                pagepath,
                thumb_media_id,
            } => Self::MiniProgramPage {
                title,
                pagepath,
                thumb_media_id,
            },
        }
    }
}

/// A subscribe message, as `subscribe/send` takes it (protocol notes §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeForm {
    pub template_id: String,
    /// `{"thing1": {"value": "…"}, …}`: the template's fields.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl From<SubscribeForm> for model::SubscribeForm {
    fn from(form: SubscribeForm) -> Self {
        Self {
            template_id: form.template_id,
            data: form.data,
            page: form.page,
            miniprogram_state: form.miniprogram_state,
            lang: form.lang,
        }
    }
}

impl From<model::SubscribeForm> for SubscribeForm {
    fn from(form: model::SubscribeForm) -> Self {
        Self {
            template_id: form.template_id,
            data: form.data,
            page: form.page,
            miniprogram_state: form.miniprogram_state,
            lang: form.lang,
        }
    }
}
