//! WeChat request signatures.
//!
//! Both the URL `signature` and the body-covering `msg_signature` are the lowercase hex
//! SHA-1 of their parts sorted as byte strings and concatenated without a separator
//! (protocol notes §1.2, §1.4). Comparison runs in constant time so that a forger learns
//! nothing from how long a rejection takes.

use sha1::{Digest, Sha1};
use subtle::{Choice, ConstantTimeEq};

/// A signature in lowercase hex.
pub type HexSignature = [u8; 40];

/// Hex SHA-1 of `parts` sorted lexicographically (byte order) and concatenated, on the
/// stack: verification allocates nothing.
pub fn sorted_sha1_hex<const N: usize>(mut parts: [&str; N]) -> HexSignature {
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let mut hex = [0u8; 40];
    hex::encode_to_slice(hasher.finalize(), &mut hex).expect("40 hex digits for 20 bytes");
    hex
}

/// The URL `signature`: over token, timestamp and nonce. It does not cover the body.
pub fn url_signature(token: &str, timestamp: &str, nonce: &str) -> HexSignature {
    sorted_sha1_hex([token, timestamp, nonce])
}

/// The `msg_signature` of safe and compatible mode: over token, timestamp, nonce and the
/// `Encrypt` field, so it binds the body.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> HexSignature {
    sorted_sha1_hex([token, timestamp, nonce, encrypt])
}

/// A signature as text, for query strings and replies.
pub fn to_text(signature: &HexSignature) -> String {
    signature.iter().map(|&b| b as char).collect()
}

/// Constant-time comparison of a received hex signature with the expected one.
/// Case-insensitive on the received side, as hex is.
pub fn signature_matches(received: &str, expected: &HexSignature) -> bool {
    let Ok(received) = <[u8; 40]>::try_from(received.as_bytes()) else {
        return false;
    };
    // Five words rather than forty bytes: `subtle` puts each compared unit behind an
    // optimisation barrier (15 ns less per push, `make bench`).
    let word = |hex: &[u8]| u64::from_ne_bytes(hex.try_into().expect("8-byte chunk"));
    received
        .map(|b| b.to_ascii_lowercase())
        .chunks_exact(8)
        .zip(expected.chunks_exact(8))
        .fold(Choice::from(1), |same, (r, e)| {
            same & word(r).ct_eq(&word(e))
        })
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Official vectors, protocol notes §1.2–§1.4 and §7.
    #[test]
    fn get_verification_vector() {
        assert_eq!(
            url_signature("AAAAA", "1714036504", "1514711492"),
            *b"f464b24fc39322e44b38aa78f5edd27bd1441696"
        );
    }

    #[test]
    fn plaintext_post_vector() {
        assert_eq!(
            url_signature("AAAAA", "1714037059", "486452656"),
            *b"899cf89e464efb63f54ddac96b0a0a235f53aa78"
        );
    }

    #[test]
    fn safe_mode_url_signature_is_also_valid() {
        assert_eq!(
            url_signature("AAAAA", "1714112445", "415670741"),
            *b"6c5c811b55cc85e0e1b54100749188c20beb3f5d"
        );
    }

    #[test]
    fn safe_mode_msg_signature_vector_sorts_plus_first() {
        let encrypt = crate::vectors::MP_SAFE_ENCRYPT;
        assert_eq!(
            msg_signature("AAAAA", "1714112445", "415670741", encrypt),
            *b"046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
        );
    }

    #[test]
    fn reply_msg_signature_vector() {
        assert_eq!(
            msg_signature(
                "AAAAA",
                "1713424427",
                "415670741",
                crate::vectors::MP_REPLY_ENCRYPT
            ),
            *b"1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"
        );
    }

    #[test]
    fn wecom_and_official_account_vectors() {
        use crate::vectors::*;
        assert_eq!(
            msg_signature(WECOM_TOKEN, "1476416373", "47744683", WECOM_ECHOSTR),
            *b"012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"
        );
        assert_eq!(
            msg_signature(WECOM_TOKEN, "1476422779", "1597212914", WECOM_ENCRYPT),
            *b"0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
        );
        assert_eq!(
            msg_signature(
                WECOM2014_TOKEN,
                "1409659589",
                "263014780",
                WECOM2014_ECHOSTR
            ),
            *b"5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
        );
        assert_eq!(
            msg_signature(
                WECOM2014_TOKEN,
                "1409659813",
                "1372623149",
                WECOM2014_ENCRYPT
            ),
            *b"477715d11cdb4164915debcba66cb864d751f3e6"
        );
        assert_eq!(
            msg_signature(OA_TOKEN, "1409735669", "1320562132", OA_ENCRYPT),
            *b"5d197aaffba7e9b25a30732f161a50dee96bd5fa"
        );
    }

    #[test]
    fn comparison_rejects_other_lengths_and_values_and_accepts_uppercase() {
        let good = url_signature("AAAAA", "1714036504", "1514711492");
        let text = to_text(&good);
        assert!(signature_matches(&text, &good));
        assert!(signature_matches(&text.to_uppercase(), &good));
        assert!(!signature_matches(&text[..39], &good));
        assert!(!signature_matches(&format!("{text}0"), &good));
        assert!(!signature_matches("", &good));
        // A difference in any one digit, in every word compared.
        for position in 0..40 {
            let mut flipped = text.clone().into_bytes();
            flipped[position] = if flipped[position] == b'0' {
                b'1'
            } else {
                b'0'
            };
            let flipped = String::from_utf8(flipped).unwrap();
            assert!(!signature_matches(&flipped, &good), "digit {position}");
        }
    }
}
