//! The AES-256-CBC envelope of safe and compatible mode (protocol notes §1.4).
//!
//! Key = Base64(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7 padding to
//! 32-byte blocks (pads run 1..=32, not 1..=16), plaintext = `random16 ‖ BE32 len ‖ msg ‖ appid`.

use aes::cipher::{
    block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit,
};
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use thiserror::Error;

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;
type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;

/// WeChat pads to multiples of 32 bytes.
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;
const RANDOM_LEN: usize = 16;
const HEADER_LEN: usize = RANDOM_LEN + 4;

/// Standard alphabet; tolerant of non-zero trailing bits, as WeChat's own (Python, PHP,
/// Java) decoders are. The 43-character EncodingAESKey often ends in such a character.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("EncodingAESKey must be 43 base64 characters decoding to 32 bytes")]
    InvalidKey,
    #[error("Encrypt is not valid base64")]
    BadBase64,
    #[error("ciphertext length {0} is not a positive multiple of 16")]
    NotBlockAligned(usize),
    #[error("PKCS#7 pad value {0} is outside 1..=32")]
    PadOutOfRange(u8),
    #[error("PKCS#7 pad bytes are inconsistent")]
    PadInconsistent,
    #[error("decrypted buffer is shorter than its 20-byte header")]
    Truncated,
    #[error("length field {0} runs past the decrypted buffer")]
    LengthOutOfRange(u32),
    #[error("appid in the envelope does not match this channel")]
    AppIdMismatch,
    #[error("decrypted message is not valid UTF-8")]
    InvalidUtf8,
}

/// A channel's message key, derived from its EncodingAESKey, with its AES key schedule
/// expanded once rather than on every push.
#[derive(Clone)]
pub struct AesKey {
    key: [u8; 32],
    cipher: aes::Aes256,
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl AesKey {
    pub fn from_encoding_aes_key(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::InvalidKey);
        }
        let bytes = LENIENT_BASE64
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::InvalidKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self::from_bytes(key))
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        Self {
            key,
            cipher: aes::Aes256::new(&key.into()),
        }
    }

    fn iv(&self) -> &[u8] {
        &self.key[..AES_BLOCK]
    }

    fn decryptor(&self) -> Aes256CbcDec {
        Aes256CbcDec::inner_iv_init(self.cipher.clone(), self.iv().into())
    }

    fn encryptor(&self) -> Aes256CbcEnc {
        Aes256CbcEnc::inner_iv_init(self.cipher.clone(), self.iv().into())
    }

    /// Decrypts a base64 `Encrypt` value and returns the message, checking that the
    /// envelope names `expected_appid` (the AppID, or the CorpID for WeCom).
    pub fn decrypt(&self, encrypt_b64: &str, expected_appid: &str) -> Result<String, CryptoError> {
        let mut buf = decode_base64(encrypt_b64.trim())?;
        if buf.is_empty() || buf.len() % AES_BLOCK != 0 {
            return Err(CryptoError::NotBlockAligned(buf.len()));
        }
        let len = buf.len();
        let plain = self
            .decryptor()
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::NotBlockAligned(len))?;
        let content = strip_pkcs7_32(plain)?;
        if content.len() < HEADER_LEN {
            return Err(CryptoError::Truncated);
        }
        let msg_len = u32::from_be_bytes([content[16], content[17], content[18], content[19]]);
        let msg_end = HEADER_LEN
            .checked_add(msg_len as usize)
            .filter(|end| *end <= content.len())
            .ok_or(CryptoError::LengthOutOfRange(msg_len))?;
        if &content[msg_end..] != expected_appid.as_bytes() {
            return Err(CryptoError::AppIdMismatch);
        }
        // Reuse the buffer for the message: no second allocation.
        buf.truncate(msg_end);
        buf.drain(..HEADER_LEN);
        String::from_utf8(buf).map_err(|_| CryptoError::InvalidUtf8)
    }

    /// Encrypts `msg` for `appid` with a fresh random prefix.
    pub fn encrypt(&self, msg: &[u8], appid: &str) -> String {
        self.encrypt_with_random(msg, appid, &rand::random::<[u8; RANDOM_LEN]>())
    }

    /// Encrypts with a given random prefix; deterministic, for vectors and tests.
    pub fn encrypt_with_random(
        &self,
        msg: &[u8],
        appid: &str,
        random: &[u8; RANDOM_LEN],
    ) -> String {
        let unpadded = HEADER_LEN + msg.len() + appid.len();
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
        let mut buf = Vec::with_capacity(unpadded + pad);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        buf.extend_from_slice(msg);
        buf.extend_from_slice(appid.as_bytes());
        buf.resize(unpadded + pad, pad as u8);
        let len = buf.len();
        let cipher = self
            .encryptor()
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .expect("buffer is a whole number of blocks");
        base64_simd::STANDARD.encode_to_string(cipher)
    }
}

/// Base64 with SIMD where the input is canonical (as WeChat's is), falling back to the
/// lenient decoder for non-zero trailing bits.
fn decode_base64(text: &str) -> Result<Vec<u8>, CryptoError> {
    base64_simd::STANDARD
        .decode_to_vec(text)
        .or_else(|_| LENIENT_BASE64.decode(text))
        .map_err(|_| CryptoError::BadBase64)
}

/// Removes PKCS#7 padding with WeChat's 32-byte block: the last byte `n` must be in
/// 1..=32 and the last `n` bytes must all equal `n`.
fn strip_pkcs7_32(buf: &[u8]) -> Result<&[u8], CryptoError> {
    let pad = *buf.last().ok_or(CryptoError::PadInconsistent)?;
    if pad == 0 || pad as usize > PAD_BLOCK {
        return Err(CryptoError::PadOutOfRange(pad));
    }
    let pad = pad as usize;
    if pad > buf.len() || buf[buf.len() - pad..].iter().any(|b| *b as usize != pad) {
        return Err(CryptoError::PadInconsistent);
    }
    Ok(&buf[..buf.len() - pad])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::*;
    use proptest::prelude::*;

    fn raw_decrypt(key: &AesKey, encrypt_b64: &str) -> Vec<u8> {
        let mut buf = LENIENT_BASE64.decode(encrypt_b64).unwrap();
        key.decryptor()
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .unwrap()
            .to_vec()
    }

    /// Encrypts an arbitrary, already padded buffer, to build malformed envelopes.
    fn raw_encrypt(key: &AesKey, mut buf: Vec<u8>) -> String {
        let len = buf.len();
        let cipher = key
            .encryptor()
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .unwrap();
        LENIENT_BASE64.encode(cipher)
    }

    fn mp_key() -> AesKey {
        AesKey::from_encoding_aes_key(MP_ENCODING_AES_KEY).unwrap()
    }

    #[test]
    fn mp_key_is_all_zero() {
        assert_eq!(mp_key().key, [0u8; 32]);
    }

    #[test]
    fn mp_safe_mode_vector_decrypts_with_pad_19() {
        let key = mp_key();
        let raw = raw_decrypt(&key, MP_SAFE_ENCRYPT);
        assert_eq!(raw.len(), 224);
        assert_eq!(*raw.last().unwrap(), 19);
        assert_eq!(&raw[..16], MP_SAFE_RANDOM);
        assert_eq!(
            key.decrypt(MP_SAFE_ENCRYPT, MP_APPID).unwrap(),
            MP_SAFE_PLAINTEXT
        );
    }

    #[test]
    fn mp_safe_mode_vector_re_encrypts_byte_for_byte() {
        let encrypted =
            mp_key().encrypt_with_random(MP_SAFE_PLAINTEXT.as_bytes(), MP_APPID, MP_SAFE_RANDOM);
        assert_eq!(encrypted, MP_SAFE_ENCRYPT);
    }

    #[test]
    fn mp_reply_vector_encrypts_byte_for_byte() {
        let encrypted =
            mp_key().encrypt_with_random(MP_REPLY_PLAINTEXT.as_bytes(), MP_APPID, MP_REPLY_RANDOM);
        assert_eq!(encrypted, MP_REPLY_ENCRYPT);
        assert_eq!(
            mp_key().decrypt(&encrypted, MP_APPID).unwrap(),
            MP_REPLY_PLAINTEXT
        );
    }

    #[test]
    fn wecom_sample_decrypts() {
        let key = AesKey::from_encoding_aes_key(WECOM_ENCODING_AES_KEY).unwrap();
        assert_eq!(
            key.decrypt(WECOM_ECHOSTR, WECOM_CORPID).unwrap(),
            WECOM_ECHOSTR_PLAIN
        );
        assert_eq!(*raw_decrypt(&key, WECOM_ECHOSTR).last().unwrap(), 7);
        assert_eq!(
            key.decrypt(WECOM_ENCRYPT, WECOM_CORPID).unwrap(),
            WECOM_PLAINTEXT
        );
        assert_eq!(*raw_decrypt(&key, WECOM_ENCRYPT).last().unwrap(), 22);
    }

    #[test]
    fn wecom_2014_sample_decrypts() {
        let key = AesKey::from_encoding_aes_key(WECOM2014_ENCODING_AES_KEY).unwrap();
        assert_eq!(
            key.decrypt(WECOM2014_ECHOSTR, WECOM2014_CORPID).unwrap(),
            WECOM2014_ECHOSTR_PLAIN
        );
        let msg = key.decrypt(WECOM2014_ENCRYPT, WECOM2014_CORPID).unwrap();
        assert!(
            msg.contains("<Content><![CDATA[hello]]></Content>")
                || msg.contains("<Content>hello</Content>"),
            "{msg}"
        );
        assert!(msg.contains("4561255354251345929"));
        assert_eq!(*raw_decrypt(&key, WECOM2014_ENCRYPT).last().unwrap(), 30);
    }

    #[test]
    fn official_account_sample_decrypts() {
        let key = AesKey::from_encoding_aes_key(OA_ENCODING_AES_KEY).unwrap();
        let msg = key.decrypt(OA_ENCRYPT, OA_APPID).unwrap();
        assert!(
            msg.contains("abcdteT") && msg.contains("6054768590064713728"),
            "{msg}"
        );
        assert_eq!(*raw_decrypt(&key, OA_ENCRYPT).last().unwrap(), 2);
    }

    #[test]
    fn wrong_appid_is_rejected() {
        assert_eq!(
            mp_key().decrypt(MP_SAFE_ENCRYPT, "wx0000000000000000"),
            Err(CryptoError::AppIdMismatch)
        );
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert_eq!(
            AesKey::from_encoding_aes_key("short").unwrap_err(),
            CryptoError::InvalidKey
        );
        let not_base64 = "!".repeat(43);
        assert_eq!(
            AesKey::from_encoding_aes_key(&not_base64).unwrap_err(),
            CryptoError::InvalidKey
        );
    }

    #[test]
    fn bad_base64_is_rejected() {
        assert_eq!(
            mp_key().decrypt("not base64 at all!", MP_APPID),
            Err(CryptoError::BadBase64)
        );
    }

    #[test]
    fn ciphertext_not_block_aligned_is_rejected() {
        let fifteen = LENIENT_BASE64.encode([0u8; 15]);
        assert_eq!(
            mp_key().decrypt(&fifteen, MP_APPID),
            Err(CryptoError::NotBlockAligned(15))
        );
        assert_eq!(
            mp_key().decrypt("", MP_APPID),
            Err(CryptoError::NotBlockAligned(0))
        );
    }

    #[test]
    fn pad_zero_is_rejected() {
        let mut buf = vec![7u8; 64];
        buf[63] = 0;
        assert_eq!(
            mp_key().decrypt(&raw_encrypt(&mp_key(), buf), MP_APPID),
            Err(CryptoError::PadOutOfRange(0))
        );
    }

    #[test]
    fn pad_over_32_is_rejected() {
        let buf = vec![33u8; 64];
        assert_eq!(
            mp_key().decrypt(&raw_encrypt(&mp_key(), buf), MP_APPID),
            Err(CryptoError::PadOutOfRange(33))
        );
    }

    #[test]
    fn inconsistent_pad_is_rejected() {
        let mut buf = vec![5u8; 64];
        buf[61] = 4;
        assert_eq!(
            mp_key().decrypt(&raw_encrypt(&mp_key(), buf), MP_APPID),
            Err(CryptoError::PadInconsistent)
        );
    }

    #[test]
    fn truncated_header_is_rejected() {
        let mut buf = vec![0u8; 32];
        buf[16..].fill(16); // 16 bytes of content: shorter than the 20-byte header
        assert_eq!(
            mp_key().decrypt(&raw_encrypt(&mp_key(), buf), MP_APPID),
            Err(CryptoError::Truncated)
        );
    }

    #[test]
    fn length_field_beyond_buffer_is_rejected() {
        let mut buf = vec![0u8; 64];
        buf[16..20].copy_from_slice(&1000u32.to_be_bytes());
        buf[63] = 1;
        assert_eq!(
            mp_key().decrypt(&raw_encrypt(&mp_key(), buf), MP_APPID),
            Err(CryptoError::LengthOutOfRange(1000))
        );
        let mut huge = vec![0u8; 64];
        huge[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        huge[63] = 1;
        assert_eq!(
            mp_key().decrypt(&raw_encrypt(&mp_key(), huge), MP_APPID),
            Err(CryptoError::LengthOutOfRange(u32::MAX))
        );
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let encrypted = mp_key().encrypt(&[0xff, 0xfe, 0x00], MP_APPID);
        assert_eq!(
            mp_key().decrypt(&encrypted, MP_APPID),
            Err(CryptoError::InvalidUtf8)
        );
    }

    #[test]
    fn encrypted_length_is_a_multiple_of_32() {
        for len in 0..70 {
            let msg = vec![b'x'; len];
            let bytes = LENIENT_BASE64
                .decode(mp_key().encrypt(&msg, MP_APPID))
                .unwrap();
            assert_eq!(bytes.len() % 32, 0, "message length {len}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn encrypt_then_decrypt_round_trips(
            key_bytes in prop::array::uniform32(any::<u8>()),
            appid in "[a-z0-9]{0,32}",
            msg in prop::string::string_regex("(?s).{0,200}").unwrap(),
            filler_len in 0usize..(64 * 1024),
        ) {
            let key = AesKey::from_bytes(key_bytes);
            // Lengths spread over 0..64 KiB: a random head plus filler.
            let mut message = msg.into_bytes();
            message.extend(std::iter::repeat_n(b'a', filler_len.saturating_sub(message.len())));
            let message = String::from_utf8(message).unwrap();
            let encrypted = key.encrypt(message.as_bytes(), &appid);
            prop_assert_eq!(key.decrypt(&encrypted, &appid).unwrap(), message);
        }

        #[test]
        fn encoding_aes_key_round_trips(key_bytes in prop::array::uniform32(any::<u8>())) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(key_bytes);
            let encoding_aes_key = encoded.trim_end_matches('=');
            prop_assert_eq!(AesKey::from_encoding_aes_key(encoding_aes_key).unwrap().key, key_bytes);
        }

        #[test]
        fn decrypt_never_panics_on_arbitrary_ciphertext(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = mp_key().decrypt(&LENIENT_BASE64.encode(bytes), MP_APPID);
        }

        /// Past the padding check: valid pads with random headers, length fields and tails
        /// reach the length, appid and UTF-8 checks.
        #[test]
        fn decrypt_never_panics_past_the_padding(
            mut content in prop::collection::vec(any::<u8>(), 20..200),
            declared_len in prop_oneof![any::<u32>(), 0u32..200],
            pad in 1usize..=32,
        ) {
            content[16..20].copy_from_slice(&declared_len.to_be_bytes());
            let total = (content.len() + pad).div_ceil(16) * 16;
            content.resize(total - pad, b'x');
            content.resize(total, pad as u8);
            let key = mp_key();
            match key.decrypt(&raw_encrypt(&key, content.clone()), MP_APPID) {
                Ok(msg) => prop_assert_eq!(msg.len(), declared_len as usize),
                Err(CryptoError::LengthOutOfRange(n)) => prop_assert_eq!(n, declared_len),
                Err(error) => prop_assert!(matches!(
                    error,
                    CryptoError::AppIdMismatch | CryptoError::InvalidUtf8 | CryptoError::Truncated
                ), "{error:?}"),
            }
        }
    }
}
