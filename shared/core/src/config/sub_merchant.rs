//! A partner's customer-service sub-merchant (客服子商户, protocol notes §10): its own
//! session inside the one mini program, under its own nickname and avatar.
//!
//! Declared here; registered with WeChat by the operator's command (`wxbridge-admin
//! sub-merchants register`), which keeps the `business_id` WeChat gave in the table. WeChat
//! refuses names and nicknames outside its rules, so the configuration refuses them first,
//! where the message can name the field.

use super::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubMerchantConfig {
    /// WeChat's unique key of the sub-merchant: 6 to 30 of A-Z a-z 0-9 _ (case-sensitive).
    /// Registration looks it up before registering, so it is never registered twice.
    pub account_name: String,
    /// What the user sees as the sender: 4 to 30 units (a Chinese character counts 2) of
    /// Chinese, English letters and digits.
    pub nickname: String,
    /// Where the avatar image is (https; JPG or PNG): uploaded as temporary media when the
    /// sub-merchant is registered or its avatar changed.
    pub avatar_url: String,
}

impl SubMerchantConfig {
    pub(super) fn validate(&self, at: impl Fn(&str) -> String) -> Result<(), ConfigError> {
        let name = &self.account_name;
        if !(6..=30).contains(&name.len())
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ConfigError::field(
                at("account_name"),
                "6 to 30 characters of A-Z a-z 0-9 _",
            ));
        }
        if !(4..=30).contains(&nickname_units(&self.nickname))
            || !self.nickname.chars().all(nickname_char)
        {
            return Err(ConfigError::field(
                at("nickname"),
                "4 to 30 units (a Chinese character counts 2) of Chinese, English letters and digits",
            ));
        }
        let url = &self.avatar_url;
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            return Err(ConfigError::field(
                at("avatar_url"),
                "must be an http(s) URL",
            ));
        }
        Ok(())
    }
}

/// WeChat's length of a nickname: a Chinese character counts 2, a letter or digit 1.
pub fn nickname_units(nickname: &str) -> usize {
    nickname
        .chars()
        .map(|c| if c.is_ascii() { 1 } else { 2 })
        .sum()
}

fn nickname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ('\u{4e00}'..='\u{9fff}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(account_name: &str, nickname: &str, avatar_url: &str) -> Result<(), String> {
        SubMerchantConfig {
            account_name: account_name.into(),
            nickname: nickname.into(),
            avatar_url: avatar_url.into(),
        }
        .validate(|f| format!("partners[1].sub_merchant.{f}"))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn wechats_rules_for_names_and_nicknames_are_checked_at_start() {
        assert_eq!(
            check("hotel_lotus_9", "HotelLotus", "https://cdn/l.png"),
            Ok(())
        );
        assert_eq!(check("hotel_9", "莲花酒店", "https://cdn/l.png"), Ok(()));
        for (name, nickname, url, field) in [
            ("hotel", "HotelLotus", "https://a", "account_name"),
            ("hotel-lotus", "HotelLotus", "https://a", "account_name"),
            (&"h".repeat(31), "HotelLotus", "https://a", "account_name"),
            ("hotel_9", "Hot", "https://a", "nickname"),
            ("hotel_9", "莲", "https://a", "nickname"),
            ("hotel_9", "Hotel Lotus", "https://a", "nickname"),
            ("hotel_9", &"莲".repeat(16), "https://a", "nickname"),
            ("hotel_9", "HotelLotus", "ftp://a", "avatar_url"),
        ] {
            let error = check(name, nickname, url).unwrap_err();
            assert!(
                error.contains(&format!("partners[1].sub_merchant.{field}")),
                "{name} {nickname} {url}: {error}"
            );
        }
        assert_eq!(nickname_units("莲花Hotel"), 9);
    }
}
