//! WeChat's server API, as the bridge calls it (protocol notes §3–§5): access tokens,
//! customer-service and subscribe sends, typing and temporary media. The base URL is configuration, so the real API and the local fake are swapped by
//! configuration only.

use serde::Deserialize;
use serde_json::{json, Value};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    WeChat { errcode: i64, errmsg: String },
    #[error("WeChat answered HTTP {0}")]
    Http(u16),
    #[error("no answer from WeChat: {0}")]
    Transport(String),
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
            ApiError::Transport(_) => Remedy::RetryLater,
            _ => Remedy::Final,
        }
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

#[derive(Debug, Clone)]
pub struct WeChatApi {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

impl WeChatApi {
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("an HTTP client with a timeout builds");
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// Sends a request; an answer other than HTTP 200 is an error.
    async fn answered(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Transport(e.without_url().to_string()))?;
        match response.status().as_u16() {
            200 => Ok(response),
            status => Err(ApiError::Http(status)),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ApiError> {
        let response = Self::answered(request).await?;
        let body: Value = response.json().await.map_err(|_| ApiError::Malformed)?;
        match body.get("errcode").and_then(Value::as_i64) {
            Some(0) | None => Ok(body),
            Some(errcode) => Err(ApiError::WeChat {
                errcode,
                errmsg: body["errmsg"].as_str().unwrap_or_default().to_owned(),
            }),
        }
    }

    /// `cgi-bin/stable_token` (§4.2).
    pub async fn stable_token(
        &self,
        appid: &str,
        secret: &str,
        force_refresh: bool,
        now_ms: i64,
    ) -> Result<AccessToken, ApiError> {
        let body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force_refresh});
        let answer = self
            .call(
                self.http
                    .post(format!("{}/cgi-bin/stable_token", self.base))
                    .json(&body),
            )
            .await?;
        let token: TokenAnswer = serde_json::from_value(answer).map_err(|_| ApiError::Malformed)?;
        Ok(AccessToken {
            value: token.access_token,
            expires_at_ms: now_ms + token.expires_in * 1000,
        })
    }

    /// `cgi-bin/message/custom/send` (§3.1): `message` is the body without `touser`.
    pub async fn send_custom(
        &self,
        token: &str,
        touser: &str,
        message: &Value,
    ) -> Result<(), ApiError> {
        let mut body = message.clone();
        body["touser"] = json!(touser);
        let url = format!("{}/cgi-bin/message/custom/send", self.base);
        self.call(
            self.http
                .post(url)
                .query(&[("access_token", token)])
                .json(&body),
        )
        .await
        .map(drop)
    }
}

impl WeChatApi {
    /// `cgi-bin/message/subscribe/send` (§5): a subscribe message, spending one of the
    /// user's grants for the template. 43101: no grant (refused or used up).
    pub async fn send_subscribe(
        &self,
        token: &str,
        touser: &str,
        form: &crate::push::SubscribeForm,
    ) -> Result<(), ApiError> {
        let mut body = json!({
            "touser": touser,
            "template_id": form.template_id,
            "data": form.data,
        });
        if let Some(page) = &form.page {
            body["page"] = json!(page);
        }
        if let Some(state) = &form.miniprogram_state {
            body["miniprogram_state"] = json!(state);
        }
        if let Some(lang) = &form.lang {
            body["lang"] = json!(lang);
        }
        let url = format!("{}/cgi-bin/message/subscribe/send", self.base);
        self.call(
            self.http
                .post(url)
                .query(&[("access_token", token)])
                .json(&body),
        )
        .await
        .map(drop)
    }
}

/// Media WeChat holds, as `media/get` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl WeChatApi {
    /// The typing indicator (§3.3). `path` is configuration: the docs name two paths.
    pub async fn typing(
        &self,
        path: &str,
        token: &str,
        touser: &str,
        typing: bool,
    ) -> Result<(), ApiError> {
        let command = if typing { "Typing" } else { "CancelTyping" };
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        self.call(
            self.http
                .post(url)
                .query(&[("access_token", token)])
                .json(&json!({ "touser": touser, "command": command })),
        )
        .await
        .map(drop)
    }

    /// `cgi-bin/media/upload?type=image` (§3.4): the media id, valid for 3 days.
    pub async fn upload_image(
        &self,
        token: &str,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, ApiError> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(content_type)
            .map_err(|_| ApiError::Malformed)?;
        let form = reqwest::multipart::Form::new().part("media", part);
        let answer = self
            .call(
                self.http
                    .post(format!("{}/cgi-bin/media/upload", self.base))
                    .query(&[("access_token", token), ("type", "image")])
                    .multipart(form),
            )
            .await?;
        answer["media_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or(ApiError::Malformed)
    }

    /// `cgi-bin/media/get` (§3.4): the bytes, or WeChat's JSON error. At most `max_bytes`.
    pub async fn media(
        &self,
        token: &str,
        media_id: &str,
        max_bytes: usize,
    ) -> Result<Media, ApiError> {
        let response = Self::answered(
            self.http
                .get(format!("{}/cgi-bin/media/get", self.base))
                .query(&[("access_token", token), ("media_id", media_id)]),
        )
        .await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = read_at_most(response, max_bytes).await?;
        if content_type.starts_with("application/json") || content_type.starts_with("text/") {
            let body: Value = serde_json::from_slice(&bytes).map_err(|_| ApiError::Malformed)?;
            return Err(ApiError::WeChat {
                errcode: body["errcode"].as_i64().ok_or(ApiError::Malformed)?,
                errmsg: body["errmsg"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(Media {
            content_type,
            bytes,
        })
    }
}

/// Reads a body, refusing one over `max_bytes` without reading it all.
pub async fn read_at_most(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(ApiError::TooLarge(max_bytes));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ApiError::Transport(e.without_url().to_string()))?
    {
        if bytes.len() + chunk.len() > max_bytes {
            return Err(ApiError::TooLarge(max_bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
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
            ApiError::Transport("timeout".into()).remedy(),
            Remedy::RetryLater
        );
    }
}
