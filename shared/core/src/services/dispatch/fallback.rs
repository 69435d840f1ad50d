//! Replies the window no longer allows, handed to the push chain when their partner has a
//! `reply_fallback`: a subscribe message if the user granted the template, else the app
//! inbox.

use super::failure::Unfinished;
use super::settle::End;
use super::{Dispatch, DispatchOutcome};
use crate::model::push::fallback_form;
use crate::model::{Content, MessageStatus, OutboundRef, PushRecord, StoredMessage};
use crate::ports::queue::OutboundQueue;
use crate::ports::store::{PushStore, StoreError};
use crate::ports::Ports;

impl<P: Ports> Dispatch<P> {
    /// The message can go on as a subscribe message: its partner falls back, this
    /// function can hand it over, and it has something to say in a template (not an image).
    pub(super) fn falls_back(&self, message: &StoredMessage) -> bool {
        let Some(partner) = self.bridge.config.partner(&message.partner) else {
            return false;
        };
        let (Some(fallback), Some(_)) = (partner.reply_fallback.as_ref(), self.pushes.as_ref())
        else {
            return false;
        };
        serde_json::from_value::<Content>(message.content.clone())
            .ok()
            .and_then(|content| fallback_form(fallback, partner, &content))
            .is_some()
    }

    /// Replies the window no longer allows, handed to the push chain when the partner has
    /// a `reply_fallback` (and this function a push queue): each gets a push record naming
    /// the subscribe message it becomes, stays `queued`, and goes on `push.fifo`. `None`
    /// when the partner has no fallback; a reply with nothing to say in a template (an
    /// image) ends `window_closed`.
    pub(super) async fn fall_back(
        &self,
        parts: &[StoredMessage],
    ) -> Result<Option<DispatchOutcome>, StoreError> {
        use MessageStatus::*;
        let (Some(pushes), Some(partner)) = (
            self.pushes.as_ref(),
            self.bridge.config.partner(&parts[0].partner),
        ) else {
            return Ok(None);
        };
        let Some(fallback) = partner.reply_fallback.as_ref() else {
            return Ok(None);
        };
        let now_ms = self.bridge.now_ms();
        let mut outcome = DispatchOutcome::FellBack;
        for part in parts {
            let form = serde_json::from_value::<Content>(part.content.clone())
                .ok()
                .and_then(|content| fallback_form(fallback, partner, &content));
            let Some(form) = form else {
                let done = self
                    .finish_all(std::slice::from_ref(part), End::WindowClosed)
                    .await;
                if done.is_unfinished() {
                    outcome = done;
                }
                continue;
            };
            let record = PushRecord::fallback(part, form, now_ms);
            let reason = "window closed: falling back to a subscribe message";
            if !self
                .bridge
                .store
                .record_push(
                    part,
                    &[Queued, Held, Sending],
                    Queued,
                    Some(reason),
                    &record,
                )
                .await?
            {
                continue;
            }
            let handed = StoredMessage {
                push: Some(record),
                ..part.clone()
            };
            if let Err(error) = self.hand_over(pushes, &handed).await {
                outcome = DispatchOutcome::RetrySoon(error.to_string());
            }
        }
        Ok(Some(outcome))
    }

    /// Puts a reply handed to the push chain on `push.fifo` (again, on a redelivery: SQS
    /// drops a repeat within 5 minutes and `push` settles a message once).
    pub(super) async fn hand_over(
        &self,
        pushes: &P::Queue,
        message: &StoredMessage,
    ) -> Result<(), Unfinished> {
        let id = format!("{}:fallback", message.id);
        pushes
            .enqueue(&OutboundRef::to(message), &id)
            .await
            .map_err(Unfinished::NotHandedOver)
    }
}
