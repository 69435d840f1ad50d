//! The one configuration document of a deployment.
//!
//! JSON, read once at start (where from is the AWS adapters' business: the document itself,
//! a file, or a Secrets Manager secret). Invalid configuration fails at start with the path
//! of the offending field.
//! Secrets (`token`, `encoding_aes_key`) never print: their `Debug` is redacted.

mod partner;
mod sub_merchant;

pub use partner::{PartnerConfig, ReplyFallback};

pub use sub_merchant::{nickname_units, SubMerchantConfig};

use serde::Deserialize;
use std::collections::HashMap;
use thiserror::Error;
use wxbridge_wechat::crypto::AesKey;
use wxbridge_wechat::endpoint::PushEndpoint;
pub use wxbridge_wechat::endpoint::{EncryptionMode, PushFormat};

/// An invalid document: the path of the offending field and why.
#[derive(Debug, Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn field(path: String, reason: &str) -> Self {
        Self(format!("{path}: {reason}"))
    }
}

/// A secret string: usable, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The `{channel}` segment of the push URL `/wechat/{channel}`.
    pub id: String,
    /// The mini program's AppID; safe-mode envelopes must name it.
    pub app_id: String,
    /// The mini program's original id (`gh_…`), the `ToUserName` of its pushes.
    pub original_id: String,
    pub token: Secret,
    #[serde(default)]
    pub encoding_aes_key: Option<Secret>,
    pub mode: EncryptionMode,
    pub push_format: PushFormat,
    /// In separate dialog mode, the partner this channel's conversations belong to.
    #[serde(default)]
    pub partner: Option<String>,
    /// The AppSecret, for access tokens (needed by the functions that send to WeChat).
    #[serde(default)]
    pub app_secret: Option<Secret>,
}

/// How the partners share a user's WeChat conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogMode {
    /// Many partners share the one conversation of a mini program.
    Merged,
    /// Each partner has its own channel.
    Separate,
    /// Each partner has its own session inside the one mini program, as a customer-service
    /// sub-merchant; the mini program's own session is the default partner's.
    SubMerchant,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogConfig {
    pub mode: DialogMode,
    /// Put before a partner's text in merged mode; `{partner}` is its display name.
    #[serde(default = "default_sender_template")]
    pub sender_template: String,
    /// Who gets a user's message when no partner is active.
    #[serde(default)]
    pub default_partner: Option<String>,
}

impl Default for DialogConfig {
    fn default() -> Self {
        Self {
            mode: DialogMode::Merged,
            sender_template: default_sender_template(),
            default_partner: None,
        }
    }
}

fn default_sender_template() -> String {
    "【{partner}】".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
    #[serde(default)]
    pub dialog: DialogConfig,
    /// The key the app signs `session-from` values with (see README, "SessionFrom").
    #[serde(default)]
    pub session_from_secret: Option<Secret>,
    /// Where WeChat's server API is: the real one, or the local fake.
    #[serde(default = "default_wechat_api_base")]
    pub wechat_api_base: String,
    /// The typing-indicator path under `wechat_api_base`: WeChat's docs name two (protocol
    /// notes §3.3); the newer page's is the default.
    #[serde(default = "default_typing_path")]
    pub typing_path: String,
    /// How far a push's `timestamp` may be from now, in seconds; `null` turns the check
    /// off (only for replaying recorded sample events locally).
    #[serde(default = "default_timestamp_tolerance")]
    pub timestamp_tolerance_secs: Option<u64>,
    /// Lets the dispatcher download partners' images from loopback and private addresses
    /// (a local stack, tests); off by default, so a partner's URL cannot reach inside.
    #[serde(default)]
    pub allow_private_image_hosts: bool,
    /// Larger push bodies are refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// What the bridge does when WeChat's answer to a send is lost (WeChat may have
    /// delivered it; its send has no idempotency key).
    #[serde(default)]
    pub lost_send_answer: LostSendAnswer,
}

/// What to do about a send whose answer was lost — a timeout or a broken connection after
/// the request went out, a 5xx from between, or a function stopped mid-call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostSendAnswer {
    /// (default) Send it again: the user has it at least once, perhaps twice; the `sent`
    /// report says so in its `reason`.
    #[default]
    Resend,
    /// Do not send it again: the message ends `uncertain` and is reported so, and the
    /// partner decides whether to send it anew.
    Report,
}

fn default_wechat_api_base() -> String {
    "https://api.weixin.qq.com".to_owned()
}

fn default_typing_path() -> String {
    "cgi-bin/message/custom/business/typing".to_owned()
}

fn default_timestamp_tolerance() -> Option<u64> {
    Some(300)
}

const MAX_BODY_LIMIT: usize = 128 * 1024;

fn default_max_body_bytes() -> usize {
    64 * 1024
}

/// Ids of channels and partners: they appear in URLs, keys and SQS group ids.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const ID_RULE: &str = "1 to 64 characters of A-Z a-z 0-9 - _";

impl BridgeConfig {
    /// What the functions that deliver to partners need beyond the callback's needs.
    pub fn check_partners(&self) -> Result<(), ConfigError> {
        if self.partners.is_empty() {
            return Err(ConfigError::field(
                "partners".into(),
                "at least one partner is required",
            ));
        }
        let required_because = match self.dialog.mode {
            DialogMode::Merged => {
                Some("required in merged mode: it answers when no partner is active")
            }
            DialogMode::SubMerchant => {
                Some("required in sub_merchant mode: it answers the mini program's own session")
            }
            DialogMode::Separate => None,
        };
        if let (Some(why), None) = (required_because, &self.dialog.default_partner) {
            return Err(ConfigError::field("dialog.default_partner".into(), why));
        }
        Ok(())
    }

    /// The sender line put before a partner's text in merged mode (the sender template
    /// with the partner's display name).
    pub fn sender_prefix(&self, partner: &str) -> String {
        let name = self
            .partner(partner)
            .map_or(partner, |p| p.display_name.as_str());
        self.dialog.sender_template.replace("{partner}", name)
    }

    /// The sender line of a partner's texts: only in merged mode, where partners share the
    /// user's one conversation.
    pub fn sender_of(&self, partner: &str) -> Option<String> {
        (self.dialog.mode == DialogMode::Merged).then(|| self.sender_prefix(partner))
    }

    pub fn partner(&self, id: &str) -> Option<&PartnerConfig> {
        self.partners.iter().find(|p| p.id == id)
    }

    pub fn channel(&self, id: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// When a conversation of `partner` whose last message was at `last_message_at_ms`
    /// closes for idleness, if its partner has a timeout.
    pub fn idle_at(&self, partner: &str, last_message_at_ms: i64) -> Option<i64> {
        let secs = self.partner(partner)?.idle_close_after_secs?;
        Some(last_message_at_ms + i64::try_from(secs).ok()?.saturating_mul(1000))
    }

    /// Whether `from` may hand a user over to `to` (merged mode), or the rule that says no.
    pub fn may_hand_over(&self, from: &str, to: &str) -> Result<(), &'static str> {
        let Some(partner) = self.partner(from) else {
            return Err("the partner is not configured");
        };
        let allowed = match &partner.handover_to {
            Some(listed) => listed.iter().any(|p| p == to),
            None if self.dialog.default_partner.as_deref() == Some(from) => true,
            None => self.dialog.default_partner.as_deref() == Some(to),
        };
        match (allowed, &partner.handover_to) {
            (true, _) => Ok(()),
            (false, Some(_)) => Err("this partner may hand users over only to the partners its partners[].handover_to lists"),
            (false, None) => Err("a partner hands users over only back to the default partner unless its partners[].handover_to lists others"),
        }
    }

    /// Whether `partner` may act on `channel`: any channel in merged and sub-merchant mode
    /// (where it has a session in every mini program), its own in separate mode.
    pub fn may_use(&self, partner: &str, channel: &str) -> bool {
        self.dialog.mode != DialogMode::Separate
            || self
                .channel(channel)
                .is_some_and(|c| c.partner.as_deref() == Some(partner))
    }

    pub fn from_json(document: &str) -> Result<Self, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_str(document);
        let config: Self = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| ConfigError::field(e.path().to_string(), &e.inner().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.channels.is_empty() {
            return Err(ConfigError::field(
                "channels".into(),
                "at least one channel is required",
            ));
        }
        // Above this an opened push, JSON-escaped, could outgrow an SQS message (256 KiB).
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_LIMIT {
            return Err(ConfigError::field(
                "max_body_bytes".into(),
                &format!("must be from 1 to {MAX_BODY_LIMIT}"),
            ));
        }
        self.validate_partners()?;
        let mut seen = HashMap::new();
        for (index, channel) in self.channels.iter().enumerate() {
            let at = |field: &str| format!("channels[{index}].{field}");
            if !valid_id(&channel.id) {
                return Err(ConfigError::field(at("id"), ID_RULE));
            }
            if let Some(first) = seen.insert(channel.id.as_str(), index) {
                return Err(ConfigError::field(
                    at("id"),
                    &format!("duplicates channels[{first}].id"),
                ));
            }
            for (field, value) in [
                ("app_id", &channel.app_id),
                ("original_id", &channel.original_id),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError::field(at(field), "must not be empty"));
                }
            }
            if channel.token.expose().is_empty() {
                return Err(ConfigError::field(at("token"), "must not be empty"));
            }
            match (&channel.encoding_aes_key, channel.mode) {
                (Some(key), _) if AesKey::from_encoding_aes_key(key.expose()).is_err() => {
                    return Err(ConfigError::field(
                        at("encoding_aes_key"),
                        "must be 43 base64 characters",
                    ));
                }
                (None, EncryptionMode::Compatible | EncryptionMode::Safe) => {
                    return Err(ConfigError::field(
                        at("encoding_aes_key"),
                        "required when mode is compatible or safe",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The push endpoints of a deployment's channels, by channel id.
#[derive(Debug, Clone)]
pub struct Channels(HashMap<String, PushEndpoint>);

impl Channels {
    pub fn new(config: &BridgeConfig) -> Self {
        let endpoints = config
            .channels
            .iter()
            // Validation already proved every key decodes.
            .filter_map(|c| Some((c.id.clone(), c.endpoint().ok()?)))
            .collect();
        Self(endpoints)
    }

    pub fn get(&self, id: &str) -> Option<&PushEndpoint> {
        self.0.get(id)
    }
}

impl ChannelConfig {
    /// What WeChat signs and encrypts this channel's pushes with.
    pub fn endpoint(&self) -> Result<PushEndpoint, wxbridge_wechat::crypto::CryptoError> {
        PushEndpoint::new(
            &self.id,
            &self.app_id,
            &self.original_id,
            self.token.expose(),
            self.encoding_aes_key.as_ref().map(Secret::expose),
            self.mode,
            self.push_format,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(channel: &str) -> String {
        format!(r#"{{"channels":[{channel}]}}"#)
    }

    const GOOD: &str = r#"{"id":"mp-demo","app_id":"wxba5fad812f8e6fb9","original_id":"gh_97417a04a28d",
        "token":"AAAAA","encoding_aes_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mode":"safe","push_format":"json"}"#;

    fn error_of(document: &str) -> String {
        BridgeConfig::from_json(document).unwrap_err().to_string()
    }

    #[test]
    fn a_good_document_loads_with_defaults() {
        let config = BridgeConfig::from_json(&document(GOOD)).unwrap();
        assert_eq!(config.timestamp_tolerance_secs, Some(300));
        assert_eq!(config.max_body_bytes, 65536);
        assert!(Channels::new(&config).get("mp-demo").unwrap().key.is_some());
    }

    #[test]
    fn null_tolerance_turns_the_check_off() {
        let config = BridgeConfig::from_json(&format!(
            r#"{{"channels":[{GOOD}],"timestamp_tolerance_secs":null}}"#
        ))
        .unwrap();
        assert_eq!(config.timestamp_tolerance_secs, None);
    }

    #[test]
    fn errors_name_the_field() {
        assert!(error_of(&document(
            &GOOD.replace(r#""mode":"safe""#, r#""mode":"secret""#)
        ))
        .contains("channels[0].mode"));
        assert!(error_of(&document(&GOOD.replace(r#""token":"AAAAA","#, ""))).contains("token"));
        assert!(error_of(&document(&GOOD.replace("mp-demo", "mp demo"))).contains("channels[0].id"));
        assert!(error_of(&document(
            &GOOD.replace("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "short")
        ))
        .contains("channels[0].encoding_aes_key"));
        assert!(error_of(&document(
            &GOOD.replace(r#""mode":"safe""#, r#""mode":"safe","colour":"red""#)
        ))
        .contains("colour"));
        assert!(error_of(&format!(r#"{{"channels":[{GOOD},{GOOD}]}}"#))
            .contains("channels[1].id: duplicates channels[0].id"));
        assert!(error_of(r#"{"channels":[]}"#).contains("channels"));
    }

    #[test]
    fn safe_mode_requires_a_key() {
        let without_key = GOOD.replace(
            r#""encoding_aes_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","#,
            "",
        );
        assert!(
            error_of(&document(&without_key)).contains("channels[0].encoding_aes_key: required")
        );
        let plaintext = without_key.replace(r#""mode":"safe""#, r#""mode":"plaintext""#);
        assert!(BridgeConfig::from_json(&document(&plaintext)).is_ok());
    }

    const PARTNERS: &str = r#""partners":[
        {"id":"platform","display_name":"Trip Service","webhook_url":"https://desk.example/hooks","signing_secret":"platform-secret-0123"},
        {"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://127.0.0.1:9/h","signing_secret":"hotel-secret-456789"}]"#;

    fn with_partners(extra: &str) -> String {
        format!(r#"{{"channels":[{GOOD}],{PARTNERS}{extra}}}"#)
    }

    #[test]
    fn partners_and_dialog_load_with_defaults() {
        let config = BridgeConfig::from_json(&with_partners("")).unwrap();
        assert_eq!(config.dialog.mode, DialogMode::Merged);
        assert_eq!(config.dialog.sender_template, "【{partner}】");
        assert_eq!(
            config.partner("hotel-9").unwrap().display_name,
            "Hotel Lotus"
        );
        let merged = with_partners(
            r#","dialog":{"mode":"merged","default_partner":"platform","sender_template":"[{partner}] "}"#,
        );
        assert_eq!(
            BridgeConfig::from_json(&merged)
                .unwrap()
                .dialog
                .default_partner
                .as_deref(),
            Some("platform")
        );
    }

    #[test]
    fn partner_and_dialog_errors_name_the_field() {
        let cases = [
            (
                with_partners(r#","dialog":{"mode":"merged","default_partner":"nobody"}"#),
                "dialog.default_partner: names no partner",
            ),
            (
                with_partners(r#","dialog":{"mode":"merged","sender_template":"no name"}"#),
                "dialog.sender_template",
            ),
            (
                with_partners(r#","dialog":{"mode":"separate"}"#),
                "channels[0].partner: required in separate dialog mode",
            ),
            (
                with_partners(r#","session_from_secret":"short""#),
                "session_from_secret",
            ),
            (
                with_partners("").replace("https://desk.example/hooks", "ftp://x"),
                "partners[0].webhook_url",
            ),
            (
                with_partners("").replace("hotel-secret-456789", "short"),
                "partners[1].signing_secret",
            ),
            (
                with_partners("").replace("hotel-9", "platform"),
                "partners[1].id: duplicates partners[0].id",
            ),
            (
                with_partners("")
                    .replace(r#""display_name":"Trip Service""#, r#""display_name":" ""#),
                "partners[0].display_name",
            ),
        ];
        for (document, expected) in cases {
            let error = error_of(&document);
            assert!(error.contains(expected), "{error} should name {expected}");
        }
        let owned = GOOD.replace(
            r#""push_format":"json""#,
            r#""push_format":"json","partner":"hotel-9""#,
        );
        let separate =
            format!(r#"{{"channels":[{owned}],{PARTNERS},"dialog":{{"mode":"separate"}}}}"#);
        assert!(BridgeConfig::from_json(&separate).is_ok());
        let unknown = separate.replace(r#""partner":"hotel-9""#, r#""partner":"ghost""#);
        assert!(error_of(&unknown).contains("channels[0].partner: names no partner"));
    }

    #[test]
    fn in_sub_merchant_mode_every_partner_but_the_default_declares_its_sub_merchant() {
        let hotel = r#""signing_secret":"hotel-secret-456789""#;
        let declared = format!(
            r#"{hotel},"sub_merchant":{{"account_name":"hotel_lotus_9","nickname":"HotelLotus","avatar_url":"https://cdn.example/lotus.png"}}"#
        );
        let mode = r#","dialog":{"mode":"sub_merchant","default_partner":"platform"}"#;
        let config =
            BridgeConfig::from_json(&with_partners(mode).replace(hotel, &declared)).unwrap();
        assert_eq!(config.dialog.mode, DialogMode::SubMerchant);
        assert!(config.may_use("hotel-9", "mp-demo"));
        assert_eq!(config.sender_of("hotel-9"), None, "its own nickname shows");
        assert!(config.check_partners().is_ok());
        let cases = [
            (
                with_partners(mode),
                "partners[1].sub_merchant: required in sub_merchant mode",
            ),
            (
                with_partners("").replace(hotel, &declared),
                "partners[1].sub_merchant: only in sub_merchant dialog mode",
            ),
            (
                with_partners(mode)
                    .replace(hotel, &declared)
                    .replace(r#""default_partner":"platform""#, r#""default_partner":"hotel-9""#)
                    .replace(r#""signing_secret":"platform-secret-0123""#, r#""signing_secret":"platform-secret-0123","sub_merchant":{"account_name":"trip_service","nickname":"TripService","avatar_url":"https://cdn/t.png"}"#),
                "partners[1].sub_merchant: the default partner answers the mini program's own session",
            ),
            (
                with_partners(mode).replace(hotel, &declared.replace("HotelLotus", "H")),
                "partners[1].sub_merchant.nickname",
            ),
        ];
        for (document, expected) in cases {
            let error = error_of(&document);
            assert!(error.contains(expected), "{error} should name {expected}");
        }
        let no_default = BridgeConfig::from_json(
            &with_partners(r#","dialog":{"mode":"sub_merchant"}"#).replace(hotel, &declared),
        );
        let no_default = no_default.unwrap_err().to_string();
        assert!(
            no_default.contains("partners[0].sub_merchant: required"),
            "{no_default}"
        );
    }

    #[test]
    fn delivering_functions_need_partners_and_a_default() {
        let no_partners = BridgeConfig::from_json(&document(GOOD)).unwrap();
        assert!(no_partners
            .check_partners()
            .unwrap_err()
            .to_string()
            .contains("partners"));
        let no_default = BridgeConfig::from_json(&with_partners("")).unwrap();
        assert!(no_default
            .check_partners()
            .unwrap_err()
            .to_string()
            .contains("dialog.default_partner"));
        let ready = with_partners(r#","dialog":{"mode":"merged","default_partner":"platform"}"#);
        assert!(BridgeConfig::from_json(&ready)
            .unwrap()
            .check_partners()
            .is_ok());
    }

    #[test]
    fn secrets_do_not_print() {
        let config = BridgeConfig::from_json(&with_partners(
            r#","session_from_secret":"session-from-secret-1""#,
        ))
        .unwrap();
        let printed = format!("{config:?} {:?}", Channels::new(&config));
        for secret in [
            "AAAAA",
            "platform-secret",
            "hotel-secret",
            "session-from-secret",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
