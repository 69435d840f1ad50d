//! The nonce store ([`NonceStore`]): a nonce claimed once per partner.

use wxbridge_core::ports::nonces::NonceStore;

/// A nonce is claimed once per partner; the same claimant claiming it again (its write sent
/// twice) still has it, anyone else does not.
pub async fn a_nonce_is_claimed_once_per_partner<N: NonceStore>(nonces: &N, channel: &str) {
    let nonce = format!("nonce-{channel}");
    let claim = |partner: &'static str, claimant: &'static str| {
        let nonce = nonce.clone();
        async move {
            nonces
                .claim(partner, &nonce, claimant, 1_764_150_600)
                .await
                .unwrap()
        }
    };
    assert!(claim("hotel-9", "first").await);
    assert!(claim("hotel-9", "first").await, "its own write, sent again");
    assert!(!claim("hotel-9", "replay").await, "a replay");
    assert!(claim("air-2", "other").await, "per partner");
}
