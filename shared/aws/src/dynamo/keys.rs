//! Every DynamoDB key of the bridge's one table, built here and nowhere else.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | channel user | `USER#{channel}#{openid}` | `STATE` |
//! | conversation | `USER#{channel}#{openid}` | `CONV#{conversation id}` |
//! | message | `CONV#{conversation id}` | `MSG#{created_at_ms, 13 digits}#{message id}` |
//! | inbound dedupe record | `DEDUPE#{dedupe key}` | `DEDUPE` |
//! | access token and its refresh lease | `TOKEN#{appid}` | `TOKEN` |
//! | API request nonce (TTL) | `NONCE#{partner}#{nonce}` | `NONCE` |
//! | a partner's client message id | `CLIENT#{partner}#{client message id}` | `CLIENT` |
//! | a partner's push id | `PUSH#{partner}#{push id}` | `PUSH` |
//! | a partner's applied hand-over | `HANDOVER#{partner}#{handover id}` | `HANDOVER` |
//! | an uploaded image's media id (TTL) | `MEDIA#{appid}#{hex SHA-256 of the URL or bytes}` | `MEDIA` |
//! | a partner's registered sub-merchant | `SUBMERCHANT#{channel}` | `PARTNER#{partner}` |
//! | the message that carried a user's image (TTL) | `INIMAGE#{channel}#{media id}` | `INIMAGE` |
//!
//! Conversations live in their user's partition, so a user's conversations are one query;
//! messages sort by time inside their conversation, so history is one query, newest first.
//! `gsi1` finds a bound app user's channel users: `gsi1pk = APPUSER#{app user id}`.
//! `gsi2` finds conversations due to close for idleness: a conversation whose partner has
//! an idle timeout carries `gsi2pk = IDLE#{shard}` (one of [`IDLE_SHARDS`], by its id, so
//! no one partition takes every write) and `gsi2sk` = its deadline (13 digits).

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI1: &str = "gsi1";
/// The TTL attribute (seconds since the epoch).
pub const EXPIRES_AT: &str = "expires_at";

pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const GSI2: &str = "gsi2";
/// How many partitions the idle index spreads over.
pub const IDLE_SHARDS: u32 = 8;

/// The idle index partition of a conversation: a stable hash of its id.
pub fn idle_shard_pk(conversation_id: &str) -> String {
    let hash = conversation_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    idle_pk(hash % IDLE_SHARDS)
}

pub fn idle_pk(shard: u32) -> String {
    format!("IDLE#{shard}")
}

/// A deadline as the idle index sorts it.
pub fn idle_sk(at_ms: i64) -> String {
    format!("{at_ms:013}")
}

pub fn user_pk(channel: &str, openid: &str) -> String {
    format!("USER#{channel}#{openid}")
}

pub const USER_SK: &str = "STATE";

pub fn conversation_sk(conversation_id: &str) -> String {
    format!("CONV#{conversation_id}")
}

pub fn message_pk(conversation_id: &str) -> String {
    format!("CONV#{conversation_id}")
}

pub fn message_sk(created_at_ms: i64, message_id: &str) -> String {
    format!("MSG#{created_at_ms:013}#{message_id}")
}

pub fn dedupe_pk(dedupe_key: &str) -> String {
    format!("DEDUPE#{dedupe_key}")
}

pub const DEDUPE_SK: &str = "DEDUPE";

pub fn token_pk(appid: &str) -> String {
    format!("TOKEN#{appid}")
}

pub const TOKEN_SK: &str = "TOKEN";

pub fn nonce_pk(partner: &str, nonce: &str) -> String {
    format!("NONCE#{partner}#{nonce}")
}

pub const NONCE_SK: &str = "NONCE";

pub fn client_message_pk(partner: &str, client_message_id: &str) -> String {
    format!("CLIENT#{partner}#{client_message_id}")
}

pub const CLIENT_SK: &str = "CLIENT";

pub fn push_pk(partner: &str, push_id: &str) -> String {
    format!("PUSH#{partner}#{push_id}")
}

pub const PUSH_SK: &str = "PUSH";

pub fn handover_pk(partner: &str, handover_id: &str) -> String {
    format!("HANDOVER#{partner}#{handover_id}")
}

pub const HANDOVER_SK: &str = "HANDOVER";

pub fn media_pk(appid: &str, key: &str) -> String {
    format!("MEDIA#{appid}#{key}")
}

pub const MEDIA_SK: &str = "MEDIA";

pub fn inbound_image_pk(channel: &str, media_id: &str) -> String {
    format!("INIMAGE#{channel}#{media_id}")
}

pub const INBOUND_IMAGE_SK: &str = "INIMAGE";

/// A channel's sub-merchants share a partition, so the mapping is one query.
pub fn sub_merchants_pk(channel: &str) -> String {
    format!("SUBMERCHANT#{channel}")
}

pub const SUB_MERCHANT_SK_PREFIX: &str = "PARTNER#";

pub fn sub_merchant_sk(partner: &str) -> String {
    format!("{SUB_MERCHANT_SK_PREFIX}{partner}")
}

pub fn app_user_gsi1pk(app_user_id: &str) -> String {
    format!("APPUSER#{app_user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_sort_by_time() {
        let early = message_sk(999, "b");
        let late = message_sk(1_764_150_000_000, "a");
        assert!(early < late, "{early} {late}");
    }
}
