//! What the HTTP functions' answers share.

use lambda_http::{Body, Response};

/// A JSON error answer: a stable code and a reason that never quotes request content.
pub fn error_response(status: u16, code: &str, reason: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "reason": reason }).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body))
        .expect("static response parts are valid")
}

/// A plain-text 200 answer.
pub fn text_response(text: impl Into<String>) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::Text(text.into()))
        .expect("static response parts are valid")
}

/// An API Gateway HTTP API event (JSON) as the request the runtime hands a function: for
/// sample events and tests.
#[cfg(any(test, feature = "test-support"))]
pub fn event_request(event: &serde_json::Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("an HTTP API event the runtime reads")
}
