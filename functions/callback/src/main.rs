//! `callback`: WeChat's message-push endpoint. Wiring only; the logic is
//! `wxbridge_lambda::callback` on the protocol crate.

use std::sync::Arc;
use wxbridge_lambda::bootstrap::{run_http, CallBudget, Deployment, Error, Needs};
use wxbridge_lambda::callback::CallbackService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deployment = Deployment::start(Needs::Channels, CallBudget::Answering).await?;
    let queue = deployment.queue("INBOUND_QUEUE_URL")?;
    let service = Arc::new(CallbackService::new(&deployment.config, queue));
    run_http("callback", move |request| {
        let service = Arc::clone(&service);
        async move { service.handle(request).await }
    })
    .await
}
