//! `callback`: WeChat's message-push endpoint. Wiring only; the logic is
//! `wxbridge::handlers::callback`.

use lambda_http::{run, service_fn, Error, Request};
use std::sync::Arc;
use wxbridge::aws::{load_sdk_config, required_env};
use wxbridge::config::BridgeConfig;
use wxbridge::handlers::callback::CallbackService;
use wxbridge::queue::SqsFifoQueue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let aws = load_sdk_config().await;
    let config = BridgeConfig::load(&aws).await?;
    let queue_url = required_env("INBOUND_QUEUE_URL")?;
    let queue = SqsFifoQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
    let service = Arc::new(CallbackService::new(&config, queue));
    run(service_fn(move |request: Request| {
        let service = Arc::clone(&service);
        async move {
            let response = service.handle(request).await;
            wxbridge::metrics::flush("callback");
            Ok::<_, Error>(response)
        }
    }))
    .await
}
