//! Access tokens as WeChat issues and checks them (protocol notes §4), written for the fake
//! on its own. Both token APIs are served: `cgi-bin/stable_token` (§4.2) and the classic
//! `cgi-bin/token` (§4.1). Credentials (AppID, secret, `grant_type`) are checked by the
//! caller; this module keeps the tokens, their lifetimes and the call quotas.
//!
//! Quota periods. **Open point**: the docs say "per day" and "per minute" without a time
//! zone or a rolling window; the fake counts per calendar day in China Standard Time
//! (UTC+8, where WeChat's quotas are reset) and per calendar minute.

use crate::rules::{errcode, WxError};
use std::collections::HashMap;

/// A token lives 7200 s (protocol notes §4.1, §4.2: `expires_in` 7200).
pub const TOKEN_LIFETIME_MS: i64 = 7_200_000;
/// A stable token is renewed 5 minutes before it expires, so a normal-mode answer always has
/// `expires_in` ≥ 300 (protocol notes §4.2).
pub const STABLE_RENEW_BEFORE_MS: i64 = 300_000;
/// A classic token keeps working 5 minutes after a newer one is fetched (protocol notes
/// §4.1).
pub const CLASSIC_OVERLAP_MS: i64 = 300_000;
/// Forced refreshes of the stable token: at least 30 s apart (protocol notes §4.2).
pub const FORCE_MIN_INTERVAL_MS: i64 = 30_000;
/// … and at most 20 a day (protocol notes §4.2).
pub const FORCE_PER_DAY: u32 = 20;
/// `cgi-bin/token`: 2000 calls a day, then 45009 (protocol notes §4.1, §3.5).
pub const CLASSIC_PER_DAY: u32 = 2000;
/// `cgi-bin/stable_token`: 10,000 calls a minute (protocol notes §4.2), then 45011.
pub const STABLE_PER_MINUTE: u32 = 10_000;
/// … and 500,000 a day (protocol notes §4.2), then 45009.
pub const STABLE_PER_DAY: u32 = 500_000;

const DAY_MS: i64 = 86_400_000;
const UTC_PLUS_8_MS: i64 = 8 * 3_600_000;

/// The day number of `now_ms` in China Standard Time.
pub fn quota_day(now_ms: i64) -> i64 {
    (now_ms + UTC_PLUS_8_MS).div_euclid(DAY_MS)
}

fn quota_minute(now_ms: i64) -> i64 {
    now_ms.div_euclid(60_000)
}

/// An answered token request: `{"access_token", "expires_in"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    pub expires_in_s: i64,
}

#[derive(Debug)]
struct Token {
    appid: String,
    expires_at_ms: i64,
    /// From this instant the token answers 40001 "not latest": a newer one replaced it.
    superseded_at_ms: Option<i64>,
}

/// Calls counted in one period (a day or a minute); a new period starts from zero.
#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    period: i64,
    count: u32,
}

impl Counter {
    fn count(&self, period: i64) -> u32 {
        if self.period == period {
            self.count
        } else {
            0
        }
    }

    fn add(&mut self, period: i64) {
        if self.period != period {
            *self = Self { period, count: 0 };
        }
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Usage {
    forced_at_ms: Option<i64>,
    forced: Counter,
    classic: Counter,
    stable_day: Counter,
    stable_minute: Counter,
}

/// Every token issued, the current one of each API per app, and the quotas used.
#[derive(Debug, Default)]
pub struct Tokens {
    tokens: HashMap<String, Token>,
    stable: HashMap<String, String>,
    classic: HashMap<String, String>,
    usage: HashMap<String, Usage>,
}

impl Tokens {
    /// The app a token belongs to, or WeChat's answer (protocol notes §3.5, §4):
    /// 41001 without one; 40001 for one never issued or replaced ("not latest"); 42001 for
    /// one past its lifetime.
    ///
    /// **Open point**: the fake never answers 40014 ("invalid access_token") by itself; an
    /// injection can. A token both replaced and past its lifetime answers 40001.
    pub fn check(&self, token: Option<&str>, now_ms: i64) -> Result<String, WxError> {
        let token = token.ok_or(errcode::TOKEN_MISSING)?;
        let found = self.tokens.get(token).ok_or(errcode::INVALID_CREDENTIAL)?;
        if found.superseded_at_ms.is_some_and(|at| at <= now_ms) {
            return Err(errcode::INVALID_CREDENTIAL);
        }
        if found.expires_at_ms <= now_ms {
            return Err(errcode::TOKEN_EXPIRED);
        }
        Ok(found.appid.clone())
    }

    /// `cgi-bin/stable_token` for an app whose credentials were checked (protocol notes
    /// §4.2):
    /// - normal mode returns the same token while it has at least 5 minutes left; then a
    ///   new one, the old one working on until its own end (the 5-minute overlap);
    /// - `force_refresh` replaces the token at once (the old one answers 40001), at most
    ///   once per 30 s and 20 times a day. **Open point**: the docs say that past these
    ///   limits "no refresh happens", not that the call fails; the fake answers as in normal
    ///   mode, and such a call does not count toward the 20;
    /// - 10,000 calls a minute (45011) and 500,000 a day (45009), forced or not;
    /// - independent of `cgi-bin/token`: neither API's tokens void the other's.
    pub fn stable(&mut self, appid: &str, force: bool, now_ms: i64) -> Result<Issued, WxError> {
        let usage = self.usage.entry(appid.to_owned()).or_default();
        let (day, minute) = (quota_day(now_ms), quota_minute(now_ms));
        if usage.stable_minute.count(minute) >= STABLE_PER_MINUTE {
            return Err(errcode::MINUTE_QUOTA);
        }
        if usage.stable_day.count(day) >= STABLE_PER_DAY {
            return Err(errcode::DAILY_QUOTA);
        }
        usage.stable_minute.add(minute);
        usage.stable_day.add(day);
        let forced = force
            && usage
                .forced_at_ms
                .is_none_or(|at| now_ms - at >= FORCE_MIN_INTERVAL_MS)
            && usage.forced.count(day) < FORCE_PER_DAY;
        if forced {
            usage.forced_at_ms = Some(now_ms);
            usage.forced.add(day);
        }
        let current = self.stable.get(appid).cloned();
        if forced {
            if let Some(old) = current.as_ref().and_then(|t| self.tokens.get_mut(t)) {
                old.superseded_at_ms = Some(now_ms);
            }
        } else if let Some(token) = current {
            let live = &self.tokens[&token];
            let fresh = live.superseded_at_ms.is_none()
                && live.expires_at_ms - now_ms >= STABLE_RENEW_BEFORE_MS;
            if fresh {
                return Ok(Issued {
                    access_token: token,
                    expires_in_s: (live.expires_at_ms - now_ms) / 1000,
                });
            }
        }
        let issued = self.issue(appid, now_ms);
        self.stable
            .insert(appid.to_owned(), issued.access_token.clone());
        Ok(issued)
    }

    /// `cgi-bin/token` for an app whose credentials were checked (protocol notes §4.1): a
    /// new token on every call; the previous classic token keeps working 5 more minutes,
    /// then answers 40001 "not latest"; 2000 calls a day, then 45009.
    pub fn classic(&mut self, appid: &str, now_ms: i64) -> Result<Issued, WxError> {
        let usage = self.usage.entry(appid.to_owned()).or_default();
        let day = quota_day(now_ms);
        if usage.classic.count(day) >= CLASSIC_PER_DAY {
            return Err(errcode::DAILY_QUOTA);
        }
        usage.classic.add(day);
        if let Some(previous) = self.classic.get(appid).and_then(|t| self.tokens.get_mut(t)) {
            let until = now_ms + CLASSIC_OVERLAP_MS;
            previous.superseded_at_ms =
                Some(previous.superseded_at_ms.map_or(until, |at| at.min(until)));
        }
        let issued = self.issue(appid, now_ms);
        self.classic
            .insert(appid.to_owned(), issued.access_token.clone());
        Ok(issued)
    }

    /// Every token of `appid` reaches its end now (42001 from now on).
    pub fn expire(&mut self, appid: &str, now_ms: i64) {
        for token in self.tokens.values_mut().filter(|t| t.appid == appid) {
            token.expires_at_ms = token.expires_at_ms.min(now_ms);
        }
    }

    fn issue(&mut self, appid: &str, now_ms: i64) -> Issued {
        let access_token = format!("fake-{}", uuid::Uuid::new_v4().simple());
        self.tokens.insert(
            access_token.clone(),
            Token {
                appid: appid.to_owned(),
                expires_at_ms: now_ms + TOKEN_LIFETIME_MS,
                superseded_at_ms: None,
            },
        );
        Issued {
            access_token,
            expires_in_s: TOKEN_LIFETIME_MS / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "wx0000000000000001";
    /// 2023-11-14 22:13:20 UTC, 06:13:20 the next day in UTC+8.
    const T: i64 = 1_700_000_000_000;

    #[test]
    fn quota_days_turn_at_midnight_china_time() {
        // 16:00 UTC is midnight in UTC+8.
        let midnight = (T / DAY_MS) * DAY_MS + 16 * 3_600_000;
        assert_eq!(quota_day(midnight - 1) + 1, quota_day(midnight));
    }

    #[test]
    fn stable_token_calls_per_minute_and_per_day_are_capped() {
        let mut tokens = Tokens::default();
        let minute_start = quota_minute(T) * 60_000;
        for _ in 0..STABLE_PER_MINUTE {
            tokens.stable(APP, false, minute_start).unwrap();
        }
        assert_eq!(
            tokens.stable(APP, false, minute_start + 59_999),
            Err(errcode::MINUTE_QUOTA)
        );
        assert!(tokens.stable(APP, false, minute_start + 60_000).is_ok());

        let usage = tokens.usage.get_mut(APP).unwrap();
        usage.stable_day = Counter {
            period: quota_day(T),
            count: STABLE_PER_DAY,
        };
        assert_eq!(tokens.stable(APP, false, T), Err(errcode::DAILY_QUOTA));
        assert!(tokens.stable(APP, false, T + DAY_MS).is_ok());
    }

    #[test]
    fn a_token_replaced_and_past_its_time_answers_not_latest() {
        let mut tokens = Tokens::default();
        let first = tokens.classic(APP, T).unwrap().access_token;
        tokens.classic(APP, T + 1).unwrap();
        tokens.expire(APP, T + 2);
        assert_eq!(
            tokens.check(Some(&first), T + 2),
            Err(errcode::TOKEN_EXPIRED),
            "still inside its overlap: only its end counts"
        );
        assert_eq!(
            tokens.check(Some(&first), T + 1 + CLASSIC_OVERLAP_MS),
            Err(errcode::INVALID_CREDENTIAL)
        );
    }
}
