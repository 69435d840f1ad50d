//! What each input was expected to get, what it got, and the figures over all of them.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The answer an input should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refused with this status (and this `error` code, when the contract names one).
    Refused(u16, Option<&'static str>),
    /// Taken, with this status.
    Accepted(u16),
}

/// How an answer compares with what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    AsExpected,
    /// Should have been refused and was taken.
    WronglyAccepted,
    /// Should have been taken and was refused, or refused with another status or code.
    OtherAnswer,
    ServerError,
    /// No answer at all.
    NoAnswer,
}

/// One input tried.
#[derive(Debug, Clone)]
pub struct Tried {
    pub group: &'static str,
    pub name: String,
    pub expect: Expect,
    /// `None`: no answer.
    pub status: Option<u16>,
    pub code: Option<String>,
}

impl Tried {
    pub fn verdict(&self) -> Verdict {
        let Some(status) = self.status else {
            return Verdict::NoAnswer;
        };
        if status >= 500 {
            return Verdict::ServerError;
        }
        match self.expect {
            Expect::Refused(_, _) if (200..300).contains(&status) => Verdict::WronglyAccepted,
            Expect::Refused(want, code)
                if want == status && code.is_none_or(|c| self.code.as_deref() == Some(c)) =>
            {
                Verdict::AsExpected
            }
            Expect::Accepted(want) if want == status => Verdict::AsExpected,
            _ => Verdict::OtherAnswer,
        }
    }
}

/// What became of the messages that were taken: each should arrive exactly once.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    /// Messages checked end to end.
    pub checked: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    /// `panicked at` lines in the stack's logs.
    pub panics: usize,
}

/// Everything tried, and what became of it.
#[derive(Debug, Default)]
pub struct Report {
    pub tried: Vec<Tried>,
    pub effects: Effects,
}

impl Report {
    pub fn add(&mut self, tried: Tried) {
        self.tried.push(tried);
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.tried.iter().filter(|t| t.verdict() == verdict).count()
    }

    /// Nothing wrongly accepted, no 5xx, no silence, no panic, nothing lost or doubled.
    pub fn clean(&self) -> bool {
        self.tried.iter().all(|t| {
            !matches!(
                t.verdict(),
                Verdict::WronglyAccepted | Verdict::ServerError | Verdict::NoAnswer
            )
        }) && self.effects.lost.is_empty()
            && self.effects.duplicated.is_empty()
            && self.effects.panics == 0
    }

    /// The figures, a line per group, and every input that did not get what it should.
    pub fn render(&self) -> String {
        let mut groups: BTreeMap<&str, [usize; 6]> = BTreeMap::new();
        for tried in &self.tried {
            let row = groups.entry(tried.group).or_default();
            row[0] += 1;
            row[1 + tried.verdict() as usize] += 1;
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>11} {:>9} {:>6} {:>4} {:>9}",
            "group", "tried", "as expected", "wrongly✓", "other", "5xx", "no answer"
        );
        for (group, row) in &groups {
            let _ = writeln!(
                out,
                "{:<22} {:>5} {:>11} {:>9} {:>6} {:>4} {:>9}",
                group, row[0], row[1], row[2], row[3], row[4], row[5]
            );
        }
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>11} {:>9} {:>6} {:>4} {:>9}",
            "all",
            self.tried.len(),
            self.count(Verdict::AsExpected),
            self.count(Verdict::WronglyAccepted),
            self.count(Verdict::OtherAnswer),
            self.count(Verdict::ServerError),
            self.count(Verdict::NoAnswer)
        );
        let effects = &self.effects;
        let _ = writeln!(
            out,
            "\nmessages followed end to end: {}; lost: {}; duplicated: {}; panics in the logs: {}",
            effects.checked,
            effects.lost.len(),
            effects.duplicated.len(),
            effects.panics
        );
        for tried in self
            .tried
            .iter()
            .filter(|t| t.verdict() != Verdict::AsExpected)
        {
            let _ = writeln!(
                out,
                "  {:?} [{}] {}: expected {:?}, got {} {}",
                tried.verdict(),
                tried.group,
                tried.name,
                tried.expect,
                tried
                    .status
                    .map_or("no answer".to_owned(), |s| s.to_string()),
                tried.code.as_deref().unwrap_or("")
            );
        }
        for lost in &effects.lost {
            let _ = writeln!(out, "  lost: {lost}");
        }
        for duplicated in &effects.duplicated {
            let _ = writeln!(out, "  duplicated: {duplicated}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(expect: Expect, status: Option<u16>, code: Option<&str>) -> Verdict {
        Tried {
            group: "g",
            name: "n".into(),
            expect,
            status,
            code: code.map(str::to_owned),
        }
        .verdict()
    }

    #[test]
    fn verdicts_compare_status_and_code() {
        let refused = Expect::Refused(401, Some("bad_signature"));
        assert_eq!(
            tried(refused, Some(401), Some("bad_signature")),
            Verdict::AsExpected
        );
        assert_eq!(
            tried(refused, Some(401), Some("stale_timestamp")),
            Verdict::OtherAnswer
        );
        assert_eq!(tried(refused, Some(200), None), Verdict::WronglyAccepted);
        assert_eq!(tried(refused, Some(503), None), Verdict::ServerError);
        assert_eq!(tried(refused, None, None), Verdict::NoAnswer);
        assert_eq!(
            tried(Expect::Refused(413, None), Some(413), Some("x")),
            Verdict::AsExpected
        );
        assert_eq!(
            tried(Expect::Accepted(202), Some(202), None),
            Verdict::AsExpected
        );
        assert_eq!(
            tried(Expect::Accepted(202), Some(400), None),
            Verdict::OtherAnswer
        );
    }

    #[test]
    fn a_report_is_clean_only_without_wrong_acceptance_errors_losses_or_panics() {
        let mut report = Report::default();
        report.add(Tried {
            group: "g",
            name: "ok".into(),
            expect: Expect::Accepted(200),
            status: Some(200),
            code: None,
        });
        assert!(report.clean());
        report.effects.duplicated.push("m".into());
        assert!(!report.clean());
        report.effects.duplicated.clear();
        report.add(Tried {
            group: "g",
            name: "forged".into(),
            expect: Expect::Refused(401, None),
            status: Some(200),
            code: None,
        });
        assert!(!report.clean());
        assert!(report.render().contains("WronglyAccepted [g] forged"));
    }
}
