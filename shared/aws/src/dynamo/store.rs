//! [`DynamoStore`]: the message store's ports in the table, one module per aggregate
//! (`users`, `conversations`, `messages`, `pushes`, `message_media`, `sub_merchants`,
//! `handovers`), and what they share: reads, and failures named as the store's.

use super::keys::{PK, SK};
use super::{s, Failure, Item, Table};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use wxbridge_core::ports::store::StoreError;

/// The message store ([`wxbridge_core::ports::store::Store`]) in the table.
#[derive(Debug, Clone)]
pub struct DynamoStore(pub(super) Table);

pub(super) fn unavailable<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    Failure::from_sdk(error).into()
}

pub(super) fn built<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, StoreError> {
    Ok(super::built(result)?)
}

pub(super) fn record<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(super::record(item)?)
}

pub(super) fn item<T: serde::Serialize>(
    record: &T,
    keys: &[(&str, AttributeValue)],
) -> Result<Item, StoreError> {
    Ok(super::item(record, keys)?)
}

impl DynamoStore {
    /// The store in `table` (its other ports: [`Table`]).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Table::new(client, table).store()
    }

    pub(super) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        Ok(self.0.get(pk, sk).await?)
    }

    /// The record stored under `(pk, sk)`, if any.
    pub(super) async fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get(pk, sk).await?.map(record).transpose()
    }

    /// The items of a partition whose sort key begins with `prefix`, in key order.
    pub(super) async fn query_prefix<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        let query = self
            .0
            .client
            .query()
            .table_name(&self.0.name)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix));
        Ok(self.0.query_all(query, None).await?)
    }
}
