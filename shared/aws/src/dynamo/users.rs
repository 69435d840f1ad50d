//! Channel users in DynamoDB: one item per channel and openid, written over its version;
//! bound users found by their app user through `gsi1`.

use super::keys::{self, GSI1, GSI1_PK, USER_SK};
use super::store::{unavailable, DynamoStore};
use super::{condition_failed, s};
use wxbridge_core::model::ChannelUser;
use wxbridge_core::ports::store::{StoreError, UserStore};

impl UserStore for DynamoStore {
    async fn user(&self, channel: &str, openid: &str) -> Result<Option<ChannelUser>, StoreError> {
        self.get_record(keys::user_pk(channel, openid), USER_SK)
            .await
    }

    async fn put_user(&self, user: &ChannelUser) -> Result<(), StoreError> {
        let put = self.user_put(user)?;
        let result = self
            .0
            .client
            .put_item()
            .table_name(&self.0.name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if condition_failed(&error) => Err(StoreError::Conflict),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn users_of_app_user(&self, app_user_id: &str) -> Result<Vec<ChannelUser>, StoreError> {
        let query = self
            .0
            .client
            .query()
            .table_name(&self.0.name)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1_PK)
            .expression_attribute_values(":pk", s(keys::app_user_gsi1pk(app_user_id)));
        Ok(self.0.query_all(query, None).await?)
    }
}
