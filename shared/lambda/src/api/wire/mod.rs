//! The partner API's JSON contract and its schemas, at the edge: request bodies are read
//! here and handed to core as its values ([`requests`], [`content`]); answers are written
//! from core's values ([`answers`], [`views`]); the webhooks core sends are documented in
//! [`webhooks`]. Core keeps no wire type and no schema: what the store keeps (a stored
//! message, a push record) reaches partners only through the views here, field by field.
//! The names of these types are the schemas' names in `api/openapi.json`.

pub mod answers;
pub mod content;
pub mod requests;
pub mod views;
pub mod webhooks;

pub use answers::{
    Accepted, Binding, ConversationList, ConversationStatus, ConversationView, HandoverAnswer,
    HistoryPage, PushAccepted, ReplyAccepted, TypingAnswer,
};
pub use content::{Content, SubscribeForm};
pub use requests::{
    BindRequest, CloseRequest, ConversationsQuery, HandoverRequest, PushRequest, Recipient,
    SendRequest, TypingRequest,
};
pub use views::{
    AttemptOutcome, CloseReason, Closed, Conversation, Direction, MediaCopy, MediaStatus,
    MediaView, MessageStatus, MessageView, PushAttempt, PushPath, PushRecord, PushTarget,
    WindowState,
};
