//! Lambda's `REPORT` line for each invocation: how long it ran, what it is billed, its
//! instance's peak memory, and the init of a cold start. The runner logs it as Lambda does
//! and, when asked (`--reports FILE`), appends it as a JSON line for `make load`.
//!
//! Billing follows Lambda's rule for a custom runtime (`provided.al2023`): the duration,
//! plus the init phase on a cold start, rounded up to the millisecond.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// One invocation, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationReport {
    pub function: String,
    pub request_id: String,
    /// When the invocation ended (ms since the epoch).
    pub ended_at_ms: u64,
    pub duration_ms: f64,
    /// The init phase, on the instance's first invocation only.
    pub init_ms: Option<f64>,
    pub billed_ms: u64,
    pub memory_size_mb: u32,
    /// The instance's peak resident memory so far (`VmHWM`), where the OS tells it.
    pub max_memory_used_mb: Option<u64>,
    /// The function error's type, when the invocation failed.
    pub error: Option<String>,
}

impl InvocationReport {
    pub(crate) fn new(
        function: &str,
        request_id: &str,
        duration: Duration,
        init: Option<Duration>,
        memory_size_mb: u32,
        pid: u32,
    ) -> Self {
        let billed = duration + init.unwrap_or_default();
        Self {
            function: function.to_owned(),
            request_id: request_id.to_owned(),
            ended_at_ms: super::clock::epoch_ms(std::time::SystemTime::now()),
            duration_ms: duration.as_secs_f64() * 1e3,
            init_ms: init.map(|init| init.as_secs_f64() * 1e3),
            billed_ms: billed.as_nanos().div_ceil(1_000_000).max(1) as u64,
            memory_size_mb,
            max_memory_used_mb: peak_memory_mb(pid),
            error: None,
        }
    }

    /// Lambda's own words for it.
    pub fn line(&self) -> String {
        let mut line = format!(
            "REPORT RequestId: {} Duration: {:.2} ms Billed Duration: {} ms Memory Size: {} MB",
            self.request_id, self.duration_ms, self.billed_ms, self.memory_size_mb
        );
        if let Some(used) = self.max_memory_used_mb {
            line.push_str(&format!(" Max Memory Used: {used} MB"));
        }
        if let Some(init) = self.init_ms {
            line.push_str(&format!(" Init Duration: {init:.2} ms"));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!(" Status: error ({error})"));
        }
        line
    }
}

/// The reports file, one JSON line per invocation.
#[derive(Debug)]
pub(crate) struct ReportFile(Mutex<std::fs::File>);

impl ReportFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self(Mutex::new(file)))
    }

    pub fn append(&self, report: &InvocationReport) {
        let line = serde_json::to_string(report).expect("a report serializes");
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = writeln!(file, "{line}") {
            eprintln!("lambda-runner: cannot write a report: {error}");
        }
    }
}

/// Reads every report of a reports file (lines that do not parse are skipped).
pub fn read_reports(path: &Path) -> Vec<InvocationReport> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// `VmHWM` of a live process, in MB (rounded up, as Lambda's figure is).
fn peak_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_adds_a_cold_starts_init_and_rounds_up_to_the_millisecond() {
        let pid = std::process::id();
        let warm = InvocationReport::new("f", "r1", Duration::from_micros(2_100), None, 128, pid);
        assert_eq!(warm.billed_ms, 3);
        assert!(warm.line().starts_with(
            "REPORT RequestId: r1 Duration: 2.10 ms Billed Duration: 3 ms Memory Size: 128 MB"
        ));
        assert!(!warm.line().contains("Init Duration"));
        assert!(warm.max_memory_used_mb.is_some_and(|mb| mb > 0));

        let cold = InvocationReport::new(
            "f",
            "r2",
            Duration::from_micros(2_100),
            Some(Duration::from_micros(7_950)),
            128,
            pid,
        );
        assert_eq!(cold.billed_ms, 11);
        assert!(
            cold.line().ends_with("Init Duration: 7.95 ms"),
            "{}",
            cold.line()
        );

        let instant = InvocationReport::new("f", "r3", Duration::ZERO, None, 128, pid);
        assert_eq!(instant.billed_ms, 1, "Lambda bills at least a millisecond");
    }
}
