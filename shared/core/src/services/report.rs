//! Status reports to partners: what became of a reply (`message.status`) or of a push
//! (`push.status`), as a signed webhook — for `dispatch` and `push` alike.
//!
//! A report that the partner does not take at once (5xx, 408, 425, 429, a redirect, no
//! answer) becomes a report job on the function's own queue (`outbound.fifo` for
//! `dispatch`, `push.fifo` for `push`) in a group of its own, `report:{message id}`
//! (deduplication id `{message id}:report:{status}`), retried with the FIFO consumer's
//! backoff until the partner takes it or refuses it for good (any other 4xx). The message
//! records the status it `reported`, so a settled job does nothing. The delivery id,
//! `{message id}:{status}`, is the same on every attempt.

use super::webhook::{self, Delivery};
use super::Bridge;
use crate::model::{status_name, Direction, MessageStatus, OutboundRef, StoredMessage};
use crate::ports::queue::{OutboundQueue, QueueError};
use crate::ports::store::{MessageStore, StoreError};
use crate::ports::Ports;
use serde_json::json;
use thiserror::Error;

/// A status that is not changed again and is reported to the partner.
pub fn terminal(status: MessageStatus) -> bool {
    use MessageStatus::*;
    matches!(
        status,
        Sent | Failed | WindowClosed | Expired | Undeliverable | Uncertain
    )
}

/// What a report job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Told now (or refused for good by the partner).
    Reported,
    /// Told before, or nothing to tell yet.
    AlreadyDone,
    NoSuchMessage,
    Retry(String),
}

/// A report that neither reached the partner nor made it onto the queue: the record that
/// settled the message is retried, so the report is not lost.
#[derive(Debug, Error)]
#[error("status not reported nor queued: {0}")]
pub struct Unreported(#[from] pub QueueError);

/// The reporting parts of a function, borrowed.
pub struct Reports<'a, P: Ports> {
    pub bridge: &'a Bridge<P>,
    /// Where report jobs wait when the partner does not take a report at once.
    pub queue: &'a P::Queue,
}

impl<P: Ports> Reports<'_, P> {
    /// A settled message whose status the partner has not been told of is reported (a
    /// report that neither reached the partner nor made it onto the queue last time).
    pub async fn ensure_reported(&self, message: &StoredMessage) -> Result<(), Unreported> {
        if terminal(message.status) && message.reported != Some(message.status) {
            self.report(message).await
        } else {
            Ok(())
        }
    }

    /// Reports the message's status now; when the partner does not take it, leaves a
    /// report job on the queue (in its own group) to retry it. `Err` only when neither
    /// worked.
    pub async fn report(&self, message: &StoredMessage) -> Result<(), Unreported> {
        match self.tell(message).await {
            Delivery::Retry(reason) => {
                tracing::warn!(message_id = %message.id, %reason, "status webhook not delivered; retried from the queue");
                let mut job = OutboundRef::to(message);
                job.report = true;
                let id = format!("{}:report:{}", message.id, status_name(message.status));
                Ok(self.queue.enqueue(&job, &id).await?)
            }
            _ => Ok(()),
        }
    }

    /// A report job: tells the partner the message's status unless it was told already.
    pub async fn try_report(&self, target: &OutboundRef) -> Result<ReportOutcome, StoreError> {
        let message = self.bridge.store.message_at(target).await?;
        let Some(message) = message else {
            return Ok(ReportOutcome::NoSuchMessage);
        };
        if !terminal(message.status) || message.reported == Some(message.status) {
            return Ok(ReportOutcome::AlreadyDone);
        }
        Ok(match self.tell(&message).await {
            Delivery::Retry(reason) => ReportOutcome::Retry(reason),
            _ => ReportOutcome::Reported,
        })
    }

    /// The webhook; its delivery id is per message and status, the same on every attempt.
    /// Delivered, or refused for good by the partner (4xx): recorded as `reported`, so it
    /// is not sent again.
    async fn tell(&self, message: &StoredMessage) -> Delivery {
        let Some(partner) = self.bridge.config.partner(&message.partner) else {
            tracing::warn!(message_id = %message.id, "status not reported: partner not configured");
            return Delivery::Refused(0);
        };
        let status = message.status;
        let (event_type, body) = status_body(message);
        let delivery_id = body["delivery_id"].as_str().unwrap_or_default().to_owned();
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let now_secs = self.bridge.now_ms().div_euclid(1000);
        let delivery = webhook::deliver(
            &self.bridge.webhooks,
            partner,
            event_type,
            &delivery_id,
            body,
            now_secs,
        )
        .await;
        match delivery {
            Delivery::Retry(_) => return delivery,
            Delivery::Refused(answer) => {
                tracing::warn!(message_id = %message.id, answer, "status webhook refused by the partner for good");
            }
            Delivery::Delivered => {}
        }
        if let Err(error) = self.bridge.store.mark_reported(message, status).await {
            // The partner has it; a later attempt may repeat it, which it drops by id.
            tracing::warn!(message_id = %message.id, %error, "reported status not recorded");
        }
        delivery
    }
}

/// The webhook's type and body: `push.status` for a push, `message.status` for a reply
/// (with the path and attempts when it went through the push chain).
pub fn status_body(message: &StoredMessage) -> (&'static str, serde_json::Value) {
    let status_name = status_name(message.status);
    let delivery_id = format!("{}:{status_name}", message.id);
    let conversation = json!({ "id": message.conversation_id, "channel": message.channel, "partner": message.partner });
    let push = message.push.as_ref();
    if message.direction == Direction::Push {
        let body = json!({
            "type": "push.status",
            "delivery_id": delivery_id,
            "push": {
                "id": push.and_then(|p| p.push_id.clone()),
                "message_id": message.id,
                "status": status_name,
                "reason": message.status_reason,
                "path": push.and_then(|p| p.path),
                "attempts": push.map(|p| p.attempts.clone()).unwrap_or_default(),
            },
            "conversation": conversation,
        });
        return ("push.status", body);
    }
    let mut reported =
        json!({ "id": message.id, "status": status_name, "reason": message.status_reason });
    if let Some(push) = push {
        reported["path"] = json!(push.path);
        reported["attempts"] = json!(push.attempts);
    }
    let body = json!({
        "type": "message.status",
        "delivery_id": delivery_id,
        "message": reported,
        "conversation": conversation,
    });
    ("message.status", body)
}
