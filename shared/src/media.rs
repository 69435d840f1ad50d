//! Getting a WeChat media id for a partner's image (protocol notes §3.4), and sending with
//! it: the id cached for the image while it lives, otherwise the image downloaded from the
//! partner's URL (or decoded from base64), checked and uploaded.
//!
//! An uploaded image's media id lives 3 days; it is cached a little less, per app and image
//! (the hex SHA-256 of the URL, or of the decoded bytes). A send that answers 40007 (invalid
//! media id) forgets the cached id and uploads once more.
//!
//! Failures are final when trying again cannot help (the URL answers 4xx, the image is too
//! large or not an image, WeChat refuses it) and retried later otherwise (the URL answers
//! 5xx, times out or refuses the connection; WeChat is busy).

use crate::config::ChannelConfig;
use crate::outbound::Content;
use crate::store::StoreError;
use crate::token::{CallError, TokenStore, Tokens};
use crate::wechat_api::{read_at_most, ApiError, WeChatApi};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use thiserror::Error;

/// The largest image downloaded from a partner's URL (WeChat's image limit, §3.4 and §7).
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// The largest base64 image, decoded: it is stored with the message, and a DynamoDB item
/// holds at most 400 KB.
pub const MAX_BASE64_IMAGE_BYTES: usize = 256 * 1024;
/// How long a cached media id is used: WeChat keeps it 3 days; an hour less for safety.
pub const MEDIA_LIFETIME_MS: i64 = (3 * 24 - 1) * 3_600_000;
/// How long a download from a partner's URL may take, start to end.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How many redirects a partner's URL may take.
pub const MAX_REDIRECTS: usize = 3;
/// WeChat's answer for a media id it does not know (any more).
const INVALID_MEDIA_ID: i64 = 40007;

/// The image types WeChat takes, told by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Gif,
}

impl ImageType {
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageType::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageType::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageType::Gif)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
            ImageType::Gif => "image/gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageType::Jpeg => "jpg",
            ImageType::Png => "png",
            ImageType::Gif => "gif",
        }
    }
}

/// An image ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub kind: ImageType,
}

/// A base64 image, decoded and checked; the error is the reason given for `content.base64`.
pub fn decode_base64(encoded: &str) -> Result<Image, &'static str> {
    const TOO_LARGE: &str = "at most 256 KiB decoded";
    // Refused before decoding: base64 takes 4 characters for every 3 bytes.
    if encoded.len() > MAX_BASE64_IMAGE_BYTES.div_ceil(3) * 4 {
        return Err(TOO_LARGE);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "must be base64")?;
    if bytes.len() > MAX_BASE64_IMAGE_BYTES {
        return Err(TOO_LARGE);
    }
    let kind = ImageType::sniff(&bytes).ok_or("must be a JPEG, PNG or GIF image")?;
    Ok(Image { bytes, kind })
}

/// Why an image was not sent.
#[derive(Debug, Error)]
pub enum ImageError {
    /// The partner's image cannot be sent as it is (4xx, too large, not an image): final.
    #[error("{0}")]
    Refused(String),
    /// The partner's server did not give the image this time (5xx, timeout, no connection).
    #[error("{0}")]
    Unreachable(String),
    /// Uploading or sending to WeChat failed.
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
            ImageError::WeChat(error) => error.is_final(),
            ImageError::Unreachable(_) | ImageError::Store(_) => false,
        }
    }

    /// WeChat's errcode, when WeChat answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            ImageError::WeChat(error) => error.errcode(),
            _ => None,
        }
    }
}

fn too_large() -> ImageError {
    ImageError::Refused("the image is larger than 2 MiB".into())
}

/// What a status of the partner's image URL means.
fn check_status(status: u16) -> Result<(), ImageError> {
    let answered = format!("the image URL answered HTTP {status}");
    match status {
        200..=299 => Ok(()),
        // Timeout and rate limit say "later", as 5xx do.
        408 | 429 | 500..=599 => Err(ImageError::Unreachable(answered)),
        _ => Err(ImageError::Refused(answered)),
    }
}

/// A request to the partner's URL that got no answer.
fn request_failed(error: reqwest::Error) -> ImageError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if cause.is::<PrivateHost>() {
            return ImageError::Refused(PrivateHost.to_string());
        }
        source = cause.source();
    }
    if error.is_redirect() {
        return ImageError::Refused(format!(
            "the image URL redirects more than {MAX_REDIRECTS} times"
        ));
    }
    if error.is_builder() {
        return ImageError::Refused("the image URL cannot be requested".into());
    }
    let why = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "no connection".to_owned()
    } else {
        error.without_url().to_string()
    };
    ImageError::Unreachable(format!("the image URL did not answer: {why}"))
}

/// A partner's image URL that leads to a loopback, private or link-local address: the
/// bridge does not fetch from inside its own network on a partner's behalf.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the image URL points at a private address")]
pub struct PrivateHost;

/// An address anyone on the internet could reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || a >= 224) // multicast and reserved
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local
                    || (first & 0xffc0) == 0xfe80) // link-local
            }
        },
    }
}

/// Resolves names to their public addresses only (a name with none is refused).
struct PublicAddresses;

impl reqwest::dns::Resolve for PublicAddresses {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(PrivateHost) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `true` when the URL names a private address literally (names are checked when resolved).
fn literal_private(url: &reqwest::Url) -> bool {
    url.host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|host| host.parse::<IpAddr>().ok())
        .is_some_and(|ip| !is_public(ip))
}

/// Downloads partners' images: 5 seconds, 2 MiB, a few redirects, public hosts only
/// (unless `allow_private_image_hosts`, for a local stack and tests).
#[derive(Debug, Clone)]
pub struct Downloader {
    http: reqwest::Client,
    public_only: bool,
}

impl Default for Downloader {
    fn default() -> Self {
        Self::new(DOWNLOAD_TIMEOUT, true)
    }
}

impl Downloader {
    pub fn for_config(config: &crate::config::BridgeConfig) -> Self {
        Self::new(DOWNLOAD_TIMEOUT, !config.allow_private_image_hosts)
    }

    pub fn new(timeout: Duration, public_only: bool) -> Self {
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if public_only && literal_private(attempt.url()) {
                attempt.error(PrivateHost)
            } else {
                attempt.follow()
            }
        });
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(redirects);
        let builder = if public_only {
            builder.dns_resolver(PublicAddresses)
        } else {
            builder
        };
        let http = builder
            .build()
            .expect("an HTTP client with a timeout builds");
        Self { http, public_only }
    }

    /// The image at `url`, checked: at most 2 MiB, a JPEG, PNG or GIF by its bytes (the
    /// Content-Type the URL claims is not trusted).
    pub async fn fetch(&self, url: &str) -> Result<Image, ImageError> {
        if self.public_only && reqwest::Url::parse(url).is_ok_and(|u| literal_private(&u)) {
            return Err(ImageError::Refused(PrivateHost.to_string()));
        }
        let response = self.http.get(url).send().await.map_err(request_failed)?;
        check_status(response.status().as_u16())?;
        let bytes = read_at_most(response, MAX_IMAGE_BYTES)
            .await
            .map_err(|error| match error {
                ApiError::TooLarge(_) => too_large(),
                other => ImageError::Unreachable(format!("the image download broke off: {other}")),
            })?;
        let kind = ImageType::sniff(&bytes).ok_or_else(|| {
            ImageError::Refused("the image URL did not answer a JPEG, PNG or GIF image".into())
        })?;
        Ok(Image { bytes, kind })
    }
}

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

/// What sending an image takes.
pub struct Images<'a, C, T> {
    pub cache: &'a C,
    pub tokens: &'a Tokens<T>,
    pub api: &'a WeChatApi,
    pub downloader: &'a Downloader,
    pub clock: fn() -> i64,
}

impl<C: MediaCache, T: TokenStore> Images<'_, C, T> {
    /// Sends the image of `content` by `send` (a `custom/send` with the given media id),
    /// uploading it first unless its media id is cached.
    pub async fn send<F, Fut>(
        &self,
        channel: &ChannelConfig,
        content: &Content,
        send: F,
    ) -> Result<(), ImageError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<(), CallError>>,
    {
        let source = Source::of(content)?;
        let key = source.key();
        let appid = channel.app_id.as_str();
        let media_id = match self.cache.cached_media(appid, &key, (self.clock)()).await? {
            Some(media_id) => media_id,
            None => self.upload(channel, &key, &source).await?,
        };
        match send(media_id.clone()).await {
            Err(CallError::Api(error)) if error.errcode() == Some(INVALID_MEDIA_ID) => {
                tracing::info!(appid, "media id refused: uploading the image again");
                self.cache.forget_media(appid, &key, &media_id).await?;
                let fresh = self.upload(channel, &key, &source).await?;
                Ok(send(fresh).await?)
            }
            other => Ok(other?),
        }
    }

    /// Downloads (or takes the decoded) image, uploads it and caches its media id.
    async fn upload(
        &self,
        channel: &ChannelConfig,
        key: &str,
        source: &Source<'_>,
    ) -> Result<String, ImageError> {
        let downloaded;
        let image = match source {
            Source::Url(url) => {
                downloaded = self.downloader.fetch(url).await?;
                &downloaded
            }
            Source::Decoded(image) => image,
        };
        let file_name = format!("{}.{}", &key[..16], image.kind.extension());
        let media_id = self
            .tokens
            .call(channel, self.clock, |token| {
                let (file_name, bytes) = (&file_name, image.bytes.clone());
                async move {
                    self.api
                        .upload_image(&token, file_name, image.kind.content_type(), bytes)
                        .await
                }
            })
            .await?;
        let expires_at_ms = (self.clock)() + MEDIA_LIFETIME_MS;
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
    use crate::store::memory::MemoryStore;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn types_are_told_by_their_first_bytes() {
        assert_eq!(ImageType::sniff(JPEG), Some(ImageType::Jpeg));
        assert_eq!(ImageType::sniff(PNG), Some(ImageType::Png));
        assert_eq!(ImageType::sniff(GIF), Some(ImageType::Gif));
        assert_eq!(ImageType::sniff(b"GIF87a"), Some(ImageType::Gif));
        for other in [
            &b"<!doctype html><html>"[..],
            b"",
            &[0xFF, 0xD8],
            b"\x89PNG",
            b"GIF90a",
            b"RIFF\0\0\0\0WEBP",
            b"{\"errcode\":0}",
        ] {
            assert_eq!(ImageType::sniff(other), None, "{other:?}");
        }
        assert_eq!(ImageType::Png.content_type(), "image/png");
        assert_eq!(ImageType::Jpeg.extension(), "jpg");
    }

    #[test]
    fn base64_images_must_decode_fit_and_be_images() {
        assert_eq!(
            decode_base64(&b64(PNG)),
            Ok(Image {
                bytes: PNG.to_vec(),
                kind: ImageType::Png
            })
        );
        assert_eq!(decode_base64("not base64!"), Err("must be base64"));
        assert_eq!(
            decode_base64(&b64(b"<html></html>")),
            Err("must be a JPEG, PNG or GIF image")
        );
        let mut largest = JPEG.to_vec();
        largest.resize(MAX_BASE64_IMAGE_BYTES, 0);
        assert!(decode_base64(&b64(&largest)).is_ok());
        largest.push(0);
        assert_eq!(
            decode_base64(&b64(&largest)),
            Err("at most 256 KiB decoded")
        );
        assert_eq!(
            decode_base64(&"A".repeat(10 * MAX_BASE64_IMAGE_BYTES)),
            Err("at most 256 KiB decoded")
        );
    }

    #[test]
    fn url_statuses_are_final_or_for_later() {
        assert!(check_status(200).is_ok());
        for status in [400, 401, 403, 404, 410, 300, 304] {
            let error = check_status(status).unwrap_err();
            assert!(error.is_final(), "{status}");
            assert!(error.to_string().contains(&status.to_string()));
        }
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(!check_status(status).unwrap_err().is_final(), "{status}");
        }
        assert!(too_large().is_final());
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

    /// A loopback server that answers every connection with `answer` (or never, if `None`).
    fn serve(answer: Option<Vec<u8>>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/image", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0; 4096];
                let _ = stream.read(&mut request);
                match &answer {
                    Some(answer) => {
                        let _ = stream.write_all(answer);
                    }
                    None => std::thread::sleep(Duration::from_secs(5)),
                }
            }
        });
        url
    }

    fn answer(status: &str, headers: &str, body: &[u8]) -> Option<Vec<u8>> {
        let mut answer =
            format!("HTTP/1.1 {status}\r\n{headers}connection: close\r\n\r\n").into_bytes();
        answer.extend_from_slice(body);
        Some(answer)
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "203.0.114.7",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_url_inside_the_network_is_refused_for_good() {
        let public_only = Downloader::new(Duration::from_millis(300), true);
        let gif = serve(answer("200 OK", "", GIF));
        let by_name = gif.replace("127.0.0.1", "localhost");
        for url in [gif.as_str(), by_name.as_str(), "http://[::1]:9/x.png"] {
            let error = public_only.fetch(url).await.unwrap_err();
            assert!(
                error.is_final() && error.to_string().contains("private address"),
                "{url}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn downloads_are_checked_and_their_failures_classified() {
        let downloader = Downloader::new(Duration::from_millis(300), false);
        let gif = serve(answer(
            "200 OK",
            &format!(
                "content-type: text/plain\r\ncontent-length: {}\r\n",
                GIF.len()
            ),
            GIF,
        ));
        let image = downloader.fetch(&gif).await.unwrap();
        assert_eq!(
            image.kind,
            ImageType::Gif,
            "the bytes decide, not the header"
        );

        let html = serve(answer("200 OK", "content-type: text/html\r\n", b"<html>"));
        let error = downloader.fetch(&html).await.unwrap_err();
        assert!(error.is_final() && error.to_string().contains("JPEG, PNG or GIF"));

        // Over 2 MiB, without a length to refuse it by: cut off once it is over.
        let mut big = JPEG.to_vec();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        let error = downloader
            .fetch(&serve(answer("200 OK", "", &big)))
            .await
            .unwrap_err();
        assert!(
            error.is_final() && error.to_string().contains("2 MiB"),
            "{error}"
        );

        let missing = serve(answer("404 Not Found", "content-length: 0\r\n", b""));
        assert!(downloader.fetch(&missing).await.unwrap_err().is_final());
        let busy = serve(answer("503 Busy", "content-length: 0\r\n", b""));
        assert!(!downloader.fetch(&busy).await.unwrap_err().is_final());

        let silent = serve(None);
        let error = downloader.fetch(&silent).await.unwrap_err();
        assert!(
            !error.is_final() && error.to_string().contains("timed out"),
            "{error}"
        );

        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/image", listener.local_addr().unwrap())
        };
        let error = downloader.fetch(&closed).await.unwrap_err();
        assert!(!error.is_final(), "{error}");

        let looping = serve(answer(
            "302 Found",
            "location: /image\r\ncontent-length: 0\r\n",
            b"",
        ));
        let error = downloader.fetch(&looping).await.unwrap_err();
        assert!(
            error.is_final() && error.to_string().contains("redirects"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn cached_media_ids_expire() {
        crate::store::conformance::check_media_cache(&MemoryStore::default(), "wx1").await;
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
