//! A push as the store keeps it: what the partner asked for (target, subscribe form,
//! expiry) and each attempt of the delivery chain (protocol notes §5 for subscribe
//! messages).

use super::content::Content;
use super::message::StoredMessage;
use crate::config::{PartnerConfig, ReplyFallback};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use wxbridge_wechat::subscribe;

/// A subscribe message, as `subscribe/send` takes it (protocol notes §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeForm {
    pub template_id: String,
    /// `{"thing1": {"value": "…"}, …}`: the template's fields.
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl SubscribeForm {
    /// A form WeChat could take: the field at fault named as the API answers it.
    pub fn validate(&self) -> Result<(), (String, &'static str)> {
        let field = |name: &str, reason| Err((format!("subscribe.{name}"), reason));
        if self.template_id.trim().is_empty() || self.template_id.len() > 128 {
            return field("template_id", "1 to 128 characters");
        }
        if self.data.is_empty() {
            return field("data", "must name the template's fields");
        }
        for (key, value) in &self.data {
            let valid_key = !key.is_empty()
                && key.len() <= 64
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_key {
                return field("data", "field names are A-Z a-z 0-9 _");
            }
            if !value.get("value").is_some_and(Value::is_string) {
                return field(&format!("data.{key}"), "must be {\"value\": \"…\"}");
            }
        }
        if let Some(page) = &self.page {
            if page.trim().is_empty() || page.starts_with("http") || page.len() > 1024 {
                return field("page", "must be a page of the mini program");
            }
        }
        if let Some(state) = &self.miniprogram_state {
            if !subscribe::MINIPROGRAM_STATES.contains(&state.as_str()) {
                return field("miniprogram_state", "developer, trial or formal");
            }
        }
        if let Some(lang) = &self.lang {
            if !subscribe::LANGS.contains(&lang.as_str()) {
                return field("lang", "zh_CN, en_US, zh_HK or zh_TW");
            }
        }
        Ok(())
    }
}

/// Who a push is for, as the partner named them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTarget {
    /// An app user: any WeChat user bound to them, on a channel the partner may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_user_id: Option<String>,
    /// With `openid`, one channel user; with `app_user_id`, only that channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

/// The ways a push can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushPath {
    CustomerService,
    Subscribe,
    Inbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Delivered this way.
    Sent,
    /// Not tried: the window, the quota, the waiting replies or a missing grant said no.
    Skipped,
    /// WeChat refused it for good (errcode in the reason); the chain went on.
    Refused,
    /// WeChat did not answer or was busy: the push is retried.
    Retry,
    /// WeChat's answer was lost: the user may have it (setting `lost_send_answer`: sent
    /// again, or the push ends `uncertain`).
    AnswerLost,
    /// Kept in the store as the app's inbox item.
    Kept,
}

/// One step of the chain, as recorded on the push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushAttempt {
    pub path: PushPath,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
    pub at_ms: i64,
}

/// What a push asked for and what became of it, kept on the stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRecord {
    /// The partner's id for the push (absent on a reply falling back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_id: Option<String>,
    pub to: PushTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeForm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// A reply the window no longer allowed: only the subscribe and inbox branches.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    #[serde(default)]
    pub attempts: Vec<PushAttempt>,
    /// The path that settled it (`inbox` for an undeliverable one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PushPath>,
}

impl PushRecord {
    /// The same request: a repeat of a push id with anything else is refused.
    pub fn same_request(&self, other: &PushRecord) -> bool {
        self.push_id == other.push_id
            && self.to == other.to
            && self.subscribe == other.subscribe
            && self.expires_at_ms == other.expires_at_ms
    }

    /// A reply whose window closed, going on as the subscribe message `form`.
    pub fn fallback(reply: &StoredMessage, form: SubscribeForm, now_ms: i64) -> Self {
        Self {
            push_id: None,
            to: PushTarget {
                app_user_id: None,
                channel: Some(reply.channel.clone()),
                openid: Some(reply.openid.clone()),
            },
            subscribe: Some(form),
            expires_at_ms: None,
            fallback: true,
            attempts: vec![PushAttempt {
                path: PushPath::CustomerService,
                outcome: AttemptOutcome::Skipped,
                channel: Some(reply.channel.clone()),
                openid: Some(reply.openid.clone()),
                reason: Some("window closed".into()),
                errcode: None,
                at_ms: now_ms,
            }],
            path: None,
        }
    }
}

/// The subscribe message a reply becomes under the partner's `reply_fallback`: its text
/// (a link's or card's title) in the configured field, cut to the field's length. `None`
/// for what has no text (an image).
pub fn fallback_form(
    fallback: &ReplyFallback,
    partner: &PartnerConfig,
    content: &Content,
) -> Option<SubscribeForm> {
    let text = match content {
        Content::Text { text } => text.as_str(),
        Content::Link { title, .. } | Content::MiniProgramPage { title, .. } => title.as_str(),
        Content::Image { .. } => return None,
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    let mut data = Map::new();
    for (key, value) in &fallback.data {
        let value = value.replace("{partner}", &partner.display_name);
        data.insert(key.clone(), json!({ "value": value }));
    }
    data.insert(
        fallback.field.clone(),
        json!({ "value": cut(&text, fallback.limit()) }),
    );
    Some(SubscribeForm {
        template_id: fallback.template_id.clone(),
        data,
        page: fallback.page.clone(),
        miniprogram_state: fallback.miniprogram_state.clone(),
        lang: fallback.lang.clone(),
    })
}

/// At most `limit` characters; a longer text ends with `…`.
pub fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(limit.saturating_sub(1)).collect();
    kept.push('…');
    kept
}
