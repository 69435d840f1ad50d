//! `lifecycle`: on its schedule (every minute), closes the conversations nobody wrote in for
//! their partner's idle timeout. Wiring only; the logic is `wxbridge_core::services::idle`.

use std::sync::Arc;
use wxbridge_core::services::idle;
use wxbridge_lambda::bootstrap::{run_scheduled, CallBudget, Deployment, Error, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deployment = Deployment::start(Needs::Partners, CallBudget::Consuming).await?;
    let bridge = Arc::new(deployment.bridge()?);
    run_scheduled("lifecycle", move || {
        let bridge = Arc::clone(&bridge);
        async move {
            let swept = idle::sweep(&bridge).await?;
            tracing::info!(
                closed = swept.closed,
                cleared = swept.cleared,
                left = swept.left,
                "idle conversations swept"
            );
            Ok(())
        }
    })
    .await
}
