//! `push`: consumes `push.fifo`. Wiring only; the logic is `wxbridge_core::services::push`.

use wxbridge_core::services::push::Push;
use wxbridge_lambda::bootstrap::{run_sqs, CallBudget, Deployment, Error, Needs};
use wxbridge_lambda::sqs::push::PushHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deployment = Deployment::start(Needs::Partners, CallBudget::Consuming).await?;
    // Status reports not delivered at once wait on push.fifo, in groups of their own.
    let push = Push::new(deployment.bridge()?, deployment.queue("PUSH_QUEUE_URL")?);
    let parking = deployment.parking("PUSH_QUEUE_URL", "PUSH_DLQ_URL")?;
    run_sqs("push", PushHandler::new(push, parking)).await
}
