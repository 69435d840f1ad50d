//! How a queue record ends, in one vocabulary for every SQS consumer: each service's own
//! outcome (kept for its tests and metrics) converts into a [`Settlement`], and the edge's
//! FIFO consumer acts on that alone (leaves the record, parks it, or backs it off).

/// What becomes of one record of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Finished (or nothing left to do): it leaves the queue.
    Done,
    /// Cannot succeed: to the dead-letter queue, with the reason.
    Park(String),
    /// A partner or WeChat failed: tried again after the long backoff.
    Retry(String),
    /// A blip (the bridge's own store or queue did not answer, WeChat was busy): tried
    /// again soon.
    RetrySoon(String),
}

#[cfg(test)]
mod tests {
    use super::Settlement::{self, *};
    use crate::model::PushPath;
    use crate::services::dispatch::{DispatchOutcome, Failure};
    use crate::services::inbound::Outcome;
    use crate::services::media::CopyOutcome;
    use crate::services::push::PushOutcome;

    fn settles<O: Into<Settlement>>(outcome: O) -> Settlement {
        outcome.into()
    }

    #[test]
    fn what_cannot_succeed_is_parked_and_what_is_settled_is_done() {
        let wechat = Failure::WeChat {
            errcode: 40003,
            errmsg: "invalid openid".into(),
        };
        assert_eq!(settles(DispatchOutcome::Failed(wechat)), Done);
        assert_eq!(settles(DispatchOutcome::Held), Done);
        assert_eq!(
            settles(DispatchOutcome::Failed(Failure::NoSuchMessage)),
            Park("no such message".into())
        );
        assert_eq!(
            settles(DispatchOutcome::Failed(Failure::Unstorable(
                "key too long".into()
            ))),
            Park("key too long".into())
        );
        assert_eq!(settles(Outcome::AlreadyDone), Done);
        assert_eq!(settles(Outcome::Refused("410".into())), Park("410".into()));
        assert_eq!(settles(PushOutcome::Sent(PushPath::Inbox)), Done);
        assert_eq!(settles(PushOutcome::Undeliverable("no grant".into())), Done);
        assert_eq!(
            settles(PushOutcome::Unusable("not a push".into())),
            Park("not a push".into())
        );
        assert_eq!(settles(CopyOutcome::Unavailable("expired".into())), Done);
    }

    #[test]
    fn each_kind_of_retry_is_kept() {
        assert_eq!(
            settles(DispatchOutcome::RetrySoon("busy".into())),
            RetrySoon("busy".into())
        );
        assert_eq!(
            settles(DispatchOutcome::Retry("503".into())),
            Retry("503".into())
        );
        assert_eq!(
            settles(Outcome::RetrySoon("timeout".into())),
            RetrySoon("timeout".into())
        );
        assert_eq!(settles(Outcome::Retry("503".into())), Retry("503".into()));
        assert_eq!(
            settles(PushOutcome::RetrySoon("timeout".into())),
            RetrySoon("timeout".into())
        );
        assert_eq!(
            settles(PushOutcome::Retry("503".into())),
            Retry("503".into())
        );
        assert_eq!(
            settles(CopyOutcome::Retry("bucket".into())),
            Retry("bucket".into())
        );
    }
}
