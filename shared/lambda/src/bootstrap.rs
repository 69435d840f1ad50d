//! How every function starts: tracing, the SDK configuration, the deployment's
//! configuration (from the environment, a file or Secrets Manager), and the adapters of
//! the ports on AWS and HTTPS; then the runtime loop, with the invocation's metrics
//! written after each. A function's `main.rs` only says which parts it needs.

use crate::emf;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wxbridge_aws::dynamo::Table;
pub use wxbridge_aws::CallBudget;
use wxbridge_aws::{load_config, load_sdk_config, required_env, SqsFifoQueue, SqsParking};
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::images::Images;
use wxbridge_core::services::Bridge;
use wxbridge_http::{Downloader, HttpWebhookSender, WechatClient};

pub use lambda_runtime::Error;

/// The ports of a deployed function: DynamoDB, SQS, S3, and WeChat, partners and images
/// over HTTPS.
#[derive(Debug)]
pub struct AwsPorts;

impl Ports for AwsPorts {
    type Store = wxbridge_aws::DynamoStore;
    type TokenStore = wxbridge_aws::DynamoTokenStore;
    type Wechat = WechatClient;
    type Webhooks = HttpWebhookSender;
    type Queue = SqsFifoQueue;
    type MediaCache = wxbridge_aws::DynamoMediaCache;
    type Images = Downloader;
    type Archive = wxbridge_aws::S3MediaArchive;
}

/// What a function needs of its deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Only the channels (`callback`).
    Channels,
    /// Partners to deliver to, and a default one in merged mode.
    Partners,
}

/// A started function's deployment: its configuration and the AWS clients.
pub struct Deployment {
    pub config: BridgeConfig,
    aws: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
}

impl Deployment {
    /// Starts tracing and reads the configuration; fails (and the function with it) when
    /// the configuration is missing or invalid. AWS calls get `budget`'s timeouts.
    pub async fn start(needs: Needs, budget: CallBudget) -> Result<Self, Error> {
        let began = Instant::now();
        lambda_runtime::tracing::init_default_subscriber();
        // From the start: what the set-up records goes out with the first invocation's.
        emf::install();
        let traced = began.elapsed();
        let aws = load_sdk_config(budget).await;
        let sdk = began.elapsed();
        let config = load_config(&aws).await?;
        if needs == Needs::Partners {
            config.check_partners()?;
        }
        let configured = began.elapsed();
        let sqs = aws_sdk_sqs::Client::new(&aws);
        INIT.get_or_init(|| Init {
            began,
            traced,
            sdk,
            configured,
            queues: began.elapsed(),
        });
        Ok(Self { config, aws, sqs })
    }

    /// The table `TABLE_NAME` names.
    pub fn table(&self) -> Result<Table, Error> {
        let client = aws_sdk_dynamodb::Client::new(&self.aws);
        Ok(Table::new(client, required_env("TABLE_NAME")?))
    }

    /// The FIFO queue the environment variable `url_env` names.
    pub fn queue(&self, url_env: &str) -> Result<SqsFifoQueue, Error> {
        Ok(SqsFifoQueue::new(self.sqs.clone(), required_env(url_env)?))
    }

    /// Where a consumer of the queue `url_env` parks records (the dead-letter queue
    /// `dlq_env`) and delays them.
    pub fn parking(&self, url_env: &str, dlq_env: &str) -> Result<SqsParking, Error> {
        Ok(SqsParking::new(
            self.sqs.clone(),
            required_env(url_env)?,
            required_env(dlq_env)?,
        ))
    }

    /// The services' shared parts on the table, WeChat's API and partners' webhooks.
    pub fn bridge(&self) -> Result<Bridge<AwsPorts>, Error> {
        let table = self.table()?;
        Ok(Bridge::new(
            self.config.clone(),
            table.store(),
            table.tokens(),
            WechatClient::for_config(&self.config),
            HttpWebhookSender::new(),
        ))
    }

    /// The bucket `MEDIA_BUCKET` names, where image messages' copies are kept.
    pub fn archive(&self) -> Result<wxbridge_aws::S3MediaArchive, Error> {
        Ok(wxbridge_aws::S3MediaArchive::new(
            &self.aws,
            required_env("MEDIA_BUCKET")?,
        ))
    }

    /// What `dispatch` sends images with: the media cache and partners' image URLs.
    pub fn images(&self) -> Result<Images<AwsPorts>, Error> {
        Ok(Images::new(
            self.table()?.media_cache(),
            Downloader::for_config(&self.config),
        ))
    }
}

/// When each part of a function's start ended, from the start of [`Deployment::start`]:
/// logged (microseconds) when the runtime loop begins, so a slow cold start shows where
/// its time went.
struct Init {
    began: Instant,
    traced: Duration,
    sdk: Duration,
    configured: Duration,
    queues: Duration,
}

static INIT: OnceLock<Init> = OnceLock::new();

/// Logs the set-up's timings and makes sure the metrics' recorder is installed (a function
/// may run without `Deployment::start`).
fn log_init(function: &str) {
    emf::install();
    if let Some(init) = INIT.get() {
        let us = |d: Duration| d.as_micros() as u64;
        tracing::info!(
            function,
            tracing_us = us(init.traced),
            sdk_config_us = us(init.sdk),
            configuration_us = us(init.configured),
            sqs_client_us = us(init.queues),
            ready_us = us(init.began.elapsed()),
            "init"
        );
    }
}

/// An SQS-triggered function's handler: a batch in, the batch's item failures out.
pub trait BatchHandler: Send + Sync + 'static {
    fn handle(
        &self,
        event: SqsEvent,
        deadline_ms: Option<i64>,
    ) -> impl Future<Output = SqsBatchResponse> + Send;
}

/// Runs an SQS-triggered function: each batch through `handler` with the invocation's
/// deadline, the metrics written after each.
pub async fn run_sqs<H: BatchHandler>(function: &'static str, handler: H) -> Result<(), Error> {
    log_init(function);
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        async move {
            let response = invoke_sqs(handler.as_ref(), event).await;
            emf::flush(function);
            Ok::<_, Error>(response)
        }
    }))
    .await
}

/// One invocation of an SQS-triggered function as the runtime hands it over: the batch
/// through `handler`, with the invocation's deadline.
pub async fn invoke_sqs<H: BatchHandler>(
    handler: &H,
    event: LambdaEvent<SqsEvent>,
) -> SqsBatchResponse {
    let deadline_ms = i64::try_from(event.context.deadline).ok();
    handler.handle(event.payload, deadline_ms).await
}

/// Runs a scheduled function (an EventBridge schedule): each event through `handle`, which
/// does not read it; the metrics written after each. An error fails the invocation, which
/// EventBridge retries.
pub async fn run_scheduled<F, Fut>(function: &'static str, handle: F) -> Result<(), Error>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    log_init(function);
    let handle = Arc::new(handle);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let handle = Arc::clone(&handle);
        async move {
            let done = handle().await;
            emf::flush(function);
            done.map_err(scheduled_failure)
        }
    }))
    .await
}

/// A failed scheduled run as Lambda reports it: a type that says what failed, where the
/// runtime would name Rust's type (`&alloc::boxed::Box<dyn core::error::Error …>`).
fn scheduled_failure(error: Error) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: "ScheduledRunFailed".to_owned(),
        error_message: error.to_string(),
    }
}

/// Runs an HTTP function: each request through `handle`, the metrics written after each.
pub async fn run_http<F, Fut, R>(function: &'static str, handle: F) -> Result<(), Error>
where
    F: Fn(lambda_http::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send,
    R: lambda_http::IntoResponse,
{
    log_init(function);
    let handle = Arc::new(handle);
    lambda_http::run(lambda_http::service_fn(move |request| {
        let handle = Arc::clone(&handle);
        async move {
            let response = handle(request).await;
            emf::flush(function);
            Ok::<_, Error>(response)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_scheduled_run_is_reported_by_what_failed() {
        let diagnostic = scheduled_failure(Error::from("message store unavailable"));
        assert_eq!(diagnostic.error_type, "ScheduledRunFailed");
        assert_eq!(diagnostic.error_message, "message store unavailable");
    }
}
