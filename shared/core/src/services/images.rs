//! Getting a WeChat media id for a partner's image (protocol notes §3.4), and sending with
//! it: the id cached for the image while it lives, otherwise the image fetched from the
//! partner's URL (or decoded from base64), checked and uploaded.
//!
//! An uploaded image's media id lives 3 days; it is cached a little less, per app and image
//! (the hex SHA-256 of the URL, or of the decoded bytes). A send that answers 40007 (invalid
//! media id) forgets the cached id and uploads once more.
//!
//! Failures are final when trying again cannot help (the URL answers 4xx, the image is too
//! large or not an image, WeChat refuses it) and retried later when WeChat is busy. A URL
//! that does not answer (5xx, a timeout, a refused connection, a name that does not
//! resolve) gets a few tries a moment apart and then fails its reply for good: a partner's
//! broken link must not hold back the later replies of its conversation, which wait behind
//! it in their queue group.

use super::tokens::CallError;
use super::Bridge;
use crate::config::ChannelConfig;
use crate::model::{decode_base64, Content, Image};
use crate::ports::media::{FetchError, ImageSource, MediaCache};
use crate::ports::store::StoreError;
use crate::ports::wechat::WechatApi;
use crate::ports::Ports;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::Duration;
use thiserror::Error;

/// Uploads an image as temporary media of the channel's app (with a fresh token after a
/// stale one): its media id.
pub async fn upload<P: Ports>(
    bridge: &Bridge<P>,
    channel: &ChannelConfig,
    file_name: &str,
    image: &Image,
) -> Result<String, CallError> {
    let wechat = bridge.wechat();
    bridge
        .tokens
        .call(channel, |token| {
            let bytes = image.bytes.clone();
            async move {
                wechat
                    .upload_image(&token, file_name, image.kind.content_type(), bytes)
                    .await
            }
        })
        .await
}

/// How long a cached media id is used: WeChat keeps it 3 days; an hour less for safety.
pub const MEDIA_LIFETIME_MS: i64 = (3 * 24 - 1) * 3_600_000;
/// WeChat's answer for a media id it does not know (any more).
const INVALID_MEDIA_ID: i64 = 40007;
/// How often a partner's image URL is tried before its reply fails.
pub const FETCH_TRIES: u32 = 3;
/// The pause before the second try; it doubles before each later one.
const FETCH_PAUSE: Duration = Duration::from_millis(500);

/// Why an image was not sent.
#[derive(Debug, Error)]
pub enum ImageError {
    /// The partner's image cannot be sent as it is (4xx, too large, not an image): final.
    #[error("{0}")]
    Refused(String),
    /// The partner's server did not give the image this time (5xx, timeout, no connection).
    #[error("{0}")]
    Unreachable(String),
    /// Uploading to WeChat failed (an upload whose answer was lost only costs another).
    #[error(transparent)]
    Upload(CallError),
    /// Sending to WeChat failed.
    #[error(transparent)]
    WeChat(#[from] CallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImageError {
    /// Trying again cannot help.
    pub fn is_final(&self) -> bool {
        match self {
            ImageError::Refused(_) => true,
            ImageError::Upload(error) | ImageError::WeChat(error) => error.is_final(),
            ImageError::Unreachable(_) | ImageError::Store(_) => false,
        }
    }

    /// WeChat's errcode, when WeChat answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            ImageError::Upload(error) | ImageError::WeChat(error) => error.errcode(),
            _ => None,
        }
    }
}

impl From<FetchError> for ImageError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Refused(reason) => ImageError::Refused(reason),
            FetchError::Unreachable(reason) => ImageError::Unreachable(reason),
        }
    }
}

/// An image message's source, and the key its media id is cached under.
enum Source<'a> {
    Url(&'a str),
    Decoded(Image),
}

impl<'a> Source<'a> {
    fn of(content: &'a Content) -> Result<Self, ImageError> {
        match content {
            Content::Image {
                url: Some(url),
                base64: None,
            } => Ok(Source::Url(url)),
            Content::Image {
                url: None,
                base64: Some(encoded),
            } => decode_base64(encoded)
                .map(Source::Decoded)
                .map_err(|reason| ImageError::Refused(format!("content.base64: {reason}"))),
            _ => Err(ImageError::Refused(
                "an image has exactly one of url or base64".into(),
            )),
        }
    }

    fn key(&self) -> String {
        let digest = match self {
            Source::Url(url) => Sha256::digest(url.as_bytes()),
            Source::Decoded(image) => Sha256::digest(&image.bytes),
        };
        hex::encode(digest)
    }
}

/// What sending an image takes besides the bridge: where media ids are cached, and where
/// partners' images come from.
pub struct Images<P: Ports> {
    pub cache: P::MediaCache,
    pub source: P::Images,
}

impl<P: Ports> Images<P> {
    pub fn new(cache: P::MediaCache, source: P::Images) -> Self {
        Self { cache, source }
    }

    /// Sends the image of `content` by `send` (a `custom/send` with the given media id),
    /// uploading it first unless its media id is cached: the media id that went out.
    pub async fn send<F, Fut>(
        &self,
        bridge: &Bridge<P>,
        channel: &ChannelConfig,
        content: &Content,
        send: F,
    ) -> Result<String, ImageError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<(), CallError>>,
    {
        let source = Source::of(content)?;
        let key = source.key();
        let appid = channel.app_id.as_str();
        let cached = self
            .cache
            .cached_media(appid, &key, bridge.now_ms())
            .await?;
        let media_id = match cached {
            Some(media_id) => media_id,
            None => self.upload(bridge, channel, &key, &source).await?,
        };
        match send(media_id.clone()).await {
            Err(CallError::Api(error)) if error.errcode() == Some(INVALID_MEDIA_ID) => {
                tracing::info!(appid, "media id refused: uploading the image again");
                self.cache.forget_media(appid, &key, &media_id).await?;
                let fresh = self.upload(bridge, channel, &key, &source).await?;
                send(fresh.clone()).await?;
                Ok(fresh)
            }
            other => Ok(other.map(|()| media_id)?),
        }
    }

    /// The image at a partner's URL, with a few tries while it does not answer; then the
    /// reply fails for good.
    async fn fetch_patiently(&self, url: &str) -> Result<Image, ImageError> {
        let mut pause = FETCH_PAUSE;
        for _ in 1..FETCH_TRIES {
            match self.source.fetch(url).await {
                Err(FetchError::Unreachable(reason)) => {
                    tracing::info!(%reason, "image URL did not answer; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return Ok(other?),
            }
        }
        self.source.fetch(url).await.map_err(|error| match error {
            FetchError::Unreachable(reason) => {
                ImageError::Refused(format!("{reason} ({FETCH_TRIES} tries)"))
            }
            refused => refused.into(),
        })
    }

    /// Fetches (or takes the decoded) image, uploads it and caches its media id.
    async fn upload(
        &self,
        bridge: &Bridge<P>,
        channel: &ChannelConfig,
        key: &str,
        source: &Source<'_>,
    ) -> Result<String, ImageError> {
        let fetched;
        let image = match source {
            Source::Url(url) => {
                fetched = self.fetch_patiently(url).await?;
                &fetched
            }
            Source::Decoded(image) => image,
        };
        let file_name = format!("{}.{}", &key[..16], image.kind.extension());
        let media_id = upload(bridge, channel, &file_name, image)
            .await
            .map_err(ImageError::Upload)?;
        let expires_at_ms = bridge.now_ms() + MEDIA_LIFETIME_MS;
        if let Err(error) = self
            .cache
            .save_media(&channel.app_id, key, &media_id, expires_at_ms)
            .await
        {
            // The image still goes out; the next one uploads again.
            tracing::warn!(%error, "media id not cached");
        }
        Ok(media_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::wechat::ApiError;
    use base64::Engine;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn failures_are_final_or_for_later() {
        assert!(ImageError::Refused("the image is larger than 2 MiB".into()).is_final());
        assert!(!ImageError::Unreachable("timed out".into()).is_final());
        assert!(!ImageError::Store(StoreError::Unavailable("down".into())).is_final());
        let refused = CallError::Api(ApiError::WeChat {
            errcode: 40006,
            errmsg: "invalid meida size".into(),
        });
        assert!(ImageError::from(refused).is_final());
        let busy = CallError::Api(ApiError::WeChat {
            errcode: -1,
            errmsg: "system error".into(),
        });
        assert!(!ImageError::from(busy).is_final());
    }

    #[test]
    fn keys_are_per_url_or_per_bytes() {
        let url = Content::Image {
            url: Some("https://img.example/a.png".into()),
            base64: None,
        };
        let bytes = Content::Image {
            url: None,
            base64: Some(b64(PNG)),
        };
        let key = Source::of(&url).unwrap().key();
        assert_eq!(
            key,
            hex::encode(Sha256::digest(b"https://img.example/a.png"))
        );
        assert_eq!(
            Source::of(&bytes).unwrap().key(),
            hex::encode(Sha256::digest(PNG))
        );
        let bad = Content::Image {
            url: None,
            base64: Some(b64(b"text")),
        };
        assert!(Source::of(&bad).err().unwrap().is_final());
    }
}
