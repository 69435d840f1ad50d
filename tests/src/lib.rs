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
    create_fifo_queues(client, "inbound").await
}

/// A FIFO queue and its DLQ shaped as `template.yaml`'s `inbound.fifo` and `outbound.fifo`.
pub async fn create_fifo_queues(client: &aws_sdk_sqs::Client, purpose: &str) -> InboundQueues {
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
        .attributes(QueueAttributeName::VisibilityTimeout, "540")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 110 })
                .to_string(),
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

/// Up to 10 visible messages, with their system attributes, without waiting.
async fn receive(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Vec<aws_sdk_sqs::types::Message> {
    client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

/// Receives (and deletes) everything in the queue, in delivery order.
pub async fn drain(client: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Received> {
    let mut received = Vec::new();
    loop {
        let messages = receive(client, queue_url).await;
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
    counted_dynamodb_client().await.0
}

/// A DynamoDB client for the emulator with its own request counter.
pub async fn counted_dynamodb_client() -> (aws_sdk_dynamodb::Client, RequestCounter) {
    emulator_endpoint();
    let sdk = wxbridge_aws::load_sdk_config().await;
    let counter = RequestCounter::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(counter.clone())
        .build();
    (aws_sdk_dynamodb::Client::from_conf(config), counter)
}

/// A uniquely named table shaped as `template.yaml` deploys it: `pk`/`sk`, `gsi1`, TTL.
pub async fn create_table(client: &aws_sdk_dynamodb::Client) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
    };
    use wxbridge_aws::dynamo::keys::{EXPIRES_AT, GSI1, GSI1_PK, GSI1_SK, PK, SK};
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

/// A partner's webhook endpoint on loopback: records what it receives and answers with the
/// statuses it is told (then 200).
pub struct WebhookReceiver {
    pub url: String,
    received: Arc<std::sync::Mutex<Vec<ReceivedWebhook>>>,
    answers: Arc<std::sync::Mutex<std::collections::VecDeque<u16>>>,
}

#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub path: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

impl ReceivedWebhook {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

impl WebhookReceiver {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let answers = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let (r, a) = (Arc::clone(&received), Arc::clone(&answers));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, a) = (Arc::clone(&r), Arc::clone(&a));
                std::thread::spawn(move || serve(stream, &r, &a));
            }
        });
        Self {
            url,
            received,
            answers,
        }
    }

    pub fn answer(&self, status: u16) {
        self.answers.lock().unwrap().push_back(status);
    }

    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.received.lock().unwrap().clone()
    }
}

/// Serves HTTP/1.1 requests on one connection until the client closes it.
fn serve(
    stream: std::net::TcpStream,
    received: &std::sync::Mutex<Vec<ReceivedWebhook>>,
    answers: &std::sync::Mutex<std::collections::VecDeque<u16>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = std::collections::HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        received.lock().unwrap().push(ReceivedWebhook {
            path,
            headers,
            body,
        });
        let status = answers.lock().unwrap().pop_front().unwrap_or(200);
        let response = format!("HTTP/1.1 {status} Answer\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Receives a batch the way Lambda's event source mapping does and hands it over as the
/// `SqsEvent` the function gets.
pub async fn receive_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = receive(client, queue_url)
        .await
        .into_iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::from(v)))
                .collect();
            serde_json::json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:inbound.fifo",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("SQS event")
}

/// What the event source mapping does with the answer: deletes every record that did not
/// fail; failed ones stay for a later receive.
pub async fn settle_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: &aws_lambda_events::event::sqs::SqsEvent,
    response: &aws_lambda_events::event::sqs::SqsBatchResponse,
) {
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for record in &event.records {
        if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
            client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(record.receipt_handle.clone().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

/// Makes every in-flight message visible again at once (a backoff that has elapsed, or a
/// Lambda that crashed before answering).
pub async fn make_visible(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: &aws_lambda_events::event::sqs::SqsEvent,
) {
    for record in &event.records {
        let _ = client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(record.receipt_handle.clone().unwrap_or_default())
            .visibility_timeout(0)
            .send()
            .await;
    }
}

/// A partner's image host on loopback: answers each path as it is told (404 otherwise)
/// and counts the requests per path.
pub struct ImageServer {
    pub url: String,
    routes: Arc<std::sync::Mutex<std::collections::HashMap<String, ImageRoute>>>,
    hits: Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

#[derive(Debug, Clone)]
struct ImageRoute {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl ImageServer {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind image server");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let routes = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let hits = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let (r, h) = (Arc::clone(&routes), Arc::clone(&hits));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, h) = (Arc::clone(&r), Arc::clone(&h));
                std::thread::spawn(move || serve_images(stream, &r, &h));
            }
        });
        Self { url, routes, hits }
    }

    /// `path` answers `status` with `content_type` and `body`.
    pub fn serve(&self, path: &str, status: u16, content_type: &str, body: Vec<u8>) {
        let headers = vec![("content-type".to_owned(), content_type.to_owned())];
        self.route(path, status, headers, body);
    }

    /// `path` redirects (302) to `to`.
    pub fn redirect(&self, path: &str, to: &str) {
        self.route(
            path,
            302,
            vec![("location".to_owned(), to.to_owned())],
            vec![],
        );
    }

    fn route(&self, path: &str, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) {
        self.routes.lock().unwrap().insert(
            path.to_owned(),
            ImageRoute {
                status,
                headers,
                body,
            },
        );
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn serve_images(
    stream: std::net::TcpStream,
    routes: &std::sync::Mutex<std::collections::HashMap<String, ImageRoute>>,
    hits: &std::sync::Mutex<std::collections::HashMap<String, u32>>,
) {
    use std::io::{BufRead, BufReader, Write};
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // GET requests: no body to read, only the headers.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim_end().is_empty() {
                break;
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let route = routes.lock().unwrap().get(&path).cloned();
        let route = route.unwrap_or(ImageRoute {
            status: 404,
            headers: vec![],
            body: vec![],
        });
        let mut head = format!(
            "HTTP/1.1 {} Answer\r\ncontent-length: {}\r\n",
            route.status,
            route.body.len()
        );
        for (name, value) in &route.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&route.body).is_err() {
            return;
        }
    }
}

/// Stores a reply of `hotel-9` to `openid` on channel `mp` (the `n`th, at now + n ms), as
/// the API would, and names it as `outbound.fifo` does.
pub async fn store_reply<S: wxbridge_core::ports::store::Store>(
    store: &S,
    openid: &str,
    n: u32,
    content: serde_json::Value,
) -> wxbridge_core::model::OutboundRef {
    use wxbridge_core::model::{Conversation, StoredMessage};
    use wxbridge_core::ports::store::Recorded;
    let at_ms = wxbridge_core::clock::system_clock_ms() + n as i64;
    let conversation = Conversation::new(
        &format!("mp:{openid}:hotel-9"),
        "mp",
        openid,
        "hotel-9",
        at_ms,
    );
    let message = StoredMessage::reply(&conversation, format!("out_{openid}_{n}"), at_ms, content);
    assert_eq!(
        store
            .put_outbound(&message, &conversation, &message.id)
            .await
            .unwrap(),
        Recorded::New
    );
    wxbridge_core::model::OutboundRef::to(&message)
}

/// The ports the integration tests run the services on, as a function does: DynamoDB and
/// SQS (the emulator), WeChat (the fake, at the configuration's `wechat_api_base`),
/// partners' webhooks and images over HTTP (loopback servers).
pub use wxbridge_lambda::bootstrap::AwsPorts;

/// A fresh table on the emulator, shaped as `template.yaml` deploys it.
pub async fn new_table() -> wxbridge_aws::Table {
    let client = dynamodb_client().await;
    let name = create_table(&client).await;
    wxbridge_aws::Table::new(client, name)
}

/// The services' shared parts on `table`, WeChat's API as `config` names it, webhooks over
/// HTTP, and the system clock (`.with_clock` for another).
pub fn bridge_on(
    config: &wxbridge_core::config::BridgeConfig,
    table: &wxbridge_aws::Table,
) -> wxbridge_core::services::Bridge<AwsPorts> {
    wxbridge_core::services::Bridge::new(
        config.clone(),
        table.store(),
        table.tokens(),
        wxbridge_http::WechatClient::for_config(config),
        wxbridge_http::HttpWebhookSender::new(),
    )
}

/// What `dispatch` sends images with, on `table` and partners' URLs as `config` allows.
pub fn images_on(
    config: &wxbridge_core::config::BridgeConfig,
    table: &wxbridge_aws::Table,
) -> wxbridge_core::services::images::Images<AwsPorts> {
    wxbridge_core::services::images::Images::new(
        table.media_cache(),
        wxbridge_http::Downloader::for_config(config),
    )
}

/// A FIFO queue of the emulator, as the functions send to it.
pub fn fifo_queue(client: &aws_sdk_sqs::Client, url: &str) -> wxbridge_aws::SqsFifoQueue {
    wxbridge_aws::SqsFifoQueue::new(client.clone(), url)
}

/// A queue and its dead-letter queue, as a FIFO consumer parks and delays records in them.
pub fn parking(client: &aws_sdk_sqs::Client, queues: &InboundQueues) -> wxbridge_aws::SqsParking {
    wxbridge_aws::SqsParking::new(client.clone(), &queues.queue_url, &queues.dlq_url)
}

/// A Lambda HTTP event (JSON) as the request the runtime hands the function.
pub fn http_request(event: &serde_json::Value) -> lambda_http::Request {
    wxbridge_lambda::http::event_request(event)
}

/// The partner API's answer to a request: status and JSON body (`Null` when not JSON).
pub async fn api_answer(
    router: &axum::Router,
    request: lambda_http::Request,
) -> (u16, serde_json::Value) {
    let response = wxbridge_lambda::api::answer(router, request).await;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body read in memory");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A sealed push as the request `callback` receives for it.
pub fn push_request(
    push: &wxbridge_wechat::encode::SignedPush,
    channel: &str,
) -> lambda_http::Request {
    http_request(&wxbridge_testkit::events::push_event(push, channel))
}
