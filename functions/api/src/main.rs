//! `api`: the partners' HTTP API under `/v1`. Wiring only; the logic is
//! `wxbridge::handlers::api` and `wxbridge::partner_api`.

use lambda_http::{run, service_fn, Error, Request};
use std::sync::Arc;
use wxbridge::aws::{load_sdk_config, required_env as env};
use wxbridge::config::BridgeConfig;
use wxbridge::handlers::api::ApiService;
use wxbridge::handlers::callback::system_clock_ms;
use wxbridge::partner_api::PartnerApi;
use wxbridge::queue::SqsFifoQueue;
use wxbridge::store::dynamo::DynamoStore;
use wxbridge::token::Tokens;
use wxbridge::wechat_api::WeChatApi;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let aws = load_sdk_config().await;
    let config = BridgeConfig::load(&aws).await?;
    config.check_partners()?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), env("TABLE_NAME")?);
    let wechat = WeChatApi::new(&config.wechat_api_base);
    let tokens = Tokens::new(store.clone(), wechat.clone());
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = SqsFifoQueue::new(sqs.clone(), env("OUTBOUND_QUEUE_URL")?);
    let pushes = SqsFifoQueue::new(sqs, env("PUSH_QUEUE_URL")?);
    let api = PartnerApi::new(
        config,
        store.clone(),
        tokens,
        wechat,
        queue,
        system_clock_ms,
    )
    .with_push_queue(pushes);
    let service = Arc::new(ApiService::new(api, store));
    run(service_fn(move |request: Request| {
        let service = Arc::clone(&service);
        async move {
            let response = service.handle(request).await;
            wxbridge::metrics::flush("api");
            Ok::<_, Error>(response)
        }
    }))
    .await
}
