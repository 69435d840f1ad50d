//! The queues between the functions, as ports: what `callback` sends to `inbound`, what
//! `api` and `inbound` send to `dispatch` and `push`, and where a consumer parks or delays
//! what it cannot finish. What the queues carry is in [`crate::model::queued`].

use crate::model::{InboundMessage, MediaJob, OutboundRef};
use std::future::Future;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// The port `callback` sends through.
pub trait InboundQueue: Send + Sync {
    fn enqueue(
        &self,
        message: &InboundMessage,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The port `api` and `inbound` send partner messages to `dispatch` through.
pub trait OutboundQueue: Send + Sync {
    /// Enqueues in the target's group ([`OutboundRef::group_id`]: the conversation, or a
    /// report job's own). `deduplication_id` names this sending: the message id for the
    /// first, `{message id}:release:{inbound message id}` for a release of a held message,
    /// `{message id}:report:{status}` for a report job (SQS drops a repeat of an id within
    /// 5 minutes).
    fn enqueue(
        &self,
        target: &OutboundRef,
        deduplication_id: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The port `inbound` and `dispatch` ask for image copies through (`media.fifo`): one
/// job per message ([`MediaJob::deduplication_id`]).
pub trait MediaQueue: Send + Sync {
    fn enqueue_copy(&self, job: &MediaJob) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Where the inbound function puts what it cannot finish: refused messages go to the
/// dead-letter queue at once; retried ones wait longer each time (backoff).
pub trait Parking: Send + Sync {
    /// Sends a message to the dead-letter queue, with the reason as a message attribute.
    fn park(
        &self,
        body: &str,
        group_id: &str,
        deduplication_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Keeps a received message invisible for `seconds` before it is tried again.
    fn delay(
        &self,
        receipt_handle: &str,
        seconds: i32,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}
