//! Entry-point logic of each Lambda function. Each function's `main.rs` only builds the
//! configuration and clients and hands requests to these.

pub mod api;
pub mod callback;
pub mod dispatch;
pub mod fifo;
pub mod inbound;
pub mod push;

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
