//! The send: the parts claimed (`sending`), the call to WeChat, and what its answer makes
//! of them — sent, decided again after WeChat's own count of the window, uncertain or
//! resent after a lost answer, failed, or back where they were to be tried again.

use super::failure::SendError;
use super::settle::{self, End};
use super::{Decision, Dispatch, DispatchOutcome, Stop, COPY_QUEUE_TRIES};
use crate::config::{ChannelConfig, LostSendAnswer};
use crate::model::message::lost_answer;
use crate::model::{
    ChannelUser, Content, MediaCopy, MediaJob, MessageStatus, ReplyWindow, Session, StoredMessage,
};
use crate::ports::queue::MediaQueue;
use crate::ports::store::{change_user, MessageMediaStore, MessageStore, StoreError};
use crate::ports::wechat::WechatApi;
use crate::ports::Ports;
use crate::services::images::ImageError;
use crate::services::tokens::CallError;

impl<P: Ports> Dispatch<P> {
    /// Claims the parts for the send (`sending`): those still this attempt's to send, none
    /// when the first was taken by another attempt (which settles the record).
    pub(super) async fn claim(&self, parts: &[StoredMessage]) -> Result<Vec<StoredMessage>, Stop> {
        if !self.claim_one(&parts[0]).await? {
            return Err(Stop::Settled(DispatchOutcome::AlreadyDone));
        }
        let mut claimed = vec![parts[0].clone()];
        for part in &parts[1..] {
            if self.claim_one(part).await? {
                claimed.push(part.clone());
            }
        }
        Ok(claimed)
    }

    async fn claim_one(&self, part: &StoredMessage) -> Result<bool, StoreError> {
        use MessageStatus::*;
        self.bridge
            .store
            .transition(part, &[Queued, Held, Sending], Sending, None)
            .await
    }

    /// The call: an image by its media id (the media id sent), anything else as its body.
    pub(super) async fn send_content(
        &self,
        channel: &ChannelConfig,
        message: &StoredMessage,
        business_id: Option<u64>,
        content: &Content,
    ) -> Result<Option<String>, SendError> {
        if let Content::Image { .. } = content {
            return self
                .send_image(channel, &message.openid, business_id, content)
                .await
                .map(Some)
                .map_err(SendError::from);
        }
        let sender = self.bridge.config.sender_of(&message.partner);
        let body = content.wechat_body(sender.as_deref(), None);
        self.send(channel, &message.openid, business_id, &body)
            .await
            .map(|()| None)
            .map_err(SendError::from)
    }

    /// What WeChat's answer makes of the claimed parts; `window`: the one the send was
    /// decided in, `resent`: a success may be a second.
    pub(super) async fn after_send(
        &self,
        claimed: &[StoredMessage],
        sent: Result<Option<String>, SendError>,
        window: Option<ReplyWindow>,
        resent: bool,
    ) -> Result<DispatchOutcome, StoreError> {
        match sent {
            Ok(sent_media) => Ok(self.sent(claimed, sent_media, resent).await),
            Err(error) if matches!(error.failure.errcode(), Some(45047 | 45015)) => {
                self.window_spent(claimed, window, error).await
            }
            Err(error) if error.answer_lost => self.answer_lost(claimed, error).await,
            Err(error) if error.is_final => Ok(self.fail_all(claimed, error.failure).await),
            Err(error) => self.not_sent(claimed, error).await,
        }
    }

    /// Sent: the image's copy asked for first (a function stopped after it would send the
    /// image again, a lost answer, and ask again), then the status (a function stopped
    /// after it never sends again), then the user's send spent and the parts off its list.
    async fn sent(
        &self,
        claimed: &[StoredMessage],
        sent_media: Option<String>,
        resent: bool,
    ) -> DispatchOutcome {
        let message = &claimed[0];
        if let Some(media_id) = sent_media {
            self.keep_image(message, &media_id).await;
        }
        let outcome = self.finish_all(claimed, End::Sent { resent }).await;
        let session = Session::of(&self.bridge.config, &message.partner);
        let now_ms = self.bridge.now_ms();
        let sent: Vec<&str> = claimed.iter().map(|m| m.id.as_str()).collect();
        self.update_user(message, |user| {
            user.partner_sent(&message.partner, session, now_ms);
            user.unlist(session, &message.conversation_id, &sent);
        })
        .await;
        outcome
    }

    /// WeChat's count wins over the bridge's record of the window it read: 45047, the quota
    /// is used up (another of the user's conversations sent meanwhile); 45015, the window has
    /// closed. The parts are decided again as if the bridge had known: held (a released
    /// reply waits for the next message), fallen back, or `window_closed`. A window the user
    /// opened since is left alone.
    async fn window_spent(
        &self,
        claimed: &[StoredMessage],
        window: Option<ReplyWindow>,
        error: SendError,
    ) -> Result<DispatchOutcome, StoreError> {
        let message = &claimed[0];
        let reason = error.failure.to_string();
        let quota_used = error.failure.errcode() == Some(45047);
        self.unclaim(claimed, &reason).await?;
        let session = Session::of(&self.bridge.config, &message.partner);
        let now_ms = self.bridge.now_ms();
        self.update_user(message, |user| {
            let Some(current) = user.window_in_mut(session).as_mut() else {
                return;
            };
            if window.is_some_and(|read| read.closes_at_ms == current.closes_at_ms) {
                if quota_used {
                    current.remaining = 0;
                } else {
                    current.closes_at_ms = now_ms;
                }
            }
        })
        .await;
        let claimed = self.reloaded(claimed).await?;
        match self.decide(&claimed).await? {
            Decision::Held => self.hold(&claimed).await,
            Decision::Closed => self.window_closed(&claimed).await,
            Decision::Send(_) | Decision::Ahead { .. } => Ok(DispatchOutcome::Retry(reason)),
        }
    }

    /// WeChat's answer was lost: the setting says whether the parts end `uncertain` or are
    /// sent again.
    async fn answer_lost(
        &self,
        claimed: &[StoredMessage],
        error: SendError,
    ) -> Result<DispatchOutcome, StoreError> {
        tracing::warn!(message_id = %claimed[0].id, error = %error.failure, "WeChat's answer to a send was lost");
        match self.bridge.config.lost_send_answer {
            LostSendAnswer::Report => Ok(self.finish_all(claimed, End::Uncertain).await),
            LostSendAnswer::Resend => {
                self.unclaim(claimed, lost_answer::RETRYING).await?;
                Ok(DispatchOutcome::Retry(format!(
                    "{}: {}",
                    lost_answer::RETRYING,
                    error.failure
                )))
            }
        }
    }

    /// Not sent, for now: the parts go back, and the record is retried (soon after -1,
    /// WeChat's "system busy, try again in a moment": a blip, not an outage to wait 30 s on).
    async fn not_sent(
        &self,
        claimed: &[StoredMessage],
        error: SendError,
    ) -> Result<DispatchOutcome, StoreError> {
        let reason = error.failure.to_string();
        self.unclaim(claimed, &reason).await?;
        Ok(match error.failure.errcode() {
            Some(-1) => DispatchOutcome::RetrySoon(reason),
            _ => DispatchOutcome::Retry(reason),
        })
    }

    /// Back to where each part was claimed from (`held` stays `held`: a released reply
    /// keeps waiting for the user) after a send that did not happen. A part an earlier send
    /// may have delivered keeps saying so until it settles.
    pub(super) async fn unclaim(
        &self,
        claimed: &[StoredMessage],
        reason: &str,
    ) -> Result<(), StoreError> {
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
