//! The few clock readings the runner hands functions: epoch milliseconds (deadlines,
//! `timeEpoch`), a log stream's date and a function URL event's `time`, in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch (0 for a clock set before it).
pub(crate) fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

/// `time` in UTC (days to a proleptic Gregorian date: Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_date(time: SystemTime) -> CivilTime {
    let secs = epoch_ms(time) / 1000;
    let (days, of_day) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    CivilTime {
        year,
        month,
        day,
        hour: of_day / 3_600,
        minute: of_day % 3_600 / 60,
        second: of_day % 60,
    }
}

/// `04/Mar/2020:19:03:58 +0000`: the `time` of a function URL event (the common log
/// format's).
pub(crate) fn common_log_time(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = civil_date(time);
    let month = MONTHS
        .get(t.month.saturating_sub(1) as usize)
        .unwrap_or(&"Jan");
    format!(
        "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
        t.day, t.year, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(
            common_log_time(at(1_583_348_638)),
            "04/Mar/2020:19:03:58 +0000"
        );
        assert_eq!(
            common_log_time(at(951_782_400)),
            "29/Feb/2000:00:00:00 +0000"
        );
        assert_eq!(
            common_log_time(at(1_709_251_199)),
            "29/Feb/2024:23:59:59 +0000"
        );
        assert_eq!(common_log_time(at(0)), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(epoch_ms(at(2) + Duration::from_millis(5)), 2_005);
    }
}
