//! What WeChat lets the bridge send to a user now (protocol notes §3.2).
//!
//! A user message opens 5 sends within 48 hours; entering the customer-service session
//! opens 2 within 1 minute. Quotas do not add up: an action resets the window to its own
//! grant. One choice where the notes are silent: entering the session while a message
//! window is still open does not shrink it — the user has not taken anything back, and
//! shrinking would hold replies WeChat would accept. A wrong guess is not fatal either way:
//! WeChat answers 45015 / 45047 and the send ends with that status.

use serde::{Deserialize, Serialize};

const HOUR_MS: i64 = 3_600_000;

/// A user action that opens the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    /// The user sent a message (text, image, card).
    Message,
    /// The user entered the session (`user_enter_tempsession`).
    EnterSession,
}

impl UserAction {
    fn grant(self) -> (u32, i64) {
        match self {
            UserAction::Message => (5, 48 * HOUR_MS),
            UserAction::EnterSession => (2, 60_000),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyWindow {
    /// Sends left before WeChat answers 45047.
    pub remaining: u32,
    /// After this (ms since the epoch) WeChat answers 45015.
    pub closes_at_ms: i64,
    /// The window is the entry allowance (2 sends, 1 minute), not a message's.
    #[serde(default)]
    pub opened_by_entry: bool,
    /// When the user last sent a message in the session (ms since the epoch).
    #[serde(default)]
    pub last_message_at_ms: Option<i64>,
}

/// Whether a send may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Open {
        remaining: u32,
    },
    /// The window is open but its sends are used up: hold until the user acts again.
    QuotaUsed,
    /// No window: the user has not acted recently.
    Closed,
}

impl ReplyWindow {
    /// The window after `action` at `at_ms`, given the window before it.
    pub fn after(previous: Option<ReplyWindow>, action: UserAction, at_ms: i64) -> ReplyWindow {
        let (sends, span) = action.grant();
        let last_message_at_ms = match action {
            UserAction::Message => Some(at_ms),
            UserAction::EnterSession => previous.and_then(|p| p.last_message_at_ms),
        };
        let granted = ReplyWindow {
            remaining: sends,
            closes_at_ms: at_ms + span,
            opened_by_entry: action == UserAction::EnterSession,
            last_message_at_ms,
        };
        match previous {
            Some(open)
                if action == UserAction::EnterSession
                    && open.closes_at_ms > granted.closes_at_ms
                    && open.remaining >= granted.remaining =>
            {
                open
            }
            _ => granted,
        }
    }

    pub fn allowance(window: Option<&ReplyWindow>, now_ms: i64) -> Allowance {
        match window {
            Some(w) if now_ms >= w.closes_at_ms => Allowance::Closed,
            Some(w) if w.remaining == 0 => Allowance::QuotaUsed,
            Some(w) => Allowance::Open {
                remaining: w.remaining,
            },
            None => Allowance::Closed,
        }
    }

    /// Counts one send.
    pub fn spend(&mut self) {
        self.remaining = self.remaining.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_764_150_000_000;

    #[test]
    fn a_message_opens_five_sends_for_48_hours() {
        let mut window = ReplyWindow::after(None, UserAction::Message, T);
        for left in (1..=5).rev() {
            assert_eq!(
                ReplyWindow::allowance(Some(&window), T + 1),
                Allowance::Open { remaining: left }
            );
            window.spend();
        }
        assert_eq!(
            ReplyWindow::allowance(Some(&window), T + 1),
            Allowance::QuotaUsed
        );
        let fresh = ReplyWindow::after(None, UserAction::Message, T);
        assert_eq!(
            ReplyWindow::allowance(Some(&fresh), T + 48 * HOUR_MS - 1),
            Allowance::Open { remaining: 5 }
        );
        assert_eq!(
            ReplyWindow::allowance(Some(&fresh), T + 48 * HOUR_MS),
            Allowance::Closed
        );
    }

    #[test]
    fn entering_the_session_opens_two_sends_for_a_minute() {
        let window = ReplyWindow::after(None, UserAction::EnterSession, T);
        assert_eq!(
            window,
            ReplyWindow {
                remaining: 2,
                closes_at_ms: T + 60_000,
                opened_by_entry: true,
                last_message_at_ms: None,
            }
        );
        assert_eq!(
            ReplyWindow::allowance(Some(&window), T + 60_000),
            Allowance::Closed
        );
        assert_eq!(ReplyWindow::allowance(None, T), Allowance::Closed);
    }

    #[test]
    fn a_new_action_resets_and_quotas_do_not_add_up() {
        let mut window = ReplyWindow::after(None, UserAction::Message, T);
        window.spend();
        window.spend();
        let again = ReplyWindow::after(Some(window), UserAction::Message, T + 1000);
        assert_eq!(
            again,
            ReplyWindow {
                remaining: 5,
                closes_at_ms: T + 1000 + 48 * HOUR_MS,
                opened_by_entry: false,
                last_message_at_ms: Some(T + 1000),
            }
        );
        // A session entry does not shrink an open message window...
        let entered = ReplyWindow::after(Some(again), UserAction::EnterSession, T + 2000);
        assert_eq!(entered, again);
        // ...but replaces one that is used up or about to close.
        let mut used = again;
        (0..5).for_each(|_| used.spend());
        let entered = ReplyWindow::after(Some(used), UserAction::EnterSession, T + 3000);
        assert_eq!(
            entered,
            ReplyWindow {
                remaining: 2,
                closes_at_ms: T + 63_000,
                opened_by_entry: true,
                last_message_at_ms: Some(T + 1000),
            },
            "the entry's allowance, and the last message still known"
        );
    }
}
