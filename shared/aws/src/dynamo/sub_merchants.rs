//! Partners' registered sub-merchants in DynamoDB: one item per channel and partner, in
//! one partition per channel.

use super::keys::{self, PK, SK, SUB_MERCHANT_SK_PREFIX};
use super::messages::{item, DynamoStore};
use super::s;
use wxbridge_core::model::SubMerchant;
use wxbridge_core::ports::store::StoreError;

impl DynamoStore {
    pub(super) async fn read_sub_merchants(
        &self,
        channel: &str,
    ) -> Result<Vec<SubMerchant>, StoreError> {
        self.query_prefix(keys::sub_merchants_pk(channel), SUB_MERCHANT_SK_PREFIX)
            .await
    }

    pub(super) async fn keep_sub_merchant(
        &self,
        sub_merchant: &SubMerchant,
    ) -> Result<(), StoreError> {
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
        put.send()
            .await
            .map(drop)
            .map_err(|e| super::Failure::from_sdk(e).into())
    }
}
