//! `dispatch`: consumes `outbound.fifo`. Wiring only; the logic is
//! `wxbridge_core::services::dispatch`.

use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_lambda::bootstrap::{run_sqs, CallBudget, Deployment, Error, Needs};
use wxbridge_lambda::sqs::dispatch::DispatchHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deployment = Deployment::start(Needs::Partners, CallBudget::Consuming).await?;
    // Status reports not delivered at once wait on outbound.fifo, in groups of their own;
    // replies the window no longer allows go on through the push chain (reply_fallback).
    let dispatch = Dispatch::new(
        deployment.bridge()?,
        deployment.images()?,
        deployment.queue("OUTBOUND_QUEUE_URL")?,
    )
    .with_push_queue(deployment.queue("PUSH_QUEUE_URL")?)
    // Sent images are copied into the bucket by `media`, through media.fifo.
    .with_media_queue(deployment.queue("MEDIA_QUEUE_URL")?);
    let parking = deployment.parking("OUTBOUND_QUEUE_URL", "OUTBOUND_DLQ_URL")?;
    run_sqs("dispatch", DispatchHandler::new(dispatch, parking)).await
}
