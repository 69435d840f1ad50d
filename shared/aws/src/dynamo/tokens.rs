//! Access tokens and their refresh leases in DynamoDB (one item per app).

use super::keys;
use super::keys::{PK, SK};
use super::{condition_failed, n, s, Failure, Table};
use aws_sdk_dynamodb::types::AttributeValue;
use wxbridge_core::ports::tokens::{
    CachedToken, TokenStore, TokenStoreError, LEASE_MS, REFRESH_MARGIN_MS,
};

/// The token cache ([`TokenStore`]) in the table.
#[derive(Debug, Clone)]
pub struct DynamoTokenStore(pub(super) Table);

impl TokenStore for DynamoTokenStore {
    async fn cached(&self, appid: &str) -> Result<Option<CachedToken>, TokenStoreError> {
        let item = self.0.get(keys::token_pk(appid), keys::TOKEN_SK).await?;
        Ok(item.and_then(|item| {
            let value = match item.get("token") {
                Some(AttributeValue::S(value)) => value.clone(),
                _ => return None,
            };
            let expires_at_ms = match item.get("expires_at_ms") {
                Some(AttributeValue::N(n)) => n.parse().ok()?,
                _ => return None,
            };
            Some(CachedToken {
                value,
                expires_at_ms,
            })
        }))
    }

    async fn try_lease(
        &self,
        appid: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<bool, TokenStoreError> {
        let result = self
            .0
            .client
            .update_item()
            .table_name(&self.0.name)
            .key(PK, s(keys::token_pk(appid)))
            .key(SK, s(keys::TOKEN_SK))
            .update_expression("SET #owner = :owner, #until = :until")
            // Free, and no fresh token saved meanwhile by the last holder.
            .condition_expression(
                "(attribute_not_exists(#until) OR #until < :now) \
                 AND (attribute_not_exists(#expires) OR #expires < :stale_before)",
            )
            .expression_attribute_names("#owner", "lease_owner")
            .expression_attribute_names("#until", "lease_until_ms")
            .expression_attribute_names("#expires", "expires_at_ms")
            .expression_attribute_values(":stale_before", n(now_ms + REFRESH_MARGIN_MS))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(now_ms + LEASE_MS))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match result {
            // Read back: the lease is ours only if we are its owner now (a fence that costs
            // one read on the rare refresh path).
            Ok(_) => {
                let item = self.0.get(keys::token_pk(appid), keys::TOKEN_SK).await?;
                Ok(
                    matches!(item.as_ref().and_then(|i| i.get("lease_owner")), Some(AttributeValue::S(o)) if o == owner),
                )
            }
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(Failure::from_sdk(error).into()),
        }
    }

    async fn save(&self, appid: &str, token: &CachedToken) -> Result<(), TokenStoreError> {
        self.0
            .client
            .update_item()
            .table_name(&self.0.name)
            .key(PK, s(keys::token_pk(appid)))
            .key(SK, s(keys::TOKEN_SK))
            .update_expression("SET #token = :token, #expires = :expires REMOVE #owner, #until")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#expires", "expires_at_ms")
            .expression_attribute_names("#owner", "lease_owner")
            .expression_attribute_names("#until", "lease_until_ms")
            .expression_attribute_values(":token", s(&token.value))
            .expression_attribute_values(":expires", n(token.expires_at_ms))
            .send()
            .await
            .map(drop)
            .map_err(|e| Failure::from_sdk(e).into())
    }

    async fn expire_if(&self, appid: &str, failed: &str) -> Result<(), TokenStoreError> {
        let key = (keys::token_pk(appid), keys::TOKEN_SK);
        Ok(self
            .0
            .expire_if(key, "expires_at_ms", "token", failed)
            .await?)
    }
}
