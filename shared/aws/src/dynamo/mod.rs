//! The bridge's one DynamoDB table, one adapter per port: [`DynamoStore`] (the message
//! store's ports, one module per aggregate), [`DynamoTokenStore`], [`DynamoNonceStore`] and
//! [`DynamoMediaCache`]. Every key is built in [`keys`].

mod conversations;
mod handovers;
mod items;
pub mod keys;
mod media_cache;
mod message_media;
mod messages;
mod nonces;
mod pushes;
mod store;
mod sub_merchants;
mod tokens;
mod users;

pub use media_cache::DynamoMediaCache;
pub use nonces::DynamoNonceStore;
pub use store::DynamoStore;
pub use tokens::DynamoTokenStore;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use keys::{PK, SK};
use std::collections::HashMap;
use thiserror::Error;
use wxbridge_core::ports::nonces::NonceError;
use wxbridge_core::ports::store::StoreError;
use wxbridge_core::ports::tokens::TokenStoreError;
use wxbridge_core::ports::{Cause, Chain};

type Item = HashMap<String, AttributeValue>;

/// The table: a client and its name. Each port's adapter is a handle on it.
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message store: users, conversations, messages, pushes and the rest of its ports.
    pub fn store(&self) -> DynamoStore {
        DynamoStore(self.clone())
    }

    /// Access tokens and their refresh leases.
    pub fn tokens(&self) -> DynamoTokenStore {
        DynamoTokenStore(self.clone())
    }

    /// Nonces of the partner API's requests.
    pub fn nonces(&self) -> DynamoNonceStore {
        DynamoNonceStore(self.clone())
    }

    /// Media ids of uploaded images.
    pub fn media_cache(&self) -> DynamoMediaCache {
        DynamoMediaCache(self.clone())
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, Failure> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(Failure::from_sdk)?;
        Ok(output.item)
    }

    /// Every item a query finds (or the first `limit`), following DynamoDB's pages: one
    /// answer holds at most 1 MB, so a short page does not mean the end.
    async fn query_all<T: serde::de::DeserializeOwned>(
        &self,
        query: QueryFluentBuilder,
        limit: Option<usize>,
    ) -> Result<Vec<T>, Failure> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let wanted = limit.map(|l| (l - found.len()).clamp(1, 1000) as i32);
            let output = query
                .clone()
                .set_limit(wanted)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(Failure::from_sdk)?;
            found.extend(records::<T>(output.items)?);
            start = output.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| found.len() >= l) {
                found.truncate(limit.unwrap_or(usize::MAX));
                return Ok(found);
            }
        }
    }
}

impl Table {
    /// Expires an item (sets its expiry attribute `expires` to 0) if its `field` still holds
    /// `value`: a token or media id that failed, unless another instance replaced it since.
    /// Expired rather than deleted, so a function needs no delete right; a replaced or
    /// missing item is left alone.
    async fn expire_if(
        &self,
        (pk, sk): (String, &str),
        expires: &str,
        field: &str,
        value: &str,
    ) -> Result<(), Failure> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression("SET #expires = :zero")
            .condition_expression("#field = :failed")
            .expression_attribute_names("#expires", expires)
            .expression_attribute_names("#field", field)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":failed", s(value))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(Failure::from_sdk(error)),
        }
    }
}

/// Why a call to the table failed, before each port names it its own way.
#[derive(Debug, Error)]
enum Failure {
    /// DynamoDB did not answer (or not in time), or throttled: its error kept as the cause.
    #[error("{}", Chain(.0.as_ref()))]
    Unavailable(Cause),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Rejected(String),
}

impl Failure {
    /// A failed call: refused for good when DynamoDB says the request itself is wrong
    /// (`ValidationException`: a key over its size, an item over 400 KB), else unavailable.
    fn from_sdk<E>(error: SdkError<E, HttpResponse>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        if error.code() == Some("ValidationException") {
            Self::Rejected(DisplayErrorContext(error).to_string())
        } else {
            Self::Unavailable(Box::new(error))
        }
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(cause) => StoreError::Unavailable(cause),
            Failure::Malformed(reason) => StoreError::Malformed(reason),
            Failure::Rejected(reason) => StoreError::Rejected(reason),
        }
    }
}

impl From<Failure> for TokenStoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Malformed(reason) => TokenStoreError::Malformed(reason),
            unavailable => TokenStoreError::Unavailable(unavailable.to_string()),
        }
    }
}

impl From<Failure> for NonceError {
    fn from(failure: Failure) -> Self {
        NonceError::Unavailable(failure.to_string())
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn built<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, Failure> {
    result.map_err(|e| Failure::Malformed(e.to_string()))
}

/// An item: the record's fields plus its keys.
fn item<T: serde::Serialize>(record: &T, keys: &[(&str, AttributeValue)]) -> Result<Item, Failure> {
    let mut item: Item = built(serde_dynamo::to_item(record))?;
    for (name, value) in keys {
        item.insert((*name).to_owned(), value.clone());
    }
    Ok(item)
}

fn record<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, Failure> {
    built(serde_dynamo::from_item(item))
}

fn records<T: serde::de::DeserializeOwned>(items: Option<Vec<Item>>) -> Result<Vec<T>, Failure> {
    items.unwrap_or_default().into_iter().map(record).collect()
}

/// A conditional write that found its condition false.
fn condition_failed<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    matches!(error, SdkError::ServiceError(context) if context.err().code() == Some("ConditionalCheckFailedException"))
}

/// A conditional write's outcome: `true` when it was applied, `false` when its condition
/// was false.
fn applied<T, E>(result: Result<T, SdkError<E, HttpResponse>>) -> Result<bool, Failure>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(error) if condition_failed(&error) => Ok(false),
        Err(error) => Err(Failure::from_sdk(error)),
    }
}
