//! The domain model: what the bridge stores and passes between its functions. Plain data
//! and the rules that belong to it; no I/O.

pub mod content;
pub mod image;
pub mod media;
pub mod message;
pub mod push;
pub mod queued;
pub mod reply_window;
pub mod routing;
pub mod session;
pub mod session_from;
pub mod sub_merchant;
pub mod user;

pub use content::{Content, FieldError, MAX_TEXT_BYTES};
pub use image::{decode_base64, Image, ImageType, MAX_BASE64_IMAGE_BYTES, MAX_IMAGE_BYTES};
pub use media::{MediaCopy, MediaJob, MediaStatus};
pub use message::{
    inbound_message_id, status_name, Conversation, Direction, MessageCursor, MessageStatus,
    StoredMessage,
};
pub use push::{AttemptOutcome, PushAttempt, PushPath, PushRecord, PushTarget, SubscribeForm};
pub use queued::{InboundMessage, OutboundRef, PackedRef, INBOUND_MESSAGE_VERSION};
pub use reply_window::{Allowance, ReplyWindow, UserAction};
pub use routing::{ActiveBecause, ActivePartner, HandoverRecord, Routing};
pub use session::{Session, SessionState, WindowState};
pub use sub_merchant::SubMerchant;
pub use user::{ChannelUser, CloseReason, Closed};
