//! Stopping a service mid-way, as a Lambda instance is killed: the memory adapters pass a
//! [`stop_point`] around each call that leaves the function (a WeChat send, a webhook, an
//! enqueue), and [`run_for`] polls a service's future a bounded number of times and drops
//! it where it stands. Deterministic: no clock, no thread.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Pending once (waking itself at once), then ready: where a function may be stopped.
pub async fn stop_point() {
    let mut paused = false;
    std::future::poll_fn(|cx| {
        if paused {
            Poll::Ready(())
        } else {
            paused = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Polls `future` at most `polls` times: its output if it finished, `None` if it was
/// stopped (dropped at the stop point it had reached).
pub fn run_for<F: Future>(future: F, polls: usize) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unheard));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    (0..polls).find_map(|_| match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    })
}

/// The waker of [`run_for`]: it polls again anyway.
struct Unheard;

impl Wake for Unheard {
    fn wake(self: Arc<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_stops_at_the_stop_point_it_reached() {
        let steps = std::sync::Mutex::new(Vec::new());
        let work = || async {
            steps.lock().unwrap().push(1);
            stop_point().await;
            steps.lock().unwrap().push(2);
            stop_point().await;
            steps.lock().unwrap().push(3);
            "done"
        };
        assert_eq!(run_for(work(), 2), None);
        assert_eq!(*steps.lock().unwrap(), [1, 2]);
        steps.lock().unwrap().clear();
        assert_eq!(run_for(work(), 3), Some("done"));
        assert_eq!(*steps.lock().unwrap(), [1, 2, 3]);
    }
}
