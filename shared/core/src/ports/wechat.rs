//! WeChat's server API as a port (protocol notes §3–§5): access tokens, customer-service
//! and subscribe sends, typing and temporary media; its errors and what to do about each.

use crate::model::SubscribeForm;
use serde_json::Value;
use std::future::Future;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    WeChat { errcode: i64, errmsg: String },
    #[error("WeChat answered HTTP {0}")]
    Http(u16),
    /// The request did not reach WeChat (no connection): nothing was carried out.
    #[error("WeChat was not reached: {0}")]
    Transport(String),
    /// The request went out and its answer did not come back whole (a timeout, a
    /// connection closed mid-answer): WeChat may have carried the call out.
    #[error("WeChat's answer was lost: {0}")]
    AnswerLost(String),
    #[error("WeChat's answer is not what the API documents")]
    Malformed,
    #[error("the answer is over {0} bytes")]
    TooLarge(usize),
}

/// What to do about a failed call (§3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// 40001, 40014, 42001: the token is stale — expire it (if it is still the cached
    /// one), fetch another and retry once.
    RefreshToken,
    /// -1, 45009, 45011, HTTP 5xx, no answer: try again later, with backoff.
    RetryLater,
    /// Anything else (40003, 45015, 45047, 47001, 48001, 43101, …): final.
    Final,
}

impl ApiError {
    pub fn remedy(&self) -> Remedy {
        match self {
            ApiError::WeChat {
                errcode: 40001 | 40014 | 42001,
                ..
            } => Remedy::RefreshToken,
            // 45009: the day's API quota is used up; the queue keeps messages for days.
            ApiError::WeChat {
                errcode: -1 | 45009 | 45011,
                ..
            } => Remedy::RetryLater,
            ApiError::Http(status) if *status >= 500 => Remedy::RetryLater,
            ApiError::Transport(_) | ApiError::AnswerLost(_) => Remedy::RetryLater,
            _ => Remedy::Final,
        }
    }

    /// WeChat may have carried the call out though the bridge has no answer: its answer was
    /// lost, or a 5xx other than 503 came from somewhere between (WeChat's send has no
    /// idempotency key, so a retry may send twice).
    pub fn answer_lost(&self) -> bool {
        matches!(self, ApiError::AnswerLost(_))
            || matches!(self, ApiError::Http(status) if *status >= 500 && *status != 503)
    }

    pub fn errcode(&self) -> Option<i64> {
        match self {
            ApiError::WeChat { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }
}

/// An access token and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub value: String,
    pub expires_at_ms: i64,
}

/// Media WeChat holds, as `media/get` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What a sub-merchant is registered or updated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessProfile {
    pub account_name: String,
    pub nickname: String,
    /// The avatar, uploaded as temporary media.
    pub icon_media_id: String,
}

/// A sub-merchant as `business/get` answers it (`business_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessInfo {
    pub business_id: u64,
    pub account_name: String,
    pub nickname: String,
}

/// `business/get` and `business/update`: no sub-merchant by that id or account name.
pub const NO_SUCH_BUSINESS: i64 = 45071;

/// WeChat's server API, as the bridge calls it. Every call answers WeChat's `errcode` as
/// [`ApiError::WeChat`]; the HTTP adapter reaches the real API or the local fake by its base
/// URL, and tests may script it.
pub trait WechatApi: Send + Sync {
    /// `cgi-bin/stable_token` (§4.2): a token valid from `now_ms` for `expires_in`.
    fn stable_token(
        &self,
        appid: &str,
        secret: &str,
        force_refresh: bool,
        now_ms: i64,
    ) -> impl Future<Output = Result<AccessToken, ApiError>> + Send;

    /// `cgi-bin/message/custom/send` (§3.1): `message` is the body without `touser`. With a
    /// `business_id`, into that sub-merchant's session: `message/custom/business/send` with
    /// `businessid` (§10).
    fn send_custom(
        &self,
        token: &str,
        touser: &str,
        business_id: Option<u64>,
        message: &Value,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// `cgi-bin/message/subscribe/send` (§5): a subscribe message, spending one of the
    /// user's grants for the template. 43101: no grant (refused or used up).
    fn send_subscribe(
        &self,
        token: &str,
        touser: &str,
        form: &SubscribeForm,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// The typing indicator (§3.3), on or off; with a `business_id`, in that sub-merchant's
    /// session (`businessid`, §10).
    fn typing(
        &self,
        token: &str,
        touser: &str,
        business_id: Option<u64>,
        typing: bool,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// `cgi-bin/business/register` (§10): a sub-merchant under `account_name`, shown as
    /// `nickname` with the uploaded image `icon_media_id`; its `business_id`. 45070: the
    /// account name is taken.
    fn business_register(
        &self,
        token: &str,
        sub_merchant: &BusinessProfile,
    ) -> impl Future<Output = Result<u64, ApiError>> + Send;

    /// `cgi-bin/business/update` (§10): a new nickname and icon. 45071: no such business.
    fn business_update(
        &self,
        token: &str,
        business_id: u64,
        sub_merchant: &BusinessProfile,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// `cgi-bin/business/get` by account name (§10). 45071: none registered under it.
    fn business_get(
        &self,
        token: &str,
        account_name: &str,
    ) -> impl Future<Output = Result<BusinessInfo, ApiError>> + Send;

    /// `cgi-bin/media/upload?type=image` (§3.4): the media id, valid for 3 days.
    fn upload_image(
        &self,
        token: &str,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// `cgi-bin/media/get` (§3.4): the bytes, or WeChat's JSON error. At most `max_bytes`.
    fn media(
        &self,
        token: &str,
        media_id: &str,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Media, ApiError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remedies_follow_the_error_table() {
        let wechat = |errcode| ApiError::WeChat {
            errcode,
            errmsg: String::new(),
        };
        for code in [40001, 40014, 42001] {
            assert_eq!(wechat(code).remedy(), Remedy::RefreshToken, "{code}");
        }
        for code in [-1, 45009, 45011] {
            assert_eq!(wechat(code).remedy(), Remedy::RetryLater, "{code}");
        }
        for code in [40003, 45015, 45047, 47001, 48001, 43101] {
            assert_eq!(wechat(code).remedy(), Remedy::Final, "{code}");
        }
        assert_eq!(ApiError::Http(502).remedy(), Remedy::RetryLater);
        assert_eq!(ApiError::Http(404).remedy(), Remedy::Final);
        assert_eq!(
            ApiError::Transport("connection refused".into()).remedy(),
            Remedy::RetryLater
        );
        assert_eq!(
            ApiError::AnswerLost("timeout".into()).remedy(),
            Remedy::RetryLater
        );
    }

    #[test]
    fn an_answer_is_lost_only_where_wechat_may_have_acted() {
        assert!(ApiError::AnswerLost("timeout".into()).answer_lost());
        assert!(ApiError::Http(502).answer_lost());
        assert!(ApiError::Http(504).answer_lost());
        assert!(!ApiError::Http(503).answer_lost(), "503: not served");
        assert!(!ApiError::Transport("connection refused".into()).answer_lost());
        assert!(!ApiError::WeChat {
            errcode: -1,
            errmsg: String::new()
        }
        .answer_lost());
    }
}
