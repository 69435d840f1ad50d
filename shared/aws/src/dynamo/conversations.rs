//! Conversations in DynamoDB, in their user's partition; those due to close for idleness
//! through the idle index (`gsi2`, see [`super::keys`]): every shard asked for deadlines at
//! or before now.

use super::keys::{self, GSI2, GSI2_PK, GSI2_SK, IDLE_SHARDS, PK, SK};
use super::store::DynamoStore;
use super::{applied, n, s};
use wxbridge_core::model::Conversation;
use wxbridge_core::ports::store::{ConversationStore, StoreError};

impl ConversationStore for DynamoStore {
    async fn conversation(
        &self,
        channel: &str,
        openid: &str,
        conversation_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        self.get_record(
            keys::user_pk(channel, openid),
            &keys::conversation_sk(conversation_id),
        )
        .await
    }

    async fn conversations(
        &self,
        channel: &str,
        openid: &str,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.query_prefix(keys::user_pk(channel, openid), "CONV#")
            .await
    }

    async fn idle_conversations(
        &self,
        due_by_ms: i64,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut due = Vec::new();
        for shard in 0..IDLE_SHARDS {
            if due.len() >= limit {
                break;
            }
            let query = self
                .0
                .client
                .query()
                .table_name(&self.0.name)
                .index_name(GSI2)
                .key_condition_expression("#pk = :pk AND #sk <= :due")
                .expression_attribute_names("#pk", GSI2_PK)
                .expression_attribute_names("#sk", GSI2_SK)
                .expression_attribute_values(":pk", s(keys::idle_pk(shard)))
                .expression_attribute_values(":due", s(keys::idle_sk(due_by_ms)));
            let found: Vec<Conversation> = self.0.query_all(query, Some(limit - due.len())).await?;
            due.extend(found);
        }
        Ok(due)
    }

    async fn clear_idle(
        &self,
        conversation: &Conversation,
        idle_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .0
            .client
            .update_item()
            .table_name(&self.0.name)
            .key(
                PK,
                s(keys::user_pk(&conversation.channel, &conversation.openid)),
            )
            .key(SK, s(keys::conversation_sk(&conversation.id)))
            .update_expression("REMOVE #idle, #g2pk, #g2sk")
            .condition_expression("#idle = :at")
            .expression_attribute_names("#idle", "idle_at_ms")
            .expression_attribute_names("#g2pk", GSI2_PK)
            .expression_attribute_names("#g2sk", GSI2_SK)
            .expression_attribute_values(":at", n(idle_at_ms))
            .send()
            .await;
        Ok(applied(result)?)
    }
}
