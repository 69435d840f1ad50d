//! The items a message-store write is made of, each with the condition that keeps it
//! once: pointers (dedupe records, client message and push ids), users over their version,
//! conversations, messages.

use super::keys::{self, EXPIRES_AT, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, PK, SK, USER_SK};
use super::store::{built, item, DynamoStore};
use super::{n, s};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, Update};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use wxbridge_core::model::media::{recorded_media_id, WECHAT_MEDIA_LIFETIME_MS};
use wxbridge_core::model::{ChannelUser, Conversation, OutboundRef, StoredMessage};
use wxbridge_core::ports::store::StoreError;

impl DynamoStore {
    /// A pointer item, written only if absent.
    pub(super) fn pointer(
        &self,
        pk: String,
        sk: &str,
        message: &StoredMessage,
        expires_at: Option<i64>,
    ) -> Result<Put, StoreError> {
        let put = Put::builder()
            .table_name(&self.0.name)
            .item(PK, s(pk))
            .item(SK, s(sk))
            .item("message_pk", s(keys::message_pk(&message.conversation_id)))
            .item(
                "message_sk",
                s(keys::message_sk(message.created_at_ms, &message.id)),
            )
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        let put = match expires_at {
            Some(at) => put.item(EXPIRES_AT, n(at)),
            None => put,
        };
        built(put.build())
    }

    /// The user item at `user.version + 1`, written only over `user.version` (a new user,
    /// version 0, only if absent).
    pub(super) fn user_put(&self, user: &ChannelUser) -> Result<Put, StoreError> {
        let user_pk = keys::user_pk(&user.channel, &user.openid);
        let mut written = user.clone();
        written.version += 1;
        let mut user_keys = vec![(PK, s(&user_pk)), (SK, s(USER_SK))];
        if let Some(app_user) = &user.app_user_id {
            user_keys.push((GSI1_PK, s(keys::app_user_gsi1pk(app_user))));
            user_keys.push((GSI1_SK, s(&user_pk)));
        }
        let put = Put::builder()
            .table_name(&self.0.name)
            .set_item(Some(item(&written, &user_keys)?))
            .expression_attribute_names("#pk", PK);
        let put = if user.version == 0 {
            put.condition_expression("attribute_not_exists(#pk)")
        } else {
            put.condition_expression("attribute_exists(#pk) AND #version = :read")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":read", n(user.version))
        };
        built(put.build())
    }

    /// The conversation, created if new; its latest message time set, and its idle
    /// deadline (in the idle index) set or removed.
    pub(super) fn conversation_upsert(
        &self,
        conversation: &Conversation,
    ) -> Result<Update, StoreError> {
        let idle = match conversation.idle_at_ms {
            Some(_) => ", #idle = :idle, #g2pk = :g2pk, #g2sk = :g2sk",
            None => " REMOVE #idle, #g2pk, #g2sk",
        };
        let update = Update::builder()
            .table_name(&self.0.name)
            .key(
                PK,
                s(keys::user_pk(&conversation.channel, &conversation.openid)),
            )
            .key(SK, s(keys::conversation_sk(&conversation.id)))
            // Every attribute through an alias: DynamoDB reserves many common words.
            .update_expression(format!(
                "SET #id = :id, #channel = :channel, #openid = :openid, #partner = :partner, \
                     #created = if_not_exists(#created, :created), #last = :last{idle}"
            ))
            .expression_attribute_names("#idle", "idle_at_ms")
            .expression_attribute_names("#g2pk", GSI2_PK)
            .expression_attribute_names("#g2sk", GSI2_SK)
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#channel", "channel")
            .expression_attribute_names("#openid", "openid")
            .expression_attribute_names("#partner", "partner")
            .expression_attribute_names("#created", "created_at_ms")
            .expression_attribute_names("#last", "last_message_at_ms")
            .expression_attribute_values(":id", s(&conversation.id))
            .expression_attribute_values(":channel", s(&conversation.channel))
            .expression_attribute_values(":openid", s(&conversation.openid))
            .expression_attribute_values(":partner", s(&conversation.partner))
            .expression_attribute_values(":created", n(conversation.created_at_ms))
            .expression_attribute_values(":last", n(conversation.last_message_at_ms));
        let update = match conversation.idle_at_ms {
            Some(at_ms) => update
                .expression_attribute_values(":idle", n(at_ms))
                .expression_attribute_values(":g2pk", s(keys::idle_shard_pk(&conversation.id)))
                .expression_attribute_values(":g2sk", s(keys::idle_sk(at_ms))),
            None => update,
        };
        built(update.build())
    }

    /// For a user's image: which message carried its media id, kept while WeChat holds the
    /// media (a later message with the same id, which WeChat never gives twice, would
    /// take it over).
    pub(super) fn inbound_image_put(
        &self,
        message: &StoredMessage,
    ) -> Result<Option<Put>, StoreError> {
        let Some(media_id) = recorded_media_id(message) else {
            return Ok(None);
        };
        let expires_at_ms = message.created_at_ms + WECHAT_MEDIA_LIFETIME_MS;
        let keys = [
            (PK, s(keys::inbound_image_pk(&message.channel, media_id))),
            (SK, s(keys::INBOUND_IMAGE_SK)),
            (EXPIRES_AT, n(expires_at_ms.div_euclid(1000))),
        ];
        let put = Put::builder()
            .table_name(&self.0.name)
            .set_item(Some(item(&OutboundRef::to(message), &keys)?));
        built(put.build()).map(Some)
    }

    /// The message item, written only if absent.
    pub(super) fn new_message(&self, message: &StoredMessage) -> Result<Put, StoreError> {
        let keys = [
            (PK, s(keys::message_pk(&message.conversation_id))),
            (SK, s(keys::message_sk(message.created_at_ms, &message.id))),
        ];
        built(
            Put::builder()
                .table_name(&self.0.name)
                .set_item(Some(item(message, &keys)?))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build(),
        )
    }
}

/// The indexes of a cancelled transaction's items whose condition failed.
pub(super) fn failed_conditions(
    error: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Option<Vec<usize>> {
    let SdkError::ServiceError(context) = error else {
        return None;
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = context.err() else {
        return None;
    };
    Some(
        cancelled
            .cancellation_reasons()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(index, _)| index)
            .collect(),
    )
}

/// A cancelled transaction whose cancellation was no failed condition: refused for good
/// when an item of it cannot be stored (`ValidationError`), else unavailable.
pub(super) fn cancelled(error: SdkError<TransactWriteItemsError, HttpResponse>) -> StoreError {
    let reasons: Vec<String> = match &error {
        SdkError::ServiceError(context) => match context.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .filter(|code| *code != "None")
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let rejected = reasons.iter().any(|code| code == "ValidationError");
    let reasons = reasons.join(", ");
    if rejected {
        StoreError::Rejected(format!("transaction cancelled ({reasons})"))
    } else {
        StoreError::Unavailable(Box::new(Cancelled {
            reasons,
            source: error,
        }))
    }
}

/// A transaction cancelled for another reason than a failed condition (a conflicting
/// transaction, a throttle): the reasons DynamoDB gave, and its error beneath.
#[derive(Debug, thiserror::Error)]
#[error("transaction cancelled ({reasons})")]
struct Cancelled {
    reasons: String,
    #[source]
    source: SdkError<TransactWriteItemsError, HttpResponse>,
}
