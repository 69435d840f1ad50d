//! Support for the integration tests: clients for the local AWS emulator (moto server,
//! started by `make test-integ`), uniquely named queues shaped as `template.yaml` deploys
//! them, batches handed to the handlers by Lambda's event source mapping as
//! `wxbridge-testkit-aws` emulates it (the local stack feeds its functions with the same), partners'
//! webhook receivers and image hosts on loopback, and a request counter so tests can
//! assert how many AWS calls a handler made.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wxbridge_lambda::bootstrap::BatchHandler;
use wxbridge_testkit_aws::event_source::{EventSourceMapping, Invocation};

/// The emulator's clients, names and template-shaped queues, shared with the event source
/// mapping's own tests.
pub use wxbridge_testkit_aws::emulator::{
    create_fifo_queues, endpoint as emulator_endpoint, sqs_client, unique_name, FifoQueues,
};

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

/// An SQS client for the emulator with its own request counter, for handlers under test.
pub async fn counted_sqs_client() -> (aws_sdk_sqs::Client, RequestCounter) {
    let shared = wxbridge_testkit_aws::emulator::sdk_config().await;
    let counter = RequestCounter::default();
    let config = aws_sdk_sqs::config::Builder::from(&shared)
        .interceptor(counter.clone())
        .build();
    (aws_sdk_sqs::Client::from_conf(config), counter)
}

/// The inbound FIFO queue and its DLQ, with the attributes `template.yaml` gives them.
pub async fn create_inbound_queues(client: &aws_sdk_sqs::Client) -> FifoQueues {
    create_fifo_queues(client, "inbound").await
}

/// One batch of `source`'s queue handed to `handler` in process by the event source
/// mapping — received, invoked and settled as Lambda does — with no wait for a first
/// record: the batch and the handler's answer (no records and an empty answer when the
/// queue had nothing visible, as the handler is then not invoked).
pub async fn poll_handler<H: BatchHandler>(
    sqs: &aws_sdk_sqs::Client,
    source: &EventSourceMapping,
    handler: &H,
) -> (SqsEvent, SqsBatchResponse) {
    let handed = Mutex::new(None);
    let seen = &handed;
    source
        .poll(sqs, std::time::Duration::ZERO, move |event| async move {
            let response = handler.handle(event.clone(), None).await;
            let invocation = Invocation::answered(&response);
            *seen.lock().unwrap() = Some((event, response));
            invocation
        })
        .await
        .expect("poll the emulator's queue");
    handed.into_inner().unwrap().unwrap_or_default()
}

/// A message as it sits in the queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: String,
    pub group_id: String,
    pub deduplication_id: String,
}

/// Up to 10 visible messages, with their system attributes, without waiting (for
/// inspecting a queue; batches for the handlers come from [`poll_handler`]).
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
    let sdk = wxbridge_aws::load_sdk_config(wxbridge_aws::CallBudget::Answering).await;
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
    use wxbridge_aws::dynamo::keys::{
        EXPIRES_AT, GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK,
    };
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
    let index = |name: &str, pk: &str, sk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash))
            .key_schema(key(sk, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("gsi")
    };
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK))
        .attribute_definitions(attribute(SK))
        .attribute_definitions(attribute(GSI1_PK))
        .attribute_definitions(attribute(GSI1_SK))
        .attribute_definitions(attribute(GSI2_PK))
        .attribute_definitions(attribute(GSI2_SK))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .global_secondary_indexes(index(GSI1, GSI1_PK, GSI1_SK))
        .global_secondary_indexes(index(GSI2, GSI2_PK, GSI2_SK))
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

/// Serves `app` on a free loopback port for as long as the test's runtime runs; its base
/// URL.
async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The request target as the client wrote it: path and query.
fn target(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned())
}

/// A partner's webhook endpoint on loopback: records what it receives and answers with the
/// statuses it is told (then 200).
pub struct WebhookReceiver {
    pub url: String,
    hooks: WebhookLog,
}

/// What a [`WebhookReceiver`] shares with its server.
#[derive(Clone, Default)]
struct WebhookLog {
    received: Arc<Mutex<Vec<ReceivedWebhook>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub path: String,
    /// By lowercase name; of a repeated header, the last value.
    pub headers: HashMap<String, String>,
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
    pub async fn start() -> Self {
        let hooks = WebhookLog::default();
        let app = axum::Router::new()
            .fallback(receive_webhook)
            .with_state(hooks.clone());
        Self {
            url: serve_on_loopback(app).await,
            hooks,
        }
    }

    /// The next request gets `status` (each call queues one answer).
    pub fn answer(&self, status: u16) {
        self.hooks.answers.lock().unwrap().push_back(status);
    }

    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.hooks.received.lock().unwrap().clone()
    }
}

async fn receive_webhook(
    State(hooks): State<WebhookLog>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    hooks.received.lock().unwrap().push(ReceivedWebhook {
        path: target(&uri),
        headers,
        body: body.to_vec(),
    });
    let status = hooks.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).expect("a status code the test chose")
}

/// A partner's image host on loopback: answers each path as it is told (404 otherwise)
/// and counts the requests per path.
pub struct ImageServer {
    pub url: String,
    images: ImageRoutes,
}

/// What an [`ImageServer`] shares with its server: the answer for each path, the requests
/// each path got.
#[derive(Clone, Default)]
struct ImageRoutes {
    routes: Arc<Mutex<HashMap<String, ImageRoute>>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

#[derive(Debug, Clone)]
struct ImageRoute {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl ImageServer {
    pub async fn start() -> Self {
        let images = ImageRoutes::default();
        let app = axum::Router::new()
            .fallback(serve_image)
            .with_state(images.clone());
        Self {
            url: serve_on_loopback(app).await,
            images,
        }
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
        self.images.routes.lock().unwrap().insert(
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
        self.images
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

async fn serve_image(State(images): State<ImageRoutes>, uri: Uri) -> Response {
    let path = target(&uri);
    *images.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let route = images.routes.lock().unwrap().get(&path).cloned();
    let route = route.unwrap_or(ImageRoute {
        status: 404,
        headers: vec![],
        body: vec![],
    });
    let mut response = Response::builder().status(route.status);
    for (name, value) in &route.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::from(route.body))
        .expect("a response the test described")
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

/// A PNG of about 2 KB (its signature and header, then filler), as partners' images are.
pub fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..2000u32).map(|n| (n % 251) as u8));
    bytes
}

/// A fresh bucket on the emulator (S3 on the same endpoint), read and written through a
/// client with its own request counter, as the functions' archive adapter uses it.
pub struct Bucket {
    pub name: String,
    pub client: aws_sdk_s3::Client,
    pub requests: RequestCounter,
}

impl Bucket {
    pub async fn new() -> Self {
        emulator_endpoint();
        let sdk = wxbridge_aws::load_sdk_config(wxbridge_aws::CallBudget::Answering).await;
        let requests = RequestCounter::default();
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(requests.clone())
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let name = unique_name("media");
        client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create the bucket");
        Self {
            name,
            client,
            requests,
        }
    }

    /// The functions' adapter on this bucket.
    pub fn archive(&self) -> wxbridge_aws::S3MediaArchive {
        wxbridge_aws::S3MediaArchive::from_client(self.client.clone(), &self.name)
    }

    /// The bytes kept under `key`, if any (read past the adapter).
    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let output = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(output.body.collect().await.ok()?.into_bytes().to_vec())
    }
}

/// The adapter on a bucket whose endpoint does not answer (nothing listens on the port):
/// S3 unavailable, as the functions meet it.
pub async fn unreachable_archive() -> wxbridge_aws::S3MediaArchive {
    let sdk = wxbridge_testkit_aws::emulator::sdk_config().await;
    let sdk = sdk
        .into_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    wxbridge_aws::S3MediaArchive::new(&sdk, "nowhere")
}

/// A partner API request signed now as `partner` with its secret and `nonce`, as a
/// partner's client sends it.
pub fn signed_request(
    (partner, secret): (&str, &str),
    method: &str,
    path: &str,
    body: &str,
    nonce: &str,
) -> lambda_http::Request {
    use wxbridge_core::services::partner::auth::{sign, SignedRequest};
    let signed = SignedRequest {
        method,
        path_and_query: path,
        body: body.as_bytes(),
    };
    let now = wxbridge_core::clock::system_clock_ms() / 1000;
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(path);
    let secret = wxbridge_core::config::Secret::new(secret);
    for (name, value) in sign(partner, &secret, &signed, now, nonce) {
        builder = builder.header(name, value);
    }
    builder
        .body(lambda_http::Body::Text(body.to_owned()))
        .expect("a request")
}

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
pub fn parking(client: &aws_sdk_sqs::Client, queues: &FifoQueues) -> wxbridge_aws::SqsParking {
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
