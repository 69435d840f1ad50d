//! A WeChat user on a channel: binding, routing, reply window, grants and held replies.

use super::queued::OutboundRef;
use super::reply_window::ReplyWindow;
use super::routing::{ActiveBecause, Routing};
use super::session::{Session, SessionState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A conversation closed: when, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub at_ms: i64,
    pub reason: CloseReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// A partner's agent closed it (`POST /v1/conversations/{id}/close`).
    Agent,
    /// Nobody wrote for the partner's idle timeout.
    Idle,
}

/// A WeChat user on a channel, and what the bridge knows of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelUser {
    pub channel: String,
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
    /// The app user this WeChat user is bound to (by a vouched `session-from` or the API).
    #[serde(default)]
    pub app_user_id: Option<String>,
    #[serde(default)]
    pub routing: Routing,
    /// The reply window of the mini program's own session ([`super::session`]).
    #[serde(default)]
    pub window: Option<ReplyWindow>,
    /// Subscribe-message sends left, by template id.
    #[serde(default)]
    pub grants: BTreeMap<String, u32>,
    /// The latest `session-from`'s pairs, vouched or not: context for the one partner it
    /// belongs to ([`ChannelUser::session_context_for`]).
    #[serde(default)]
    pub session_context: Vec<(String, String)>,
    /// The partner `session_context` belongs to (see `services::inbound::context_owner`).
    /// A context stored before this was kept names none, and is shown to no partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context_partner: Option<String>,
    /// Partners' replies held because the quota of the mini program's own session was used
    /// up, in the order they were held; released (sent) when the user acts there again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<OutboundRef>,
    /// Sub-merchant mode: the window and held replies of each partner's session, by partner.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sub_merchant_sessions: BTreeMap<String, SessionState>,
    /// The user's conversations that are closed, by conversation id: kept on the user,
    /// which every inbound message reads and writes anyway, so the user's next message
    /// reopens one at no extra cost.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub closed: BTreeMap<String, Closed>,
    /// Optimistic concurrency: a write succeeds only over the version it read.
    #[serde(default)]
    pub version: u64,
}

impl ChannelUser {
    /// A partner's message reached the user in `session`: one send of its window is spent,
    /// and the partner has written to the user (merged routing: it becomes active only
    /// while no choice of the user's, nor a hand-over, holds — [`Routing::activate`]).
    pub fn partner_sent(&mut self, partner: &str, session: Session<'_>, at_ms: i64) {
        if let Some(window) = self.window_in_mut(session).as_mut() {
            window.spend();
        }
        self.routing
            .activate(partner, at_ms, ActiveBecause::PartnerWrote);
    }

    /// The entry context as `partner` may see it: the pairs when they are its own, else
    /// none — one partner's page context never reaches another partner.
    pub fn session_context_for(&self, partner: &str) -> &[(String, String)] {
        match &self.session_context_partner {
            Some(owner) if owner == partner => &self.session_context,
            _ => &[],
        }
    }

    pub fn new(channel: &str, openid: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            openid: openid.to_owned(),
            unionid: None,
            app_user_id: None,
            routing: Routing::default(),
            window: None,
            grants: BTreeMap::new(),
            session_context: Vec::new(),
            session_context_partner: None,
            held: Vec::new(),
            sub_merchant_sessions: BTreeMap::new(),
            closed: BTreeMap::new(),
            version: 0,
        }
    }
}
