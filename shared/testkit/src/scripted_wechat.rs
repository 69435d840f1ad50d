//! WeChat's server API scripted in memory, for unit tests of the services: a token for
//! anyone, every other call answered with the next errcode told for it (0 when none), and
//! every call answered 0 recorded. It checks nothing: the WeChat fake
//! (`tools/wechat-fake`) is the oracle for WeChat's rules; this only plays a script.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use wxbridge_core::model::SubscribeForm;
use wxbridge_core::ports::wechat::{AccessToken, ApiError, Media, WechatApi};

/// The calls, named as their API paths end.
pub const CUSTOM_SEND: &str = "message/custom/send";
pub const SUBSCRIBE_SEND: &str = "message/subscribe/send";
pub const TYPING: &str = "typing";
pub const UPLOAD: &str = "media/upload";
pub const MEDIA_GET: &str = "media/get";

/// In the script: carried out, and the answer lost.
const LOST_ANSWER: i64 = i64::MIN;

#[derive(Debug, Default, Clone)]
pub struct ScriptedWechat {
    answers: Arc<Mutex<VecDeque<(&'static str, i64)>>>,
    calls: Arc<Mutex<Vec<(&'static str, Value)>>>,
    media: Arc<Mutex<Vec<(String, Media)>>>,
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

    async fn send_custom(
        &self,
        _token: &str,
        touser: &str,
        message: &Value,
    ) -> Result<(), ApiError> {
        let mut body = message.clone();
        body["touser"] = json!(touser);
        self.call(CUSTOM_SEND, body)
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

    async fn typing(&self, _token: &str, touser: &str, typing: bool) -> Result<(), ApiError> {
        self.call(TYPING, json!({ "touser": touser, "typing": typing }))
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
