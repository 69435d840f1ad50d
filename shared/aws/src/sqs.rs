//! The queues on Amazon SQS: `inbound.fifo`, `outbound.fifo`, `push.fifo` and `media.fifo`, and the
//! dead-letter queues records are parked in.

use serde::Serialize;
use sha2::{Digest, Sha256};
use wxbridge_core::model::{InboundMessage, MediaJob, OutboundRef};
use wxbridge_core::ports::queue::{InboundQueue, MediaQueue, OutboundQueue, Parking, QueueError};

/// SQS group and deduplication ids are at most 128 printable ASCII characters; a value
/// that does not fit (an unusually long or non-ASCII field) is replaced by its SHA-256.
pub fn sqs_id(value: &str) -> String {
    if !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()) {
        value.to_owned()
    } else {
        hex::encode(Sha256::digest(value.as_bytes()))
    }
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
        let body = serde_json::to_string(body).map_err(|e| QueueError(Box::new(e)))?;
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
        self.send(
            message,
            sqs_id(&message.group_id()),
            sqs_id(&message.deduplication_id()),
        )
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

impl MediaQueue for SqsFifoQueue {
    /// Each job in a group of its own: copies need no order.
    async fn enqueue_copy(&self, job: &MediaJob) -> Result<(), QueueError> {
        let id = sqs_id(&job.deduplication_id());
        self.send(job, id.clone(), id).await
    }
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

/// SQS's error, kept as the cause.
fn sqs_error<E, R>(error: aws_sdk_sqs::error::SdkError<E, R>) -> QueueError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    QueueError(Box::new(error))
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
            .map_err(|e| QueueError(Box::new(e)))?;
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

#[cfg(test)]
mod tests {
    use super::sqs_id;

    #[test]
    fn an_id_that_fits_sqs_is_kept_and_one_that_does_not_is_hashed() {
        assert_eq!(
            sqs_id("mp:o9AgO5Kd5ggOC-bXrbNODIiE3bGY"),
            "mp:o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
        );
        let long = "x".repeat(129);
        for unfit in ["", long.as_str(), "mp:用户", "with space"] {
            let id = sqs_id(unfit);
            assert_eq!(id.len(), 64, "{unfit:?}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(sqs_id(&"x".repeat(128)), "x".repeat(128));
        assert_ne!(sqs_id("mp:用户"), sqs_id("mp:用户2"));
    }
}
