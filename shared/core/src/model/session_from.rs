//! The `session-from` of the mini program's contact button, as the app signs it.
//!
//! WeChat passes the button's `session-from` through unchanged in `user_enter_tempsession`,
//! so a user could put anything there. The app therefore signs what it vouches for:
//!
//! ```text
//! partner=hotel-9&uid=123&order=42&ts=1764150000&sig=<hex HMAC-SHA256(secret, text before "&sig=")>
//! ```
//!
//! A value signed with the deployment's `session_from_secret`, no older than
//! [`MAX_AGE_SECS`], makes `partner` the active partner, and binds the WeChat user to the
//! app user `uid` when it also names that user's `openid` (the app has it from
//! `code2Session`), so a signed value copied from someone else's page binds nothing.
//! Anything else — unsigned, badly signed, stale — is kept as plain context. Values are
//! form-urlencoded; the whole fits WeChat's 1000-byte limit.

use crate::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a signed `session-from` stays good: the page that rendered the button may
/// stay open for a while before the user taps it.
pub const MAX_AGE_SECS: i64 = 24 * 3600;

/// What the app vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    pub partner: String,
    pub app_user_id: Option<String>,
}

/// A `session-from` read: every pair as context, and what was vouched for if the
/// signature holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFrom {
    pub context: Vec<(String, String)>,
    pub vouched: Option<Vouched>,
}

impl SessionFrom {
    pub fn read(raw: &str, secret: Option<&Secret>, now_secs: i64) -> Self {
        let context: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
            .filter(|(name, _)| name != "sig")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        let vouched = secret
            .filter(|secret| signature_holds(raw, secret))
            .and_then(|_| vouched(&context, now_secs));
        Self { context, vouched }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn signature_holds(raw: &str, secret: &Secret) -> bool {
    let Some((signed, signature)) = raw.rsplit_once("&sig=") else {
        return false;
    };
    let Ok(signature) = hex::decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(signed.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

fn vouched(context: &[(String, String)], now_secs: i64) -> Option<Vouched> {
    let get = |name: &str| context.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let issued: i64 = get("ts")?.parse().ok()?;
    // A few minutes of clock skew between the app and the bridge are fine.
    if !(-300..=MAX_AGE_SECS).contains(&(now_secs - issued)) {
        return None;
    }
    Some(Vouched {
        partner: get("partner").filter(|p| !p.is_empty())?.clone(),
        app_user_id: get("uid").filter(|u| !u.is_empty()).cloned(),
    })
}

/// Signs a `session-from` as the app does (for the app's own code, tests and the
/// simulator).
pub fn sign(unsigned: &str, secret: &Secret) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(unsigned.as_bytes());
    format!(
        "{unsigned}&sig={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_150_000;

    fn secret() -> Secret {
        Secret::new("session-from-secret-1")
    }

    fn signed(ts: i64) -> String {
        sign(
            &format!("partner=hotel-9&uid=123&order=42&ts={ts}"),
            &secret(),
        )
    }

    #[test]
    fn a_signed_fresh_value_vouches_for_partner_and_user() {
        let read = SessionFrom::read(&signed(NOW - 60), Some(&secret()), NOW);
        assert_eq!(
            read.vouched,
            Some(Vouched {
                partner: "hotel-9".into(),
                app_user_id: Some("123".into())
            })
        );
        assert_eq!(read.get("order"), Some("42"));
        assert_eq!(read.get("sig"), None, "the signature is not context");
    }

    #[test]
    fn anything_else_is_context_only() {
        let cases = [
            ("unsigned", "partner=hotel-9&uid=123".to_owned()),
            ("forged uid", signed(NOW).replace("uid=123", "uid=999")),
            (
                "other key",
                sign(
                    "partner=hotel-9&uid=123&ts=1764150000",
                    &Secret::new("another-secret-0000"),
                ),
            ),
            ("stale", signed(NOW - MAX_AGE_SECS - 1)),
            ("from the future", signed(NOW + 3600)),
            ("no ts", sign("partner=hotel-9&uid=123", &secret())),
            ("bad hex", "partner=hotel-9&ts=1764150000&sig=zz".to_owned()),
            ("no partner", sign(&format!("uid=123&ts={NOW}"), &secret())),
        ];
        for (case, raw) in cases {
            let read = SessionFrom::read(&raw, Some(&secret()), NOW);
            assert_eq!(read.vouched, None, "{case}");
            assert!(!read.context.is_empty(), "{case}");
        }
        assert_eq!(
            SessionFrom::read(&signed(NOW), None, NOW).vouched,
            None,
            "no secret configured"
        );
    }

    #[test]
    fn values_are_form_decoded_and_junk_never_panics() {
        let read = SessionFrom::read("partner=Hotel%20Lotus&note=a+b&=&&%ZZ", None, NOW);
        assert_eq!(read.get("partner"), Some("Hotel Lotus"));
        assert_eq!(read.get("note"), Some("a b"));
        let _ = SessionFrom::read(&"&sig=".repeat(100), Some(&secret()), NOW);
    }
}
