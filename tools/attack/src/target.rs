//! The stack under attack: where its callback, API and WeChat fake are, and how to send
//! raw requests to them and read the answers.

use crate::report::{Expect, Tried};
use serde_json::Value;
use std::time::Duration;
use wxbridge_core::config::{BridgeConfig, Secret};
use wxbridge_core::services::partner::auth::{self as api_auth, SignedRequest};
use wxbridge_devstack::stack::Stack;

/// HTTP headers, as (name, value).
pub type Headers = Vec<(String, String)>;

/// An answer: status (none when nothing came back) and the `error` code of a JSON refusal.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub body: Value,
}

impl Answer {
    pub fn tried(&self, group: &'static str, name: impl Into<String>, expect: Expect) -> Tried {
        Tried {
            group,
            name: name.into(),
            expect,
            status: self.status,
            code: self.code.clone(),
        }
    }
}

pub struct Target {
    pub stack: Stack,
    pub config: BridgeConfig,
    pub client: reqwest::Client,
    /// `…/lambda-url/callback`
    pub callback_url: String,
    /// `…/lambda-url/api`
    pub api_url: String,
    /// A tag in every id this run makes, so a run never meets another's data.
    pub run: String,
}

impl Target {
    pub fn new(stack: Stack) -> Result<Self, String> {
        let config = stack.bridge_config()?;
        let callback_url = stack.function_url("callback")?.to_owned();
        let api_url = stack.function_url("api")?.to_owned();
        Ok(Self {
            stack,
            config,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
            callback_url,
            api_url,
            run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        })
    }

    /// Sends a request as built and reads the answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let Ok(response) = request.send().await else {
            return Answer::default();
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let code = body["error"].as_str().map(str::to_owned);
        Answer {
            status: Some(status),
            code,
            body,
        }
    }

    /// A push to the callback: `path` after `/wechat`, the query as given, the body raw.
    pub async fn push(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let url = format!("{}{path}?{query}", self.callback_url);
        self.send(
            self.client
                .request(method, url)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// A partner's secret, from the configuration.
    pub fn secret(&self, partner: &str) -> Secret {
        self.config
            .partner(partner)
            .map(|p| p.signing_secret.clone())
            .unwrap_or_else(|| Secret::new("no-such-partner-secret"))
    }

    /// The headers of `request` signed as `partner` with `secret` at `timestamp`.
    pub fn signed_headers(
        &self,
        partner: &str,
        secret: &Secret,
        request: SignedRequest<'_>,
        timestamp: i64,
        nonce: &str,
    ) -> Headers {
        api_auth::sign(partner, secret, &request, timestamp, nonce)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// A request to the API with these headers, as given.
    pub async fn api_raw(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = self
            .client
            .request(method, format!("{}{path_and_query}", self.api_url))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        self.send(request).await
    }

    /// A request to the API, signed as `partner` now with a fresh nonce.
    pub async fn api(
        &self,
        partner: &str,
        method: &str,
        path_and_query: &str,
        body: &str,
    ) -> Answer {
        let request = SignedRequest {
            method,
            path_and_query,
            body: body.as_bytes(),
        };
        let headers = self.signed_headers(
            partner,
            &self.secret(partner),
            request,
            now_secs(),
            &fresh_nonce(),
        );
        self.api_raw(method, path_and_query, &headers, body.to_owned())
            .await
    }
}

pub fn now_secs() -> i64 {
    wxbridge_devstack::now_ms() / 1000
}

pub fn fresh_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
