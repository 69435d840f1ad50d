//! The time, as a port: the system clock in the functions, a fixed or moving one in tests.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch, now.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// Any function that tells the time is a clock (`|| NOW_MS` in a test).
impl<F: Fn() -> i64 + Send + Sync + 'static> Clock for F {
    fn now_ms(&self) -> i64 {
        self()
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_clock_ms()
    }
}

/// A clock shared by the parts of one function.
pub type SharedClock = Arc<dyn Clock>;

/// Milliseconds since the epoch, by the machine's clock.
pub fn system_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
