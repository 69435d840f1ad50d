//! `push`: consumes `push.fifo`. Wiring only; the logic is `wxbridge::handlers::push` and
//! `wxbridge::push`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;
use wxbridge::aws::{load_sdk_config, required_env as env};
use wxbridge::config::BridgeConfig;
use wxbridge::handlers::callback::system_clock_ms;
use wxbridge::handlers::push::PushHandler;
use wxbridge::push::Push;
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
    let parking = SqsParking::new(sqs.clone(), env("PUSH_QUEUE_URL")?, env("PUSH_DLQ_URL")?);
    // Status reports not delivered at once wait on push.fifo, in groups of their own.
    let queue = SqsFifoQueue::new(sqs, env("PUSH_QUEUE_URL")?);
    let push = Push::new(
        config,
        store,
        tokens,
        api,
        HttpWebhookSender::new(),
        queue,
        system_clock_ms,
    );
    let handler = Arc::new(PushHandler::new(push, parking));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        let deadline_ms = i64::try_from(event.context.deadline).ok();
        async move {
            let response = handler.handle(event.payload, deadline_ms).await;
            wxbridge::metrics::flush("push");
            Ok::<_, Error>(response)
        }
    }))
    .await
}
