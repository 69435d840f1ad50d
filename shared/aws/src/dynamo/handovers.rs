//! Applied hand-overs in DynamoDB: one item per partner and hand-over id, kept for good (no
//! TTL, as a client message id's), written in one transaction with the user it moved.

use super::items::{cancelled, failed_conditions};
use super::keys::{self, HANDOVER_SK, PK, SK};
use super::s;
use super::store::{built, item, unavailable, DynamoStore};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use wxbridge_core::model::{ChannelUser, HandoverRecord};
use wxbridge_core::ports::store::{HandoverStore, StoreError};

impl HandoverStore for DynamoStore {
    async fn put_handover(
        &self,
        user: &ChannelUser,
        handover: &HandoverRecord,
    ) -> Result<Option<HandoverRecord>, StoreError> {
        let keys = [
            (
                PK,
                s(keys::handover_pk(&handover.partner, &handover.handover_id)),
            ),
            (SK, s(HANDOVER_SK)),
        ];
        let record_put = built(
            Put::builder()
                .table_name(&self.0.name)
                .set_item(Some(item(handover, &keys)?))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build(),
        )?;
        let result = self
            .0
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(record_put).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.user_put(user)?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(error) => match failed_conditions(&error) {
                Some(failed) if failed.contains(&0) => {
                    let first = self
                        .handover(&handover.partner, &handover.handover_id)
                        .await?;
                    first
                        .map(Some)
                        .ok_or_else(|| StoreError::Malformed("hand-over record vanished".into()))
                }
                Some(failed) if failed.contains(&1) => Err(StoreError::Conflict),
                Some(_) => Err(cancelled(error)),
                None => Err(unavailable(error)),
            },
        }
    }

    async fn handover(
        &self,
        partner: &str,
        handover_id: &str,
    ) -> Result<Option<HandoverRecord>, StoreError> {
        self.get_record(keys::handover_pk(partner, handover_id), HANDOVER_SK)
            .await
    }
}
