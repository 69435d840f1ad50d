//! A mini program's message-push settings (消息推送配置, protocol notes §1.1): what WeChat
//! signs and encrypts the pushes of one app with, and the format it sends them in.

use crate::crypto::{AesKey, CryptoError};
use serde::Deserialize;

/// How the app's message push is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionMode {
    /// 明文: no encryption; only the URL `signature`, which does not cover the body.
    Plaintext,
    /// 兼容: plaintext and ciphertext side by side; the ciphertext is what counts.
    Compatible,
    /// 安全: ciphertext only.
    Safe,
}

/// The data format chosen for the app's message push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    Xml,
    Json,
}

/// One app's push endpoint: everything needed to verify, open and seal its pushes.
#[derive(Clone)]
pub struct PushEndpoint {
    /// A name for logs (the bridge uses its channel id); never sent anywhere.
    pub name: String,
    /// The AppID; encrypted envelopes must name it.
    pub app_id: String,
    /// The original id (`gh_…`), the `ToUserName` of the app's pushes.
    pub original_id: String,
    token: String,
    /// The key derived from the EncodingAESKey, when one is configured.
    pub key: Option<AesKey>,
    pub mode: EncryptionMode,
    pub format: PushFormat,
}

impl PushEndpoint {
    /// An endpoint; fails only when the EncodingAESKey is not 43 base64 characters.
    pub fn new(
        name: impl Into<String>,
        app_id: impl Into<String>,
        original_id: impl Into<String>,
        token: impl Into<String>,
        encoding_aes_key: Option<&str>,
        mode: EncryptionMode,
        format: PushFormat,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            name: name.into(),
            app_id: app_id.into(),
            original_id: original_id.into(),
            token: token.into(),
            key: encoding_aes_key
                .map(AesKey::from_encoding_aes_key)
                .transpose()?,
            mode,
            format,
        })
    }

    /// The Token the signatures are computed with.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for PushEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEndpoint")
            .field("name", &self.name)
            .field("app_id", &self.app_id)
            .field("original_id", &self.original_id)
            .field("token", &"<redacted>")
            .field("key", &self.key)
            .field("mode", &self.mode)
            .field("format", &self.format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_and_key_do_not_print() {
        let endpoint = PushEndpoint::new(
            "mp",
            "wx1",
            "gh_1",
            "secret-token",
            Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
            EncryptionMode::Safe,
            PushFormat::Json,
        )
        .unwrap();
        let printed = format!("{endpoint:?}");
        assert!(!printed.contains("secret-token"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn a_bad_key_is_refused() {
        let endpoint = PushEndpoint::new(
            "mp",
            "wx1",
            "gh_1",
            "t",
            Some("short"),
            EncryptionMode::Safe,
            PushFormat::Json,
        );
        assert!(endpoint.is_err());
    }
}
