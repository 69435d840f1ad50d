//! What a load run (`load`, `make load`) counts and reports: each text followed from the
//! user's push to the partner's webhook and each reply from the partner API to WeChat,
//! delivered once and in order per user, with latency percentiles, each function's
//! invocations and billed time, and the AWS requests the emulator served.

use crate::runner::InvocationReport;
use std::collections::{BTreeMap, HashMap};

/// A text of the run: `{run}:u{user}:{n}`, so that a run finds its own among others.
pub fn text(run: &str, user: usize, n: usize) -> String {
    format!("{run}:u{user}:{n}")
}

/// The user and number of every text of the run `run` in `content`, one per line: held
/// replies released together go out packed, one per line.
pub fn parse_texts(run: &str, content: &str) -> Vec<(usize, usize)> {
    content
        .lines()
        .filter_map(|line| parse_text(run, line))
        .collect()
}

/// The user and number of a text of the run `run` found inside `content` (a reply quotes
/// it after its own words, merged mode puts the sender's name before).
pub fn parse_text(run: &str, content: &str) -> Option<(usize, usize)> {
    let rest = &content[content.find(&format!("{run}:u"))? + run.len() + 2..];
    let (user, rest) = rest.split_once(':')?;
    let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((user.parse().ok()?, n.parse().ok()?))
}

/// How one copy of a push is delivered when each is sent several times (`load
/// --repeat-pushes N`), as WeChat repeats a push the callback was slow to answer: the same
/// message (`MsgId`, `CreateTime`, content) each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushCopy {
    /// Sent at once with the first copy (a retry that overtakes the first answer), else
    /// after every earlier copy was answered.
    pub with_the_first: bool,
    /// Signed afresh (a new timestamp and nonce), else the first copy's bytes again.
    pub signed_afresh: bool,
}

/// The `copies` deliveries of one push, the first one first: the first and half of the
/// others (rounded up) at once, the rest one after another; every other copy signed afresh.
pub fn push_copies(copies: usize) -> Vec<PushCopy> {
    let at_once = (copies / 2 + 1).min(copies);
    (0..copies)
        .map(|i| PushCopy {
            with_the_first: i < at_once,
            signed_afresh: i > 0 && i % 2 == 0,
        })
        .collect()
}

/// One direction of a run (user → partner, or partner → WeChat): when each text left and
/// when (and how often) it arrived.
#[derive(Debug, Default)]
pub struct Leg {
    sent_at_ms: HashMap<(usize, usize), i64>,
    /// Per user, the numbers in the order they arrived (repeats included).
    arrivals: BTreeMap<usize, Vec<usize>>,
    latencies_ms: Vec<f64>,
}

/// What a leg came to.
#[derive(Debug, Clone, PartialEq)]
pub struct LegSummary {
    pub sent: usize,
    /// Distinct texts that arrived.
    pub delivered: usize,
    /// Arrivals of a text that had arrived already.
    pub duplicates: usize,
    /// Users whose texts arrived in another order than they were sent.
    pub order_breaks: usize,
    pub percentiles_ms: Option<Percentiles>,
    pub last_arrival_ms: Option<i64>,
}

impl Leg {
    pub fn sent(&mut self, user: usize, n: usize, at_ms: i64) {
        self.sent_at_ms.insert((user, n), at_ms);
    }

    /// An arrival of a text of the run; one never sent is ignored (another run's).
    pub fn arrived(&mut self, user: usize, n: usize, at_ms: i64) {
        let Some(sent) = self.sent_at_ms.get(&(user, n)) else {
            return;
        };
        let arrivals = self.arrivals.entry(user).or_default();
        if !arrivals.contains(&n) {
            self.latencies_ms.push((at_ms - sent) as f64);
        }
        arrivals.push(n);
    }

    /// How many of `user`'s texts arrived (each once).
    pub fn arrived_from(&self, user: usize) -> usize {
        self.arrivals
            .get(&user)
            .map_or(0, |got| distinct(got).len())
    }

    pub fn has_arrived(&self, user: usize, n: usize) -> bool {
        self.arrivals.get(&user).is_some_and(|got| got.contains(&n))
    }

    pub fn delivered(&self) -> usize {
        self.latencies_ms.len()
    }

    pub fn summary(&self, last_arrival_ms: Option<i64>) -> LegSummary {
        let duplicates = self
            .arrivals
            .values()
            .map(|got| got.len() - distinct(got).len())
            .sum();
        let order_breaks = self
            .arrivals
            .values()
            .filter(|got| {
                let firsts = distinct(got);
                firsts.windows(2).any(|pair| pair[0] > pair[1])
            })
            .count();
        LegSummary {
            sent: self.sent_at_ms.len(),
            delivered: self.delivered(),
            duplicates,
            order_breaks,
            percentiles_ms: Percentiles::of(&self.latencies_ms),
            last_arrival_ms,
        }
    }
}

/// Each number at its first arrival, in arrival order.
fn distinct(arrivals: &[usize]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    arrivals
        .iter()
        .copied()
        .filter(|n| seen.insert(*n))
        .collect()
}

/// Nearest-rank percentiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(sample: &[f64]) -> Option<Self> {
        let mut sorted = sample.to_vec();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let rank =
            |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Some(Self {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// One function's invocations in a run, from the runner's reports.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionLoad {
    pub invocations: usize,
    pub cold_starts: usize,
    pub errors: usize,
    pub billed_ms: u64,
    pub memory_size_mb: u32,
    pub duration_ms: Option<Percentiles>,
    pub max_memory_used_mb: Option<u64>,
}

impl FunctionLoad {
    /// GB-seconds, Lambda's unit of compute billing.
    pub fn gb_seconds(&self) -> f64 {
        self.billed_ms as f64 / 1000.0 * f64::from(self.memory_size_mb) / 1024.0
    }
}

/// The reports of invocations that ended at or after `since_ms`, by function.
pub fn function_load(
    reports: &[InvocationReport],
    since_ms: u64,
) -> BTreeMap<String, FunctionLoad> {
    let mut by_function: BTreeMap<String, Vec<&InvocationReport>> = BTreeMap::new();
    for report in reports.iter().filter(|r| r.ended_at_ms >= since_ms) {
        by_function
            .entry(report.function.clone())
            .or_default()
            .push(report);
    }
    by_function
        .into_iter()
        .map(|(name, reports)| {
            let durations: Vec<f64> = reports.iter().map(|r| r.duration_ms).collect();
            let load = FunctionLoad {
                invocations: reports.len(),
                cold_starts: reports.iter().filter(|r| r.init_ms.is_some()).count(),
                errors: reports.iter().filter(|r| r.error.is_some()).count(),
                billed_ms: reports.iter().map(|r| r.billed_ms).sum(),
                memory_size_mb: reports.iter().map(|r| r.memory_size_mb).max().unwrap_or(0),
                duration_ms: Percentiles::of(&durations),
                max_memory_used_mb: reports.iter().filter_map(|r| r.max_memory_used_mb).max(),
            };
            (name, load)
        })
        .collect()
}

/// How many requests of each operation the emulator served between two of its counts.
pub fn requests_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0).min(*n)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_of_the_run_is_found_inside_a_reply_and_behind_a_senders_name() {
        assert_eq!(parse_text("L7", &text("L7", 3, 12)), Some((3, 12)));
        assert_eq!(parse_text("L7", "[Hotel Lotus] re L7:u3:12"), Some((3, 12)));
        assert_eq!(parse_text("L7", "L8:u3:12"), None, "another run's");
        assert_eq!(parse_text("L7", "L7:ux:1"), None);
        assert_eq!(
            parse_texts("L7", "【Hotel Lotus】re L7:u3:12\nre L7:u3:13\nL8:u3:14"),
            [(3, 12), (3, 13)],
            "packed, one per line"
        );
    }

    #[test]
    fn a_leg_counts_duplicates_order_breaks_and_latency_of_first_arrivals() {
        let mut leg = Leg::default();
        for n in 1..=3 {
            leg.sent(1, n, 1000 + n as i64);
            leg.sent(2, n, 1000 + n as i64);
        }
        leg.arrived(1, 1, 1011);
        leg.arrived(1, 2, 1022);
        leg.arrived(1, 2, 1500); // a repeat
        leg.arrived(1, 3, 1033);
        leg.arrived(2, 2, 1040); // user 2 out of order, 1 never arrives
        leg.arrived(2, 3, 1050);
        leg.arrived(9, 1, 1050); // not of this run
        let summary = leg.summary(Some(1050));
        assert_eq!(
            (
                summary.sent,
                summary.delivered,
                summary.duplicates,
                summary.order_breaks
            ),
            (6, 5, 1, 0)
        );
        leg.arrived(2, 1, 1060);
        let summary = leg.summary(Some(1060));
        assert_eq!((summary.delivered, summary.order_breaks), (6, 1));
        let p = summary.percentiles_ms.unwrap();
        assert_eq!((p.p50, p.max), (30.0, 59.0)); // of 10, 20, 30, 38, 47, 59
    }

    #[test]
    fn a_push_repeated_goes_half_at_once_then_one_by_one_half_signed_afresh() {
        assert_eq!(
            push_copies(1),
            vec![PushCopy {
                with_the_first: true,
                signed_afresh: false
            }]
        );
        let copies = push_copies(5);
        let at_once: Vec<bool> = copies.iter().map(|c| c.with_the_first).collect();
        let afresh: Vec<bool> = copies.iter().map(|c| c.signed_afresh).collect();
        assert_eq!(at_once, [true, true, true, false, false]);
        assert_eq!(afresh, [false, false, true, false, true]);
        assert_eq!(
            push_copies(2).iter().filter(|c| c.with_the_first).count(),
            2
        );
        assert_eq!(
            push_copies(4).iter().filter(|c| c.with_the_first).count(),
            3
        );
        assert!(push_copies(0).is_empty());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sample: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&sample).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&[]), None);
        assert_eq!(Percentiles::of(&[7.0]).unwrap().p99, 7.0);
    }

    #[test]
    fn function_load_sums_billing_from_the_runs_reports_only() {
        let report = |function: &str, at: u64, billed: u64, init: Option<f64>| InvocationReport {
            function: function.into(),
            request_id: format!("{function}-{at}"),
            ended_at_ms: at,
            duration_ms: billed as f64 - 0.5,
            init_ms: init,
            billed_ms: billed,
            memory_size_mb: 256,
            max_memory_used_mb: Some(9),
            error: None,
        };
        let reports = [
            report("callback", 5, 100, None), // before the run
            report("callback", 10, 3, Some(2.0)),
            report("callback", 11, 2, None),
            report("inbound", 12, 8, None),
        ];
        let load = function_load(&reports, 10);
        let callback = &load["callback"];
        assert_eq!(
            (
                callback.invocations,
                callback.cold_starts,
                callback.billed_ms
            ),
            (2, 1, 5)
        );
        assert!((callback.gb_seconds() - 0.005 * 0.25).abs() < 1e-12);
        assert_eq!(load["inbound"].invocations, 1);
    }

    #[test]
    fn requests_between_two_counts_are_the_operations_that_moved() {
        let before = BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 5)]);
        let after = BTreeMap::from([
            ("a".to_owned(), 7),
            ("b".to_owned(), 5),
            ("c".to_owned(), 1),
        ]);
        assert_eq!(
            requests_between(&before, &after),
            BTreeMap::from([("a".to_owned(), 5), ("c".to_owned(), 1)])
        );
    }
}
