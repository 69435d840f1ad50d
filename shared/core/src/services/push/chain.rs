//! The record of one delivery's attempts, path by path.

use crate::model::{AttemptOutcome, ChannelUser, PushAttempt, PushPath, PushRecord};

/// Why the chain did not deliver, step by step.
pub(super) struct Chain {
    pub(super) record: PushRecord,
    pub(super) now_ms: i64,
}

impl Chain {
    pub(super) fn attempt(
        &mut self,
        path: PushPath,
        outcome: AttemptOutcome,
        user: Option<&ChannelUser>,
        reason: Option<String>,
        errcode: Option<i64>,
    ) {
        self.record.attempts.push(PushAttempt {
            path,
            outcome,
            channel: user.map(|u| u.channel.clone()),
            openid: user.map(|u| u.openid.clone()),
            reason,
            errcode,
            at_ms: self.now_ms,
        });
    }

    /// The reasons of this run's attempts that did not deliver, for `undeliverable`.
    pub(super) fn why_not(&self, since: usize) -> String {
        let reasons: Vec<String> = self.record.attempts[since..]
            .iter()
            .filter(|a| matches!(a.outcome, AttemptOutcome::Skipped | AttemptOutcome::Refused))
            .map(|a| {
                let path = match a.path {
                    PushPath::CustomerService => "customer service",
                    PushPath::Subscribe => "subscribe",
                    PushPath::Inbox => "inbox",
                };
                format!("{path}: {}", a.reason.as_deref().unwrap_or("not possible"))
            })
            .collect();
        reasons.join("; ")
    }
}
