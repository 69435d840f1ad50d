//! WeChat's server API over HTTPS (protocol notes §3–§5). The base URL and the typing path
//! are configuration, so the real API and the local fake are swapped by configuration only.

use crate::{read_at_most, LazyClient};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use wxbridge_core::model::SubscribeForm;
use wxbridge_core::ports::wechat::{
    AccessToken, ApiError, BusinessInfo, BusinessProfile, Media, WechatApi,
};

/// How long one call to WeChat may take.
pub const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a download of media may take: up to 4 MiB from WeChat's servers, which may be
/// far from the region (the `api` function answers within its 15 s even so).
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(12);

#[derive(Debug, Clone)]
pub struct WechatClient {
    http: LazyClient,
    base: String,
    typing_path: String,
}

/// A call without a whole answer: not reached when no connection was made, else the
/// answer was lost — WeChat may have carried it out.
pub(crate) fn unanswered(error: reqwest::Error) -> ApiError {
    let connect = error.is_connect();
    let reason = error.without_url().to_string();
    if connect {
        ApiError::Transport(reason)
    } else {
        ApiError::AnswerLost(reason)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

impl WechatClient {
    /// A client of the API at `base`; `typing_path` is the typing indicator's path under it
    /// (the docs name two, protocol notes §3.3).
    pub fn new(base: impl Into<String>, typing_path: impl Into<String>) -> Self {
        let http = LazyClient::new(|| reqwest::Client::builder().timeout(WECHAT_TIMEOUT));
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            typing_path: typing_path.into().trim_start_matches('/').to_owned(),
        }
    }

    /// The client a deployment's configuration names.
    pub fn for_config(config: &wxbridge_core::config::BridgeConfig) -> Self {
        Self::new(&config.wechat_api_base, &config.typing_path)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// Sends a request; an answer other than HTTP 200 is an error.
    async fn answered(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = request.send().await.map_err(unanswered)?;
        match response.status().as_u16() {
            200 => Ok(response),
            status => Err(ApiError::Http(status)),
        }
    }

    /// A JSON call: WeChat's `errcode` (other than 0) is the error.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ApiError> {
        let response = Self::answered(request).await?;
        let body = response.bytes().await.map_err(unanswered)?;
        let body: Value = serde_json::from_slice(&body).map_err(|_| ApiError::Malformed)?;
        match body.get("errcode").and_then(Value::as_i64) {
            Some(0) | None => Ok(body),
            Some(errcode) => Err(ApiError::WeChat {
                errcode,
                errmsg: body["errmsg"].as_str().unwrap_or_default().to_owned(),
            }),
        }
    }

    /// POSTs a JSON body with the access token; the answer's errcode decides.
    async fn post(&self, path: &str, token: &str, body: &Value) -> Result<(), ApiError> {
        self.post_for(path, token, body).await.map(drop)
    }

    /// As [`Self::post`], with the answer.
    async fn post_for(&self, path: &str, token: &str, body: &Value) -> Result<Value, ApiError> {
        self.call(
            self.http
                .get()
                .post(self.url(path))
                .query(&[("access_token", token)])
                .json(body),
        )
        .await
    }
}

/// Sends into a sub-merchant's session (protocol notes §10).
const BUSINESS_SEND_PATH: &str = "cgi-bin/message/custom/business/send";
/// The typing indicator in a sub-merchant's session: the one path documented for it,
/// whatever `typing_path` says for the mini program's own session.
const BUSINESS_TYPING_PATH: &str = "cgi-bin/message/custom/business/typing";

/// WeChat's tables call `business_id` a string and its examples write a number: either.
fn loose_u64(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

impl WechatApi for WechatClient {
    async fn stable_token(
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
                    .get()
                    .post(self.url("cgi-bin/stable_token"))
                    .json(&body),
            )
            .await?;
        let token: TokenAnswer = serde_json::from_value(answer).map_err(|_| ApiError::Malformed)?;
        Ok(AccessToken {
            value: token.access_token,
            expires_at_ms: now_ms + token.expires_in * 1000,
        })
    }

    async fn send_custom(
        &self,
        token: &str,
        touser: &str,
        business_id: Option<u64>,
        message: &Value,
    ) -> Result<(), ApiError> {
        let mut body = message.clone();
        body["touser"] = json!(touser);
        let path = match business_id {
            None => "cgi-bin/message/custom/send",
            Some(business_id) => {
                body["businessid"] = json!(business_id);
                BUSINESS_SEND_PATH
            }
        };
        self.post(path, token, &body).await
    }

    async fn send_subscribe(
        &self,
        token: &str,
        touser: &str,
        form: &SubscribeForm,
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
        self.post("cgi-bin/message/subscribe/send", token, &body)
            .await
    }

    async fn typing(
        &self,
        token: &str,
        touser: &str,
        business_id: Option<u64>,
        typing: bool,
    ) -> Result<(), ApiError> {
        let command = if typing { "Typing" } else { "CancelTyping" };
        let mut body = json!({ "touser": touser, "command": command });
        let path = match business_id {
            None => self.typing_path.as_str(),
            Some(business_id) => {
                body["businessid"] = json!(business_id);
                BUSINESS_TYPING_PATH
            }
        };
        self.post(path, token, &body).await
    }

    async fn business_register(
        &self,
        token: &str,
        sub_merchant: &BusinessProfile,
    ) -> Result<u64, ApiError> {
        let body = json!({
            "account_name": sub_merchant.account_name,
            "nickname": sub_merchant.nickname,
            "icon_media_id": sub_merchant.icon_media_id,
        });
        let answer = self
            .post_for("cgi-bin/business/register", token, &body)
            .await?;
        loose_u64(&answer["business_id"]).ok_or(ApiError::Malformed)
    }

    async fn business_update(
        &self,
        token: &str,
        business_id: u64,
        sub_merchant: &BusinessProfile,
    ) -> Result<(), ApiError> {
        let body = json!({
            "business_id": business_id,
            "nickname": sub_merchant.nickname,
            "icon_media_id": sub_merchant.icon_media_id,
        });
        self.post("cgi-bin/business/update", token, &body).await
    }

    async fn business_get(
        &self,
        token: &str,
        account_name: &str,
    ) -> Result<BusinessInfo, ApiError> {
        let body = json!({ "account_name": account_name });
        let answer = self.post_for("cgi-bin/business/get", token, &body).await?;
        let info = &answer["business_info"];
        Ok(BusinessInfo {
            business_id: loose_u64(&info["business_id"]).ok_or(ApiError::Malformed)?,
            account_name: info["account_name"]
                .as_str()
                .unwrap_or(account_name)
                .to_owned(),
            nickname: info["nickname"].as_str().unwrap_or_default().to_owned(),
        })
    }

    async fn upload_image(
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
                    .get()
                    .post(self.url("cgi-bin/media/upload"))
                    .query(&[("access_token", token), ("type", "image")])
                    .multipart(form),
            )
            .await?;
        answer["media_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or(ApiError::Malformed)
    }

    async fn media(
        &self,
        token: &str,
        media_id: &str,
        max_bytes: usize,
    ) -> Result<Media, ApiError> {
        let response = Self::answered(
            self.http
                .get()
                .get(self.url("cgi-bin/media/get"))
                .timeout(MEDIA_TIMEOUT)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The TLS stack as deployed (reqwest's rustls on ring, the system's roots) completes a
    /// handshake with a real server: an HTTP answer comes back, not a transport error.
    /// Needs the network, so it runs only when asked (`cargo test -- --ignored`).
    #[tokio::test]
    #[ignore = "reaches static.crates.io over HTTPS"]
    async fn a_real_https_server_answers_through_the_ring_tls_stack() {
        let answer = WechatClient::new("https://static.crates.io", "typing")
            .stable_token("wx0", "secret", false, 0)
            .await;
        assert!(
            matches!(answer, Err(ApiError::Http(_) | ApiError::Malformed)),
            "{answer:?}"
        );
    }

    /// A server that reads each request and then answers as `answer` says: bytes to write
    /// before closing the connection.
    async fn server(answer: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            }
        });
        url
    }

    async fn send(base: &str) -> Result<(), ApiError> {
        WechatClient::new(base, "typing")
            .send_custom(
                "token",
                "o_user",
                None,
                &serde_json::json!({"msgtype": "text"}),
            )
            .await
    }

    #[tokio::test]
    async fn a_send_without_a_whole_answer_is_a_lost_answer_and_one_never_sent_is_not() {
        // The request went out; the connection closed without an answer.
        let closed = send(&server(b"").await).await.unwrap_err();
        assert!(matches!(closed, ApiError::AnswerLost(_)), "{closed:?}");
        assert!(closed.answer_lost());
        // An answer cut short mid-body.
        let cut = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"errcode\":0,";
        let cut = send(&server(cut).await).await.unwrap_err();
        assert!(matches!(cut, ApiError::AnswerLost(_)), "{cut:?}");
        // Nothing listens: the request never left.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let refused = send(&format!("http://127.0.0.1:{port}")).await.unwrap_err();
        assert!(matches!(refused, ApiError::Transport(_)), "{refused:?}");
        assert!(!refused.answer_lost());
        // A whole answer that is not JSON is not a lost one.
        let garbage = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let garbage = send(&server(garbage).await).await.unwrap_err();
        assert_eq!(garbage, ApiError::Malformed);
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"errcode\":0}";
        assert_eq!(send(&server(&whole[..]).await).await, Ok(()));
    }
}
