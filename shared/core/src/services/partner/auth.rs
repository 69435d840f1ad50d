//! How partners sign their requests to the bridge's API, and how the bridge checks them.
//!
//! Headers: `X-Wxbridge-Partner` (the partner id), `X-Wxbridge-Timestamp` (seconds),
//! `X-Wxbridge-Nonce` (unique per request, 8–64 characters) and `X-Wxbridge-Signature`:
//! `v1=` + hex HMAC-SHA256(signing_secret, the canonical request), where the canonical
//! request is
//!
//! ```text
//! METHOD \n path?query \n timestamp \n nonce \n hex SHA-256(body)
//! ```
//!
//! A request is accepted when the partner exists, the timestamp is within 5 minutes, the
//! signature holds and the nonce was not seen before (nonces are kept 10 minutes, longer
//! than the timestamp window, so a replay is refused either way).

use crate::config::{BridgeConfig, Secret};
use crate::ports::nonces::{NonceError, NonceStore};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;

pub const PARTNER_HEADER: &str = "x-wxbridge-partner";
pub const TIMESTAMP_HEADER: &str = "x-wxbridge-timestamp";
pub const NONCE_HEADER: &str = "x-wxbridge-nonce";
pub const SIGNATURE_HEADER: &str = "x-wxbridge-signature";

pub const TIMESTAMP_TOLERANCE_SECS: u64 = 300;
pub const NONCE_TTL_SECS: i64 = 600;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    #[error("unknown partner")]
    UnknownPartner,
    #[error("timestamp is not a number or is outside the 5-minute window")]
    StaleTimestamp,
    #[error("nonce must be 8 to 64 characters of A-Z a-z 0-9 - _")]
    BadNonce,
    #[error("signature does not match")]
    BadSignature,
    #[error("this nonce was used before")]
    Replayed,
    #[error(transparent)]
    Unavailable(#[from] NonceError),
}

/// The request as signed.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path with its query string, as sent.
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

fn canonical(request: &SignedRequest<'_>, timestamp: &str, nonce: &str) -> String {
    format!(
        "{}\n{}\n{timestamp}\n{nonce}\n{}",
        request.method.to_ascii_uppercase(),
        request.path_and_query,
        hex::encode(Sha256::digest(request.body))
    )
}

fn mac(secret: &Secret, canonical: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(canonical.as_bytes());
    mac
}

/// The headers a partner sends (for partners' code, the local desk and tests).
pub fn sign(
    partner: &str,
    secret: &Secret,
    request: &SignedRequest<'_>,
    timestamp: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let timestamp = timestamp.to_string();
    let signature = mac(secret, &canonical(request, &timestamp, nonce))
        .finalize()
        .into_bytes();
    vec![
        (PARTNER_HEADER, partner.to_owned()),
        (TIMESTAMP_HEADER, timestamp),
        (NONCE_HEADER, nonce.to_owned()),
        (SIGNATURE_HEADER, format!("v1={}", hex::encode(signature))),
    ]
}

/// Checks a request; returns the partner it comes from. `header` reads a request header.
pub async fn authenticate<N: NonceStore>(
    config: &BridgeConfig,
    nonces: &N,
    request: &SignedRequest<'_>,
    header: impl Fn(&str) -> Option<String>,
    now_secs: i64,
) -> Result<String, AuthError> {
    let required = |name: &'static str| header(name).ok_or(AuthError::MissingHeader(name));
    let partner_id = required(PARTNER_HEADER)?;
    let timestamp = required(TIMESTAMP_HEADER)?;
    let nonce = required(NONCE_HEADER)?;
    let signature = required(SIGNATURE_HEADER)?;
    let partner = config
        .partner(&partner_id)
        .ok_or(AuthError::UnknownPartner)?;
    let stamped: i64 = timestamp.parse().map_err(|_| AuthError::StaleTimestamp)?;
    if now_secs.abs_diff(stamped) > TIMESTAMP_TOLERANCE_SECS {
        return Err(AuthError::StaleTimestamp);
    }
    let nonce_ok = (8..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !nonce_ok {
        return Err(AuthError::BadNonce);
    }
    let received = signature
        .strip_prefix("v1=")
        .and_then(|hex_part| hex::decode(hex_part).ok())
        .ok_or(AuthError::BadSignature)?;
    mac(
        &partner.signing_secret,
        &canonical(request, &timestamp, &nonce),
    )
    .verify_slice(&received)
    .map_err(|_| AuthError::BadSignature)?;
    // Claimed only once the signature holds, so nobody can burn a partner's nonces.
    // This handling of the request claims the nonce under an id of its own, so a claim
    // whose answer was lost and which the store's client sends again is still ours.
    let claimant = hex::encode(rand::random::<[u8; 8]>());
    match nonces
        .claim(&partner_id, &nonce, &claimant, now_secs + NONCE_TTL_SECS)
        .await
    {
        Ok(true) => Ok(partner_id),
        Ok(false) => Err(AuthError::Replayed),
        Err(error) => Err(AuthError::Unavailable(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    /// Nonces seen, in memory.
    #[derive(Default)]
    struct Nonces(Mutex<HashSet<(String, String)>>);

    impl NonceStore for Nonces {
        async fn claim(
            &self,
            partner: &str,
            nonce: &str,
            _: &str,
            _: i64,
        ) -> Result<bool, NonceError> {
            let key = (partner.to_owned(), nonce.to_owned());
            Ok(self.0.lock().unwrap().insert(key))
        }
    }

    const NOW: i64 = 1_764_150_000;

    fn config() -> BridgeConfig {
        BridgeConfig::from_json(
            r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
            "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://h/h","signing_secret":"hotel-secret-456789"}]}"#,
        )
        .unwrap()
    }

    fn request(body: &[u8]) -> SignedRequest<'_> {
        SignedRequest {
            method: "POST",
            path_and_query: "/v1/messages",
            body,
        }
    }

    fn headers(
        request: &SignedRequest<'_>,
        timestamp: i64,
        nonce: &str,
    ) -> HashMap<String, String> {
        let secret = Secret::new("hotel-secret-456789");
        sign("hotel-9", &secret, request, timestamp, nonce)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    async fn check(
        nonces: &Nonces,
        request: &SignedRequest<'_>,
        headers: &HashMap<String, String>,
    ) -> Result<String, AuthError> {
        authenticate(
            &config(),
            nonces,
            request,
            |name| headers.get(name).cloned(),
            NOW,
        )
        .await
    }

    #[tokio::test]
    async fn a_signed_request_is_accepted_once() {
        let nonces = Nonces::default();
        let body = br#"{"text":"hello"}"#;
        let signed = headers(&request(body), NOW, "nonce-0001");
        assert_eq!(
            check(&nonces, &request(body), &signed).await,
            Ok("hotel-9".into())
        );
        assert_eq!(
            check(&nonces, &request(body), &signed).await,
            Err(AuthError::Replayed)
        );
    }

    #[test]
    fn known_vector() {
        // Python: hmac.new(secret, "POST\n/v1/messages\n1764150000\nnonce-0001\n" +
        // sha256(body).hexdigest(), sha256).hexdigest()
        let signed = headers(&request(br#"{"text":"hello"}"#), NOW, "nonce-0001");
        assert_eq!(
            signed[SIGNATURE_HEADER],
            "v1=b5808ce20d76ef02b6ae2f46a91813ad4f0c3336d003abcc1e5182dcad2c861a"
        );
    }

    #[tokio::test]
    async fn anything_changed_breaks_the_signature() {
        let nonces = Nonces::default();
        let body = br#"{"text":"hello"}"#;
        let signed = headers(&request(body), NOW, "nonce-0002");
        let other_body = request(br#"{"text":"hellO"}"#);
        assert_eq!(
            check(&nonces, &other_body, &signed).await,
            Err(AuthError::BadSignature)
        );
        let other_path = SignedRequest {
            path_and_query: "/v1/messages?x=1",
            ..request(body)
        };
        assert_eq!(
            check(&nonces, &other_path, &signed).await,
            Err(AuthError::BadSignature)
        );
        let other_method = SignedRequest {
            method: "PUT",
            ..request(body)
        };
        assert_eq!(
            check(&nonces, &other_method, &signed).await,
            Err(AuthError::BadSignature)
        );
        // A failed check does not burn the nonce.
        assert_eq!(
            check(&nonces, &request(body), &signed).await,
            Ok("hotel-9".into())
        );
    }

    #[tokio::test]
    async fn stale_unknown_and_malformed_requests_are_refused() {
        let nonces = Nonces::default();
        let body = b"{}";
        let stale = headers(&request(body), NOW - 301, "nonce-0003");
        assert_eq!(
            check(&nonces, &request(body), &stale).await,
            Err(AuthError::StaleTimestamp)
        );
        let mut unknown = headers(&request(body), NOW, "nonce-0004");
        unknown.insert(PARTNER_HEADER.into(), "ghost".into());
        assert_eq!(
            check(&nonces, &request(body), &unknown).await,
            Err(AuthError::UnknownPartner)
        );
        let short = headers(&request(body), NOW, "short");
        assert_eq!(
            check(&nonces, &request(body), &short).await,
            Err(AuthError::BadNonce)
        );
        let mut unsigned = headers(&request(body), NOW, "nonce-0005");
        unsigned.remove(SIGNATURE_HEADER);
        assert_eq!(
            check(&nonces, &request(body), &unsigned).await,
            Err(AuthError::MissingHeader(SIGNATURE_HEADER))
        );
    }
}
