//! Settling: every part's terminal status recorded first, then each reported to its
//! partner; report jobs retried from the queue.

use super::{Dispatch, DispatchOutcome, Failure};
use crate::model::message::lost_answer;
use crate::model::{MessageStatus, OutboundRef, StoredMessage};
use crate::ports::store::{through_hiccups, MessageStore, StoreError};
use crate::ports::Ports;
use crate::services::report::{ReportOutcome, Reports};

impl<P: Ports> Dispatch<P> {
    /// Records a terminal status for every part first — a part left `sending` would be
    /// sent again by a retry — and then reports each to its partner. A part found settled
    /// already (another attempt, or this write landing on a call that timed out) has the
    /// record retried: its redelivery reports whatever status it holds, once.
    pub(super) async fn finish_all(&self, parts: &[StoredMessage], end: End) -> DispatchOutcome {
        let mut settled = Vec::new();
        let mut unsure = false;
        for part in parts {
            // An earlier send of it may have reached the user (its answer was lost, or its
            // function stopped mid-call): not sent now, it is `uncertain`, not unsent.
            let end = match end {
                End::WindowClosed | End::Failed(_) if may_have_reached_the_user(part) => {
                    &End::Uncertain
                }
                _ => &end,
            };
            let (status, reason) = (end.status(), end.reason());
            match self.settle_status(part, status, reason.as_deref()).await {
                Ok(true) => settled.push(StoredMessage {
                    status,
                    status_reason: reason,
                    ..part.clone()
                }),
                Ok(false) => unsure = true,
                Err(error) if error.is_transient() => {
                    return DispatchOutcome::RetrySoon(error.to_string())
                }
                Err(error) => return DispatchOutcome::Retry(error.to_string()),
            }
        }
        let mut unreported = unsure.then(|| "a part was settled elsewhere: report it".into());
        for message in &settled {
            if let Err(error) = self.reports().report(message).await {
                unreported = Some(error.to_string());
            }
        }
        // The partner's webhook failing is queued as a report job: what is left is a queue
        // that did not answer, or a part settled by another invocation.
        if let Some(reason) = unreported {
            return DispatchOutcome::RetrySoon(reason);
        }
        if settled.is_empty() {
            return DispatchOutcome::AlreadyDone;
        }
        end.outcome()
    }

    /// Every part failed for good.
    pub(super) async fn fail_all(
        &self,
        parts: &[StoredMessage],
        failure: Failure,
    ) -> DispatchOutcome {
        self.finish_all(parts, End::Failed(failure)).await
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

/// Whether an earlier attempt may have delivered `message`: a send whose answer was lost, or
/// one its function was stopped in.
pub(super) fn may_have_reached_the_user(message: &StoredMessage) -> bool {
    message.status == MessageStatus::Sending
        || message.status_reason.as_deref() == Some(lost_answer::RETRYING)
}

/// How a reply ends: its terminal status, and the reason the partner reads with it.
pub(super) enum End {
    /// `resent`: sent again after WeChat's answer to an earlier send was lost.
    Sent {
        resent: bool,
    },
    WindowClosed,
    Failed(Failure),
    /// WeChat's answer was lost, and the setting says not to send again.
    Uncertain,
}

impl End {
    fn status(&self) -> MessageStatus {
        match self {
            End::Sent { .. } => MessageStatus::Sent,
            End::WindowClosed => MessageStatus::WindowClosed,
            End::Failed(_) => MessageStatus::Failed,
            End::Uncertain => MessageStatus::Uncertain,
        }
    }

    fn reason(&self) -> Option<String> {
        match self {
            End::Sent { resent: true } => Some(lost_answer::RESENT.into()),
            End::Sent { resent: false } | End::WindowClosed => None,
            End::Failed(failure) => Some(failure.to_string()),
            End::Uncertain => Some(lost_answer::UNCERTAIN.into()),
        }
    }

    fn outcome(self) -> DispatchOutcome {
        match self {
            End::Sent { .. } => DispatchOutcome::Sent,
            End::WindowClosed => DispatchOutcome::WindowClosed,
            End::Failed(failure) => DispatchOutcome::Failed(failure),
            End::Uncertain => DispatchOutcome::Uncertain,
        }
    }
}
