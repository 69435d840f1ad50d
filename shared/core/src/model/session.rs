//! A user's customer-service sessions on a channel.
//!
//! In merged and separate mode a user has one session per channel: the mini program's own.
//! In sub-merchant mode each partner's sub-merchant is a session of its own (protocol notes
//! §10), and WeChat keeps the sessions apart. Whether its allowances (§3.2) count per
//! session or per user is not documented; the bridge counts them per session — each
//! session has its own reply window and its own held replies — and so does the local fake.
//! A wrong guess is corrected by WeChat's answer (45047 / 45015), as everywhere.

use super::queued::OutboundRef;
use super::reply_window::ReplyWindow;
use super::user::ChannelUser;
use crate::config::{BridgeConfig, DialogMode};
use serde::{Deserialize, Serialize};

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

    fn sub_merchant_session(&mut self, partner: &str) -> &mut SessionState {
        self.sub_merchant_sessions
            .entry(partner.to_owned())
            .or_default()
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
}
