//! Nonces of the partner API's signed requests in DynamoDB, kept until their TTL.

use super::keys::{self, EXPIRES_AT, PK, SK};
use super::{applied, n, s, Table};
use wxbridge_core::ports::nonces::{NonceError, NonceStore};

/// The nonce store ([`NonceStore`]) in the table.
#[derive(Debug, Clone)]
pub struct DynamoNonceStore(pub(super) Table);

impl NonceStore for DynamoNonceStore {
    async fn claim(
        &self,
        partner: &str,
        nonce: &str,
        claimant: &str,
        expires_at_secs: i64,
    ) -> Result<bool, NonceError> {
        let result = self
            .0
            .client
            .put_item()
            .table_name(&self.0.name)
            .item(PK, s(keys::nonce_pk(partner, nonce)))
            .item(SK, s(keys::NONCE_SK))
            .item(EXPIRES_AT, n(expires_at_secs))
            .item("claimant", s(claimant))
            // Unclaimed, or claimed by this very claimant (a write sent again).
            .condition_expression("attribute_not_exists(#pk) OR #claimant = :claimant")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#claimant", "claimant")
            .expression_attribute_values(":claimant", s(claimant))
            .send()
            .await;
        Ok(applied(result)?)
    }
}
