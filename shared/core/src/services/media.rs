//! Keeping image messages beyond WeChat's three days ([`crate::model::media`]): the copy of
//! one message's image from WeChat's temporary media into the bucket, as the `media`
//! function makes it for each job on `media.fifo`.
//!
//! The image is fetched with `media/get` (at most [`MAX_MEDIA_BYTES`]), checked to be a JPEG,
//! PNG or GIF by its bytes, kept under the message's key, and the message records it
//! `stored`. What trying again cannot help (WeChat no longer has the media, it is not an
//! image, it is too large) makes the copy `unavailable` with the reason at once; anything
//! else (WeChat busy, the bucket or the store unreachable) keeps it `pending` with the
//! failure and the job is tried again, until WeChat's three days are over.

use super::partner::MAX_MEDIA_BYTES;
use super::settlement::Settlement;
use super::tokens::CallError;
use super::Bridge;
use crate::model::{ImageType, MediaCopy, MediaJob, MediaStatus};
use crate::ports::media::MediaArchive;
use crate::ports::store::{MessageMediaStore, MessageStore};
use crate::ports::wechat::{ApiError, WechatApi};
use crate::ports::Ports;

/// A `pending` copy's reason while the bucket fails (its own error is logged).
const BUCKET_UNREACHABLE: &str = "the media bucket could not be reached";

/// What became of one copy job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Kept now.
    Stored,
    /// Kept before, or its message is gone: nothing to do.
    AlreadyDone,
    /// Cannot be kept: recorded on the message with the reason.
    Unavailable(String),
    /// Not kept this time: try the job again later.
    Retry(String),
}

/// A copy not kept this time is retried; everything else is done (a copy that cannot be
/// kept is recorded so on its message, not parked).
impl From<CopyOutcome> for Settlement {
    fn from(outcome: CopyOutcome) -> Self {
        match outcome {
            CopyOutcome::Retry(reason) => Settlement::Retry(reason),
            CopyOutcome::Stored | CopyOutcome::AlreadyDone | CopyOutcome::Unavailable(_) => {
                Settlement::Done
            }
        }
    }
}

/// Copies image messages' media into the bucket.
pub struct MediaKeeper<P: Ports> {
    bridge: Bridge<P>,
    archive: P::Archive,
}

impl<P: Ports> MediaKeeper<P> {
    pub fn new(bridge: Bridge<P>, archive: P::Archive) -> Self {
        Self { bridge, archive }
    }

    pub fn bridge(&self) -> &Bridge<P> {
        &self.bridge
    }

    pub async fn copy(&self, job: &MediaJob) -> CopyOutcome {
        let message = match self.bridge.store.message_at(&job.message).await {
            Ok(Some(message)) => message,
            Ok(None) => {
                tracing::warn!(message_id = %job.message.message_id, "image copy for a message not stored: dropped");
                return CopyOutcome::AlreadyDone;
            }
            Err(error) => return CopyOutcome::Retry(error.to_string()),
        };
        if message
            .media
            .as_ref()
            .is_some_and(|media| media.status == MediaStatus::Stored)
        {
            return CopyOutcome::AlreadyDone;
        }
        let Some(channel) = self.bridge.config.channel(&job.channel) else {
            return self
                .give_up(job, format!("channel {} is not configured", job.channel))
                .await;
        };
        let wechat = self.bridge.wechat();
        let media_id = job.media_id.as_str();
        let fetched = self
            .bridge
            .tokens
            .call(channel, |token| async move {
                wechat.media(&token, media_id, MAX_MEDIA_BYTES).await
            })
            .await;
        let media = match fetched {
            Ok(media) => media,
            Err(CallError::Api(ApiError::TooLarge(_))) => {
                return self.give_up(job, "the image is over 4 MiB").await
            }
            Err(error) if error.is_final() => {
                return self
                    .kept_before_or_give_up(job, format!("WeChat does not give the image: {error}"))
                    .await
            }
            Err(error) => return self.later(job, error.to_string()).await,
        };
        let Some(kind) = ImageType::sniff(&media.bytes) else {
            return self
                .give_up(job, "WeChat's media is not a JPEG, PNG or GIF image")
                .await;
        };
        let size = media.bytes.len() as u64;
        let key = job.object_key();
        if let Err(error) = self
            .archive
            .put(&key, kind.content_type(), media.bytes)
            .await
        {
            // The bucket's own words stay in the log: they may name the account and role.
            tracing::warn!(%error, "media archive unavailable");
            return self.later(job, BUCKET_UNREACHABLE.to_owned()).await;
        }
        let stored = MediaCopy::stored(kind.content_type(), size);
        match self.bridge.store.set_media(&job.message, &stored).await {
            Ok(_) => CopyOutcome::Stored,
            // Kept, not recorded: the next attempt keeps the same bytes and records them.
            Err(error) => CopyOutcome::Retry(format!("kept, not recorded: {error}")),
        }
    }

    /// A failure that may pass: tried again while WeChat still has the media, the message
    /// showing why it is still `pending`.
    async fn later(&self, job: &MediaJob, reason: String) -> CopyOutcome {
        if self.bridge.now_ms() >= job.wechat_expires_at_ms {
            return self
                .give_up(
                    job,
                    format!("WeChat's three days ran out before the image was kept ({reason})"),
                )
                .await;
        }
        let pending = MediaCopy::pending(Some(reason.clone()));
        if let Err(error) = self.bridge.store.set_media(&job.message, &pending).await {
            tracing::warn!(%error, "an image copy's failure not recorded");
        }
        CopyOutcome::Retry(reason)
    }

    /// WeChat no longer gives the media: if an earlier attempt kept it and could not record
    /// so, it is recorded now; otherwise the copy is given up.
    async fn kept_before_or_give_up(&self, job: &MediaJob, reason: String) -> CopyOutcome {
        match self.archive.get(&job.object_key()).await {
            Ok(Some(kept)) => {
                let stored = MediaCopy::stored(&kept.content_type, kept.bytes.len() as u64);
                match self.bridge.store.set_media(&job.message, &stored).await {
                    Ok(_) => CopyOutcome::Stored,
                    Err(error) => CopyOutcome::Retry(format!("kept, not recorded: {error}")),
                }
            }
            Ok(None) => self.give_up(job, reason).await,
            Err(error) => {
                tracing::warn!(%error, "media archive unavailable");
                self.later(job, BUCKET_UNREACHABLE.to_owned()).await
            }
        }
    }

    async fn give_up(&self, job: &MediaJob, reason: impl Into<String>) -> CopyOutcome {
        let reason = reason.into();
        let unavailable = MediaCopy::unavailable(reason.clone());
        match self
            .bridge
            .store
            .set_media(&job.message, &unavailable)
            .await
        {
            Ok(_) => CopyOutcome::Unavailable(reason),
            Err(error) => CopyOutcome::Retry(format!("{reason}; not recorded: {error}")),
        }
    }
}
