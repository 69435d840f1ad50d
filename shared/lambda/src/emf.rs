//! CloudWatch metrics in the embedded metric format (EMF): the metric events core's
//! services and the handlers record ([`wxbridge_core::metrics`]) are gathered during one
//! invocation and written at its end as JSON log lines, which CloudWatch turns into metrics
//! (namespace `wxbridge`) with no API call and no latency on the request.
//!
//! A Lambda instance runs one invocation at a time, so one registry per process suffices;
//! `bootstrap` installs it as core's recorder and flushes it after every invocation.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use wxbridge_core::metrics::{self, Recorder};

pub const NAMESPACE: &str = "wxbridge";

#[derive(Debug, Clone, PartialEq)]
enum Values {
    Count(f64),
    Millis(Vec<f64>),
}

/// Metrics of one invocation, keyed by name and optional reason.
#[derive(Debug, Default)]
pub struct Metrics {
    entries: Mutex<BTreeMap<(&'static str, Option<String>), Values>>,
}

impl Metrics {
    pub fn count(&self, name: &'static str, reason: Option<&str>) {
        let mut entries = self.entries.lock().expect("metrics lock");
        let entry = entries
            .entry((name, reason.map(short_reason)))
            .or_insert(Values::Count(0.0));
        if let Values::Count(n) = entry {
            *n += 1.0;
        }
    }

    pub fn millis(&self, name: &'static str, reason: Option<&str>, value: f64) {
        let mut entries = self.entries.lock().expect("metrics lock");
        let entry = entries
            .entry((name, reason.map(short_reason)))
            .or_insert(Values::Millis(Vec::new()));
        if let Values::Millis(values) = entry {
            values.push(value);
        }
    }

    /// The EMF documents for what was gathered (one per reason value, since a dimension's
    /// value is a member of its document), emptying the registry.
    pub fn take(&self, function: &str, timestamp_ms: i64) -> Vec<Value> {
        let entries = std::mem::take(&mut *self.entries.lock().expect("metrics lock"));
        let mut documents: BTreeMap<Option<String>, Vec<(&'static str, Values)>> = BTreeMap::new();
        for ((name, reason), values) in entries {
            documents.entry(reason).or_default().push((name, values));
        }
        documents
            .into_iter()
            .map(|(reason, metrics)| {
                let mut dimensions = vec!["function"];
                let mut document = Map::new();
                document.insert("function".into(), json!(function));
                if let Some(reason) = &reason {
                    dimensions.push("reason");
                    document.insert("reason".into(), json!(reason));
                }
                let definitions: Vec<Value> = metrics
                    .iter()
                    .map(|(name, values)| {
                        let unit = match values {
                            Values::Count(_) => "Count",
                            Values::Millis(_) => "Milliseconds",
                        };
                        json!({ "Name": name, "Unit": unit })
                    })
                    .collect();
                for (name, values) in metrics {
                    let value = match values {
                        Values::Count(n) => json!(n),
                        Values::Millis(values) => json!(values),
                    };
                    document.insert(name.into(), value);
                }
                document.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [dimensions],
                            "Metrics": definitions,
                        }]
                    }),
                );
                Value::Object(document)
            })
            .collect()
    }
}

impl Recorder for Metrics {
    fn count(&self, name: &'static str, reason: Option<&str>) {
        Metrics::count(self, name, reason);
    }

    fn millis(&self, name: &'static str, reason: Option<&str>, value: f64) {
        Metrics::millis(self, name, reason, value);
    }
}

/// Reasons are dimension values: short and from a small set.
fn short_reason(reason: &str) -> String {
    reason.chars().take(64).collect()
}

static PROCESS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// Makes this process's registry the one core's services record into (once per process;
/// every `bootstrap::run_*` does it).
pub fn install() {
    metrics::install(&*PROCESS);
}

/// Writes this invocation's metrics to standard output (CloudWatch Logs reads them).
pub fn flush(function: &str) {
    let now_ms = wxbridge_core::clock::system_clock_ms();
    for document in PROCESS.take(function, now_ms) {
        println!("{document}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_timings_become_emf_documents_per_reason() {
        let metrics = Metrics::default();
        metrics.count("sent", None);
        metrics.count("sent", None);
        metrics.millis("webhook_latency", None, 12.5);
        metrics.count("failed", Some("45047"));
        metrics.count("failed", Some("40003"));
        metrics.count("failed", Some("45047"));
        let documents = metrics.take("dispatch", 1_764_150_000_000);
        assert_eq!(documents.len(), 3, "{documents:#?}");
        let plain = &documents[0];
        assert_eq!(plain["function"], "dispatch");
        assert_eq!(plain["sent"], 2.0);
        assert_eq!(plain["webhook_latency"], json!([12.5]));
        let directive = &plain["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "wxbridge");
        assert_eq!(directive["Dimensions"], json!([["function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "sent", "Unit": "Count"}, {"Name": "webhook_latency", "Unit": "Milliseconds"}])
        );
        assert_eq!(plain["_aws"]["Timestamp"], 1_764_150_000_000i64);
        let by_reason: Vec<(&str, f64)> = documents[1..]
            .iter()
            .map(|d| (d["reason"].as_str().unwrap(), d["failed"].as_f64().unwrap()))
            .collect();
        assert_eq!(by_reason, [("40003", 1.0), ("45047", 2.0)]);
        assert_eq!(
            documents[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "reason"]])
        );
        assert!(metrics.take("dispatch", 0).is_empty(), "taken once");
    }

    #[test]
    fn what_core_records_reaches_the_installed_registry() {
        metrics::count_because("emf_probe", "reason-1");
        install();
        metrics::count_because("emf_probe", "reason-1");
        metrics::millis("emf_probe_ms", 3.0);
        let documents = PROCESS.take("api", 0);
        let probe = documents
            .iter()
            .find(|d| d["reason"] == "reason-1")
            .expect("the probe's document");
        assert_eq!(
            probe["emf_probe"], 1.0,
            "recorded once installed, not before"
        );
        assert!(documents.iter().any(|d| d["emf_probe_ms"] == json!([3.0])));
    }
}
