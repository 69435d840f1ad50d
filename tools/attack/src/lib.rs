//! An adversarial run against a running local stack (`make attack`): what an outsider
//! sends to the callback, what an unfriendly partner sends to the API, and the run's own
//! honest traffic followed to its end. The figures: inputs tried, refused as expected,
//! wrongly accepted, other answers, 5xx, no answer; messages lost or duplicated; panics in
//! the stack's logs.

pub mod api;
pub mod callback;
pub mod effects;
pub mod report;
pub mod target;

use report::Report;
use target::Target;

/// Every group, in order: the honest traffic first (the attacks use its users), its end
/// checked last.
pub async fn run(target: &Target) -> Result<Report, String> {
    let mut report = Report::default();
    let mut control = effects::Control::setup(target, &mut report).await?;
    callback::attack(target, &mut report).await;
    api::attack(target, &mut control, &mut report).await;
    control.check(target, &mut report).await;
    Ok(report)
}
