//! The signature layer, around the whole router: every request is read (at most
//! [`MAX_REQUEST_BYTES`]), checked as a partner's signed request and only then routed, so an
//! unsigned caller learns nothing about which paths and methods exist. Refusals are logged
//! and counted here, whichever part of the API answered them.

use super::error::{ApiError, Refused};
use super::extract::Partner;
use super::ApiState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::RequestExt;
use std::sync::Arc;
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::metrics;
use wxbridge_core::ports::nonces::NonceStore;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::partner::auth::{self, SignedRequest};

/// Requests larger than this are refused with 413: a base64 image is at most 256 KiB.
pub const MAX_REQUEST_BYTES: usize = 512 * 1024;

pub async fn check<P: Ports, N: NonceStore>(
    State(state): State<Arc<ApiState<P, N>>>,
    request: Request,
    next: Next,
) -> Response {
    // The path as the partner sent and signed it (API Gateway's raw path, without a stage).
    let raw_path = request.raw_http_path();
    let path = if raw_path.is_empty() {
        request.uri().path().to_owned()
    } else {
        raw_path.to_owned()
    };
    let time_left = request
        .lambda_context_ref()
        .and_then(|context| time_to_answer(context.deadline, system_clock_ms()));
    let path_and_query = match request.uri().query() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.clone(),
    };
    // Boxed: the router's future is large, and the timeout around it would be held inline.
    let answering = Box::pin(async {
        match signed(&state, request, &path_and_query).await {
            Ok(request) => next.run(request).await,
            Err(error) => error.into_response(),
        }
    });
    let response = match time_left {
        Some(left) => tokio::time::timeout(left, answering)
            .await
            .unwrap_or_else(|_| ApiError::OutOfTime.into_response()),
        None => answering.await,
    };
    if let Some(Refused(code)) = response.extensions().get::<Refused>() {
        metrics::count_because("requests_refused", code);
        tracing::info!(status = response.status().as_u16(), code, %path, "API request refused");
    }
    response
}

/// Kept back at the function's deadline to answer: a slow store ends in a 503 the partner
/// repeats, not in the function being stopped (a 502 saying nothing).
const ANSWERING_MS: u64 = 1_000;

/// How long the request may take before it is answered 503, from Lambda's deadline (ms since
/// the epoch); `None` without a deadline ahead (tests, local tools).
pub(super) fn time_to_answer(deadline_ms: u64, now_ms: i64) -> Option<std::time::Duration> {
    let left = deadline_ms.checked_sub(u64::try_from(now_ms).ok()?)?;
    Some(std::time::Duration::from_millis(
        left.saturating_sub(ANSWERING_MS),
    ))
}

/// The request, read whole and authenticated, with its partner, routed on the signed path.
async fn signed<P: Ports, N: NonceStore>(
    state: &ApiState<P, N>,
    request: Request,
    path_and_query: &str,
) -> Result<Request, ApiError> {
    let (mut parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path_and_query,
        body: &body,
    };
    let bridge = state.api.bridge();
    let now_secs = bridge.now_ms().div_euclid(1000);
    let partner =
        auth::authenticate(&bridge.config, &state.nonces, &signed, header, now_secs).await?;
    parts.extensions.insert(Partner(partner));
    if let Ok(uri) = path_and_query.parse::<Uri>() {
        parts.uri = uri;
    }
    Ok(Request::from_parts(parts, Body::from(body)))
}
