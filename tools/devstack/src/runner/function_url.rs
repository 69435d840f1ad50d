//! Function URLs: `ANY /lambda-url/{function}/{rest…}` becomes the event a Lambda Function
//! URL hands its function (payload version 2.0, the shape of an HTTP API's), and the
//! function's response event becomes the HTTP answer.
//!
//! The request's path after the function's name is the event's `rawPath` (`/` when there
//! is none), so `/lambda-url/callback/wechat/mp-demo?signature=…` reaches `callback` as
//! `/wechat/mp-demo?signature=…`, as `cargo lambda watch` served it.

use super::clock::{common_log_time, epoch_ms};
use super::host::{InvokeRequest, Outcome};
use super::invoke_api::{not_found, service_error};
use super::runtime_api::MAX_PAYLOAD;
use super::{log, RunnerState};
use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::query_map::QueryMap;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE, TRANSFER_ENCODING, USER_AGENT,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::Response;
use base64::Engine as _;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// Where function URLs live under the runner's address.
pub(crate) const PREFIX: &str = "/lambda-url/";

/// The function a `/lambda-url/{function}/{rest…}` path names, and the rest (`/` at least).
pub(crate) fn split_path(path: &str) -> Option<(&str, String)> {
    let after = path.strip_prefix(PREFIX)?;
    let (function, rest) = match after.find('/') {
        Some(at) => (&after[..at], &after[at..]),
        None => (after, "/"),
    };
    (!function.is_empty()).then(|| (function, rest.to_owned()))
}

/// `ANY /lambda-url/{function}/{rest…}`: the request as a function URL event to the
/// function, its response event as the answer. A function error, or a response that is
/// not one, is a 502, as function URLs answer them.
pub(crate) async fn serve(
    State(state): State<Arc<RunnerState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let received = SystemTime::now();
    let (parts, body) = request.into_parts();
    let Some((function, raw_path)) = split_path(parts.uri.path()) else {
        return not_found(&state, "");
    };
    let Some(host) = state.functions.get(function).cloned() else {
        return not_found(&state, function);
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        return service_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            "the request is larger than a function URL takes",
        );
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = request_event(&UrlRequest {
        function,
        request_id: &request_id,
        method: &parts.method,
        raw_path: &raw_path,
        raw_query: parts.uri.query(),
        version: parts.version,
        headers: &parts.headers,
        body: &body,
        peer,
        received,
    });
    let payload = match serde_json::to_vec(&event) {
        Ok(payload) => Bytes::from(payload),
        Err(_) => return bad_gateway(),
    };
    let invocation = InvokeRequest {
        request_id,
        payload,
        client_context: None,
        cognito_identity: None,
    };
    // Run on its own, so a caller that gives up does not cut the invocation short.
    match tokio::spawn(async move { host.invoke(invocation).await }).await {
        Ok(Outcome::Response(payload)) => http_response(&payload).unwrap_or_else(|error| {
            log(
                function,
                format!("its answer is not an HTTP response: {error}"),
            );
            bad_gateway()
        }),
        Ok(Outcome::Failed(_)) | Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response {
    let mut response = Response::new(Body::from("Internal Server Error"));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// What the event is built from: the HTTP request as received.
pub(crate) struct UrlRequest<'a> {
    pub function: &'a str,
    pub request_id: &'a str,
    pub method: &'a Method,
    /// The path after the function's name, as received (not decoded).
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub version: Version,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub peer: SocketAddr,
    pub received: SystemTime,
}

/// The function URL event for `request`.
pub(crate) fn request_event(request: &UrlRequest<'_>) -> ApiGatewayV2httpRequest {
    let headers = request.headers;
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let raw_query = request.raw_query.unwrap_or_default();

    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = request.method.clone();
    http.path = Some(request.raw_path.to_owned());
    http.protocol = Some(format!("{:?}", request.version));
    http.source_ip = Some(request.peer.ip().to_string());
    http.user_agent = header(USER_AGENT).map(str::to_owned);

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some("$default".to_owned());
    // What Lambda names for a URL without IAM auth (AuthType NONE).
    context.account_id = Some("anonymous".to_owned());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(request.request_id.to_owned());
    context.apiid = Some(request.function.to_owned());
    context.domain_name = Some(header(HOST).unwrap_or("localhost").to_owned());
    context.domain_prefix = Some(request.function.to_owned());
    context.time = Some(common_log_time(request.received));
    context.time_epoch = epoch_ms(request.received) as i64;
    context.http = http;

    let mut event = ApiGatewayV2httpRequest::default();
    // Only a custom authorizer's payload has a top-level method; it is kept right anyway.
    #[allow(deprecated)]
    {
        event.http_method = request.method.clone();
    }
    event.version = Some("2.0".to_owned());
    event.route_key = Some("$default".to_owned());
    event.raw_path = Some(request.raw_path.to_owned());
    event.raw_query_string = Some(raw_query.to_owned());
    event.query_string_parameters = raw_query.parse::<QueryMap>().unwrap_or_default();
    event.cookies = cookies(headers);
    event.headers = event_headers(headers);
    let (body, is_base64_encoded) = event_body(request.body, header(CONTENT_TYPE));
    event.body = body;
    event.is_base64_encoded = is_base64_encoded;
    event.request_context = context;
    event
}

/// The request's headers as a function URL passes them: one value per name, repeated
/// values joined with commas, cookies left to `cookies`.
fn event_headers(headers: &HeaderMap) -> HeaderMap {
    let mut joined = HeaderMap::new();
    for name in headers.keys().filter(|name| *name != COOKIE) {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        if let Ok(value) = HeaderValue::from_str(&values.join(",")) {
            joined.insert(name.clone(), value);
        }
    }
    joined
}

/// Each cookie of the `Cookie` headers, as the event's `cookies`.
fn cookies(headers: &HeaderMap) -> Option<Vec<String>> {
    let cookies: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(';')
                .map(str::trim)
                .filter(|cookie| !cookie.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    (!cookies.is_empty()).then_some(cookies)
}

/// The body as the event carries it: text when it is UTF-8 of a textual type (or of no
/// type), base64 otherwise; none when empty.
fn event_body(body: &[u8], content_type: Option<&str>) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    if content_type.is_none_or(is_textual) {
        if let Ok(text) = std::str::from_utf8(body) {
            return (Some(text.to_owned()), false);
        }
    }
    (
        Some(base64::engine::general_purpose::STANDARD.encode(body)),
        true,
    )
}

fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/yaml"
                | "application/x-www-form-urlencoded"
        )
}

/// Why a function's answer could not be turned into an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadResponse {
    #[error("the response is not JSON")]
    NotJson,
    #[error("the response is not a function URL response: {0}")]
    NotAResponse(String),
    #[error("status code {0} is not an HTTP status")]
    Status(i64),
    #[error("isBase64Encoded but the body is not base64")]
    NotBase64,
    #[error("a header that HTTP cannot carry")]
    Header,
}

/// The HTTP answer for the function's response `payload`. A JSON object with a
/// `statusCode` is a response event (headers, multi-value headers, cookies, a body in
/// base64 when `isBase64Encoded`); any other JSON is answered 200 as `application/json`,
/// as function URLs do.
pub(crate) fn http_response(payload: &[u8]) -> Result<Response, BadResponse> {
    let mut value: Value = serde_json::from_slice(payload).map_err(|_| BadResponse::NotJson)?;
    let Some(object) = value
        .as_object_mut()
        .filter(|o| o.contains_key("statusCode"))
    else {
        return Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(Bytes::copy_from_slice(payload)))
            .map_err(|_| BadResponse::Header);
    };
    // lambda_http always writes `cookies`; a hand-made response may leave it out.
    object
        .entry("cookies")
        .or_insert_with(|| Value::Array(Vec::new()));
    let event: ApiGatewayV2httpResponse =
        serde_json::from_value(value).map_err(|e| BadResponse::NotAResponse(e.to_string()))?;
    let status = u16::try_from(event.status_code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(BadResponse::Status(event.status_code))?;
    let body = match event.body {
        None | Some(EventBody::Empty) => Bytes::new(),
        Some(body) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(body.as_ref())
            .map(Bytes::from)
            .map_err(|_| BadResponse::NotBase64)?,
        Some(body) => Bytes::copy_from_slice(body.as_ref()),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in event.headers.iter().chain(event.multi_value_headers.iter()) {
        // The runner frames the body itself.
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            headers.append(name.clone(), value.clone());
        }
    }
    for cookie in &event.cookies {
        headers.append(
            SET_COOKIE,
            HeaderValue::from_str(cookie).map_err(|_| BadResponse::Header)?,
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_path_names_the_function_and_the_rest_is_the_functions_path() {
        assert_eq!(
            split_path("/lambda-url/callback/wechat/mp-demo"),
            Some(("callback", "/wechat/mp-demo".to_owned()))
        );
        assert_eq!(split_path("/lambda-url/api"), Some(("api", "/".to_owned())));
        assert_eq!(
            split_path("/lambda-url/api/"),
            Some(("api", "/".to_owned()))
        );
        assert_eq!(
            split_path("/lambda-url/api/v1/a%20b/"),
            Some(("api", "/v1/a%20b/".to_owned()))
        );
        assert_eq!(split_path("/lambda-url/"), None);
        assert_eq!(split_path("/lambda-url//x"), None);
        assert_eq!(split_path("/elsewhere"), None);
    }

    fn event_for(method: Method, headers: &[(&str, &str)], body: &[u8]) -> Value {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let request = UrlRequest {
            function: "callback",
            request_id: "req-1",
            method: &method,
            raw_path: "/wechat/mp-demo",
            raw_query: Some("signature=s&nonce=1&nonce=2"),
            version: Version::HTTP_11,
            headers: &map,
            body,
            peer: "127.0.0.1:5555".parse().unwrap(),
            received: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_583_348_638_390),
        };
        serde_json::to_value(request_event(&request)).unwrap()
    }

    #[test]
    fn a_request_becomes_a_function_url_event() {
        let event = event_for(
            Method::POST,
            &[
                ("host", "127.0.0.1:9000"),
                ("content-type", "text/xml"),
                ("user-agent", "curl/8"),
                ("x-many", "a"),
                ("x-many", "b"),
                ("cookie", "a=1; b=2"),
            ],
            b"<xml>hi</xml>",
        );
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "$default");
        assert_eq!(event["rawPath"], "/wechat/mp-demo");
        assert_eq!(event["rawQueryString"], "signature=s&nonce=1&nonce=2");
        assert_eq!(event["queryStringParameters"]["signature"], "s");
        assert_eq!(event["headers"]["x-many"], "a,b");
        assert_eq!(event["headers"]["host"], "127.0.0.1:9000");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["body"], "<xml>hi</xml>");
        assert_eq!(event["isBase64Encoded"], false);
        let context = &event["requestContext"];
        assert_eq!(context["http"]["method"], "POST");
        assert_eq!(context["http"]["path"], "/wechat/mp-demo");
        assert_eq!(context["http"]["protocol"], "HTTP/1.1");
        assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(context["http"]["userAgent"], "curl/8");
        assert_eq!(context["domainName"], "127.0.0.1:9000");
        assert_eq!(context["requestId"], "req-1");
        assert_eq!(context["stage"], "$default");
        assert_eq!(context["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(context["timeEpoch"], 1_583_348_638_390_i64);
    }

    #[test]
    fn a_body_that_is_not_utf8_text_goes_in_base64() {
        let binary = [0u8, 159, 146, 150, 255];
        let event = event_for(
            Method::PUT,
            &[("content-type", "application/octet-stream")],
            &binary,
        );
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "AJ+Slv8=");
        let event = event_for(Method::PUT, &[("content-type", "text/plain")], &binary);
        assert_eq!(
            event["isBase64Encoded"], true,
            "not UTF-8 whatever its type"
        );
        let event = event_for(Method::GET, &[], b"");
        assert!(event.get("body").is_none() || event["body"].is_null());
        assert_eq!(event["isBase64Encoded"], false);
        assert!(event.get("cookies").is_none() || event["cookies"].is_null());
    }

    #[test]
    fn the_lambda_http_runtime_reads_the_event_as_the_request_received() {
        let event = event_for(
            Method::POST,
            &[
                ("host", "127.0.0.1:9000"),
                ("content-type", "application/json"),
            ],
            b"{}",
        );
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().path(), "/wechat/mp-demo");
        assert_eq!(request.uri().query(), Some("signature=s&nonce=1&nonce=2"));
        assert_eq!(request.body().as_ref(), b"{}");
    }

    async fn read(response: Response) -> (StatusCode, HeaderMap, Vec<u8>) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, bytes.to_vec())
    }

    #[tokio::test]
    async fn a_response_event_becomes_the_http_answer() {
        let payload = json!({
            "statusCode": 201,
            "headers": {"content-type": "application/octet-stream", "content-length": "999"},
            "multiValueHeaders": {"x-many": ["a", "b"]},
            "cookies": ["k=v; Path=/"],
            "body": "AJ+Slv8=",
            "isBase64Encoded": true
        });
        let (status, headers, body) =
            read(http_response(payload.to_string().as_bytes()).unwrap()).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers["content-type"], "application/octet-stream");
        assert!(headers.get("content-length").is_none());
        assert_eq!(headers.get_all("x-many").iter().count(), 2);
        assert_eq!(headers["set-cookie"], "k=v; Path=/");
        assert_eq!(body, vec![0u8, 159, 146, 150, 255]);

        let plain = json!({"statusCode": 404, "body": "nope"});
        let (status, _, body) = read(http_response(plain.to_string().as_bytes()).unwrap()).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, b"nope".to_vec()));
    }

    #[tokio::test]
    async fn any_other_json_is_a_200_with_that_json() {
        let (status, headers, body) = read(http_response(br#"{"ok":true}"#).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body, br#"{"ok":true}"#.to_vec());
        assert!(http_response(b"not json").is_err());
        assert!(http_response(br#"{"statusCode": 99}"#).is_err());
        assert!(
            http_response(br#"{"statusCode": 200, "body": "%%", "isBase64Encoded": true}"#)
                .is_err()
        );
    }
}
