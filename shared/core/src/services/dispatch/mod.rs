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
mod settle;

pub use failure::{DispatchOutcome, Failure};

use super::images::{ImageError, Images};
use super::release;
use super::tokens::CallError;
use super::Bridge;
use crate::config::{ChannelConfig, LostSendAnswer};
use crate::model::message::lost_answer;
use crate::model::{
    Allowance, ChannelUser, Content, MediaCopy, MediaJob, MessageStatus, OutboundRef, PackedRef,
    ReplyWindow, Session, StoredMessage,
};
use crate::ports::queue::{MediaQueue, OutboundQueue};
use crate::ports::store::{
    change_user, change_user_if, MessageMediaStore, MessageStore, StoreError, UserStore,
};
use crate::ports::wechat::WechatApi;
use crate::ports::Ports;
use failure::{SendError, Unfinished};
use settle::End;

/// How often the user may change under a hold before the record is retried later.
const CONFLICT_ATTEMPTS: usize = 3;
/// How often a message is decided again after the replies ahead of it were sent.
const AHEAD_ROUNDS: usize = 2;
/// How often asking for a sent image's copy is tried before it is recorded unavailable.
const COPY_QUEUE_TRIES: usize = 3;

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

    async fn try_process(&self, target: &OutboundRef) -> Result<DispatchOutcome, StoreError> {
        let Some(lead) = self.bridge.store.message_at(target).await? else {
            return Ok(DispatchOutcome::Failed(Failure::NoSuchMessage));
        };
        // The message and those packed with it; the settled ones only need their report.
        let mut parts = vec![lead];
        for part in target.parts().iter().skip(1) {
            parts.extend(self.bridge.store.message_at(part).await?);
        }
        let first = parts[0].clone();
        // A report neither delivered nor queued has the record retried once the rest is
        // done, so it is not lost.
        let mut unreported = None;
        for settled in parts.iter().filter(|m| !m.status.is_pending()) {
            if let Err(error) = self.reports().ensure_reported(settled).await {
                unreported = Some(Unfinished::from(error));
            }
        }
        parts.retain(|m| m.status.is_pending());
        // Handed to the push chain before (a redelivery): only put it on push.fifo again.
        let (handed, rest): (Vec<StoredMessage>, Vec<StoredMessage>) =
            parts.into_iter().partition(|m| m.push.is_some());
        parts = rest;
        for message in &handed {
            let Some(pushes) = self.pushes.as_ref() else {
                tracing::warn!(message_id = %message.id, "a reply handed to the push chain, and no push queue here");
                continue;
            };
            if let Err(error) = self.hand_over(pushes, message).await {
                unreported = Some(error);
            }
        }
        let outcome = if parts.is_empty() {
            DispatchOutcome::AlreadyDone
        } else {
            self.settle(parts, AHEAD_ROUNDS).await?
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
        Ok(match unreported {
            Some(error) if !outcome.is_unfinished() => {
                DispatchOutcome::RetrySoon(error.to_string())
            }
            _ => outcome,
        })
    }

    /// Sends pending messages (one, or packed texts) as the window allows, and records how
    /// each ends; `rounds`: how often replies found ahead of them may be sent first.
    async fn settle(
        &self,
        mut parts: Vec<StoredMessage>,
        rounds: usize,
    ) -> Result<DispatchOutcome, StoreError> {
        use MessageStatus::*;
        if self.bridge.config.lost_send_answer == LostSendAnswer::Report {
            // Interrupted mid-call: WeChat may have taken it, and it is not sent again.
            let (interrupted, rest): (Vec<_>, Vec<_>) =
                parts.into_iter().partition(|m| m.status == Sending);
            if !interrupted.is_empty() {
                let outcome = self.finish_all(&interrupted, End::Uncertain).await;
                if rest.is_empty() || outcome.is_unfinished() {
                    return Ok(outcome);
                }
            }
            parts = rest;
        }
        let Some(channel) = self.bridge.config.channel(&parts[0].channel) else {
            return Ok(self.fail_all(&parts, Failure::ChannelNotConfigured).await);
        };
        let content = match self.content(&mut parts).await {
            Err(error) => return Ok(DispatchOutcome::RetrySoon(error.to_string())),
            Ok(None) => return Ok(self.fail_all(&parts, Failure::UnreadableContent).await),
            Ok(Some(content)) => content,
        };
        let message = parts[0].clone();
        let business_id = match self
            .bridge
            .business_id_for(&channel.id, &message.partner)
            .await?
        {
            Ok(business_id) => business_id,
            Err(missing) => {
                let failure = Failure::SubMerchantNotRegistered(missing.to_string());
                return Ok(self.fail_all(&parts, failure).await);
            }
        };
        let session = Session::of(&self.bridge.config, &message.partner);
        let window = match self.decide(&parts).await? {
            Decision::Closed => return self.window_closed(&parts).await,
            Decision::Held => return self.hold(&parts).await,
            Decision::Ahead { ahead, sends_left } => {
                return self.after(ahead, sends_left, parts, rounds).await
            }
            Decision::Send(window) => window,
        };
        if !self
            .bridge
            .store
            .transition(&message, &[Queued, Held, Sending], Sending, None)
            .await?
        {
            return Ok(DispatchOutcome::AlreadyDone);
        }
        let mut claimed = vec![message.clone()];
        for part in &parts[1..] {
            if self
                .bridge
                .store
                .transition(part, &[Queued, Held, Sending], Sending, None)
                .await?
            {
                claimed.push(part.clone());
            }
        }
        let content = if claimed.len() == parts.len() {
            content
        } else {
            // Another attempt took some of the packed texts: send only what is ours.
            joined(&claimed).unwrap_or(content)
        };
        // Sent before with its answer lost (or interrupted): a success now may be a second.
        let resent = claimed.iter().any(settle::may_have_reached_the_user);
        let sender = self.bridge.config.sender_of(&message.partner);
        let sent: Result<Option<String>, SendError> = match &content {
            Content::Image { .. } => self
                .send_image(channel, &message.openid, business_id, &content)
                .await
                .map(Some)
                .map_err(SendError::from),
            _ => {
                let body = content.wechat_body(sender.as_deref(), None);
                self.send(channel, &message.openid, business_id, &body)
                    .await
                    .map(|()| None)
                    .map_err(SendError::from)
            }
        };
        match sent {
            Ok(sent_media) => {
                // The image's copy asked for first: a function stopped after it would send
                // the image again (a lost answer), and ask again.
                if let Some(media_id) = sent_media {
                    self.keep_image(&message, &media_id).await;
                }
                // Then the status: a function stopped after it never sends again.
                let outcome = self.finish_all(&claimed, End::Sent { resent }).await;
                let now_ms = self.bridge.now_ms();
                let sent: Vec<&str> = claimed.iter().map(|m| m.id.as_str()).collect();
                self.update_user(&message, |user| {
                    user.partner_sent(&message.partner, session, now_ms);
                    user.unlist(session, &message.conversation_id, &sent);
                })
                .await;
                Ok(outcome)
            }
            // WeChat's count wins over the bridge's record of the window it read: 45047,
            // the quota is used up (another of the user's conversations sent meanwhile);
            // 45015, the window has closed. The message is decided again as if the bridge
            // had known: held (a released reply waits for the next message), fallen back,
            // or `window_closed`. A window the user opened since is left alone.
            Err(error) if matches!(error.failure.errcode(), Some(45047 | 45015)) => {
                let reason = error.failure.to_string();
                let code = error.failure.errcode();
                self.unclaim(&claimed, &reason).await?;
                let now_ms = self.bridge.now_ms();
                self.update_user(&message, |user| {
                    if let Some(current) = user.window_in_mut(session).as_mut() {
                        if window.is_some_and(|read| read.closes_at_ms == current.closes_at_ms) {
                            if code == Some(45047) {
                                current.remaining = 0;
                            } else {
                                current.closes_at_ms = now_ms;
                            }
                        }
                    }
                })
                .await;
                let claimed = self.reloaded(&claimed).await?;
                match self.decide(&claimed).await? {
                    Decision::Held => self.hold(&claimed).await,
                    Decision::Closed => self.window_closed(&claimed).await,
                    Decision::Send(_) | Decision::Ahead { .. } => {
                        Ok(DispatchOutcome::Retry(reason))
                    }
                }
            }
            Err(error) if error.answer_lost => {
                tracing::warn!(message_id = %message.id, error = %error.failure, "WeChat's answer to a send was lost");
                match self.bridge.config.lost_send_answer {
                    LostSendAnswer::Report => Ok(self.finish_all(&claimed, End::Uncertain).await),
                    LostSendAnswer::Resend => {
                        self.unclaim(&claimed, lost_answer::RETRYING).await?;
                        Ok(DispatchOutcome::Retry(format!(
                            "{}: {}",
                            lost_answer::RETRYING,
                            error.failure
                        )))
                    }
                }
            }
            Err(error) if error.is_final => Ok(self.fail_all(&claimed, error.failure).await),
            Err(error) => {
                let reason = error.failure.to_string();
                self.unclaim(&claimed, &reason).await?;
                // -1 is WeChat's "system busy, try again in a moment": a blip, not an outage
                // to wait 30 s on.
                Ok(match error.failure.errcode() {
                    Some(-1) => DispatchOutcome::RetrySoon(reason),
                    _ => DispatchOutcome::Retry(reason),
                })
            }
        }
    }

    /// Sends the conversation's replies listed `ahead` of `parts` (packed when sends are
    /// scarce, as a release would), then decides `parts` again. A reply ahead that cannot go
    /// now is held again, and `parts` are held behind it.
    async fn after(
        &self,
        ahead: Vec<OutboundRef>,
        sends_left: u32,
        parts: Vec<StoredMessage>,
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
        let parts = self.reloaded(&parts).await?;
        if parts.iter().all(|m| !m.status.is_pending()) {
            return Ok(DispatchOutcome::AlreadyDone);
        }
        let parts = parts
            .into_iter()
            .filter(|m| m.status.is_pending())
            .collect();
        Box::pin(self.settle(parts, rounds)).await
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

    /// Back to where each part was claimed from (`held` stays `held`: a released reply
    /// keeps waiting for the user) after a send that did not happen. A part an earlier send
    /// may have delivered keeps saying so until it settles.
    async fn unclaim(&self, claimed: &[StoredMessage], reason: &str) -> Result<(), StoreError> {
        use MessageStatus::*;
        for part in claimed {
            let back = if part.status == Held { Held } else { Queued };
            let reason = if settle::may_have_reached_the_user(part) {
                lost_answer::RETRYING
            } else {
                reason
            };
            self.bridge
                .store
                .transition(part, &[Sending], back, Some(reason))
                .await?;
        }
        Ok(())
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

    /// What to send for `parts`: the first one's content (`None`: unreadable), or, for
    /// packed texts, their texts one per line. A packed part that is not a text (never
    /// planned so) is put back on the queue on its own; if that fails, nothing is claimed
    /// and the record is retried.
    async fn content(&self, parts: &mut Vec<StoredMessage>) -> Result<Option<Content>, Unfinished> {
        let Ok(content) = serde_json::from_value::<Content>(parts[0].content.clone()) else {
            return Ok(None);
        };
        if parts.len() == 1 {
            return Ok(Some(content));
        }
        if !matches!(content, Content::Text { .. }) {
            self.unpack(&parts[1..]).await?;
            parts.truncate(1);
            return Ok(Some(content));
        }
        let (texts, others): (Vec<StoredMessage>, Vec<StoredMessage>) =
            parts.drain(..).partition(|m| m.text().is_some());
        self.unpack(&others).await?;
        *parts = texts;
        Ok(joined(parts))
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

    /// One send (into the sub-merchant's session with a `business_id`), with one retry
    /// after refreshing a stale token.
    async fn send(
        &self,
        channel: &ChannelConfig,
        openid: &str,
        business_id: Option<u64>,
        body: &serde_json::Value,
    ) -> Result<(), CallError> {
        let wechat = self.bridge.wechat();
        self.bridge
            .tokens
            .call(channel, |token| async move {
                wechat.send_custom(&token, openid, business_id, body).await
            })
            .await
    }

    /// An image, by its cached media id or uploaded first (see [`super::images`]): the
    /// media id sent.
    async fn send_image(
        &self,
        channel: &ChannelConfig,
        openid: &str,
        business_id: Option<u64>,
        content: &Content,
    ) -> Result<String, ImageError> {
        self.images
            .send(&self.bridge, channel, content, |media_id| async move {
                let body = content.wechat_body(None, Some(&media_id));
                self.send(channel, openid, business_id, &body).await
            })
            .await
    }

    /// Asks for the copy of a sent image (WeChat holds it as `media_id`), through a
    /// hiccup of the queue; a copy that cannot be asked for is recorded `unavailable`.
    async fn keep_image(&self, message: &StoredMessage, media_id: &str) {
        let Some(queue) = &self.media else {
            return;
        };
        let job = MediaJob::of(message, media_id, self.bridge.now_ms());
        let mut last = None;
        for _ in 0..COPY_QUEUE_TRIES {
            match queue.enqueue_copy(&job).await {
                Ok(()) => return,
                Err(error) => last = Some(error),
            }
        }
        let error = last.map(|e| e.to_string()).unwrap_or_default();
        tracing::warn!(message_id = %message.id, %error, "image copy not queued: not kept");
        let unavailable = MediaCopy::unavailable("the copy could not be queued");
        if let Err(error) = self
            .bridge
            .store
            .set_media(&job.message, &unavailable)
            .await
        {
            tracing::warn!(message_id = %message.id, %error, "an image copy's failure not recorded");
        }
    }

    /// Changes the message's user: a sent message spends one send and makes its partner
    /// the one who last wrote; a 45047 uses the quota up.
    async fn update_user(&self, message: &StoredMessage, change: impl Fn(&mut ChannelUser)) {
        change_user(
            &self.bridge.store,
            &message.channel,
            &message.openid,
            "reply window",
            change,
        )
        .await
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
