//! The queues between the functions.
//!
//! `inbound.fifo` (what `callback` hands to `inbound`) keeps order per user
//! (MessageGroupId = channel + openid) and collapses WeChat's retries
//! (MessageDeduplicationId = the event's dedupe key; SQS drops a repeat within 5 minutes,
//! the same span as WeChat's retries).
//!
//! `outbound.fifo` (what `api` and `inbound` hand to `dispatch`) keeps order per
//! conversation (MessageGroupId = conversation id) and carries only where the message is
//! stored ([`OutboundRef`]).

use crate::dispatch::OutboundRef;
use crate::event::CallbackEvent;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Mutex;
use thiserror::Error;

/// Version of the message body below; bumped when a consumer must tell shapes apart.
pub const INBOUND_MESSAGE_VERSION: u32 = 1;

/// One push, opened and ready for the fan-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub version: u32,
    pub channel: String,
    pub dedupe_key: String,
    /// When the bridge accepted the push, in milliseconds since the epoch.
    pub received_at_ms: i64,
    pub event: CallbackEvent,
}

impl InboundMessage {
    pub fn new(channel: &str, event: CallbackEvent, received_at_ms: i64) -> Self {
        Self {
            version: INBOUND_MESSAGE_VERSION,
            channel: channel.to_owned(),
            dedupe_key: format!("{channel}:{}", event.dedupe_key()),
            received_at_ms,
            event,
        }
    }

    /// Order is kept per user of a channel.
    pub fn group_id(&self) -> String {
        sqs_id(&format!("{}:{}", self.channel, self.event.from_user_name))
    }

    pub fn deduplication_id(&self) -> String {
        sqs_id(&self.dedupe_key)
    }
}

/// SQS group and deduplication ids are at most 128 printable ASCII characters; a value
/// that does not fit (an unusually long or non-ASCII field) is replaced by its SHA-256.
pub fn sqs_id(value: &str) -> String {
    if !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()) {
        value.to_owned()
    } else {
        hex::encode(Sha256::digest(value.as_bytes()))
    }
}

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

/// A FIFO queue on Amazon SQS: `inbound.fifo` or `outbound.fifo`.
#[derive(Debug, Clone)]
pub struct SqsFifoQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsFifoQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    async fn send<T: Serialize>(
        &self,
        body: &T,
        group_id: String,
        deduplication_id: String,
    ) -> Result<(), QueueError> {
        let body = serde_json::to_string(body).map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(group_id)
            .message_deduplication_id(deduplication_id)
            .message_body(body)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }
}

impl InboundQueue for SqsFifoQueue {
    async fn enqueue(&self, message: &InboundMessage) -> Result<(), QueueError> {
        self.send(message, message.group_id(), message.deduplication_id())
            .await
    }
}

impl OutboundQueue for SqsFifoQueue {
    async fn enqueue(
        &self,
        target: &OutboundRef,
        deduplication_id: &str,
    ) -> Result<(), QueueError> {
        self.send(target, sqs_id(&target.group_id()), sqs_id(deduplication_id))
            .await
    }
}

/// An in-memory queue for unit tests: records every attempt, keeps what FIFO SQS would
/// keep (repeats of a deduplication id dropped), and can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    attempts: Mutex<Vec<InboundMessage>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryQueue {
    /// Every message handed to the queue, repeats included.
    pub fn attempts(&self) -> Vec<InboundMessage> {
        self.attempts.lock().expect("queue lock").clone()
    }

    /// What the queue holds: the first message of each deduplication id.
    pub fn sent(&self) -> Vec<InboundMessage> {
        let mut kept: Vec<InboundMessage> = Vec::new();
        for message in self.attempts() {
            if !kept
                .iter()
                .any(|m| m.deduplication_id() == message.deduplication_id())
            {
                kept.push(message);
            }
        }
        kept
    }

    pub fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

impl InboundQueue for MemoryQueue {
    async fn enqueue(&self, message: &InboundMessage) -> Result<(), QueueError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError("memory queue told to fail".into()));
        }
        self.attempts
            .lock()
            .expect("queue lock")
            .push(message.clone());
        Ok(())
    }
}

/// An in-memory `outbound.fifo` for unit tests: every enqueue with its deduplication id.
#[derive(Debug, Default)]
pub struct MemoryOutboundQueue {
    sent: Mutex<Vec<(OutboundRef, String)>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryOutboundQueue {
    pub fn sent(&self) -> Vec<(OutboundRef, String)> {
        self.sent.lock().expect("queue lock").clone()
    }

    pub fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

impl OutboundQueue for MemoryOutboundQueue {
    async fn enqueue(
        &self,
        target: &OutboundRef,
        deduplication_id: &str,
    ) -> Result<(), QueueError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError("memory queue told to fail".into()));
        }
        self.sent
            .lock()
            .expect("queue lock")
            .push((target.clone(), deduplication_id.to_owned()));
        Ok(())
    }
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

/// `inbound.fifo` and its dead-letter queue on Amazon SQS.
#[derive(Debug, Clone)]
pub struct SqsParking {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    dead_letter_url: String,
}

impl SqsParking {
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }
}

fn sqs_error<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    error: aws_sdk_sqs::error::SdkError<E, R>,
) -> QueueError {
    QueueError(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
}

impl Parking for SqsParking {
    async fn park(
        &self,
        body: &str,
        group_id: &str,
        deduplication_id: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        let reason = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason)
            .build()
            .map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_group_id(group_id)
            .message_deduplication_id(deduplication_id)
            .message_attributes("reason", reason)
            .message_body(body)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    async fn delay(&self, receipt_handle: &str, seconds: i32) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }
}
