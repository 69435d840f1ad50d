//! `dispatch`: consumes `outbound.fifo`. Wiring only; the logic is
//! `wxbridge::handlers::dispatch` and `wxbridge::dispatch`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;
use wxbridge::aws::{load_sdk_config, required_env as env};
use wxbridge::config::BridgeConfig;
use wxbridge::dispatch::Dispatch;
use wxbridge::handlers::callback::system_clock_ms;
use wxbridge::handlers::dispatch::DispatchHandler;
use wxbridge::queue::{SqsFifoQueue, SqsParking};
use wxbridge::store::dynamo::DynamoStore;
use wxbridge::token::Tokens;
use wxbridge::webhook::HttpWebhookSender;
use wxbridge::wechat_api::WeChatApi;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = load_sdk_config().await;
    let config = BridgeConfig::load(&aws).await?;
    config.check_partners()?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), env("TABLE_NAME")?);
    let api = WeChatApi::new(&config.wechat_api_base);
    let tokens = Tokens::new(store.clone(), api.clone());
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let parking = SqsParking::new(
        sqs.clone(),
        env("OUTBOUND_QUEUE_URL")?,
        env("OUTBOUND_DLQ_URL")?,
    );
    // Status reports not delivered at once wait on outbound.fifo, in groups of their own.
    let outbound = SqsFifoQueue::new(sqs.clone(), env("OUTBOUND_QUEUE_URL")?);
    // Replies the window no longer allows go on through the push chain (reply_fallback).
    let pushes = SqsFifoQueue::new(sqs, env("PUSH_QUEUE_URL")?);
    let dispatch = Dispatch::new(
        config,
        store,
        tokens,
        api,
        HttpWebhookSender::new(),
        outbound,
        system_clock_ms,
    )
    .with_push_queue(pushes);
    let handler = Arc::new(DispatchHandler::new(dispatch, parking));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        let deadline_ms = i64::try_from(event.context.deadline).ok();
        async move {
            let response = handler.handle(event.payload, deadline_ms).await;
            wxbridge::metrics::flush("dispatch");
            Ok::<_, Error>(response)
        }
    }))
    .await
}
