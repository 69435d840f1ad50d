//! A partner's sub-merchant as registered with WeChat: the `business_id` WeChat gave it in
//! one mini program, and what it was registered with (to tell when to update it).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubMerchant {
    pub channel: String,
    pub partner: String,
    /// WeChat's id of the sub-merchant: the `BusinessId` of its session's pushes and the
    /// `businessid` of sends into it.
    pub business_id: u64,
    pub account_name: String,
    pub nickname: String,
    /// Hex SHA-256 of the avatar's bytes as last uploaded.
    pub avatar_sha256: String,
    pub updated_at_ms: i64,
}
