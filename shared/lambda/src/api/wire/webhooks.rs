//! The webhooks partners receive, documented: the bodies core builds and signs
//! (`wxbridge_core::services::{inbound, report, idle}`, the hand-over), described here as
//! schemas and listed under the OpenAPI 3.1 `webhooks` of `api/openapi.json`. The types
//! are never built: they describe what core writes, and a test checks every webhook of a
//! run through every event against them (`shared/lambda/tests/privacy`).
#![allow(dead_code)]

use super::views::{Closed, Direction, MediaView, MessageStatus, MessageView, PushAttempt};
use super::views::{PushPath, WindowState};
use serde_json::{json, Value};
use utoipa::openapi::extensions::Extensions;
use utoipa::{Modify, ToSchema};

/// A user's action in the partner's conversation: `message.received` (they wrote, or
/// answered a subscribe pop-up; every other push of WeChat's too), `conversation.started`
/// (they entered the chat) or `conversation.reopened` (they wrote in a closed
/// conversation: `reopened` is the close it ends).
#[derive(ToSchema)]
pub struct UserEvent {
    /// `message.received`, `conversation.started` or `conversation.reopened`.
    #[schema(pattern = r"^(message\.received|conversation\.started|conversation\.reopened)$")]
    pub r#type: String,
    /// The same on every attempt: drop repeats by it.
    pub delivery_id: String,
    pub message: UserMessage,
    pub conversation: EventConversation,
    pub user: EventUser,
    /// The conversation's window right after the user's action.
    pub window: WindowState,
    /// `conversation.reopened`: the close the user's message ended; else `null`.
    pub reopened: Option<Closed>,
}

/// What the user sent: `content` is the typed event as on `inbound.fifo`.
#[derive(ToSchema)]
pub struct UserMessage {
    pub id: String,
    pub direction: Direction,
    pub created_at_ms: i64,
    pub wechat_msg_id: Option<String>,
    /// The typed event (`type`: `text`, `image`, `user_enter_tempsession`, …).
    #[schema(value_type = Object)]
    pub content: Value,
    /// An image's copy (`pending` when the webhook goes); `null` for anything else.
    pub media: Option<MediaView>,
}

/// The receiving partner's conversation.
#[derive(ToSchema)]
pub struct EventConversation {
    pub id: String,
    pub channel: String,
    pub partner: String,
}

/// The user, as every partner that reaches them sees them; `session_context` only for the
/// partner the latest entry belongs to (`[]` for every other).
#[derive(ToSchema)]
pub struct EventUser {
    pub channel: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub app_user_id: Option<String>,
    /// The pairs of the latest entry (`session-from`), each `[key, value]`.
    #[schema(value_type = Vec<Vec<String>>)]
    pub session_context: Vec<(String, String)>,
}

/// `conversation.handed_over`: another partner handed the user to this one.
#[derive(ToSchema)]
pub struct HandedOver {
    /// `conversation.handed_over`.
    #[schema(pattern = r"^conversation\.handed_over$")]
    pub r#type: String,
    pub delivery_id: String,
    /// The receiving partner's conversation with the user.
    pub conversation: EventConversation,
    pub from: HandedFrom,
    /// The handing partner's `note_to_partner`.
    pub note: Option<String>,
    /// The handing conversation's latest messages, oldest first.
    pub context: Vec<MessageView>,
    pub user: EventUser,
    pub window: WindowState,
}

/// Who handed the user over.
#[derive(ToSchema)]
pub struct HandedFrom {
    pub partner: String,
    pub conversation_id: String,
}

/// `conversation.closed`: an agent closed the conversation, or it was idle too long.
#[derive(ToSchema)]
pub struct ConversationClosed {
    /// `conversation.closed`.
    #[schema(pattern = r"^conversation\.closed$")]
    pub r#type: String,
    pub delivery_id: String,
    pub conversation: EventConversation,
    pub closed: Closed,
    pub user: EventUser,
}

/// `message.status`: a partner's reply settled.
#[derive(ToSchema)]
pub struct ReplyStatus {
    /// `message.status`.
    #[schema(pattern = r"^message\.status$")]
    pub r#type: String,
    /// `{message id}:{status}`.
    pub delivery_id: String,
    pub message: ReplyOutcome,
    pub conversation: EventConversation,
}

/// What became of the reply: `sent`, `failed`, `window_closed`, `uncertain`, or after the
/// push chain of a `reply_fallback`, `sent` or `undeliverable` with `path` and `attempts`.
#[derive(ToSchema)]
pub struct ReplyOutcome {
    pub id: String,
    pub status: MessageStatus,
    pub reason: Option<String>,
    /// After the push chain only.
    pub path: Option<PushPath>,
    /// After the push chain only.
    pub attempts: Option<Vec<PushAttempt>>,
}

/// `push.status`: a push settled.
#[derive(ToSchema)]
pub struct PushStatus {
    /// `push.status`.
    #[schema(pattern = r"^push\.status$")]
    pub r#type: String,
    /// `{message id}:{status}`.
    pub delivery_id: String,
    pub push: PushOutcome,
    pub conversation: EventConversation,
}

/// What became of the push: `sent`, `undeliverable`, `expired` or `uncertain`.
#[derive(ToSchema)]
pub struct PushOutcome {
    /// The partner's `push_id`.
    pub id: Option<String>,
    pub message_id: String,
    pub status: MessageStatus,
    pub reason: Option<String>,
    pub path: Option<PushPath>,
    pub attempts: Vec<PushAttempt>,
}

/// The seven events: `type` (and `X-Wxbridge-Event`), the body's schema, when it is sent.
pub const EVENTS: [(&str, &str, &str); 7] = [
    (
        "message.received",
        "UserEvent",
        "The user wrote (a text, an image, a card) or answered a subscribe pop-up; everything else WeChat pushes, raw events included.",
    ),
    (
        "conversation.started",
        "UserEvent",
        "The user entered the chat (the enter-session event).",
    ),
    (
        "conversation.reopened",
        "UserEvent",
        "The user wrote in a closed conversation: the body of `message.received` with `reopened`.",
    ),
    (
        "conversation.handed_over",
        "HandedOver",
        "Another partner handed the user to this one.",
    ),
    (
        "conversation.closed",
        "ConversationClosed",
        "An agent closed the conversation, or it was idle past `idle_close_after_secs`.",
    ),
    (
        "message.status",
        "ReplyStatus",
        "A partner's reply settled: `sent`, `failed`, `window_closed`, `uncertain` (or after a fallback `undeliverable`).",
    ),
    (
        "push.status",
        "PushStatus",
        "A push settled: `sent`, `undeliverable`, `expired`, `uncertain`.",
    ),
];

const DELIVERY: &str = "`POST` to the partner's `webhook_url`, `content-type: application/json`, with \
    `X-Wxbridge-Timestamp` (seconds), `X-Wxbridge-Signature` (`v1=` + hex HMAC-SHA256(signing_secret, \
    timestamp + \".\" + raw body)), `X-Wxbridge-Delivery` (the same on every retry: drop repeats by it) \
    and `X-Wxbridge-Event` (the type). Verify the signature over the raw body before parsing it, and \
    refuse timestamps more than 5 minutes away.";

/// Adds the OpenAPI 3.1 `webhooks` (utoipa 5 has no field for them: they go in as a
/// top-level member of the document).
pub struct Webhooks;

impl Modify for Webhooks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let webhooks: serde_json::Map<String, Value> = EVENTS
            .iter()
            .map(|(event, schema, when)| (event.to_string(), operation(event, schema, when)))
            .collect();
        openapi
            .extensions
            .get_or_insert_with(Extensions::default)
            .insert("webhooks".into(), Value::Object(webhooks));
    }
}

fn operation(event: &str, schema: &str, when: &str) -> Value {
    json!({
        "post": {
            "summary": when,
            "description": DELIVERY,
            "operationId": event,
            "parameters": [{
                "name": "X-Wxbridge-Event",
                "in": "header",
                "required": true,
                "schema": {"type": "string", "const": event},
            }],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
            },
            "responses": {
                "2XX": {"description": "Taken: answer within 5 seconds, once stored"},
                "4XX": {"description": "Refused for good (408, 425 and 429 are retried): an inbound message is marked `failed` and parked in the dead-letter queue; a status is not sent again"},
                "5XX": {"description": "Not taken now (as a redirect or no answer): retried with backoff (30 s doubling, up to 15 minutes) for up to 100 receives, then parked in the dead-letter queue"},
            },
            "security": [],
        }
    })
}
