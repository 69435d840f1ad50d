//! WeChat's server API scripted in memory, for unit tests of the services: a token for
//! anyone, every other call answered with the next errcode told for it (0 when none), and
//! every call answered 0 recorded. It checks nothing: the WeChat fake
//! (`shared/wechat-fake`) is the oracle for WeChat's rules; this only plays a script.

use crate::interrupt::stop_point;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use wxbridge_core::model::SubscribeForm;
use wxbridge_core::ports::wechat::{
    AccessToken, ApiError, BusinessInfo, BusinessProfile, Media, WechatApi, NO_SUCH_BUSINESS,
};

fn profile_body(business_id: Option<u64>, sub_merchant: &BusinessProfile) -> Value {
    json!({
        "business_id": business_id,
        "account_name": sub_merchant.account_name,
        "nickname": sub_merchant.nickname,
        "icon_media_id": sub_merchant.icon_media_id,
    })
}

/// The calls, named as their API paths end.
pub const CUSTOM_SEND: &str = "message/custom/send";
pub const SUBSCRIBE_SEND: &str = "message/subscribe/send";
pub const TYPING: &str = "typing";
pub const UPLOAD: &str = "media/upload";
pub const MEDIA_GET: &str = "media/get";
pub const BUSINESS_REGISTER: &str = "business/register";
pub const BUSINESS_UPDATE: &str = "business/update";
pub const BUSINESS_GET: &str = "business/get";

/// In the script: carried out, and the answer lost.
const LOST_ANSWER: i64 = i64::MIN;

#[derive(Debug, Default, Clone)]
pub struct ScriptedWechat {
    answers: Arc<Mutex<VecDeque<(&'static str, i64)>>>,
    calls: Arc<Mutex<Vec<(&'static str, Value)>>>,
    media: Arc<Mutex<Vec<(String, Media)>>>,
    /// Sub-merchants registered through it, by account name: `business/get` finds these.
    businesses: Arc<Mutex<Vec<(String, u64)>>>,
}

impl ScriptedWechat {
    /// The next call of `api` answers `errcode`.
    pub fn answer(&self, api: &'static str, errcode: i64) {
        self.answers.lock().unwrap().push_back((api, errcode));
    }

    /// The next call of `api` is carried out (recorded as answered 0) and its answer lost
    /// on the way back, as a timeout after the request went out.
    pub fn lose_answer(&self, api: &'static str) {
        self.answer(api, LOST_ANSWER);
    }

    /// Every call carried out, as (api, body).
    pub fn calls(&self) -> Vec<(&'static str, Value)> {
        self.calls.lock().unwrap().clone()
    }

    /// The bodies of the accepted customer-service sends.
    pub fn sent(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|(api, _)| *api == CUSTOM_SEND)
            .map(|(_, body)| body)
            .collect()
    }

    /// Media `media/get` answers for `media_id`.
    pub fn hold_media(&self, media_id: &str, media: Media) {
        self.media
            .lock()
            .unwrap()
            .push((media_id.to_owned(), media));
    }

    fn call(&self, api: &'static str, body: Value) -> Result<(), ApiError> {
        let mut answers = self.answers.lock().unwrap();
        let due = answers.iter().position(|(a, _)| *a == api);
        let errcode = due.and_then(|i| answers.remove(i)).map_or(0, |(_, c)| c);
        drop(answers);
        if errcode != 0 && errcode != LOST_ANSWER {
            return Err(ApiError::WeChat {
                errcode,
                errmsg: "told so".into(),
            });
        }
        self.calls.lock().unwrap().push((api, body));
        if errcode == LOST_ANSWER {
            return Err(ApiError::AnswerLost("operation timed out".into()));
        }
        Ok(())
    }
}

impl WechatApi for ScriptedWechat {
    async fn stable_token(
        &self,
        _appid: &str,
        _secret: &str,
        _force_refresh: bool,
        now_ms: i64,
    ) -> Result<AccessToken, ApiError> {
        Ok(AccessToken {
            value: "token-1".into(),
            expires_at_ms: now_ms + 7_200_000,
        })
    }

    /// Recorded as a [`CUSTOM_SEND`], with `businessid` when into a sub-merchant's session.
    async fn send_custom(
        &self,
        _token: &str,
        touser: &str,
        business_id: Option<u64>,
        message: &Value,
    ) -> Result<(), ApiError> {
        let mut body = message.clone();
        body["touser"] = json!(touser);
        if let Some(business_id) = business_id {
            body["businessid"] = json!(business_id);
        }
        // The sender may be stopped before the send leaves, or after WeChat carried it out.
        stop_point().await;
        let answer = self.call(CUSTOM_SEND, body);
        stop_point().await;
        answer
    }

    async fn send_subscribe(
        &self,
        _token: &str,
        touser: &str,
        form: &SubscribeForm,
    ) -> Result<(), ApiError> {
        let mut body = json!(form);
        body["touser"] = json!(touser);
        self.call(SUBSCRIBE_SEND, body)
    }

    async fn typing(
        &self,
        _token: &str,
        touser: &str,
        business_id: Option<u64>,
        typing: bool,
    ) -> Result<(), ApiError> {
        let body = json!({ "touser": touser, "businessid": business_id, "typing": typing });
        self.call(TYPING, body)
    }

    async fn business_register(
        &self,
        _token: &str,
        sub_merchant: &BusinessProfile,
    ) -> Result<u64, ApiError> {
        self.call(BUSINESS_REGISTER, profile_body(None, sub_merchant))?;
        let mut businesses = self.businesses.lock().unwrap();
        let business_id = 1001 + businesses.len() as u64;
        businesses.push((sub_merchant.account_name.clone(), business_id));
        Ok(business_id)
    }

    async fn business_update(
        &self,
        _token: &str,
        business_id: u64,
        sub_merchant: &BusinessProfile,
    ) -> Result<(), ApiError> {
        self.call(
            BUSINESS_UPDATE,
            profile_body(Some(business_id), sub_merchant),
        )
    }

    /// Finds what was registered through it; 45071 for anything else.
    async fn business_get(
        &self,
        _token: &str,
        account_name: &str,
    ) -> Result<BusinessInfo, ApiError> {
        self.call(BUSINESS_GET, json!({ "account_name": account_name }))?;
        let businesses = self.businesses.lock().unwrap();
        let (_, business_id) = businesses
            .iter()
            .find(|(name, _)| name == account_name)
            .ok_or(ApiError::WeChat {
                errcode: NO_SUCH_BUSINESS,
                errmsg: "business not exist".into(),
            })?;
        Ok(BusinessInfo {
            business_id: *business_id,
            account_name: account_name.to_owned(),
            nickname: String::new(),
        })
    }

    async fn upload_image(
        &self,
        _token: &str,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, ApiError> {
        let body =
            json!({ "file_name": file_name, "content_type": content_type, "bytes": bytes.len() });
        self.call(UPLOAD, body)?;
        Ok(format!("media-{}", self.calls().len()))
    }

    async fn media(
        &self,
        _token: &str,
        media_id: &str,
        max_bytes: usize,
    ) -> Result<Media, ApiError> {
        self.call(MEDIA_GET, json!({ "media_id": media_id }))?;
        let held = self.media.lock().unwrap();
        let media = held
            .iter()
            .find(|(id, _)| id == media_id)
            .map(|(_, m)| m.clone())
            .ok_or(ApiError::WeChat {
                errcode: 40007,
                errmsg: "invalid media_id".into(),
            })?;
        if media.bytes.len() > max_bytes {
            return Err(ApiError::TooLarge(max_bytes));
        }
        Ok(media)
    }
}
