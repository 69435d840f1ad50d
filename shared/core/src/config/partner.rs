//! Partners: who answers users, how they are reached, and what the configuration requires
//! of each (checked at start, with the offending field's path).

use super::{valid_id, BridgeConfig, ConfigError, DialogMode, Secret, SubMerchantConfig, ID_RULE};
use crate::model::Content;
use serde::Deserialize;
use wxbridge_wechat::subscribe;

/// A party on the app side who answers users: the platform's desk, a hotel, an airline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    pub id: String,
    /// Shown to the user in merged mode, through `dialog.sender_template`.
    pub display_name: String,
    /// Where the bridge POSTs signed webhooks.
    pub webhook_url: String,
    /// Signs the webhooks (and verifies the partner's API requests).
    pub signing_secret: Secret,
    /// May bind WeChat users to app users through the API (`PUT /v1/bindings/...`).
    /// Bindings are shared by every partner, so only the platform's own desk should.
    #[serde(default)]
    pub can_bind: bool,
    /// The subscribe-message templates this partner's pushes may use: a user's grant is
    /// for one template, so one partner must not spend grants meant for another's.
    #[serde(default)]
    pub subscribe_templates: Vec<String>,
    /// Pushes leave the customer-service sends of a user's window to the partners' replies
    /// waiting for that user (queued, held or being sent): a push takes a send only when
    /// more are left than replies wait. Default `true`.
    #[serde(default = "default_true")]
    pub held_replies_first: bool,
    /// A reply that finds the window closed goes on as a subscribe message with this
    /// template (if the user granted one), else stays in the app inbox as `undeliverable`.
    /// Without it such a reply ends `window_closed`.
    #[serde(default)]
    pub reply_fallback: Option<ReplyFallback>,
    /// In sub-merchant dialog mode, the partner's own session in the mini program (every
    /// partner but the default one, whose is the mini program's own session).
    #[serde(default)]
    pub sub_merchant: Option<SubMerchantConfig>,
    /// Merged mode: the partners this one may hand a user over to. By default the default
    /// partner (the platform's own service) may hand to any partner, and any other partner
    /// only back to the default one.
    #[serde(default)]
    pub handover_to: Option<Vec<String>>,
    /// Sent when a user enters the chat from this partner's page (at most 2: the entry
    /// allows 2 sends): text, link or mini-program card, as in a reply.
    #[serde(default)]
    pub welcome: Vec<Content>,
    /// Closes a conversation nobody wrote in for this long (`conversation.closed`, reason
    /// `idle`); default off. 60 s to 30 days.
    #[serde(default)]
    pub idle_close_after_secs: Option<u64>,
}

fn default_true() -> bool {
    true
}

/// How a reply the window no longer allows becomes a subscribe message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyFallback {
    /// A subscribe template of the mini program the user granted (`accept` in the pop-up).
    pub template_id: String,
    /// The template field the reply's text goes into, e.g. `thing1`.
    pub field: String,
    /// The most characters that field takes; by default by its kind (`thing` 20,
    /// `character_string` / `number` / `letter` 32, `name` 10, `phrase` / `symbol` 5, else
    /// 20). A longer text is cut and ends with `…`.
    #[serde(default)]
    pub max_chars: Option<usize>,
    /// Further fields of the template, fixed: `{"name2": "{partner}"}` (`{partner}` becomes
    /// the partner's display name).
    #[serde(default)]
    pub data: std::collections::BTreeMap<String, String>,
    /// The mini-program page the notice opens (may carry a query).
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub miniprogram_state: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

impl ReplyFallback {
    /// How many characters the text field takes.
    pub fn limit(&self) -> usize {
        self.max_chars
            .unwrap_or_else(|| subscribe::field_limit(&self.field))
    }
}

/// A partner's welcome: at most the entry's 2 sends, each a valid text, link or card.
fn validate_welcome(welcome: &[Content], at: impl Fn(&str) -> String) -> Result<(), ConfigError> {
    if welcome.len() > 2 {
        return Err(ConfigError::field(
            at(""),
            "at most 2 messages: entering the chat allows 2 sends",
        ));
    }
    for (n, content) in welcome.iter().enumerate() {
        if matches!(content, Content::Image { .. }) {
            return Err(ConfigError::field(
                at(&format!("[{n}].type")),
                "text, link or miniprogrampage",
            ));
        }
        if let Err(error) = content.validate() {
            return Err(ConfigError::field(
                at(&format!("[{n}]")),
                &format!("{}: {}", error.field, error.reason),
            ));
        }
    }
    Ok(())
}

impl BridgeConfig {
    pub(super) fn validate_partners(&self) -> Result<(), ConfigError> {
        for (index, partner) in self.partners.iter().enumerate() {
            let at = |field: &str| format!("partners[{index}].{field}");
            if !valid_id(&partner.id) {
                return Err(ConfigError::field(at("id"), ID_RULE));
            }
            if let Some(first) = self.partners[..index]
                .iter()
                .position(|p| p.id == partner.id)
            {
                return Err(ConfigError::field(
                    at("id"),
                    &format!("duplicates partners[{first}].id"),
                ));
            }
            if partner.display_name.trim().is_empty() {
                return Err(ConfigError::field(at("display_name"), "must not be empty"));
            }
            let url = partner.webhook_url.as_str();
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.contains(char::is_whitespace)
            {
                return Err(ConfigError::field(
                    at("webhook_url"),
                    "must be an http(s) URL",
                ));
            }
            if partner.signing_secret.expose().len() < 16 {
                return Err(ConfigError::field(
                    at("signing_secret"),
                    "must be at least 16 characters",
                ));
            }
            if let Some(fallback) = &partner.reply_fallback {
                let at = |field: &str| format!("partners[{index}].reply_fallback.{field}");
                if fallback.template_id.trim().is_empty() {
                    return Err(ConfigError::field(at("template_id"), "must not be empty"));
                }
                if fallback.field.trim().is_empty() {
                    return Err(ConfigError::field(at("field"), "must not be empty"));
                }
                if fallback.data.contains_key(&fallback.field) {
                    return Err(ConfigError::field(
                        at("data"),
                        "must not set the field the text goes into",
                    ));
                }
                if fallback.limit() == 0 {
                    return Err(ConfigError::field(at("max_chars"), "must be at least 1"));
                }
                if let Some(state) = &fallback.miniprogram_state {
                    if !subscribe::MINIPROGRAM_STATES.contains(&state.as_str()) {
                        return Err(ConfigError::field(
                            at("miniprogram_state"),
                            "developer, trial or formal",
                        ));
                    }
                }
                if let Some(lang) = &fallback.lang {
                    if !subscribe::LANGS.contains(&lang.as_str()) {
                        return Err(ConfigError::field(
                            at("lang"),
                            "zh_CN, en_US, zh_HK or zh_TW",
                        ));
                    }
                }
            }
        }
        self.validate_sub_merchants()?;
        let known = |id: &str| self.partner(id).is_some();
        for (index, partner) in self.partners.iter().enumerate() {
            validate_welcome(&partner.welcome, |field| {
                format!("partners[{index}].welcome{field}")
            })?;
            if partner
                .idle_close_after_secs
                .is_some_and(|secs| !(60..=30 * 24 * 3600).contains(&secs))
            {
                return Err(ConfigError::field(
                    format!("partners[{index}].idle_close_after_secs"),
                    "from 60 s to 30 days",
                ));
            }
            for (n, to) in partner.handover_to.iter().flatten().enumerate() {
                if !known(to) || *to == partner.id {
                    return Err(ConfigError::field(
                        format!("partners[{index}].handover_to[{n}]"),
                        "names another configured partner",
                    ));
                }
            }
        }
        if let Some(default) = &self.dialog.default_partner {
            if !known(default) {
                return Err(ConfigError::field(
                    "dialog.default_partner".into(),
                    "names no partner",
                ));
            }
        }
        if !self.dialog.sender_template.contains("{partner}") {
            return Err(ConfigError::field(
                "dialog.sender_template".into(),
                "must contain {partner}",
            ));
        }
        for (index, channel) in self.channels.iter().enumerate() {
            let at = format!("channels[{index}].partner");
            match (&channel.partner, self.dialog.mode) {
                (Some(partner), _) if !known(partner) => {
                    return Err(ConfigError::field(at, "names no partner"))
                }
                (None, DialogMode::Separate) => {
                    return Err(ConfigError::field(at, "required in separate dialog mode"))
                }
                _ => {}
            }
        }
        if let Some(secret) = &self.session_from_secret {
            if secret.expose().len() < 16 {
                return Err(ConfigError::field(
                    "session_from_secret".into(),
                    "must be at least 16 characters",
                ));
            }
        }
        Ok(())
    }

    /// In sub-merchant mode every partner but the default one declares its sub-merchant,
    /// each under its own account name; in other modes none does (it would be ignored).
    fn validate_sub_merchants(&self) -> Result<(), ConfigError> {
        let in_mode = self.dialog.mode == DialogMode::SubMerchant;
        let default = self.dialog.default_partner.as_deref();
        for (index, partner) in self.partners.iter().enumerate() {
            let at = |field: &str| format!("partners[{index}].sub_merchant{field}");
            let is_default = default == Some(partner.id.as_str());
            let Some(sub_merchant) = &partner.sub_merchant else {
                if in_mode && !is_default {
                    return Err(ConfigError::field(
                        at(""),
                        "required in sub_merchant mode: the partner's own session",
                    ));
                }
                continue;
            };
            if !in_mode {
                return Err(ConfigError::field(
                    at(""),
                    "only in sub_merchant dialog mode",
                ));
            }
            if is_default {
                return Err(ConfigError::field(
                    at(""),
                    "the default partner answers the mini program's own session and has none",
                ));
            }
            sub_merchant.validate(|field| at(&format!(".{field}")))?;
            if let Some(first) = self.partners[..index].iter().position(|p| {
                p.sub_merchant
                    .as_ref()
                    .is_some_and(|s| s.account_name == sub_merchant.account_name)
            }) {
                return Err(ConfigError::field(
                    at(".account_name"),
                    &format!("duplicates partners[{first}].sub_merchant.account_name"),
                ));
            }
        }
        Ok(())
    }
}
