//! Settling: every part's terminal status recorded first, then each reported to its
//! partner; report jobs retried from the queue.

use super::{Dispatch, DispatchOutcome, Failure};
use crate::model::{MessageStatus, OutboundRef, StoredMessage};
use crate::ports::store::{through_hiccups, Store, StoreError};
use crate::ports::Ports;
use crate::services::report::{ReportOutcome, Reports};

impl<P: Ports> Dispatch<P> {
    /// Records a terminal status for every part first — a part left `sending` would be
    /// sent again by a retry — and then reports each to its partner. A part found settled
    /// already (another attempt, or this write landing on a call that timed out) has the
    /// record retried: its redelivery reports whatever status it holds, once.
    pub(super) async fn finish_all(
        &self,
        parts: &[StoredMessage],
        status: MessageStatus,
        failure: Option<Failure>,
    ) -> DispatchOutcome {
        use MessageStatus::*;
        let reason = failure.as_ref().map(Failure::to_string);
        let mut settled = Vec::new();
        let mut unsure = false;
        for part in parts {
            match self.settle_status(part, status, reason.as_deref()).await {
                Ok(true) => settled.push(StoredMessage {
                    status,
                    status_reason: reason.clone(),
                    ..part.clone()
                }),
                Ok(false) => unsure = true,
                Err(error) => return DispatchOutcome::Retry(error.to_string()),
            }
        }
        let mut unreported = unsure.then(|| "a part was settled elsewhere: report it".into());
        for message in &settled {
            if let Err(error) = self.reports().report(message).await {
                unreported = Some(error.to_string());
            }
        }
        if let Some(reason) = unreported {
            return DispatchOutcome::Retry(reason);
        }
        match (settled.is_empty(), status) {
            (true, _) => DispatchOutcome::AlreadyDone,
            (_, Sent) => DispatchOutcome::Sent,
            (_, WindowClosed) => DispatchOutcome::WindowClosed,
            _ => DispatchOutcome::Failed(failure.unwrap_or(Failure::Refused(String::new()))),
        }
    }

    /// Every part failed for good.
    pub(super) async fn fail_all(
        &self,
        parts: &[StoredMessage],
        failure: Failure,
    ) -> DispatchOutcome {
        self.finish_all(parts, MessageStatus::Failed, Some(failure))
            .await
    }

    /// The terminal status, through a store hiccup (the send is done; a status not written
    /// would send it again).
    async fn settle_status(
        &self,
        message: &StoredMessage,
        status: MessageStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        use MessageStatus::*;
        through_hiccups(|| {
            self.bridge
                .store
                .transition(message, &[Queued, Held, Sending], status, reason)
        })
        .await
    }

    /// The reporting parts of this function: report jobs wait on `outbound.fifo`.
    pub(super) fn reports(&self) -> Reports<'_, P> {
        Reports {
            bridge: &self.bridge,
            queue: &self.outbound,
        }
    }

    /// A report job: tells the partner the message's status unless it was told already.
    pub(super) async fn try_report(
        &self,
        target: &OutboundRef,
    ) -> Result<DispatchOutcome, StoreError> {
        Ok(match self.reports().try_report(target).await? {
            ReportOutcome::Reported => DispatchOutcome::Reported,
            ReportOutcome::AlreadyDone => DispatchOutcome::AlreadyDone,
            ReportOutcome::NoSuchMessage => DispatchOutcome::Failed(Failure::NoSuchMessage),
            ReportOutcome::Retry(reason) => DispatchOutcome::Retry(reason),
        })
    }
}
