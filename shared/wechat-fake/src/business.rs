//! Customer-service sub-merchants (客服子商户, protocol notes §10) as the fake keeps them:
//! registered per app under a unique account name, each with its own session per user.
//!
//! Rules, from the management pages (`api_registerbusiness`, `api_updatebusiness`,
//! `api_getbusiness`, `api_listbusiness`):
//! - `account_name`: 6 to 30 of A-Z a-z 0-9 _ (case-sensitive), once per app (45070);
//! - `nickname`: 4 to 30 units, a Chinese character counting 2, of Chinese, English
//!   letters and digits (45078);
//! - `icon_media_id`: a live temporary media (40007) holding an image (40004);
//! - update: an unknown `business_id` is 45071; an empty `nickname` or `icon_media_id`
//!   leaves it as it is;
//! - get: by `business_id` or `account_name`, 45071 when there is none;
//! - list: `offset` from 0, `count` at most 200; no total: a short page is the last.
//!
//! **Open points** (no page gives them): an `account_name` outside its rule, `get` naming
//! both or neither key, and `count` over 200 answer 40097 (invalid args, the code WeChat's
//! community reports for malformed business arguments); an app holds at most
//! [`MAX_BUSINESSES`] sub-merchants (45077 after); a send or typing naming a `businessid`
//! the app has not registered answers 45071. The window and quota of §3.2 count per
//! session: each sub-merchant's session with a user is independent, as the guide says of
//! the sessions themselves.

use crate::rules::WxError;
use serde_json::{json, Value};

/// How many sub-merchants an app may register before 45077 (**Open point**: 45077 is
/// documented, its number is not).
pub const MAX_BUSINESSES: usize = 10_000;
/// The most a `business/list` page holds.
pub const MAX_LIST_COUNT: u64 = 200;

pub mod errcode {
    use super::WxError;

    pub const INVALID_ARGS: WxError = WxError::new(40097, "invalid args");
    pub const ACCOUNT_NAME_TAKEN: WxError = WxError::new(
        45070,
        "business already exists, one account_name for one business",
    );
    pub const NO_SUCH_BUSINESS: WxError = WxError::new(45071, "business not exist");
    pub const TOO_MANY_BUSINESSES: WxError = WxError::new(45077, "business count reach limit");
    pub const INVALID_NICKNAME: WxError = WxError::new(45078, "nickname is illegal!");
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Business {
    pub business_id: u64,
    pub account_name: String,
    pub nickname: String,
    pub icon_media_id: String,
}

impl Business {
    pub fn to_json(&self) -> Value {
        json!({
            "business_id": self.business_id,
            "account_name": self.account_name,
            "nickname": self.nickname,
            "icon_media_id": self.icon_media_id,
        })
    }
}

/// An app's sub-merchants, in the order registered.
#[derive(Debug, Default)]
pub struct Businesses(Vec<Business>);

pub fn check_account_name(name: &str) -> Result<(), WxError> {
    let fits = (6..=30).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if fits {
        Ok(())
    } else {
        Err(errcode::INVALID_ARGS)
    }
}

pub fn check_nickname(nickname: &str) -> Result<(), WxError> {
    let units: usize = nickname
        .chars()
        .map(|c| if c.is_ascii() { 1 } else { 2 })
        .sum();
    let allowed = nickname
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ('\u{4e00}'..='\u{9fff}').contains(&c));
    if (4..=30).contains(&units) && allowed {
        Ok(())
    } else {
        Err(errcode::INVALID_NICKNAME)
    }
}

impl Businesses {
    /// Registers a sub-merchant (its fields already checked); its new `business_id`.
    pub fn register(
        &mut self,
        account_name: &str,
        nickname: &str,
        icon_media_id: &str,
    ) -> Result<u64, WxError> {
        if self.0.iter().any(|b| b.account_name == account_name) {
            return Err(errcode::ACCOUNT_NAME_TAKEN);
        }
        if self.0.len() >= MAX_BUSINESSES {
            return Err(errcode::TOO_MANY_BUSINESSES);
        }
        let business_id = self.0.len() as u64 + 1;
        self.0.push(Business {
            business_id,
            account_name: account_name.to_owned(),
            nickname: nickname.to_owned(),
            icon_media_id: icon_media_id.to_owned(),
        });
        Ok(business_id)
    }

    pub fn get_mut(&mut self, business_id: u64) -> Result<&mut Business, WxError> {
        self.0
            .iter_mut()
            .find(|b| b.business_id == business_id)
            .ok_or(errcode::NO_SUCH_BUSINESS)
    }

    pub fn by_id(&self, business_id: u64) -> Option<&Business> {
        self.0.iter().find(|b| b.business_id == business_id)
    }

    pub fn by_account_name(&self, account_name: &str) -> Option<&Business> {
        self.0.iter().find(|b| b.account_name == account_name)
    }

    pub fn page(&self, offset: u64, count: u64) -> Result<Vec<Value>, WxError> {
        if count > MAX_LIST_COUNT {
            return Err(errcode::INVALID_ARGS);
        }
        Ok(self
            .0
            .iter()
            .skip(offset as usize)
            .take(count as usize)
            .map(Business::to_json)
            .collect())
    }

    pub fn all(&self) -> &[Business] {
        &self.0
    }
}

/// WeChat's tables call `business_id` a string and its examples write a number: either.
pub fn loose_id(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_are_unique_per_app_and_ids_count_up() {
        let mut businesses = Businesses::default();
        assert_eq!(
            businesses.register("hotel_lotus", "HotelLotus", "m1"),
            Ok(1)
        );
        assert_eq!(businesses.register("sky_air_2", "SkyAir", "m2"), Ok(2));
        assert_eq!(
            businesses.register("hotel_lotus", "Other", "m3"),
            Err(errcode::ACCOUNT_NAME_TAKEN)
        );
        assert_eq!(
            businesses.get_mut(3).unwrap_err(),
            errcode::NO_SUCH_BUSINESS
        );
        assert_eq!(businesses.page(1, 200).unwrap().len(), 1);
        assert_eq!(businesses.page(0, 201), Err(errcode::INVALID_ARGS));
    }

    #[test]
    fn names_and_nicknames_follow_the_documented_rules() {
        assert!(check_account_name("hotel_9").is_ok());
        assert!(check_account_name("hotel").is_err());
        assert!(check_account_name("hotel-lotus").is_err());
        assert!(check_nickname("莲花酒店").is_ok());
        assert_eq!(check_nickname("Hot"), Err(errcode::INVALID_NICKNAME));
        assert_eq!(
            check_nickname("Hotel Lotus"),
            Err(errcode::INVALID_NICKNAME)
        );
        assert_eq!(loose_id(&json!("12")), Some(12));
        assert_eq!(loose_id(&json!(12)), Some(12));
        assert_eq!(loose_id(&json!("x")), None);
    }
}
