//! Signed webhooks to partners: how a body is signed, how a partner verifies it, and what
//! an answer means for delivery.
//!
//! Headers: `X-Wxbridge-Timestamp` (seconds), `X-Wxbridge-Signature`
//! (`v1=` + hex HMAC-SHA256(secret, timestamp + "." + body)), `X-Wxbridge-Delivery`
//! (the same for every retry of one delivery, so partners can drop duplicates) and
//! `X-Wxbridge-Event` (the event type).

use crate::config::{PartnerConfig, Secret};
use crate::metrics;
use crate::ports::webhook::WebhookSender;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-wxbridge-timestamp";
pub const SIGNATURE_HEADER: &str = "x-wxbridge-signature";
pub const DELIVERY_HEADER: &str = "x-wxbridge-delivery";
pub const EVENT_HEADER: &str = "x-wxbridge-event";

fn mac(secret: &Secret, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Wxbridge-Signature` value for a body sent at `timestamp`.
pub fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// What a partner does with a webhook: the signature holds and the timestamp is within
/// `tolerance_secs` of now.
pub fn verify(
    secret: &Secret,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
    now_secs: i64,
    tolerance_secs: u64,
) -> bool {
    let Some(Ok(received)) = signature_header.strip_prefix("v1=").map(hex::decode) else {
        return false;
    };
    now_secs.abs_diff(timestamp) <= tolerance_secs
        && mac(secret, timestamp, body).verify_slice(&received).is_ok()
}

/// The `user` object of the webhooks about a user, as `receiving_partner` gets it: the
/// entry context only when it is that partner's own (empty otherwise).
pub fn user_fields(user: &crate::model::ChannelUser, receiving_partner: &str) -> serde_json::Value {
    serde_json::json!({
        "channel": user.channel,
        "openid": user.openid,
        "unionid": user.unionid,
        "app_user_id": user.app_user_id,
        "session_context": user.session_context_for(receiving_partner),
    })
}

pub use crate::ports::webhook::Delivery;

/// How long a partner has to answer a webhook.
pub const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Signs and sends one webhook; returns what the answer means.
pub async fn deliver<W: WebhookSender>(
    sender: &W,
    partner: &PartnerConfig,
    event_type: &str,
    delivery_id: &str,
    body: Vec<u8>,
    now_secs: i64,
) -> Delivery {
    let headers = [
        (TIMESTAMP_HEADER, now_secs.to_string()),
        (
            SIGNATURE_HEADER,
            signature(&partner.signing_secret, now_secs, &body),
        ),
        (DELIVERY_HEADER, delivery_id.to_owned()),
        (EVENT_HEADER, event_type.to_owned()),
    ];
    let started = std::time::Instant::now();
    let delivery = sender.post(&partner.webhook_url, &headers, body).await;
    metrics::millis("webhook_latency", started.elapsed().as_secs_f64() * 1000.0);
    metrics::count_because("webhooks", delivery.name());
    delivery
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("hotel-secret-456789")
    }

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"type":"message.received"}"#;
        let header = signature(&secret(), 1_764_150_000, body);
        assert!(header.starts_with("v1=") && header.len() == 3 + 64);
        assert!(verify(
            &secret(),
            1_764_150_000,
            body,
            &header,
            1_764_150_100,
            300
        ));
        assert!(
            !verify(&secret(), 1_764_150_001, body, &header, 1_764_150_100, 300),
            "other timestamp"
        );
        assert!(
            !verify(&secret(), 1_764_150_000, b"{}", &header, 1_764_150_100, 300),
            "other body"
        );
        assert!(!verify(
            &Secret::new("another-secret-000"),
            1_764_150_000,
            body,
            &header,
            1_764_150_100,
            300
        ));
        assert!(
            !verify(&secret(), 1_764_150_000, body, &header, 1_764_150_400, 300),
            "stale"
        );
        assert!(!verify(
            &secret(),
            1_764_150_000,
            body,
            "v1=zz",
            1_764_150_000,
            300
        ));
        assert!(
            !verify(
                &secret(),
                1_764_150_000,
                body,
                &header[3..],
                1_764_150_000,
                300
            ),
            "no scheme"
        );
    }

    #[test]
    fn known_vector() {
        // Python: hmac.new(b"hotel-secret-456789", b"1764150000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature(&secret(), 1_764_150_000, b"{}"),
            "v1=0f1fd1494e2a981631a176c41136d7af298ec8d85f5b41e29e95bed73a9bd87f"
        );
    }
}
