//! The local AWS emulator (moto server) as the tests use it: clients pointed at
//! `$AWS_ENDPOINT_URL` and nowhere else, and uniquely named FIFO queues shaped as
//! `template.yaml` deploys them. Shared by the integration tests (`tests/`), the event
//! source mapping's own tests and the local stack's tests, so all run against queues of
//! one shape.

use crate::event_source::{EventSourceMapping, SqsSource};
use aws_sdk_sqs::types::QueueAttributeName;

/// The region the tests' clients and mappings name (the emulator accepts any).
pub const REGION: &str = "us-east-1";

/// The emulator's endpoint; the tests refuse to run against anything implicit. A test that
/// calls this is of the integration tier: it fails, saying so, without the emulator.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: this test needs the local AWS emulator; run it with `make test-integ`, which starts one (`make test-unit` runs the tests that need none)")
    })
}

/// The SDK configuration for the emulator, with test credentials (a client built from it
/// can take interceptors of its own, as the tests' request counters do).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::from_env()
        .http_client(wxbridge_aws::https_client())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
        .load()
        .await
}

/// An SQS client for the emulator.
pub async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config().await)
}

/// A short unique name prefix for a test's resources, so tests sharing one emulator never
/// share a queue or a table.
pub fn unique_name(purpose: &str) -> String {
    format!(
        "wxb-{purpose}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A FIFO queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct FifoQueues {
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
}

impl FifoQueues {
    /// `function` fed from the queue as `template.yaml` maps every SQS-triggered function:
    /// batches of 10, partial batch failures reported.
    pub fn event_source(&self, function: &str) -> EventSourceMapping {
        let source = SqsSource {
            queue_url: self.queue_url.clone(),
            queue_arn: self.queue_arn.clone(),
            batch_size: 10,
            report_batch_item_failures: true,
        };
        EventSourceMapping::new(function, &source, REGION)
    }
}

/// The queue attributes that decide how a record comes back and when SQS gives up on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueTiming {
    pub visibility_timeout_secs: u32,
    pub max_receive_count: u32,
}

impl QueueTiming {
    /// As `template.yaml` deploys `inbound.fifo`, `outbound.fifo` and `push.fifo`.
    pub const TEMPLATE: Self = Self {
        visibility_timeout_secs: 540,
        max_receive_count: 110,
    };
}

/// A FIFO queue and its dead-letter queue shaped as `template.yaml`'s queues.
pub async fn create_fifo_queues(client: &aws_sdk_sqs::Client, purpose: &str) -> FifoQueues {
    create_fifo_queues_timed(client, purpose, QueueTiming::TEMPLATE).await
}

/// A FIFO queue and its dead-letter queue shaped as `template.yaml`'s queues but for their
/// timing: a test that waits for a record to come back or to be redriven shortens it.
pub async fn create_fifo_queues_timed(
    client: &aws_sdk_sqs::Client,
    purpose: &str,
    timing: QueueTiming,
) -> FifoQueues {
    let name = unique_name(purpose);
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create DLQ")
        .queue_url
        .expect("DLQ url");
    let dlq_arn = queue_arn(client, &dlq_url).await;
    let queue_url = client
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            timing.visibility_timeout_secs.to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({
                "deadLetterTargetArn": dlq_arn,
                "maxReceiveCount": timing.max_receive_count,
            })
            .to_string(),
        )
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let queue_arn = queue_arn(client, &queue_url).await;
    FifoQueues {
        queue_url,
        queue_arn,
        dlq_url,
    }
}

async fn queue_arn(client: &aws_sdk_sqs::Client, queue_url: &str) -> String {
    client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn")
}
