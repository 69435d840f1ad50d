//! A user's customer-service sessions on a channel.
//!
//! In merged and separate mode a user has one session per channel: the mini program's own.
//! In sub-merchant mode each partner's sub-merchant is a session of its own (protocol notes
//! §10), and WeChat keeps the sessions apart. Whether its allowances (§3.2) count per
//! session or per user is not documented; the bridge counts them per session — each
//! session has its own reply window and its own held replies — and so does the local fake.
//! A wrong guess is corrected by WeChat's answer (45047 / 45015), as everywhere.

use super::queued::OutboundRef;
use super::reply_window::{Allowance, ReplyWindow};
use super::user::ChannelUser;
use crate::config::{BridgeConfig, DialogMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which of a user's sessions on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session<'a> {
    /// The mini program's own session (pushes with no `BusinessId`).
    Main,
    /// The session of this partner's sub-merchant.
    SubMerchant(&'a str),
}

impl<'a> Session<'a> {
    /// Where `partner` talks to users: its sub-merchant's session in sub-merchant mode
    /// (but for the default partner, whose is the mini program's own), else the main one.
    pub fn of(config: &BridgeConfig, partner: &'a str) -> Self {
        let own_session = config.dialog.mode == DialogMode::SubMerchant
            && config.dialog.default_partner.as_deref() != Some(partner);
        if own_session {
            Session::SubMerchant(partner)
        } else {
            Session::Main
        }
    }
}

/// What WeChat keeps per sub-merchant session: its reply window, and the replies held
/// until the user acts in it again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    #[serde(default)]
    pub window: Option<ReplyWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<OutboundRef>,
}

impl ChannelUser {
    /// The session's reply window.
    pub fn window_in(&self, session: Session<'_>) -> Option<&ReplyWindow> {
        match session {
            Session::Main => self.window.as_ref(),
            Session::SubMerchant(partner) => self
                .sub_merchant_sessions
                .get(partner)
                .and_then(|s| s.window.as_ref()),
        }
    }

    pub fn window_in_mut(&mut self, session: Session<'_>) -> &mut Option<ReplyWindow> {
        match session {
            Session::Main => &mut self.window,
            Session::SubMerchant(partner) => &mut self.sub_merchant_session(partner).window,
        }
    }

    /// The replies held for the session.
    pub fn held_in(&self, session: Session<'_>) -> &[OutboundRef] {
        match session {
            Session::Main => &self.held,
            Session::SubMerchant(partner) => self
                .sub_merchant_sessions
                .get(partner)
                .map_or(&[], |s| s.held.as_slice()),
        }
    }

    pub fn held_in_mut(&mut self, session: Session<'_>) -> &mut Vec<OutboundRef> {
        match session {
            Session::Main => &mut self.held,
            Session::SubMerchant(partner) => &mut self.sub_merchant_session(partner).held,
        }
    }

    /// Takes the messages `ids` of `conversation_id` off the session's held list (a packed
    /// entry keeps its other parts, each on its own); whether anything was taken.
    pub fn unlist(&mut self, session: Session<'_>, conversation_id: &str, ids: &[&str]) -> bool {
        let held = self.held_in_mut(session);
        let listed = |part: &OutboundRef| {
            part.conversation_id == conversation_id && ids.contains(&part.message_id.as_str())
        };
        if !held.iter().flat_map(OutboundRef::parts).any(|p| listed(&p)) {
            return false;
        }
        *held = std::mem::take(held)
            .into_iter()
            .flat_map(|entry| {
                if entry.parts().iter().any(listed) {
                    entry.parts().into_iter().filter(|p| !listed(p)).collect()
                } else {
                    vec![entry]
                }
            })
            .collect();
        true
    }

    fn sub_merchant_session(&mut self, partner: &str) -> &mut SessionState {
        self.sub_merchant_sessions
            .entry(partner.to_owned())
            .or_default()
    }
}

/// What a partner sees of a session before sending: the `window` of the API's
/// conversations, of `message.received` webhooks and of a reply's 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowState {
    /// A customer-service message may be sent now (open, with sends left).
    pub open: bool,
    /// Until when (ms since the epoch) the window is open; absent once it closed.
    pub open_until_ms: Option<i64>,
    /// Sends left in the window: 0 when closed or used up.
    pub sends_left: u32,
    /// The window is the entry allowance (2 sends within a minute of entering the chat).
    pub entry_allowance: bool,
    /// Until when the entry allowance runs, while it does.
    pub entry_allowance_until_ms: Option<i64>,
    /// The user's unspent subscribe grants, by template: the templates this partner may use.
    pub subscribe_grants: BTreeMap<String, u32>,
    /// When the user last wrote in this chat (ms since the epoch).
    pub last_user_message_at_ms: Option<i64>,
}

impl WindowState {
    /// The state of `user`'s `session` at `now_ms`, with the grants of `templates`.
    pub fn of(user: &ChannelUser, session: Session<'_>, templates: &[String], now_ms: i64) -> Self {
        let window = user.window_in(session);
        let running = window.filter(|w| now_ms < w.closes_at_ms);
        let sends_left = match ReplyWindow::allowance(window, now_ms) {
            Allowance::Open { remaining } => remaining,
            Allowance::QuotaUsed | Allowance::Closed => 0,
        };
        let entry = running.filter(|w| w.opened_by_entry);
        Self {
            open: sends_left > 0,
            open_until_ms: running.map(|w| w.closes_at_ms),
            sends_left,
            entry_allowance: entry.is_some(),
            entry_allowance_until_ms: entry.map(|w| w.closes_at_ms),
            subscribe_grants: user
                .grants
                .iter()
                .filter(|(template, left)| **left > 0 && templates.contains(template))
                .map(|(template, left)| (template.clone(), *left))
                .collect(),
            last_user_message_at_ms: window.and_then(|w| w.last_message_at_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reply_window::UserAction;

    #[test]
    fn each_sub_merchant_session_keeps_its_own_window_and_held_replies() {
        let mut user = ChannelUser::new("mp", "o1");
        let hotel = Session::SubMerchant("hotel-9");
        *user.window_in_mut(hotel) = Some(ReplyWindow::after(None, UserAction::Message, 1_000));
        user.held_in_mut(Session::Main)
            .push(OutboundRef::new("mp:o1:platform", 1, "out_1"));
        assert_eq!(user.window_in(hotel).map(|w| w.remaining), Some(5));
        assert_eq!(
            user.window_in(Session::Main),
            None,
            "the main session is untouched"
        );
        assert_eq!(user.window_in(Session::SubMerchant("air-2")), None);
        assert!(user.held_in(hotel).is_empty());
        assert_eq!(user.held_in(Session::Main).len(), 1);
        // Stored and read back as it was.
        let stored: ChannelUser =
            serde_json::from_value(serde_json::to_value(&user).unwrap()).unwrap();
        assert_eq!(stored, user);
    }

    const T: i64 = 1_764_150_000_000;
    const HOUR_MS: i64 = 3_600_000;

    fn state(user: &ChannelUser, at_ms: i64) -> WindowState {
        WindowState::of(user, Session::Main, &["tpl-order".to_owned()], at_ms)
    }

    #[test]
    fn the_window_state_follows_messages_entries_sends_and_time() {
        let mut user = ChannelUser::new("mp", "o1");
        let closed = state(&user, T);
        assert!(!closed.open && closed.open_until_ms.is_none() && closed.sends_left == 0);

        // Entering the chat: the entry allowance, 2 sends for a minute.
        user.window = Some(ReplyWindow::after(None, UserAction::EnterSession, T));
        let entered = state(&user, T + 1_000);
        assert_eq!(
            (entered.open, entered.sends_left, entered.entry_allowance),
            (true, 2, true)
        );
        assert_eq!(entered.entry_allowance_until_ms, Some(T + 60_000));
        assert_eq!(entered.last_user_message_at_ms, None);
        assert!(!state(&user, T + 60_000).open, "a minute later");

        // A message: 5 sends for 48 hours, the entry allowance gone.
        user.window = Some(ReplyWindow::after(
            user.window,
            UserAction::Message,
            T + 2_000,
        ));
        let written = state(&user, T + 3_000);
        assert_eq!((written.sends_left, written.entry_allowance), (5, false));
        assert_eq!(written.open_until_ms, Some(T + 2_000 + 48 * HOUR_MS));
        assert_eq!(written.last_user_message_at_ms, Some(T + 2_000));

        // Five sends: still running, nothing left to send.
        (0..5).for_each(|_| user.window.as_mut().unwrap().spend());
        let spent = state(&user, T + 4_000);
        assert_eq!((spent.open, spent.sends_left), (false, 0));
        assert_eq!(spent.open_until_ms, Some(T + 2_000 + 48 * HOUR_MS));

        // 48 hours on: closed; the last message is still known.
        let later = state(&user, T + 2_000 + 48 * HOUR_MS);
        assert_eq!((later.open, later.open_until_ms), (false, None));
        assert_eq!(later.last_user_message_at_ms, Some(T + 2_000));
    }

    #[test]
    fn a_partner_sees_the_grants_of_its_own_templates_only() {
        let mut user = ChannelUser::new("mp", "o1");
        user.grants.insert("tpl-order".into(), 2);
        user.grants.insert("tpl-other-partner".into(), 1);
        user.grants.insert("tpl-spent".into(), 0);
        let seen = state(&user, T).subscribe_grants;
        assert_eq!(seen, BTreeMap::from([("tpl-order".to_owned(), 2)]));
    }
}
