//! How a dispatched record ends, and why a reply failed for good.

use crate::ports::queue::QueueError;
use crate::ports::wechat::ApiError;
use crate::services::images::ImageError;
use crate::services::report::Unreported;
use crate::services::settlement::Settlement;
use crate::services::tokens::CallError;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    Sent,
    AlreadyDone,
    /// The quota is used up: sent when the user writes again.
    Held,
    WindowClosed,
    /// Refused for good.
    Failed(Failure),
    /// WeChat's answer to the send was lost, and the setting says not to send again.
    Uncertain,
    /// A report job: the partner has been told (or refused it for good).
    Reported,
    /// The window is closed and the reply went on to the push chain (the partner's
    /// `reply_fallback`): `push` settles and reports it.
    FellBack,
    /// Not finished: try again later.
    Retry(String),
    /// Not finished: the store or a queue did not answer, or WeChat was busy (-1). Try
    /// again soon.
    RetrySoon(String),
}

impl DispatchOutcome {
    /// Not finished, for whatever reason: the record is retried.
    pub fn is_unfinished(&self) -> bool {
        matches!(self, Self::Retry(_) | Self::RetrySoon(_))
    }
}

/// Every settled message is done; a record naming no message, or one whose writes the
/// store refuses for good, is parked.
impl From<DispatchOutcome> for Settlement {
    fn from(outcome: DispatchOutcome) -> Self {
        match outcome {
            DispatchOutcome::Retry(reason) => Settlement::Retry(reason),
            DispatchOutcome::RetrySoon(reason) => Settlement::RetrySoon(reason),
            DispatchOutcome::Failed(
                failure @ (Failure::NoSuchMessage | Failure::Unstorable(_)),
            ) => Settlement::Park(failure.to_string()),
            DispatchOutcome::Sent
            | DispatchOutcome::AlreadyDone
            | DispatchOutcome::Held
            | DispatchOutcome::WindowClosed
            | DispatchOutcome::Failed(_)
            | DispatchOutcome::Uncertain
            | DispatchOutcome::Reported
            | DispatchOutcome::FellBack => Settlement::Done,
        }
    }
}

/// Why a reply failed for good; its text is the `status_reason` the partner reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Failure {
    /// The record names no stored message.
    #[error("no such message")]
    NoSuchMessage,
    /// The store refuses what the record needs written, for good.
    #[error("{0}")]
    Unstorable(String),
    #[error("channel is not configured")]
    ChannelNotConfigured,
    #[error("stored content is unreadable")]
    UnreadableContent,
    /// Sub-merchant mode: the partner's session has no registered sub-merchant to send as.
    #[error("{0}")]
    SubMerchantNotRegistered(String),
    /// WeChat refused the send (or an upload) for good.
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    WeChat { errcode: i64, errmsg: String },
    /// Anything else that cannot succeed: the partner's image as it is, WeChat's HTTP 4xx.
    #[error("{0}")]
    Refused(String),
}

impl Failure {
    /// WeChat's errcode, when WeChat answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Failure::WeChat { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }
}

/// A send that did not happen, or whose answer was lost: whether trying again can help,
/// and what it was.
pub(super) struct SendError {
    pub(super) is_final: bool,
    /// WeChat may have delivered it (see [`crate::config::LostSendAnswer`]).
    pub(super) answer_lost: bool,
    pub(super) failure: Failure,
}

impl From<CallError> for SendError {
    fn from(error: CallError) -> Self {
        let (is_final, answer_lost) = (error.is_final(), error.answer_lost());
        let failure = match error {
            CallError::Api(ApiError::WeChat { errcode, errmsg }) => {
                Failure::WeChat { errcode, errmsg }
            }
            other => Failure::Refused(other.to_string()),
        };
        Self {
            is_final,
            answer_lost,
            failure,
        }
    }
}

impl From<ImageError> for SendError {
    fn from(error: ImageError) -> Self {
        match error {
            ImageError::WeChat(error) => error.into(),
            // Nothing reached the user before the send.
            ImageError::Upload(error) => Self {
                answer_lost: false,
                ..error.into()
            },
            other => Self {
                is_final: other.is_final(),
                answer_lost: false,
                failure: Failure::Refused(other.to_string()),
            },
        }
    }
}

/// Why a record is not finished yet: it is retried.
#[derive(Debug, Error)]
pub(super) enum Unfinished {
    #[error(transparent)]
    Unreported(#[from] Unreported),
    #[error("packed message not requeued: {0}")]
    NotUnpacked(QueueError),
    #[error("fallback not queued: {0}")]
    NotHandedOver(QueueError),
}
