//! The media cache ([`MediaCache`]): media ids kept per app and key until they expire.

use super::T0;
use wxbridge_core::ports::media::MediaCache;
use wxbridge_core::services::images::MEDIA_LIFETIME_MS;

/// Media ids are kept per app and key until they expire, even before the store deletes
/// them.
pub async fn media_ids_are_kept_until_they_expire<C: MediaCache>(cache: &C, appid: &str) {
    let now = T0;
    let expires = now + MEDIA_LIFETIME_MS;
    assert_eq!(cache.cached_media(appid, "k1", now).await.unwrap(), None);
    cache
        .save_media(appid, "k1", "media-1", expires)
        .await
        .unwrap();
    let cached = |at| cache.cached_media(appid, "k1", at);
    assert_eq!(cached(now).await.unwrap().as_deref(), Some("media-1"));
    assert_eq!(
        cached(expires - 1000).await.unwrap().as_deref(),
        Some("media-1"),
        "still valid a second before it expires"
    );
    assert_eq!(
        cached(expires).await.unwrap(),
        None,
        "an expired id is not used, whether or not the store deleted it yet"
    );
    assert_eq!(
        cache.cached_media(appid, "k2", now).await.unwrap(),
        None,
        "per key"
    );
    let other_app = format!("{appid}-other");
    assert_eq!(
        cache.cached_media(&other_app, "k1", now).await.unwrap(),
        None,
        "per app"
    );
}

/// A media id is forgotten only if it is still the one cached: a replaced one stays.
pub async fn a_media_id_is_forgotten_only_if_still_cached<C: MediaCache>(cache: &C, appid: &str) {
    let (now, expires) = (T0, T0 + MEDIA_LIFETIME_MS);
    cache
        .save_media(appid, "k1", "media-1", expires)
        .await
        .unwrap();
    cache
        .save_media(appid, "k1", "media-2", expires)
        .await
        .unwrap();
    cache.forget_media(appid, "k1", "media-1").await.unwrap();
    assert_eq!(
        cache
            .cached_media(appid, "k1", now)
            .await
            .unwrap()
            .as_deref(),
        Some("media-2")
    );
    cache.forget_media(appid, "k1", "media-2").await.unwrap();
    assert_eq!(cache.cached_media(appid, "k1", now).await.unwrap(), None);
    cache.forget_media(appid, "k1", "media-2").await.unwrap();
}
