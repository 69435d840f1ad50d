//! Support for the integration tests: clients for the local AWS emulator (moto server,
//! started by `scripts/test.sh`), uniquely named queues shaped as `template.yaml` deploys
//! them, and a request counter so tests can assert how many AWS calls a handler made.

use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The emulator's endpoint; the tests refuse to run against anything implicit.
pub fn emulator_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: run the integration tests through scripts/test.sh, which starts the local AWS emulator")
    })
}

/// Counts every request an SDK client transmits.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<AtomicUsize>);

impl RequestCounter {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// An SQS client for the emulator, for setting up and inspecting queues.
pub async fn sqs_client() -> aws_sdk_sqs::Client {
    counted_sqs_client().await.0
}

/// An SQS client for the emulator with its own request counter, for handlers under test.
pub async fn counted_sqs_client() -> (aws_sdk_sqs::Client, RequestCounter) {
    let endpoint = emulator_endpoint();
    let shared = aws_config::from_env()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
        .load()
        .await;
    let counter = RequestCounter::default();
    let config = aws_sdk_sqs::config::Builder::from(&shared)
        .interceptor(counter.clone())
        .build();
    (aws_sdk_sqs::Client::from_conf(config), counter)
}

/// A short unique name prefix for this test's resources.
pub fn unique_name(purpose: &str) -> String {
    format!(
        "wxb-{purpose}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The inbound FIFO queue and its DLQ, with the attributes `template.yaml` gives them.
pub struct InboundQueues {
    pub queue_url: String,
    pub dlq_url: String,
}

pub async fn create_inbound_queues(client: &aws_sdk_sqs::Client) -> InboundQueues {
    let name = unique_name("inbound");
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create DLQ")
        .queue_url
        .expect("DLQ url");
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("DLQ attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("DLQ arn");
    let queue_url = client
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5 }).to_string(),
        )
        .send()
        .await
        .expect("create inbound queue")
        .queue_url
        .expect("queue url");
    InboundQueues { queue_url, dlq_url }
}

/// A message as it sits in the queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: String,
    pub group_id: String,
    pub deduplication_id: String,
}

/// Receives (and deletes) everything in the queue, in delivery order.
pub async fn drain(client: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Received> {
    let mut received = Vec::new();
    loop {
        let output = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return received;
        }
        for message in messages {
            let attribute = |name| {
                message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&name).cloned())
                    .unwrap_or_default()
            };
            received.push(Received {
                body: message.body.clone().unwrap_or_default(),
                group_id: attribute(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId),
                deduplication_id: attribute(
                    aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId,
                ),
            });
            client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

/// A DynamoDB client for the emulator.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    emulator_endpoint();
    aws_sdk_dynamodb::Client::new(&wxbridge::aws::load_sdk_config().await)
}

/// A uniquely named table shaped as `template.yaml` deploys it: `pk`/`sk`, `gsi1`, TTL.
pub async fn create_table(client: &aws_sdk_dynamodb::Client) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
    };
    use wxbridge::store::keys::{EXPIRES_AT, GSI1, GSI1_PK, GSI1_SK, PK, SK};
    let name = unique_name("table");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK))
        .attribute_definitions(attribute(SK))
        .attribute_definitions(attribute(GSI1_PK))
        .attribute_definitions(attribute(GSI1_SK))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI1)
                .key_schema(key(GSI1_PK, KeyType::Hash))
                .key_schema(key(GSI1_SK, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("gsi"),
        )
        .send()
        .await
        .expect("create table");
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES_AT)
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("enable TTL");
    name
}
