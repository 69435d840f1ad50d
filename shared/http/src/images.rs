//! Partners' images, fetched from their URLs: 5 seconds, 2 MiB, a few redirects, and
//! only from addresses anyone on the internet could reach (unless a local stack allows
//! private hosts), so a partner's URL cannot reach inside the bridge's network.

use crate::addresses::is_public;
use crate::{read_at_most, LazyClient};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use wxbridge_core::model::{Image, ImageType, MAX_IMAGE_BYTES};
use wxbridge_core::ports::media::{FetchError, ImageSource};
use wxbridge_core::ports::wechat::ApiError;

/// How long a download from a partner's URL may take, start to end.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How many redirects a partner's URL may take.
pub const MAX_REDIRECTS: usize = 3;

fn too_large() -> FetchError {
    FetchError::Refused("the image is larger than 2 MiB".into())
}

/// What a status of the partner's image URL means.
fn check_status(status: u16) -> Result<(), FetchError> {
    let answered = format!("the image URL answered HTTP {status}");
    match status {
        200..=299 => Ok(()),
        // Timeout and rate limit say "later", as 5xx do.
        408 | 429 | 500..=599 => Err(FetchError::Unreachable(answered)),
        _ => Err(FetchError::Refused(answered)),
    }
}

/// A request to the partner's URL that got no answer.
fn request_failed(error: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if cause.is::<PrivateHost>() {
            return FetchError::Refused(PrivateHost.to_string());
        }
        source = cause.source();
    }
    if error.is_redirect() {
        return FetchError::Refused(format!(
            "the image URL redirects more than {MAX_REDIRECTS} times"
        ));
    }
    if error.is_builder() {
        return FetchError::Refused("the image URL cannot be requested".into());
    }
    let why = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "no connection".to_owned()
    } else {
        error.without_url().to_string()
    };
    FetchError::Unreachable(format!("the image URL did not answer: {why}"))
}

/// A partner's image URL that leads to a loopback, private or link-local address: the
/// bridge does not fetch from inside its own network on a partner's behalf.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the image URL points at a private address")]
pub struct PrivateHost;

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
    http: LazyClient,
    public_only: bool,
}

impl Default for Downloader {
    fn default() -> Self {
        Self::new(DOWNLOAD_TIMEOUT, true)
    }
}

impl Downloader {
    pub fn for_config(config: &wxbridge_core::config::BridgeConfig) -> Self {
        Self::new(DOWNLOAD_TIMEOUT, !config.allow_private_image_hosts)
    }

    pub fn new(timeout: Duration, public_only: bool) -> Self {
        let http = LazyClient::new(move || {
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
            if public_only {
                builder.dns_resolver(PublicAddresses)
            } else {
                builder
            }
        });
        Self { http, public_only }
    }
}

impl ImageSource for Downloader {
    /// The image at `url`, checked: at most 2 MiB, a JPEG, PNG or GIF by its bytes (the
    /// Content-Type the URL claims is not trusted).
    async fn fetch(&self, url: &str) -> Result<Image, FetchError> {
        if self.public_only && reqwest::Url::parse(url).is_ok_and(|u| literal_private(&u)) {
            return Err(FetchError::Refused(PrivateHost.to_string()));
        }
        let response = self
            .http
            .get()
            .get(url)
            .send()
            .await
            .map_err(request_failed)?;
        check_status(response.status().as_u16())?;
        let bytes = read_at_most(response, MAX_IMAGE_BYTES)
            .await
            .map_err(|error| match error {
                ApiError::TooLarge(_) => too_large(),
                other => FetchError::Unreachable(format!("the image download broke off: {other}")),
            })?;
        let kind = ImageType::sniff(&bytes).ok_or_else(|| {
            FetchError::Refused("the image URL did not answer a JPEG, PNG or GIF image".into())
        })?;
        Ok(Image { bytes, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0";

    fn is_final(error: &FetchError) -> bool {
        matches!(error, FetchError::Refused(_))
    }

    #[test]
    fn url_statuses_are_final_or_for_later() {
        assert!(check_status(200).is_ok());
        for status in [400, 401, 403, 404, 410, 300, 304] {
            let error = check_status(status).unwrap_err();
            assert!(is_final(&error), "{status}");
            assert!(error.to_string().contains(&status.to_string()));
        }
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(!is_final(&check_status(status).unwrap_err()), "{status}");
        }
        assert!(is_final(&too_large()));
    }

    /// A partner's image host on loopback (axum): each path answers one way.
    async fn image_host() -> String {
        use axum::body::Body;
        use axum::http::{header, StatusCode};
        use axum::response::IntoResponse;
        use axum::routing::get;
        let mut big = JPEG.to_vec();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        let app = axum::Router::new()
            // The bytes decide, not the header.
            .route(
                "/gif",
                get(|| async { ([(header::CONTENT_TYPE, "text/plain")], GIF) }),
            )
            .route(
                "/html",
                get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>") }),
            )
            // Over 2 MiB, streamed without a length to refuse it by.
            .route(
                "/big",
                get(move || {
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
                    async move { Body::from_stream(futures_util::stream::iter(chunks)) }
                }),
            )
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .route("/busy", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .route(
                "/silent",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    StatusCode::OK
                }),
            )
            .route(
                "/loop",
                get(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn a_url_inside_the_network_is_refused_for_good() {
        let public_only = Downloader::new(Duration::from_millis(300), true);
        let gif = format!("{}/gif", image_host().await);
        let by_name = gif.replace("127.0.0.1", "localhost");
        for url in [gif.as_str(), by_name.as_str(), "http://[::1]:9/x.png"] {
            let error = public_only.fetch(url).await.unwrap_err();
            assert!(
                is_final(&error) && error.to_string().contains("private address"),
                "{url}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn downloads_are_checked_and_their_failures_classified() {
        let downloader = Downloader::new(Duration::from_millis(300), false);
        let host = image_host().await;
        let at = |path: &str| format!("{host}/{path}");
        let image = downloader.fetch(&at("gif")).await.unwrap();
        assert_eq!(
            image.kind,
            ImageType::Gif,
            "the bytes decide, not the header"
        );

        let error = downloader.fetch(&at("html")).await.unwrap_err();
        assert!(is_final(&error) && error.to_string().contains("JPEG, PNG or GIF"));

        let error = downloader.fetch(&at("big")).await.unwrap_err();
        assert!(
            is_final(&error) && error.to_string().contains("2 MiB"),
            "{error}"
        );

        assert!(is_final(
            &downloader.fetch(&at("missing")).await.unwrap_err()
        ));
        assert!(!is_final(&downloader.fetch(&at("busy")).await.unwrap_err()));

        let error = downloader.fetch(&at("silent")).await.unwrap_err();
        assert!(
            !is_final(&error) && error.to_string().contains("timed out"),
            "{error}"
        );

        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/image", listener.local_addr().unwrap())
        };
        let error = downloader.fetch(&closed).await.unwrap_err();
        assert!(!is_final(&error), "{error}");

        let error = downloader.fetch(&at("loop")).await.unwrap_err();
        assert!(
            is_final(&error) && error.to_string().contains("redirects"),
            "{error}"
        );
    }
}
