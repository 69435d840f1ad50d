//! Sample events: what API Gateway's HTTP API (payload v2) hands the `callback` function
//! for a request to `/wechat/{channel}`, as JSON (the Lambda edge's tests turn it into the
//! runtime's request type).

use serde_json::{json, Map, Value};
use wxbridge_wechat::encode::SignedPush;

/// An HTTP API v2 event carrying a request to `/wechat/{channel}`, as Lambda receives it.
pub fn http_api_event(
    method: &str,
    channel: &str,
    query: &[(String, String)],
    body: Option<&str>,
) -> Value {
    let path = format!("/wechat/{channel}");
    let raw_query = SignedPush {
        query: query.to_vec(),
        body: String::new(),
    }
    .query_string();
    let parameters: Map<String, Value> = query.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let content_type = match body.map(str::trim_start) {
        Some(b) if b.starts_with('<') => "text/xml",
        _ => "application/json",
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{method} /wechat/{{channel}}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": { "content-type": content_type, "user-agent": "Mozilla/4.0", "host": "localhost" },
        "queryStringParameters": parameters,
        "pathParameters": { "channel": channel },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Mozilla/4.0" },
            "requestId": "local-request",
            "routeKey": format!("{method} /wechat/{{channel}}"),
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// A sealed push as the event `callback` receives for it.
pub fn push_event(push: &SignedPush, channel: &str) -> Value {
    http_api_event("POST", channel, &push.query, Some(&push.body))
}
