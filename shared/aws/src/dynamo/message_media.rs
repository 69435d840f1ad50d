//! Image messages' media in DynamoDB: which message carried a user's media id (an item
//! per channel and id, written with the message, [`super::items`]), and each image's copy
//! state on its message.

use super::keys::{self, PK, SK};
use super::store::{built, DynamoStore};
use super::{applied, s};
use wxbridge_core::model::{MediaCopy, OutboundRef};
use wxbridge_core::ports::store::{MessageMediaStore, StoreError};

impl MessageMediaStore for DynamoStore {
    async fn inbound_image(
        &self,
        channel: &str,
        media_id: &str,
    ) -> Result<Option<OutboundRef>, StoreError> {
        self.get_record(
            keys::inbound_image_pk(channel, media_id),
            keys::INBOUND_IMAGE_SK,
        )
        .await
    }

    async fn set_media(
        &self,
        message: &OutboundRef,
        media: &MediaCopy,
    ) -> Result<bool, StoreError> {
        let value = built(serde_dynamo::to_attribute_value(media))?;
        let result = self
            .0
            .client
            .update_item()
            .table_name(&self.0.name)
            .key(PK, s(keys::message_pk(&message.conversation_id)))
            .key(SK, s(keys::message_sk(message.created_at_ms, &message.message_id)))
            .update_expression("SET #media = :media")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#media) OR #media.#status <> :stored)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#media", "media")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":media", value)
            .expression_attribute_values(":stored", s("stored".to_owned()))
            .send()
            .await;
        Ok(applied(result)?)
    }
}
