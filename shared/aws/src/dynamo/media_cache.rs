//! Media ids of uploaded images in DynamoDB, per app and image, with a TTL.

use super::keys::{self, EXPIRES_AT, PK, SK};
use super::{n, s, Failure, Table};
use aws_sdk_dynamodb::types::AttributeValue;
use wxbridge_core::ports::media::MediaCache;
use wxbridge_core::ports::store::StoreError;

/// The media cache ([`MediaCache`]) in the table.
#[derive(Debug, Clone)]
pub struct DynamoMediaCache(pub(super) Table);

/// Media ids carry the TTL attribute in seconds, but DynamoDB deletes expired items late
/// (within days): an item read after its time is treated as absent.
impl MediaCache for DynamoMediaCache {
    async fn cached_media(
        &self,
        appid: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let Some(item) = self
            .0
            .get(keys::media_pk(appid, key), keys::MEDIA_SK)
            .await?
        else {
            return Ok(None);
        };
        let expires_at_secs: i64 = match item.get(EXPIRES_AT) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| StoreError::Malformed("media expires_at".into()))?,
            _ => return Err(StoreError::Malformed("media item lacks expires_at".into())),
        };
        if expires_at_secs * 1000 <= now_ms {
            return Ok(None);
        }
        match item.get("media_id") {
            Some(AttributeValue::S(media_id)) => Ok(Some(media_id.clone())),
            _ => Err(StoreError::Malformed("media item lacks media_id".into())),
        }
    }

    async fn save_media(
        &self,
        appid: &str,
        key: &str,
        media_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.0
            .client
            .put_item()
            .table_name(&self.0.name)
            .item(PK, s(keys::media_pk(appid, key)))
            .item(SK, s(keys::MEDIA_SK))
            .item("media_id", s(media_id))
            .item(EXPIRES_AT, n(expires_at_ms.div_euclid(1000)))
            .send()
            .await
            .map(drop)
            .map_err(|e| Failure::from_sdk(e).into())
    }

    async fn forget_media(&self, appid: &str, key: &str, media_id: &str) -> Result<(), StoreError> {
        let key = (keys::media_pk(appid, key), keys::MEDIA_SK);
        Ok(self
            .0
            .expire_if(key, EXPIRES_AT, "media_id", media_id)
            .await?)
    }
}
