//! `api`: the partners' HTTP API under `/v1`. Wiring only; the routes are
//! `wxbridge_lambda::api` and the logic `wxbridge_core::services::partner`.

use std::sync::Arc;
use wxbridge_core::services::partner::PartnerApi;
use wxbridge_lambda::api::{answer, router, ApiState};
use wxbridge_lambda::bootstrap::{run_http, CallBudget, Deployment, Error, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deployment = Deployment::start(Needs::Partners, CallBudget::Answering).await?;
    let api = PartnerApi::new(
        deployment.bridge()?,
        deployment.queue("OUTBOUND_QUEUE_URL")?,
    )
    .with_push_queue(deployment.queue("PUSH_QUEUE_URL")?)
    .with_archive(deployment.archive()?);
    let nonces = deployment.table()?.nonces();
    let router = router(Arc::new(ApiState { api, nonces }));
    run_http("api", move |request| {
        let router = router.clone();
        async move { answer(&router, request).await }
    })
    .await
}
