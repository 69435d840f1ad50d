//! The partner operations' request bodies and query, as partners send them: read here
//! (unknown fields refused), handed to core as its values.

use super::content::{Content, SubscribeForm};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use wxbridge_core::services::partner as core;

/// `POST /v1/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub to: Option<Recipient>,
    /// The partner's id for this reply (1-64 of `A-Z a-z 0-9 - _ . : @`): a repeat answers
    /// the first message.
    #[schema(pattern = r"^[A-Za-z0-9._:@-]+$", min_length = 1, max_length = 64)]
    pub client_message_id: String,
    pub content: Content,
}

impl From<SendRequest> for core::SendRequest {
    fn from(request: SendRequest) -> Self {
        Self {
            conversation_id: request.conversation_id,
            to: request.to.map(Into::into),
            client_message_id: request.client_message_id,
            content: request.content.into(),
        }
    }
}

/// `POST /v1/pushes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub to: Recipient,
    /// The partner's id for this push (1-64 of `A-Z a-z 0-9 - _ . : @`): a repeat answers
    /// the first push, delivered once.
    #[schema(pattern = r"^[A-Za-z0-9._:@-]+$", min_length = 1, max_length = 64)]
    pub push_id: String,
    pub content: Content,
    /// The subscribe message to send when the window does not allow a customer-service
    /// message and the user granted the template.
    #[serde(default)]
    pub subscribe: Option<SubscribeForm>,
    /// After this (ms since the epoch) the push is not worth sending: it ends `expired`.
    /// Any JSON integer, `1.8e12` or `1800000000000.0` too, as JSON Schema counts them.
    #[serde(default, deserialize_with = "integral_ms")]
    #[schema(minimum = 1)]
    pub expires_at_ms: Option<i64>,
}

impl From<PushRequest> for core::PushRequest {
    fn from(request: PushRequest) -> Self {
        Self {
            to: request.to.into(),
            push_id: request.push_id,
            content: request.content.into(),
            subscribe: request.subscribe.map(Into::into),
            expires_at_ms: request.expires_at_ms,
        }
    }
}

/// A user to write to without a conversation id: a channel user, or an app user (with a
/// channel when they are bound on several).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub openid: Option<String>,
    #[serde(default)]
    pub app_user_id: Option<String>,
}

impl From<Recipient> for core::Recipient {
    fn from(recipient: Recipient) -> Self {
        Self {
            channel: recipient.channel,
            openid: recipient.openid,
            app_user_id: recipient.app_user_id,
        }
    }
}

/// `GET /v1/conversations`: a channel user (`channel` and `openid`), or an app user's
/// bindings (`app_user_id`, and `channel` to keep to one).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationsQuery {
    /// The channel (with `openid`; with `app_user_id`, to keep to one channel).
    #[serde(default)]
    pub channel: Option<String>,
    /// The user's openid on `channel`.
    #[serde(default)]
    pub openid: Option<String>,
    /// The app user whose bindings to look at.
    #[serde(default)]
    pub app_user_id: Option<String>,
}

impl From<ConversationsQuery> for core::ConversationsQuery {
    fn from(query: ConversationsQuery) -> Self {
        Self {
            channel: query.channel,
            openid: query.openid,
            app_user_id: query.app_user_id,
        }
    }
}

/// `PUT /v1/bindings/{channel}/{openid}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    /// The app user (1-128 of `A-Z a-z 0-9 - _ . : @`).
    #[schema(pattern = r"^[A-Za-z0-9._:@-]+$", min_length = 1, max_length = 128)]
    pub app_user_id: String,
    /// Rebinds a user already bound to another app user.
    #[serde(default)]
    pub replace: bool,
}

impl From<BindRequest> for core::BindRequest {
    fn from(request: BindRequest) -> Self {
        Self {
            app_user_id: request.app_user_id,
            replace: request.replace,
        }
    }
}

/// `POST /v1/conversations/{id}/close`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// Sent to the user as the partner's reply before the conversation closes: a text's
    /// rules.
    #[serde(default)]
    #[schema(
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        min_length = 1,
        max_length = 2048
    )]
    pub closing_text: Option<String>,
    /// The closing text's client message id (required with it; 1-64 of
    /// `A-Z a-z 0-9 - _ . : @`): a repeat sends it once.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9._:@-]+$", min_length = 1, max_length = 64)]
    pub client_message_id: Option<String>,
}

impl From<CloseRequest> for core::CloseRequest {
    fn from(request: CloseRequest) -> Self {
        Self {
            closing_text: request.closing_text,
            client_message_id: request.client_message_id,
        }
    }
}

/// `POST /v1/conversations/{id}/handover`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverRequest {
    /// The partner's id for this hand-over (1-55 of `A-Z a-z 0-9 - _ . : @`): a repeat
    /// does it once.
    #[schema(pattern = r"^[A-Za-z0-9._:@-]+$", min_length = 1, max_length = 55)]
    pub handover_id: String,
    /// The partner the user goes to.
    pub to: String,
    /// Sent to the user as this partner's reply (it counts against the window): a text's
    /// rules.
    #[serde(default)]
    #[schema(
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        min_length = 1,
        max_length = 2048
    )]
    pub note_to_user: Option<String>,
    /// For the receiving partner, with the conversation's latest messages (at most 2000
    /// characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note_to_partner: Option<String>,
}

impl From<HandoverRequest> for core::HandoverRequest {
    fn from(request: HandoverRequest) -> Self {
        Self {
            handover_id: request.handover_id,
            to: request.to,
            note_to_user: request.note_to_user,
            note_to_partner: request.note_to_partner,
        }
    }
}

/// `POST /v1/conversations/{id}/typing`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypingRequest {
    #[serde(default = "typing_default")]
    pub typing: bool,
}

impl From<TypingRequest> for core::TypingRequest {
    fn from(request: TypingRequest) -> Self {
        Self {
            typing: request.typing,
        }
    }
}

fn typing_default() -> bool {
    true
}

/// Milliseconds as any JSON number whose value is an integer (`1800000000000`, `1.8e12`,
/// `1800000000000.0`: all integers to JSON Schema) within i64; a fraction is refused.
fn integral_ms<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    // 2^63 exactly: the first f64 above i64::MAX.
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(ms) = number.as_i64() {
        return Ok(Some(ms));
    }
    match number.as_f64() {
        Some(ms) if ms.fract() == 0.0 && (-I64_END..I64_END).contains(&ms) => Ok(Some(ms as i64)),
        _ => Err(serde::de::Error::custom("an integer of milliseconds")),
    }
}
