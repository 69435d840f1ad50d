//! WeChat's server API, as the bridge calls it (protocol notes §3–§5): access tokens and
//! sends. The base URL is configuration, so the real API and the local fake are swapped by
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
}

/// What to do about a failed call (§3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// 40001, 40014, 42001: the token is stale — expire it (if it is still the cached
    /// one), fetch another and retry once.
    RefreshToken,
    /// -1, 45011, HTTP 5xx, no answer: try again later, with backoff.
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
            ApiError::WeChat {
                errcode: -1 | 45011,
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

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ApiError> {
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(ApiError::Http(status));
        }
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
        for code in [-1, 45011] {
            assert_eq!(wechat(code).remedy(), Remedy::RetryLater, "{code}");
        }
        for code in [40003, 45015, 45047, 47001, 48001, 43101, 45009] {
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
