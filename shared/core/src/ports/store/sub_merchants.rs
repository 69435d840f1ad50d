//! Partners' sub-merchants registered in a channel (sub-merchant dialog mode).

use super::StoreError;
use crate::model::SubMerchant;
use std::future::Future;

/// One sub-merchant per channel and partner.
pub trait SubMerchantStore: Send + Sync {
    /// The sub-merchants registered in a channel, any order.
    fn sub_merchants(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<Vec<SubMerchant>, StoreError>> + Send;

    /// Keeps a partner's sub-merchant of a channel, replacing the one kept before.
    fn put_sub_merchant(
        &self,
        sub_merchant: &SubMerchant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
