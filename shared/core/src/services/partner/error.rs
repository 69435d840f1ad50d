//! Why a partner's request is not done. The partner API's HTTP edge gives each its status
//! and code; the texts name fields and rules, never their content.

use crate::ports::store::StoreError;
use crate::services::sub_merchants::NotRegistered;
use crate::services::tokens::CallError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PartnerError {
    /// A field of the request is wrong.
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    /// Nothing this partner may see goes by that name (another partner's conversation
    /// answers so too, as one that does not exist).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Not this partner's to do; the text names the rule.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request conflicts with what is stored.
    #[error("{reason}")]
    Conflict {
        code: ConflictCode,
        reason: &'static str,
    },
    /// The message store is unavailable: the request may be repeated.
    #[error("the message store is unavailable; retry")]
    Store(#[source] StoreError),
    /// Stored, but not handed to its function: the request must be repeated with the same
    /// id (the named field) to be sent.
    #[error("stored but not queued: repeat the request with the same {0}")]
    NotQueued(&'static str),
    #[error("pushes are not set up in this deployment")]
    PushesNotSetUp,
    /// Done, but the receiving partner's webhook did not take it: the request must be
    /// repeated with the same id (the named field).
    #[error(
        "the receiving partner's webhook did not take it: repeat the request with the same {0}"
    )]
    NotDelivered(&'static str),
    /// Sub-merchant mode: the partner's session has no registered sub-merchant yet.
    #[error("{0}")]
    SubMerchantNotRegistered(String),
    /// WeChat refused for good.
    #[error("{0}")]
    WeChatRefused(String),
    /// WeChat did not answer or was busy: the request may be repeated.
    #[error("WeChat did not answer; retry")]
    WeChatUnavailable,
    /// WeChat does not hold (or no longer holds) this media.
    #[error("{0}")]
    MediaNotFound(String),
    #[error("the media is over 4 MiB")]
    MediaTooLarge,
    /// The message's image is not in the bucket (not kept yet, or unavailable: its
    /// `media.status` says which).
    #[error("{0}")]
    MediaNotStored(&'static str),
    /// The bucket did not answer: the request may be repeated.
    #[error("the media archive is unavailable; retry")]
    ArchiveUnavailable,
}

/// Which conflict: each is a code of its own for the partner's code to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictCode {
    ClientMessageIdReused,
    PushIdReused,
    AmbiguousRecipient,
    AlreadyBound,
    /// The user changed while it was being written: repeat the request.
    Changed,
    /// A hand-over where the dialog mode has none (separate, sub-merchant).
    HandoverNotInThisMode,
    /// A hand-over by a partner the user does not talk to (another is active).
    NotActivePartner,
    HandoverIdReused,
}

impl PartnerError {
    /// A field the partner got wrong.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn conflict(code: ConflictCode, reason: &'static str) -> Self {
        Self::Conflict { code, reason }
    }

    /// A store failure, logged here: the answer does not say more than "retry". One the
    /// store refuses for good is the request's (an id too long to keep).
    pub(crate) fn store(error: StoreError) -> Self {
        if let StoreError::Rejected(_) = error {
            return Self::field("request", "names an id too long to keep");
        }
        tracing::warn!(%error, "store unavailable for an API request");
        Self::Store(error)
    }

    pub(crate) fn not_registered(missing: NotRegistered) -> Self {
        Self::SubMerchantNotRegistered(missing.to_string())
    }

    /// A failed call to WeChat: refused for good, or to be repeated.
    pub(crate) fn wechat(error: CallError) -> Self {
        if error.is_final() {
            return Self::WeChatRefused(error.to_string());
        }
        tracing::warn!(%error, "WeChat unavailable for an API request");
        Self::WeChatUnavailable
    }
}
