//! Pushes in DynamoDB: messages of their conversation stored once per push id (a pointer
//! item, as a client message id's), their record written with their status.

use super::keys;
use super::store::{built, DynamoStore};
use aws_sdk_dynamodb::types::AttributeValue;
use wxbridge_core::model::{Conversation, MessageStatus, PushRecord, StoredMessage};
use wxbridge_core::ports::store::{PushStore, Recorded, StoreError};

impl PushStore for DynamoStore {
    async fn put_push(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        push_id: &str,
    ) -> Result<Recorded, StoreError> {
        let pk = keys::push_pk(&message.partner, push_id);
        self.put_once(pk, keys::PUSH_SK, message, conversation)
            .await
    }

    async fn record_push(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
        push: &PushRecord,
    ) -> Result<bool, StoreError> {
        let push = built(serde_dynamo::to_attribute_value::<_, AttributeValue>(push))?;
        self.set_status(message, from, to, reason, Some(push)).await
    }
}
