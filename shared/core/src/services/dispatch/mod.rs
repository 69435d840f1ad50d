//! Sending a partner's message to WeChat: the window decides, the send state is recorded
//! before and after the call, and every end is reported to the partner.
//!
//! queued → sending → sent | failed | held | window_closed. A message found `sent`,
//! `failed`, `window_closed` or `uncertain` is not touched again, so a redelivery after a
//! recorded send sends nothing.
//!
//! Lost answers: WeChat's send has no idempotency key, so a send whose answer was lost (a
//! timeout or broken connection after the request went out, a 5xx from between) or a
//! message found `sending` (a call interrupted) may or may not have reached the user. The
//! setting [`LostSendAnswer`] decides: `resend` (default) sends it again and reports `sent`
//! with [`lost_answer::RESENT`] as its reason; `report` sends nothing more and ends it
//! `uncertain`, reported with [`lost_answer::UNCERTAIN`].
//!
//! `held`: the quota is used up. The message's [`OutboundRef`] is appended to the channel
//! user's `held` list over the version read; if the user changed meanwhile (the user wrote
//! again), the window is read again and decided afresh. The user's next action releases
//! the list ([`super::release`]); a release may pack several held texts into one send. An
//! entry stays on the list until its message settles, so the list always says which replies
//! of a conversation were accepted earlier and still wait.
//!
//! Order: per conversation, replies reach WeChat in the order the API accepted them. A
//! released reply is queued behind whatever the conversation queued before the user wrote,
//! so before sending, dispatch looks at the list: replies of the same conversation listed
//! before this one are sent (or held again) first, then this one is decided again. Their
//! own release records then find them settled.
//!
//! Reports: every terminal status goes to the partner as a `message.status` webhook
//! ([`super::report`]). One that is not delivered becomes a report job on `outbound.fifo` in
//! a group of its own (`report:{message id}`), retried with the FIFO consumer's backoff
//! until the partner takes it or refuses it for good; the message records the status it
//! `reported`, so a settled job does nothing. The delivery id is the same on every attempt.
//!
//! `window_closed`, when the partner has a `reply_fallback`: the reply is handed to the push
//! chain instead ([`super::push`]: a subscribe message if the user granted the template,
//! else the app inbox, `undeliverable`), which settles and reports it.

mod failure;
mod fallback;
mod send;
mod settle;

pub use failure::{DispatchOutcome, Failure};

use super::images::Images;
use super::release;
use super::Bridge;
use crate::config::{ChannelConfig, LostSendAnswer};
use crate::model::message::lost_answer;
use crate::model::{
    Allowance, Content, MessageStatus, OutboundRef, PackedRef, ReplyWindow, Session, StoredMessage,
};
use crate::ports::queue::OutboundQueue;
use crate::ports::store::{change_user_if, MessageStore, StoreError, UserStore};
use crate::ports::Ports;
use failure::Unfinished;
use settle::End;

/// How often the user may change under a hold before the record is retried later.
const CONFLICT_ATTEMPTS: usize = 3;
/// How often a message is decided again after the replies ahead of it were sent.
const AHEAD_ROUNDS: usize = 2;
/// How often asking for a sent image's copy is tried before it is recorded unavailable.
const COPY_QUEUE_TRIES: usize = 3;

/// Why settling stopped before the send: the record's outcome is known (held, failed,
/// settled elsewhere ...), or the store did not answer.
enum Stop {
    Settled(DispatchOutcome),
    Store(StoreError),
}

impl Stop {
    fn into_outcome(self) -> Result<DispatchOutcome, StoreError> {
        match self {
            Stop::Settled(outcome) => Ok(outcome),
            Stop::Store(error) => Err(error),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error)
    }
}

/// A packed part not put back on the queue: nothing is claimed, the record is retried soon.
impl From<Unfinished> for Stop {
    fn from(error: Unfinished) -> Self {
        Stop::Settled(DispatchOutcome::RetrySoon(error.to_string()))
    }
}

/// What the window allows for a message now.
enum Decision {
    /// The window is open: the one read (to tell it from one the user opens meanwhile).
    Send(Option<ReplyWindow>),
    /// The window is open, and replies of the conversation accepted earlier still wait on
    /// the user's `held` list: they go first.
    Ahead {
        ahead: Vec<OutboundRef>,
        sends_left: u32,
    },
    /// Held, and on the user's `held` list.
    Held,
    Closed,
}

pub struct Dispatch<P: Ports> {
    bridge: Bridge<P>,
    images: Images<P>,
    outbound: P::Queue,
    /// `push.fifo`, for replies falling back through the push chain.
    pushes: Option<P::Queue>,
    /// `media.fifo`, where the copies of sent images are asked for.
    media: Option<P::Queue>,
}

impl<P: Ports> Dispatch<P> {
    /// `outbound` is `outbound.fifo`, where status reports not delivered at once wait.
    pub fn new(bridge: Bridge<P>, images: Images<P>, outbound: P::Queue) -> Self {
        Self {
            bridge,
            images,
            outbound,
            pushes: None,
            media: None,
        }
    }

    /// `media.fifo`: every image sent is copied into the bucket, so the history shows it
    /// after WeChat's three days.
    pub fn with_media_queue(mut self, media: P::Queue) -> Self {
        self.media = Some(media);
        self
    }

    /// `push.fifo`: replies the window no longer allows go on through the push chain when
    /// their partner has a `reply_fallback`.
    pub fn with_push_queue(mut self, pushes: P::Queue) -> Self {
        self.pushes = Some(pushes);
        self
    }

    pub fn bridge(&self) -> &Bridge<P> {
        &self.bridge
    }

    pub async fn process(&self, target: &OutboundRef) -> DispatchOutcome {
        let result = if target.report {
            self.try_report(target).await
        } else {
            self.try_process(target).await
        };
        match result {
            Ok(outcome) => outcome,
            Err(StoreError::Rejected(reason)) => {
                DispatchOutcome::Failed(Failure::Unstorable(reason))
            }
            Err(error) if error.is_transient() => DispatchOutcome::RetrySoon(error.to_string()),
            Err(error) => DispatchOutcome::Retry(error.to_string()),
        }
    }

    /// A record: the settled messages of it reported, those handed to the push chain before
    /// put on `push.fifo` again, the rest settled; then, once settled, off the user's `held`
    /// list. A report or a hand-over not queued has the record retried once the rest is
    /// done, so it is not lost.
    async fn try_process(&self, target: &OutboundRef) -> Result<DispatchOutcome, StoreError> {
        let Some(parts) = self.parts_of(target).await? else {
            return Ok(DispatchOutcome::Failed(Failure::NoSuchMessage));
        };
        let first = parts[0].clone();
        let (pending, unreported) = self.report_settled(parts).await;
        let (handed, pending): (Vec<StoredMessage>, Vec<StoredMessage>) =
            pending.into_iter().partition(|m| m.push.is_some());
        let unfinished = self.hand_over_again(&handed).await.or(unreported);
        let outcome = if pending.is_empty() {
            DispatchOutcome::AlreadyDone
        } else {
            self.settle(pending, AHEAD_ROUNDS)
                .await
                .or_else(Stop::into_outcome)?
        };
        // Settled (or handed to the push chain): off the user's `held` list, where a held or
        // released one is. A sent one left it in the write that spent its send.
        let settled = match &outcome {
            DispatchOutcome::Held | DispatchOutcome::Sent => false,
            other => !other.is_unfinished(),
        };
        if settled {
            let ids: Vec<String> = target.parts().into_iter().map(|p| p.message_id).collect();
            self.unlist(&first, &ids).await;
        }
        Ok(match unfinished {
            Some(error) if !outcome.is_unfinished() => {
                DispatchOutcome::RetrySoon(error.to_string())
            }
            _ => outcome,
        })
    }

    /// The record's message and those packed with it (those still stored); `None` when the
    /// record names no message.
    async fn parts_of(
        &self,
        target: &OutboundRef,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let Some(lead) = self.bridge.store.message_at(target).await? else {
            return Ok(None);
        };
        let mut parts = vec![lead];
        for part in target.parts().iter().skip(1) {
            parts.extend(self.bridge.store.message_at(part).await?);
        }
        Ok(Some(parts))
    }

    /// Reports the settled parts (unless told already): the pending ones, and the last
    /// report neither delivered nor queued.
    async fn report_settled(
        &self,
        parts: Vec<StoredMessage>,
    ) -> (Vec<StoredMessage>, Option<Unfinished>) {
        let mut unreported = None;
        for settled in parts.iter().filter(|m| !m.status.is_pending()) {
            if let Err(error) = self.reports().ensure_reported(settled).await {
                unreported = Some(Unfinished::from(error));
            }
        }
        let pending = parts
            .into_iter()
            .filter(|m| m.status.is_pending())
            .collect();
        (pending, unreported)
    }

    /// Replies handed to the push chain before (a redelivery): only put on `push.fifo`
    /// again. The last that could not be.
    async fn hand_over_again(&self, handed: &[StoredMessage]) -> Option<Unfinished> {
        let mut unfinished = None;
        for message in handed {
            let Some(pushes) = self.pushes.as_ref() else {
                tracing::warn!(message_id = %message.id, "a reply handed to the push chain, and no push queue here");
                continue;
            };
            if let Err(error) = self.hand_over(pushes, message).await {
                unfinished = Some(error);
            }
        }
        unfinished
    }

    /// Sends pending messages (one, or packed texts) as the window allows, and records how
    /// each ends; `rounds`: how often replies found ahead of them may be sent first. Each
    /// step either hands on what the next needs or ends the record ([`Stop`]).
    async fn settle(
        &self,
        parts: Vec<StoredMessage>,
        rounds: usize,
    ) -> Result<DispatchOutcome, Stop> {
        let mut parts = self.without_interrupted(parts).await?;
        let channel = self.channel_of(&parts).await?;
        let content = self.content(&mut parts).await?;
        let business_id = self.business_id(channel, &parts).await?;
        let window = self.window_to_send(&parts, rounds).await?;
        let claimed = self.claim(&parts).await?;
        let content = if claimed.len() == parts.len() {
            content
        } else {
            // Another attempt took some of the packed texts: send only what is ours.
            joined(&claimed).unwrap_or(content)
        };
        // Sent before with its answer lost (or interrupted): a success now may be a second.
        let resent = claimed.iter().any(settle::may_have_reached_the_user);
        let sent = self
            .send_content(channel, &claimed[0], business_id, &content)
            .await;
        Ok(self.after_send(&claimed, sent, window, resent).await?)
    }

    /// With lost answers reported, not resent ([`LostSendAnswer::Report`]): parts found
    /// `sending` were interrupted mid-call, WeChat may have taken them, and they end
    /// `uncertain`; the rest go on.
    async fn without_interrupted(
        &self,
        parts: Vec<StoredMessage>,
    ) -> Result<Vec<StoredMessage>, Stop> {
        if self.bridge.config.lost_send_answer != LostSendAnswer::Report {
            return Ok(parts);
        }
        let (interrupted, rest): (Vec<_>, Vec<_>) = parts
            .into_iter()
            .partition(|m| m.status == MessageStatus::Sending);
        if !interrupted.is_empty() {
            let outcome = self.finish_all(&interrupted, End::Uncertain).await;
            if rest.is_empty() || outcome.is_unfinished() {
                return Err(Stop::Settled(outcome));
            }
        }
        Ok(rest)
    }

    /// The channel the parts are sent in; they fail when it is not configured.
    async fn channel_of(&self, parts: &[StoredMessage]) -> Result<&ChannelConfig, Stop> {
        match self.bridge.config.channel(&parts[0].channel) {
            Some(channel) => Ok(channel),
            None => Err(Stop::Settled(
                self.fail_all(parts, Failure::ChannelNotConfigured).await,
            )),
        }
    }

    /// The sub-merchant to send as (sub-merchant mode); the parts fail when their partner
    /// has none registered.
    async fn business_id(
        &self,
        channel: &ChannelConfig,
        parts: &[StoredMessage],
    ) -> Result<Option<u64>, Stop> {
        let found = self
            .bridge
            .business_id_for(&channel.id, &parts[0].partner)
            .await?;
        match found {
            Ok(business_id) => Ok(business_id),
            Err(missing) => {
                let failure = Failure::SubMerchantNotRegistered(missing.to_string());
                Err(Stop::Settled(self.fail_all(parts, failure).await))
            }
        }
    }

    /// The window the parts are sent in; when the window does not allow it they are held,
    /// handed to the push chain or closed, or go after the replies ahead of them.
    async fn window_to_send(
        &self,
        parts: &[StoredMessage],
        rounds: usize,
    ) -> Result<Option<ReplyWindow>, Stop> {
        let settled = match self.decide(parts).await? {
            Decision::Send(window) => return Ok(window),
            Decision::Closed => self.window_closed(parts).await?,
            Decision::Held => self.hold(parts).await?,
            Decision::Ahead { ahead, sends_left } => {
                self.after(ahead, sends_left, parts, rounds).await?
            }
        };
        Err(Stop::Settled(settled))
    }

    /// Sends the conversation's replies listed `ahead` of `parts` (packed when sends are
    /// scarce, as a release would), then decides `parts` again. A reply ahead that cannot go
    /// now is held again, and `parts` are held behind it.
    async fn after(
        &self,
        ahead: Vec<OutboundRef>,
        sends_left: u32,
        parts: &[StoredMessage],
        rounds: usize,
    ) -> Result<DispatchOutcome, StoreError> {
        let Some(rounds) = rounds.checked_sub(1) else {
            return Ok(DispatchOutcome::RetrySoon(
                "replies accepted before it are still waiting".into(),
            ));
        };
        tracing::info!(message_id = %parts[0].id, ahead = ahead.len(), "replies accepted before it go first");
        let planned =
            release::plan(&self.bridge.store, &self.bridge.config, &ahead, sends_left).await?;
        for target in &planned {
            let outcome = Box::pin(self.try_process(target)).await?;
            if outcome.is_unfinished() {
                return Ok(outcome);
            }
        }
        // Any settled before (a write taking it off the list failed) or gone leaves it now.
        self.unlist_settled(&parts[0], &ahead).await?;
        let parts = self.reloaded(parts).await?;
        if parts.iter().all(|m| !m.status.is_pending()) {
            return Ok(DispatchOutcome::AlreadyDone);
        }
        let parts = parts
            .into_iter()
            .filter(|m| m.status.is_pending())
            .collect();
        Box::pin(self.settle(parts, rounds))
            .await
            .or_else(Stop::into_outcome)
    }

    /// Takes the messages of `entries` that are settled or gone off the `held` list of
    /// `message`'s user.
    async fn unlist_settled(
        &self,
        message: &StoredMessage,
        entries: &[OutboundRef],
    ) -> Result<(), StoreError> {
        let mut done = Vec::new();
        for part in entries.iter().flat_map(OutboundRef::parts) {
            let stored = self.bridge.store.message_at(&part).await?;
            if stored.is_none_or(|m| !m.status.is_pending()) {
                done.push(part.message_id);
            }
        }
        if !done.is_empty() {
            self.unlist(message, &done).await;
        }
        Ok(())
    }

    /// Takes settled messages off their user's `held` list (written only when listed).
    async fn unlist(&self, message: &StoredMessage, ids: &[String]) {
        let session = Session::of(&self.bridge.config, &message.partner);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        change_user_if(
            &self.bridge.store,
            &message.channel,
            &message.openid,
            "held list",
            |user| user.unlist(session, &message.conversation_id, &ids),
        )
        .await
    }

    /// The parts as stored now (those still there).
    async fn reloaded(&self, parts: &[StoredMessage]) -> Result<Vec<StoredMessage>, StoreError> {
        let mut fresh = Vec::new();
        for part in parts {
            fresh.extend(self.bridge.store.message_at(&OutboundRef::to(part)).await?);
        }
        Ok(fresh)
    }

    /// Held: on the user's `held` list (done by [`Self::decide`]) and so recorded.
    async fn hold(&self, parts: &[StoredMessage]) -> Result<DispatchOutcome, StoreError> {
        use MessageStatus::*;
        for part in parts {
            // A reply an earlier send may have delivered keeps saying so until it settles.
            let reason = settle::may_have_reached_the_user(part).then_some(lost_answer::RETRYING);
            self.bridge
                .store
                .transition(part, &[Queued, Sending], Held, reason)
                .await?;
        }
        Ok(DispatchOutcome::Held)
    }

    /// No window: the push chain's fallback when the partner has one, else `window_closed`.
    async fn window_closed(&self, parts: &[StoredMessage]) -> Result<DispatchOutcome, StoreError> {
        if let Some(outcome) = self.fall_back(parts).await? {
            return Ok(outcome);
        }
        Ok(self.finish_all(parts, End::WindowClosed).await)
    }

    /// What to send for `parts`: the first one's content (the parts fail when it is
    /// unreadable), or, for packed texts, their texts one per line. A packed part that is not
    /// a text (never planned so) is put back on the queue on its own; if that fails, nothing
    /// is claimed and the record is retried.
    async fn content(&self, parts: &mut Vec<StoredMessage>) -> Result<Content, Stop> {
        let Ok(content) = serde_json::from_value::<Content>(parts[0].content.clone()) else {
            return Err(self.unreadable(parts).await);
        };
        if parts.len() == 1 {
            return Ok(content);
        }
        if !matches!(content, Content::Text { .. }) {
            self.unpack(&parts[1..]).await?;
            parts.truncate(1);
            return Ok(content);
        }
        let (texts, others): (Vec<StoredMessage>, Vec<StoredMessage>) =
            parts.drain(..).partition(|m| m.text().is_some());
        self.unpack(&others).await?;
        *parts = texts;
        match joined(parts) {
            Some(joined) => Ok(joined),
            None => Err(self.unreadable(parts).await),
        }
    }

    async fn unreadable(&self, parts: &[StoredMessage]) -> Stop {
        Stop::Settled(self.fail_all(parts, Failure::UnreadableContent).await)
    }

    async fn unpack(&self, alone: &[StoredMessage]) -> Result<(), Unfinished> {
        for message in alone {
            let target = OutboundRef::to(message);
            let id = format!("{}:unpacked", message.id);
            self.outbound
                .enqueue(&target, &id)
                .await
                .map_err(Unfinished::NotUnpacked)?;
        }
        Ok(())
    }

    /// What the window allows: send, hold (the message put on the user's `held` list over
    /// the version read) or closed. When the user changed meanwhile, decides again from the
    /// fresh window: a user who wrote in between reopened it, and the message is sent.
    async fn decide(&self, parts: &[StoredMessage]) -> Result<Decision, StoreError> {
        let message = &parts[0];
        let session = Session::of(&self.bridge.config, &message.partner);
        for _ in 0..CONFLICT_ATTEMPTS {
            let user = self
                .bridge
                .store
                .user(&message.channel, &message.openid)
                .await?;
            let window = user.as_ref().and_then(|u| u.window_in(session));
            match ReplyWindow::allowance(window, self.bridge.now_ms()) {
                // A held reply released into a window that closed before its turn (entering
                // the session opens one minute) waits for the user's next message again,
                // unless its partner falls back to subscribe messages.
                Allowance::Closed
                    if message.status == MessageStatus::Held && !self.falls_back(message) => {}
                Allowance::Closed => return Ok(Decision::Closed),
                Allowance::Open { remaining } => {
                    let held = user.as_ref().map_or(&[][..], |u| u.held_in(session));
                    let ahead = ahead_of(held, parts);
                    return Ok(if ahead.is_empty() {
                        Decision::Send(window.copied())
                    } else {
                        Decision::Ahead {
                            ahead,
                            sends_left: remaining,
                        }
                    });
                }
                Allowance::QuotaUsed => {}
            }
            let Some(mut user) = user else {
                return Ok(Decision::Closed);
            };
            let listed = user.held_in(session).iter().any(|h| {
                h.parts().iter().any(|p| {
                    p.conversation_id == message.conversation_id && p.message_id == message.id
                })
            });
            if listed {
                return Ok(Decision::Held);
            }
            let mut entry = OutboundRef::to(message);
            entry.packed = parts[1..]
                .iter()
                .map(|m| PackedRef {
                    created_at_ms: m.created_at_ms,
                    message_id: m.id.clone(),
                })
                .collect();
            user.held_in_mut(session).push(entry);
            match self.bridge.store.put_user(&user).await {
                Ok(()) => return Ok(Decision::Held),
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Conflict)
    }
}

/// The entries of `held` from `parts`' conversation listed before them: replies accepted
/// earlier that still wait.
fn ahead_of(held: &[OutboundRef], parts: &[StoredMessage]) -> Vec<OutboundRef> {
    let ours = |entry: &OutboundRef| {
        entry
            .parts()
            .iter()
            .any(|p| parts.iter().any(|m| m.id == p.message_id))
    };
    held.iter()
        .filter(|entry| entry.conversation_id == parts[0].conversation_id)
        .take_while(|entry| !ours(entry))
        .cloned()
        .collect()
}

/// Packed texts as one text, one per line, in order.
fn joined(parts: &[StoredMessage]) -> Option<Content> {
    let texts: Option<Vec<&str>> = parts.iter().map(StoredMessage::text).collect();
    Some(Content::Text {
        text: texts?.join("\n"),
    })
}
