//! Push delivery: an app notification reaches the user by the best path WeChat allows now.
//!
//! A push is a message (direction `push`) in the partner's conversation with the user,
//! stored by the API with its [`PushRecord`] and put on `push.fifo`. The `push` function
//! settles it, trying in order:
//!
//! 0. **expired** — `expires_at_ms` passed: `expired`, nothing is sent;
//! 1. **customer service** — a user (of the target's channels) whose reply window is open:
//!    the one with the most sends left first. With the partner's `held_replies_first`
//!    (default), a push takes a send only when more are left than the partner replies
//!    waiting for that user (queued, held or being sent). Spends one send, as a reply does;
//! 2. **subscribe** — the push carries a subscribe form and a user has a grant for its
//!    template: the grant is spent on success; 43101 (refused, or no grant left at WeChat)
//!    clears it and the chain goes on;
//! 3. **inbox** — otherwise it stays in the store as the app's inbox item: `undeliverable`
//!    with the reason, so the app can use its own channels.
//!
//! Every attempt (skipped, refused, sent, to retry) is appended to the push record with its
//! path, channel and reason, and the path that delivered it is kept; the partner gets a
//! signed `push.status` webhook ([`super::report`]). A transient WeChat error (-1, 45011,
//! HTTP 5xx, no answer) puts the push back to `queued` and the record is retried by the
//! FIFO consumer. A send whose answer was lost is recorded as such (`answer_lost`) and, by
//! the setting `lost_send_answer`, sent again or settled `uncertain` — as is a push found
//! `sending` (interrupted mid-call). A push found settled only has its report finished.
//!
//! A partner reply that found the window closed comes here too when the partner has a
//! `reply_fallback` ([`PushRecord::fallback`]): only the subscribe and inbox branches, and
//! the partner hears of it by `message.status`.

mod chain;
mod paths;

use super::report::{self, ReportOutcome, Reports};
use super::settlement::Settlement;
use super::Bridge;
use crate::config::{ChannelConfig, LostSendAnswer};
use crate::model::message::lost_answer;
use crate::model::{
    status_name, AttemptOutcome, ChannelUser, MessageStatus, OutboundRef, PushPath, PushRecord,
    StoredMessage,
};
use crate::ports::store::{
    change_user, through_hiccups, MessageStore, PushStore, StoreError, UserStore,
};
use crate::ports::Ports;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Sent(PushPath),
    Undeliverable(String),
    Expired,
    /// WeChat's answer was lost, and the setting says not to send again.
    Uncertain,
    /// Settled before (a redelivery): at most its report was finished.
    AlreadyDone,
    /// A report job: the partner has been told (or refused it for good).
    Reported,
    /// Nothing to deliver: no such message, or not a push. Parked.
    Unusable(String),
    /// Not finished (a partner or WeChat failed): try again later.
    Retry(String),
    /// Not finished: the store or a queue did not answer. Try again soon.
    RetrySoon(String),
}

/// Every settled push (and report) is done; a record with nothing to deliver is parked.
impl From<PushOutcome> for Settlement {
    fn from(outcome: PushOutcome) -> Self {
        match outcome {
            PushOutcome::Retry(reason) => Settlement::Retry(reason),
            PushOutcome::RetrySoon(reason) => Settlement::RetrySoon(reason),
            PushOutcome::Unusable(reason) => Settlement::Park(reason),
            PushOutcome::Sent(_)
            | PushOutcome::Undeliverable(_)
            | PushOutcome::Expired
            | PushOutcome::Uncertain
            | PushOutcome::AlreadyDone
            | PushOutcome::Reported => Settlement::Done,
        }
    }
}

use chain::Chain;

pub struct Push<P: Ports> {
    bridge: Bridge<P>,
    /// `push.fifo`: report jobs wait here.
    queue: P::Queue,
}

impl<P: Ports> Push<P> {
    /// `queue` is `push.fifo`, where status reports not delivered at once wait.
    pub fn new(bridge: Bridge<P>, queue: P::Queue) -> Self {
        Self { bridge, queue }
    }

    pub fn bridge(&self) -> &Bridge<P> {
        &self.bridge
    }

    pub fn queue(&self) -> &P::Queue {
        &self.queue
    }

    fn reports(&self) -> Reports<'_, P> {
        Reports {
            bridge: &self.bridge,
            queue: &self.queue,
        }
    }

    pub async fn process(&self, target: &OutboundRef) -> PushOutcome {
        let result = if target.report {
            self.reports()
                .try_report(target)
                .await
                .map(|outcome| match outcome {
                    ReportOutcome::Reported => PushOutcome::Reported,
                    ReportOutcome::AlreadyDone => PushOutcome::AlreadyDone,
                    ReportOutcome::NoSuchMessage => PushOutcome::Unusable("no such message".into()),
                    ReportOutcome::Retry(reason) => PushOutcome::Retry(reason),
                })
        } else {
            self.deliver(target).await
        };
        result.unwrap_or_else(|error| match error {
            StoreError::Rejected(reason) => PushOutcome::Unusable(reason),
            error if error.is_transient() => PushOutcome::RetrySoon(error.to_string()),
            error => PushOutcome::Retry(error.to_string()),
        })
    }

    async fn deliver(&self, target: &OutboundRef) -> Result<PushOutcome, StoreError> {
        use MessageStatus::*;
        let message = self.bridge.store.message_at(target).await?;
        let Some(message) = message else {
            return Ok(PushOutcome::Unusable("no such message".into()));
        };
        if report::terminal(message.status) {
            return Ok(match self.reports().ensure_reported(&message).await {
                Ok(()) => PushOutcome::AlreadyDone,
                // The report neither delivered nor queued: the queue did not answer.
                Err(error) => PushOutcome::RetrySoon(error.to_string()),
            });
        }
        let Some(record) = message.push.clone() else {
            return Ok(PushOutcome::Unusable("the message is not a push".into()));
        };
        if !matches!(message.status, Queued | Sending) {
            return Ok(PushOutcome::Unusable(format!(
                "a push is not {}",
                status_name(message.status)
            )));
        }
        let mut chain = Chain {
            record,
            now_ms: self.bridge.now_ms(),
        };
        if message.status == Sending
            && self.bridge.config.lost_send_answer == LostSendAnswer::Report
        {
            // Interrupted mid-call: WeChat may have taken it, and it is not sent again.
            let uncertain = Some(lost_answer::UNCERTAIN.to_owned());
            return self
                .settle(&message, chain.record, Uncertain, uncertain)
                .await;
        }
        if chain
            .record
            .expires_at_ms
            .is_some_and(|at| chain.now_ms >= at)
        {
            return self
                .settle(
                    &message,
                    chain.record,
                    Expired,
                    Some("expired before delivery".into()),
                )
                .await;
        }
        if !self
            .bridge
            .store
            .record_push(&message, &[Queued, Sending], Sending, None, &chain.record)
            .await?
        {
            return Ok(PushOutcome::AlreadyDone);
        }
        let since = chain.record.attempts.len();
        let users = self.candidates(&message, &chain.record).await?;

        // 1. A customer-service message, while the window allows it.
        if !chain.record.fallback {
            if let Some(outcome) = self.customer_service(&message, &mut chain, &users).await? {
                return Ok(outcome);
            }
        }
        // 2. A subscribe message, with a grant.
        if let Some(outcome) = self.subscribe(&message, &mut chain, &users).await? {
            return Ok(outcome);
        }
        // 3. The app's inbox.
        let reason = chain.why_not(since);
        chain.attempt(
            PushPath::Inbox,
            AttemptOutcome::Kept,
            None,
            Some("kept for the app".into()),
            None,
        );
        chain.record.path = Some(PushPath::Inbox);
        self.settle(&message, chain.record, Undeliverable, Some(reason))
            .await
    }

    /// The channel users the push may reach: the app user's bindings now, on channels the
    /// partner may use (only `to.channel` if named) — not the user it was stored for, who
    /// may have been bound to someone else since; for a channel user, that user.
    async fn candidates(
        &self,
        message: &StoredMessage,
        record: &PushRecord,
    ) -> Result<Vec<ChannelUser>, StoreError> {
        let Some(app_user) = &record.to.app_user_id else {
            return Ok(self
                .bridge
                .store
                .user(&message.channel, &message.openid)
                .await?
                .into_iter()
                .collect());
        };
        let mut users = self.bridge.store.users_of_app_user(app_user).await?;
        users.retain(|u| {
            record.to.channel.as_ref().is_none_or(|c| *c == u.channel)
                && self.bridge.config.may_use(&message.partner, &u.channel)
        });
        Ok(users)
    }

    fn channel(&self, id: &str) -> Option<&ChannelConfig> {
        self.bridge.config.channel(id)
    }
    /// Sent by `path`: recorded, settled and reported.
    async fn delivered(
        &self,
        message: &StoredMessage,
        chain: &mut Chain,
        path: PushPath,
        user: &ChannelUser,
    ) -> Result<PushOutcome, StoreError> {
        chain.attempt(path, AttemptOutcome::Sent, Some(user), None, None);
        chain.record.path = Some(path);
        let record = chain.record.clone();
        self.settle(message, record, MessageStatus::Sent, None)
            .await
    }

    /// Records the end and reports it to the partner.
    async fn settle(
        &self,
        message: &StoredMessage,
        record: PushRecord,
        status: MessageStatus,
        reason: Option<String>,
    ) -> Result<PushOutcome, StoreError> {
        use MessageStatus::*;
        // Through a store hiccup: after a send, a status not written would send it again.
        let recorded = through_hiccups(|| {
            self.bridge.store.record_push(
                message,
                &[Queued, Sending],
                status,
                reason.as_deref(),
                &record,
            )
        })
        .await?;
        if !recorded {
            // Settled already — by another attempt, or by this write landing on a call that
            // timed out: the redelivery reports whatever status it holds, once.
            return Ok(PushOutcome::Retry(
                "the push was settled elsewhere: report it".into(),
            ));
        }
        let path = record.path;
        let settled = StoredMessage {
            status,
            status_reason: reason.clone(),
            push: Some(record),
            ..message.clone()
        };
        if let Err(error) = self.reports().report(&settled).await {
            return Ok(PushOutcome::RetrySoon(error.to_string()));
        }
        Ok(match status {
            Sent => PushOutcome::Sent(path.unwrap_or(PushPath::CustomerService)),
            Expired => PushOutcome::Expired,
            Uncertain => PushOutcome::Uncertain,
            _ => PushOutcome::Undeliverable(reason.unwrap_or_default()),
        })
    }

    async fn update_user(&self, user: &ChannelUser, change: impl Fn(&mut ChannelUser)) {
        change_user(
            &self.bridge.store,
            &user.channel,
            &user.openid,
            "push",
            change,
        )
        .await
    }
}
