//! `inbound`: consumes `inbound.fifo`. Wiring only; the logic is
//! `wxbridge_core::services::inbound`.

use wxbridge_core::services::inbound::Inbound;
use wxbridge_lambda::bootstrap::{run_sqs, CallBudget, Deployment, Error, Needs};
use wxbridge_lambda::sqs::inbound::{InboundHandler, DEFAULT_MAX_RECEIVES};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deployment = Deployment::start(Needs::Partners, CallBudget::Consuming).await?;
    // Held replies the user's next message releases go to dispatch through outbound.fifo.
    // Users' images are copied into the bucket by `media`, through media.fifo.
    let inbound = Inbound::new(
        deployment.bridge()?,
        deployment.queue("OUTBOUND_QUEUE_URL")?,
    )
    .with_media_queue(deployment.queue("MEDIA_QUEUE_URL")?);
    let parking = deployment.parking("INBOUND_QUEUE_URL", "INBOUND_DLQ_URL")?;
    let max_receives = match std::env::var("INBOUND_MAX_RECEIVES") {
        Ok(value) => value
            .parse()
            .map_err(|_| "INBOUND_MAX_RECEIVES is not a number")?,
        Err(_) => DEFAULT_MAX_RECEIVES,
    };
    let handler = InboundHandler::new(inbound, parking).with_max_receives(max_receives);
    run_sqs("inbound", handler).await
}
