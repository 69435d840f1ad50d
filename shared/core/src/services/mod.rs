//! What the bridge does, over the ports: inbound fan-in, dispatch of replies, push
//! delivery, the release of held replies, status reports, the partner operations, and the
//! access tokens, images and webhooks they share; and how a queue record each of them
//! handles is settled ([`settlement`]).

pub mod dispatch;
pub mod idle;
pub mod images;
pub mod inbound;
pub mod media;
pub mod partner;
pub mod push;
pub mod release;
pub mod report;
pub mod settlement;
pub mod sub_merchants;
pub mod tokens;
pub mod webhook;
pub mod welcome;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::BridgeConfig;
use crate::model::{ChannelUser, Direction, Session};
use crate::ports::store::{ConversationStore, MessageStore, StoreError};
use crate::ports::Ports;
use std::sync::Arc;
use sub_merchants::SubMerchantDirectory;
use tokens::Tokens;

/// What every service works with: the configuration, the store, access tokens for
/// WeChat's API, partners' webhooks and the clock.
pub struct Bridge<P: Ports> {
    pub config: BridgeConfig,
    pub store: P::Store,
    pub tokens: Tokens<P::TokenStore, P::Wechat>,
    pub webhooks: P::Webhooks,
    pub clock: SharedClock,
    /// Sub-merchant mode: the partners' registered `business_id`s, as last read.
    pub sub_merchants: SubMerchantDirectory,
}

impl<P: Ports> Bridge<P> {
    /// On the system clock.
    pub fn new(
        config: BridgeConfig,
        store: P::Store,
        tokens: P::TokenStore,
        wechat: P::Wechat,
        webhooks: P::Webhooks,
    ) -> Self {
        let clock: SharedClock = Arc::new(SystemClock);
        Self {
            config,
            store,
            tokens: Tokens::new(tokens, wechat, Arc::clone(&clock)),
            webhooks,
            clock,
            sub_merchants: SubMerchantDirectory::default(),
        }
    }

    /// Replaces the clock (of the tokens too), for tests.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        let clock: SharedClock = Arc::new(clock);
        self.tokens.set_clock(Arc::clone(&clock));
        self.clock = clock;
        self
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// WeChat's server API.
    pub fn wechat(&self) -> &P::Wechat {
        self.tokens.api()
    }

    /// Partners' replies waiting for this user (queued, held or being sent, not handed to
    /// the push chain) in the user's conversations of `session`: each will take a send of
    /// its window.
    pub async fn waiting_replies(
        &self,
        user: &ChannelUser,
        session: Session<'_>,
    ) -> Result<usize, StoreError> {
        let mut waiting = 0;
        let conversations = self
            .store
            .conversations(&user.channel, &user.openid)
            .await?;
        let in_session = conversations
            .iter()
            .filter(|c| Session::of(&self.config, &c.partner) == session);
        for conversation in in_session {
            waiting += self
                .store
                .history(&conversation.id, WAITING_LOOKBACK)
                .await?
                .iter()
                .filter(|m| {
                    m.direction == Direction::Out && m.push.is_none() && m.status.is_pending()
                })
                .count();
        }
        Ok(waiting)
    }
}

/// How far back in each of the user's conversations waiting replies are counted.
const WAITING_LOOKBACK: usize = 50;
