//! Images: where media ids are cached, where partners' images are fetched from, and where
//! every image message's copy is kept.

use crate::model::Image;
use crate::ports::store::StoreError;
use crate::ports::wechat::Media;
use std::future::Future;
use thiserror::Error;

/// Where media ids are cached, per app and image key, until they expire.
pub trait MediaCache: Send + Sync {
    /// The media id saved for `key`, unless it expired by `now_ms`.
    fn cached_media(
        &self,
        appid: &str,
        key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn save_media(
        &self,
        appid: &str,
        key: &str,
        media_id: &str,
        expires_at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets the media id saved for `key` if it is still `media_id`.
    fn forget_media(
        &self,
        appid: &str,
        key: &str,
        media_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why a partner's image could not be fetched.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The image cannot be sent as it is (4xx, too large, not an image, a private
    /// address): trying again cannot help.
    #[error("{0}")]
    Refused(String),
    /// The partner's server did not give the image this time (5xx, timeout, no
    /// connection).
    #[error("{0}")]
    Unreachable(String),
}

/// Where partners' images come from: their URLs, fetched with limits.
pub trait ImageSource: Send + Sync {
    /// The image at `url`, checked: at most [`crate::model::MAX_IMAGE_BYTES`], a JPEG, PNG
    /// or GIF by its bytes.
    fn fetch(&self, url: &str) -> impl Future<Output = Result<Image, FetchError>> + Send;
}

/// The bucket could not be reached (or refused the request): the copy is tried again.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("media archive unavailable: {0}")]
pub struct ArchiveError(pub String);

/// Where image messages' copies are kept, by key ([`crate::model::media::object_key`]).
pub trait MediaArchive: Send + Sync {
    /// Keeps `bytes` under `key` (replacing what was there: a repeat writes the same).
    fn put(
        &self,
        key: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), ArchiveError>> + Send;

    /// What is kept under `key`; `None` when nothing is.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Media>, ArchiveError>> + Send;
}
