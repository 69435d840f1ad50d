//! `inbound`: consumes `inbound.fifo`. Wiring only; the logic is
//! `wxbridge::handlers::inbound` and `wxbridge::inbound`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;
use wxbridge::aws::{load_sdk_config, required_env as env};
use wxbridge::config::BridgeConfig;
use wxbridge::handlers::inbound::{InboundHandler, DEFAULT_MAX_RECEIVES};
use wxbridge::inbound::Inbound;
use wxbridge::queue::{SqsFifoQueue, SqsParking};
use wxbridge::store::dynamo::DynamoStore;
use wxbridge::webhook::HttpWebhookSender;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = load_sdk_config().await;
    let config = BridgeConfig::load(&aws).await?;
    config.check_partners()?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), env("TABLE_NAME")?);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let parking = SqsParking::new(
        sqs.clone(),
        env("INBOUND_QUEUE_URL")?,
        env("INBOUND_DLQ_URL")?,
    );
    // Held replies the user's next message releases go to dispatch through outbound.fifo.
    let outbound = SqsFifoQueue::new(sqs, env("OUTBOUND_QUEUE_URL")?);
    let inbound = Inbound::new(config, store, HttpWebhookSender::new(), outbound);
    let max_receives = match std::env::var("INBOUND_MAX_RECEIVES") {
        Ok(value) => value
            .parse()
            .map_err(|_| "INBOUND_MAX_RECEIVES is not a number")?,
        Err(_) => DEFAULT_MAX_RECEIVES,
    };
    let handler = Arc::new(InboundHandler::new(inbound, parking).with_max_receives(max_receives));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        let deadline_ms = i64::try_from(event.context.deadline).ok();
        async move {
            let response = handler.handle(event.payload, deadline_ms).await;
            wxbridge::metrics::flush("inbound");
            Ok::<_, Error>(response)
        }
    }))
    .await
}
