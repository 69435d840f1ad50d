//! Access tokens, shared by every function instance (protocol notes §4.2).
//!
//! `stable_token` per channel, cached in the store and in memory, refreshed five minutes
//! before it expires. At most one instance fetches at a time: a fetch needs a short lease
//! in the store; the others wait for the token it saves. A call that fails with a stale
//! token expires the cached token only if it is still that token (compare-and-expire), so
//! a late failure never throws away a fresh token.

use crate::clock::SharedClock;
use crate::config::ChannelConfig;
use crate::metrics;
use crate::ports::tokens::{CachedToken, TokenStore, TokenStoreError};
use crate::ports::wechat::{ApiError, Remedy, WechatApi};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use thiserror::Error;

const WAIT_STEP: Duration = Duration::from_millis(100);
const WAIT_STEPS: usize = 60;

#[derive(Debug, Error)]
pub enum TokenError {
    #[error("channel {0} has no app_secret configured")]
    NoSecret(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] TokenStoreError),
    #[error("another instance is fetching the token and has not saved it yet")]
    Busy,
}

/// Why a call that needs a token failed.
#[derive(Debug, Error)]
pub enum CallError {
    #[error("no access token: {0}")]
    Token(#[from] TokenError),
    #[error(transparent)]
    Api(ApiError),
}

impl CallError {
    /// WeChat refused for good: trying again cannot help (§3.5).
    pub fn is_final(&self) -> bool {
        matches!(self, CallError::Api(error) if error.remedy() == Remedy::Final)
    }

    /// WeChat may have carried the call out though its answer was lost
    /// ([`ApiError::answer_lost`]).
    pub fn answer_lost(&self) -> bool {
        matches!(self, CallError::Api(error) if error.answer_lost())
    }

    /// WeChat's errcode, when WeChat answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            CallError::Api(error) => error.errcode(),
            CallError::Token(_) => None,
        }
    }
}

/// Access tokens of every channel, for the calls to WeChat's API that need one.
pub struct Tokens<T, A> {
    store: T,
    api: A,
    clock: SharedClock,
    owner: String,
    memory: Mutex<HashMap<String, CachedToken>>,
}

impl<T: TokenStore, A: WechatApi> Tokens<T, A> {
    pub fn new(store: T, api: A, clock: SharedClock) -> Self {
        Self {
            store,
            api,
            clock,
            owner: format!("tokens-{}", uuid_like()),
            memory: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn set_clock(&mut self, clock: SharedClock) {
        self.clock = clock;
    }

    /// WeChat's server API the tokens are for.
    pub fn api(&self) -> &A {
        &self.api
    }

    /// Where the tokens are kept.
    pub fn store(&self) -> &T {
        &self.store
    }

    fn remembered(&self, appid: &str, now_ms: i64) -> Option<String> {
        let memory = self.memory.lock().expect("token memory");
        memory
            .get(appid)
            .filter(|t| t.fresh(now_ms))
            .map(|t| t.value.clone())
    }

    fn remember(&self, appid: &str, token: CachedToken) -> String {
        let value = token.value.clone();
        self.memory
            .lock()
            .expect("token memory")
            .insert(appid.to_owned(), token);
        value
    }

    /// A token for the channel's app, fetching one only if no instance has a fresh one.
    pub async fn get(&self, channel: &ChannelConfig) -> Result<String, TokenError> {
        let appid = channel.app_id.as_str();
        if let Some(value) = self.remembered(appid, self.clock.now_ms()) {
            return Ok(value);
        }
        for _ in 0..WAIT_STEPS {
            let now = self.clock.now_ms();
            if let Some(token) = self.store.cached(appid).await? {
                if token.fresh(now) {
                    return Ok(self.remember(appid, token));
                }
            }
            // Checked before a lease is taken: a lease taken for nothing would hold back
            // every other instance until it runs out.
            let secret = channel
                .app_secret
                .as_ref()
                .ok_or_else(|| TokenError::NoSecret(channel.id.clone()))?;
            if self.store.try_lease(appid, &self.owner, now).await? {
                let fetched = self
                    .api
                    .stable_token(appid, secret.expose(), false, now)
                    .await?;
                let token = CachedToken {
                    value: fetched.value,
                    expires_at_ms: fetched.expires_at_ms,
                };
                self.store
                    .save(appid, &token)
                    .await
                    .map_err(TokenError::Store)?;
                tracing::info!(appid, "access token refreshed");
                metrics::count("token_refreshes");
                return Ok(self.remember(appid, token));
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
        Err(TokenError::Busy)
    }

    /// Runs a call that needs the channel's token, once more with a fresh token when
    /// WeChat says the first one is stale.
    pub async fn call<R, F, Fut>(&self, channel: &ChannelConfig, call: F) -> Result<R, CallError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        let token = self.get(channel).await?;
        match call(token.clone()).await {
            Err(error) if error.remedy() == Remedy::RefreshToken => {
                self.expire(&channel.app_id, &token).await?;
                let fresh = self.get(channel).await?;
                call(fresh).await.map_err(CallError::Api)
            }
            other => other.map_err(CallError::Api),
        }
    }

    /// After 40001 / 40014 / 42001 with `failed`: forget it here and in the store, if it is
    /// still the token there.
    pub async fn expire(&self, appid: &str, failed: &str) -> Result<(), TokenError> {
        {
            let mut memory = self.memory.lock().expect("token memory");
            if memory.get(appid).is_some_and(|t| t.value == failed) {
                memory.remove(appid);
            }
        }
        self.store
            .expire_if(appid, failed)
            .await
            .map_err(TokenError::Store)
    }
}

fn uuid_like() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}
