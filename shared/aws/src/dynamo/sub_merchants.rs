//! Partners' registered sub-merchants in DynamoDB: one item per channel and partner, in
//! one partition per channel.

use super::keys::{self, PK, SK, SUB_MERCHANT_SK_PREFIX};
use super::s;
use super::store::{item, unavailable, DynamoStore};
use wxbridge_core::model::SubMerchant;
use wxbridge_core::ports::store::{StoreError, SubMerchantStore};

impl SubMerchantStore for DynamoStore {
    async fn sub_merchants(&self, channel: &str) -> Result<Vec<SubMerchant>, StoreError> {
        self.query_prefix(keys::sub_merchants_pk(channel), SUB_MERCHANT_SK_PREFIX)
            .await
    }

    async fn put_sub_merchant(&self, sub_merchant: &SubMerchant) -> Result<(), StoreError> {
        let keys = [
            (PK, s(keys::sub_merchants_pk(&sub_merchant.channel))),
            (SK, s(keys::sub_merchant_sk(&sub_merchant.partner))),
        ];
        let put = self
            .0
            .client
            .put_item()
            .table_name(&self.0.name)
            .set_item(Some(item(sub_merchant, &keys)?));
        put.send().await.map(drop).map_err(unavailable)
    }
}
