//! The queues between the functions, as ports: what `callback` sends to `inbound`, what
//! `api` and `inbound` send to `dispatch` and `push`, and where a consumer parks or delays
//! what it cannot finish. What the queues carry is in [`crate::model::queued`].

use super::{Cause, Chain};
use crate::model::{InboundMessage, MediaJob, OutboundRef};
use std::future::Future;
use thiserror::Error;

/// A queue that did not take a message (or a change to one). The adapter's error is kept
/// as the source; the message names it and its causes, never what the message held.
#[derive(Debug, Error)]
#[error("queue unavailable: {}", Chain(.0.as_ref()))]
pub struct QueueError(#[source] pub Cause);

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

#[cfg(test)]
mod tests {
    use super::QueueError;
    use std::error::Error;

    /// An adapter's error with a cause of its own, as an SDK's is.
    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Sdk(#[source] std::io::Error);

    #[test]
    fn a_queue_error_keeps_its_cause_and_names_it() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = QueueError(Box::new(Sdk(refused)));
        assert_eq!(
            error.to_string(),
            "queue unavailable: dispatch failure: refused"
        );
        let cause = error.source().expect("a cause");
        assert!(cause.downcast_ref::<Sdk>().is_some(), "{cause:?}");
    }
}
