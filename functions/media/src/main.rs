//! `media`: consumes `media.fifo`, copying image messages from WeChat into the bucket.
//! Wiring only; the logic is `wxbridge_core::services::media`.

use wxbridge_core::services::media::MediaKeeper;
use wxbridge_lambda::bootstrap::{run_sqs, CallBudget, Deployment, Error, Needs};
use wxbridge_lambda::sqs::media::MediaHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deployment = Deployment::start(Needs::Channels, CallBudget::Consuming).await?;
    let keeper = MediaKeeper::new(deployment.bridge()?, deployment.archive()?);
    let parking = deployment.parking("MEDIA_QUEUE_URL", "MEDIA_DLQ_URL")?;
    run_sqs("media", MediaHandler::new(keeper, parking)).await
}
