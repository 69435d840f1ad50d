//! Messages in DynamoDB, one partition per conversation, keyed by time and id.
//!
//! Storing an inbound message is one `TransactWriteItems`: the dedupe record (only if
//! absent), the message, the conversation (created if new), the user (only over the
//! version read) and, for a user's image, which message carried its media id. A repeat of
//! the push fails on the dedupe record and nothing is written; a concurrent change of the
//! user fails on its version and the caller reads again. A partner's message (and a push,
//! [`super::pushes`]) is stored once per pointer item: its client message id (push id).

use super::items::{cancelled, failed_conditions};
use super::keys::{self, DEDUPE_SK, PK, SK};
use super::store::{record, unavailable, DynamoStore};
use super::{applied, s};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use wxbridge_core::model::{
    status_name, ChannelUser, Conversation, MessageCursor, MessageStatus, StoredMessage,
};
use wxbridge_core::ports::store::{MessageStore, Recorded, StoreError};

/// How long a dedupe record outlives its push: longer than a message can live in SQS (4
/// days in `inbound.fifo`, then up to 14 more in its dead-letter queue, from which it may be
/// redriven).
const DEDUPE_TTL_SECS: i64 = 30 * 24 * 3600;

impl DynamoStore {
    /// The message a pointer item (dedupe record, client message id) names.
    async fn pointed(&self, pk: String, sk: &str) -> Result<StoredMessage, StoreError> {
        let pointer = self
            .get(pk, sk)
            .await?
            .ok_or_else(|| StoreError::Malformed("pointer item vanished".into()))?;
        let text = |name: &str| match pointer.get(name) {
            Some(AttributeValue::S(value)) => Ok(value.clone()),
            _ => Err(StoreError::Malformed(format!("pointer item lacks {name}"))),
        };
        let message = self
            .get(text("message_pk")?, &text("message_sk")?)
            .await?
            .ok_or_else(|| StoreError::Malformed("pointed message is missing".into()))?;
        record(message)
    }

    /// A message stored once per pointer (a client message id, a push id), with its
    /// conversation: a repeat writes nothing and returns the message stored first.
    pub(super) async fn put_once(
        &self,
        pointer_pk: String,
        pointer_sk: &str,
        message: &StoredMessage,
        conversation: &Conversation,
    ) -> Result<Recorded, StoreError> {
        let result = self
            .0
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.pointer(pointer_pk.clone(), pointer_sk, message, None)?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.new_message(message)?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.conversation_upsert(conversation)?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Recorded::New),
            Err(error) => match failed_conditions(&error) {
                Some(failed) if failed.contains(&0) => Ok(Recorded::Duplicate(Box::new(
                    self.pointed(pointer_pk, pointer_sk).await?,
                ))),
                Some(_) => Err(cancelled(error)),
                None => Err(unavailable(error)),
            },
        }
    }

    /// Moves a message to `to` only from one of `from`, setting its reason (and its push
    /// record, when given) in the same write.
    pub(super) async fn set_status(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
        push: Option<AttributeValue>,
    ) -> Result<bool, StoreError> {
        let allowed: Vec<String> = (0..from.len()).map(|i| format!(":from{i}")).collect();
        let mut update = self
            .0
            .client
            .update_item()
            .table_name(&self.0.name)
            .key(PK, s(keys::message_pk(&message.conversation_id)))
            .key(SK, s(keys::message_sk(message.created_at_ms, &message.id)))
            .condition_expression(format!(
                "attribute_exists(#pk) AND #status IN ({})",
                allowed.join(", ")
            ))
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#reason", "status_reason")
            .expression_attribute_values(":to", s(status_name(to)));
        for (name, status) in allowed.iter().zip(from) {
            update = update.expression_attribute_values(name, s(status_name(*status)));
        }
        let mut set = vec!["#status = :to"];
        if let Some(reason) = reason {
            set.push("#reason = :reason");
            update = update.expression_attribute_values(":reason", s(reason));
        }
        if let Some(push) = push {
            set.push("#push = :push");
            update = update
                .expression_attribute_names("#push", "push")
                .expression_attribute_values(":push", push);
        }
        let remove = if reason.is_none() {
            " REMOVE #reason"
        } else {
            ""
        };
        let update = update.update_expression(format!("SET {}{remove}", set.join(", ")));
        Ok(applied(update.send().await)?)
    }
}

impl MessageStore for DynamoStore {
    async fn record_inbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        user: &ChannelUser,
    ) -> Result<Recorded, StoreError> {
        let dedupe_key = message
            .dedupe_key
            .clone()
            .unwrap_or_else(|| message.id.clone());
        let dedupe = self.pointer(
            keys::dedupe_pk(&dedupe_key),
            DEDUPE_SK,
            message,
            Some(message.created_at_ms / 1000 + DEDUPE_TTL_SECS),
        )?;
        // Never over a stored message, even if its dedupe record has expired.
        let stored_message = self.new_message(message)?;
        let upsert_conversation = self.conversation_upsert(conversation)?;
        let put_user = self.user_put(user)?;
        // Last, so the indexes of the conditions read below stay as they are.
        let image = self
            .inbound_image_put(message)?
            .map(|put| TransactWriteItem::builder().put(put).build());

        let transaction = self
            .0
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(dedupe).build())
            .transact_items(TransactWriteItem::builder().put(stored_message).build())
            .transact_items(
                TransactWriteItem::builder()
                    .update(upsert_conversation)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(put_user).build());
        let result = match image {
            Some(image) => transaction.transact_items(image),
            None => transaction,
        }
        .send()
        .await;
        match result {
            Ok(_) => Ok(Recorded::New),
            Err(error) => match failed_conditions(&error) {
                Some(failed) if failed.contains(&1) => {
                    let stored = self
                        .message(&message.conversation_id, message.created_at_ms, &message.id)
                        .await?;
                    let stored =
                        stored.ok_or_else(|| StoreError::Malformed("message vanished".into()))?;
                    Ok(Recorded::Duplicate(Box::new(stored)))
                }
                Some(failed) if failed.contains(&0) => Ok(Recorded::Duplicate(Box::new(
                    self.pointed(keys::dedupe_pk(&dedupe_key), DEDUPE_SK)
                        .await?,
                ))),
                Some(failed) if failed.contains(&3) => Err(StoreError::Conflict),
                Some(_) => Err(cancelled(error)),
                None => Err(unavailable(error)),
            },
        }
    }

    async fn put_outbound(
        &self,
        message: &StoredMessage,
        conversation: &Conversation,
        client_message_id: &str,
    ) -> Result<Recorded, StoreError> {
        let pk = keys::client_message_pk(&message.partner, client_message_id);
        self.put_once(pk, keys::CLIENT_SK, message, conversation)
            .await
    }

    async fn message(
        &self,
        conversation_id: &str,
        created_at_ms: i64,
        id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.get_record(
            keys::message_pk(conversation_id),
            &keys::message_sk(created_at_ms, id),
        )
        .await
    }

    async fn history_page(
        &self,
        conversation_id: &str,
        limit: usize,
        before: Option<&MessageCursor>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        // A message partition holds only messages, so "older than the cursor" is the
        // whole key condition.
        let upper = match before {
            Some(cursor) => keys::message_sk(cursor.created_at_ms, &cursor.id),
            None => "MSG$".to_owned(),
        };
        let query = self
            .0
            .client
            .query()
            .table_name(&self.0.name)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys::message_pk(conversation_id)))
            .expression_attribute_values(":before", s(upper))
            .scan_index_forward(false);
        Ok(self.0.query_all(query, Some(limit.max(1))).await?)
    }

    async fn transition(
        &self,
        message: &StoredMessage,
        from: &[MessageStatus],
        to: MessageStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.set_status(message, from, to, reason, None).await
    }

    async fn mark_reported(
        &self,
        message: &StoredMessage,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        let result = self
            .0
            .client
            .update_item()
            .table_name(&self.0.name)
            .key(PK, s(keys::message_pk(&message.conversation_id)))
            .key(SK, s(keys::message_sk(message.created_at_ms, &message.id)))
            .update_expression("SET #reported = :status")
            .condition_expression("attribute_exists(#pk) AND #status = :status")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#reported", "reported")
            .expression_attribute_values(":status", s(status_name(status)))
            .send()
            .await;
        Ok(applied(result)?)
    }
}
