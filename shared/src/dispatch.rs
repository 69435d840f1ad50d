//! Sending a partner's message to WeChat: the window decides, the send state is recorded
//! before and after the call, and every end is reported to the partner.
//!
//! queued → sending → sent | failed | held | window_closed. A message found `sent`,
//! `failed` or `window_closed` is not touched again, so a redelivery after a recorded send
//! sends nothing. A message found `sending` was interrupted mid-call: the outcome is
//! unknown and it is sent again (at least once rather than perhaps never).

use crate::config::{BridgeConfig, DialogMode};
use crate::media::{Downloader, Images, MediaCache};
use crate::outbound::Content;
use crate::reply_window::{Allowance, ReplyWindow};
use crate::routing::{self, ActiveBecause};
use crate::store::{MessageStatus, Store, StoreError, StoredMessage};
use crate::token::{CallError, TokenStore, Tokens};
use crate::webhook::{self, WebhookSender};
use crate::wechat_api::WeChatApi;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What `outbound.fifo` carries: where the message is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRef {
    pub conversation_id: String,
    pub created_at_ms: i64,
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    Sent,
    AlreadyDone,
    /// The quota is used up: sent when the user writes again.
    Held,
    WindowClosed,
    /// WeChat refused it for good (errcode in the reason).
    Failed(String),
    /// Not finished: try again later.
    Retry(String),
}

pub struct Dispatch<S, T, W> {
    config: BridgeConfig,
    store: S,
    tokens: Tokens<T>,
    api: WeChatApi,
    webhooks: W,
    clock: fn() -> i64,
    downloader: Downloader,
}

impl<S: Store + MediaCache, T: TokenStore, W: WebhookSender> Dispatch<S, T, W> {
    pub fn new(
        config: BridgeConfig,
        store: S,
        tokens: Tokens<T>,
        api: WeChatApi,
        webhooks: W,
        clock: fn() -> i64,
    ) -> Self {
        Self {
            config,
            store,
            tokens,
            api,
            webhooks,
            clock,
            downloader: Downloader::default(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub async fn process(&self, target: &OutboundRef) -> DispatchOutcome {
        match self.try_process(target).await {
            Ok(outcome) => outcome,
            Err(error) => DispatchOutcome::Retry(error.to_string()),
        }
    }

    async fn try_process(&self, target: &OutboundRef) -> Result<DispatchOutcome, StoreError> {
        use MessageStatus::*;
        let Some(message) = self
            .store
            .message(
                &target.conversation_id,
                target.created_at_ms,
                &target.message_id,
            )
            .await?
        else {
            return Ok(DispatchOutcome::Failed("no such message".into()));
        };
        if !matches!(message.status, Queued | Held | Sending) {
            return Ok(DispatchOutcome::AlreadyDone);
        }
        let Some(channel) = self
            .config
            .channels
            .iter()
            .find(|c| c.id == message.channel)
        else {
            return Ok(self
                .finish(&message, Failed, Some("channel is not configured".into()))
                .await);
        };
        let Ok(content) = serde_json::from_value::<Content>(message.content.clone()) else {
            return Ok(self
                .finish(
                    &message,
                    Failed,
                    Some("stored content is unreadable".into()),
                )
                .await);
        };
        let user = self.store.user(&message.channel, &message.openid).await?;
        match ReplyWindow::allowance(
            user.as_ref().and_then(|u| u.window.as_ref()),
            (self.clock)(),
        ) {
            Allowance::Closed => return Ok(self.finish(&message, WindowClosed, None).await),
            Allowance::QuotaUsed => {
                self.store
                    .transition(&message, &[Queued, Sending], Held, None)
                    .await?;
                return Ok(DispatchOutcome::Held);
            }
            Allowance::Open { .. } => {}
        }
        if !self
            .store
            .transition(&message, &[Queued, Held, Sending], Sending, None)
            .await?
        {
            return Ok(DispatchOutcome::AlreadyDone);
        }
        let sender = (self.config.dialog.mode == DialogMode::Merged)
            .then(|| routing::sender_prefix(&self.config, &message.partner));
        // A failure: whether it is final, and why.
        let failure = match &content {
            Content::Image { .. } => self
                .send_image(channel, &message.openid, &content)
                .await
                .err()
                .map(|error| (error.is_final(), error.to_string())),
            _ => {
                let body = content.wechat_body(sender.as_deref(), None);
                self.send(channel, &message.openid, &body)
                    .await
                    .err()
                    .map(|error| (error.is_final(), error.to_string()))
            }
        };
        match failure {
            None => {
                self.note_partner_wrote(&message).await;
                Ok(self.finish(&message, Sent, None).await)
            }
            Some((true, reason)) => Ok(self.finish(&message, Failed, Some(reason)).await),
            Some((false, reason)) => {
                self.store
                    .transition(&message, &[Sending], Queued, Some(&reason))
                    .await?;
                Ok(DispatchOutcome::Retry(reason))
            }
        }
    }

    /// One send, with one retry after refreshing a stale token.
    async fn send(
        &self,
        channel: &crate::config::ChannelConfig,
        openid: &str,
        body: &serde_json::Value,
    ) -> Result<(), CallError> {
        self.tokens
            .call(channel, self.clock, |token| async move {
                self.api.send_custom(&token, openid, body).await
            })
            .await
    }

    /// An image, by its cached media id or uploaded first (see [`crate::media`]).
    async fn send_image(
        &self,
        channel: &crate::config::ChannelConfig,
        openid: &str,
        content: &Content,
    ) -> Result<(), crate::media::ImageError> {
        let images = Images {
            cache: &self.store,
            tokens: &self.tokens,
            api: &self.api,
            downloader: &self.downloader,
            clock: self.clock,
        };
        images
            .send(channel, content, |media_id| async move {
                let body = content.wechat_body(None, Some(&media_id));
                self.send(channel, openid, &body).await
            })
            .await
    }

    /// A sent message spends one send of the window and makes its partner the one who
    /// last wrote (merged routing).
    async fn note_partner_wrote(&self, message: &StoredMessage) {
        for _ in 0..3 {
            let Ok(Some(mut user)) = self.store.user(&message.channel, &message.openid).await
            else {
                return;
            };
            if let Some(window) = user.window.as_mut() {
                window.spend();
            }
            user.routing.activate(
                &message.partner,
                (self.clock)(),
                ActiveBecause::PartnerWrote,
            );
            match self.store.put_user(&user).await {
                Err(StoreError::Conflict) => continue,
                Err(error) => tracing::warn!(%error, "send not counted on the user"),
                Ok(()) => {}
            }
            return;
        }
    }

    /// Records a terminal status and reports it to the partner.
    async fn finish(
        &self,
        message: &StoredMessage,
        status: MessageStatus,
        reason: Option<String>,
    ) -> DispatchOutcome {
        use MessageStatus::*;
        let from = [Queued, Held, Sending];
        if let Err(error) = self
            .store
            .transition(message, &from, status, reason.as_deref())
            .await
        {
            return DispatchOutcome::Retry(error.to_string());
        }
        self.report(message, status, reason.as_deref()).await;
        match status {
            Sent => DispatchOutcome::Sent,
            WindowClosed => DispatchOutcome::WindowClosed,
            _ => DispatchOutcome::Failed(reason.unwrap_or_default()),
        }
    }

    /// The `message.status` webhook; its delivery id is per message and status.
    async fn report(&self, message: &StoredMessage, status: MessageStatus, reason: Option<&str>) {
        let Some(partner) = self.config.partner(&message.partner) else {
            return;
        };
        let status_name = crate::store::status_name(status);
        let delivery_id = format!("{}:{status_name}", message.id);
        let body = json!({
            "type": "message.status",
            "delivery_id": delivery_id,
            "message": { "id": message.id, "status": status_name, "reason": reason },
            "conversation": { "id": message.conversation_id, "channel": message.channel, "partner": message.partner },
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let now_secs = (self.clock)().div_euclid(1000);
        let delivery = webhook::deliver(
            &self.webhooks,
            partner,
            "message.status",
            &delivery_id,
            body,
            now_secs,
        )
        .await;
        if delivery != webhook::Delivery::Delivered {
            tracing::warn!(message_id = %message.id, ?delivery, "status webhook not delivered");
        }
    }
}
