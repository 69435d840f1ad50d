//! Lambda's Invoke API, `POST /2015-03-31/functions/{name}/invocations`, answered as
//! Lambda answers it:
//!
//! - the function's response: 200 with the payload;
//! - a function error (the runtime's `…/error`, an exit mid-invocation, a timeout): 200
//!   with `X-Amz-Function-Error: Unhandled` and `{"errorType", "errorMessage"}`;
//! - an unknown function: 404 `ResourceNotFoundException`; a payload that is not JSON:
//!   400 `InvalidRequestContentException`; one over 6 MB: 413
//!   `RequestTooLargeException`;
//! - `X-Amz-Invocation-Type: Event` is answered 202 at once and runs on; `DryRun` 204.
//!
//! `cargo lambda invoke` posts here too (its `lambda-runtime-client-context` and
//! `lambda-runtime-cognito-identity` headers are passed on to the runtime as they are).

use super::host::{InvokeRequest, Outcome};
use super::runtime_api::MAX_PAYLOAD;
use super::RunnerState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use std::sync::Arc;

pub(crate) async fn invoke(
    State(state): State<Arc<RunnerState>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let name = function_name(&function);
    let Some(host) = state.functions.get(name).cloned() else {
        return not_found(&state, name);
    };
    let Ok(payload) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        return service_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!(
                "Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
            ),
        );
    };
    // Lambda hands a function `{}` when invoked without a payload.
    let payload = if payload.trim_ascii().is_empty() {
        Bytes::from_static(b"{}")
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return service_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    } else {
        payload
    };
    let Ok(client_context) = client_context(&headers) else {
        return service_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Client context must be a valid Base64-encoded JSON object.",
        );
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .map(|value| value.to_str().unwrap_or_default())
        .unwrap_or("RequestResponse");
    let request = InvokeRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        payload,
        client_context,
        cognito_identity: headers.get("lambda-runtime-cognito-identity").cloned(),
    };
    let request_id = request.request_id.clone();
    match invocation_type {
        "RequestResponse" => {}
        "Event" => {
            tokio::spawn(async move { host.invoke(request).await });
            return with_request_id(StatusCode::ACCEPTED.into_response(), &request_id);
        }
        "DryRun" => return with_request_id(StatusCode::NO_CONTENT.into_response(), &request_id),
        _ => {
            return service_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun",
            )
        }
    }
    // The invocation runs on its own: a caller that gives up does not cut it short, as
    // Lambda goes on with an invocation whose caller went away.
    let outcome = tokio::spawn(async move { host.invoke(request).await }).await;
    let response = match outcome {
        Ok(Outcome::Response(payload)) => json_response(payload),
        Ok(Outcome::Failed(error)) => {
            let mut response = json_response(error.payload);
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            response
        }
        Err(_) => service_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "the invocation was lost",
        ),
    };
    with_request_id(response, &request_id)
}

/// The function's name in the path: a name, or a function's ARN (`…:function:NAME`, with
/// a qualifier or not).
fn function_name(path: &str) -> &str {
    match path.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => path,
    }
}

/// A client context that is not base64 JSON.
#[derive(Debug)]
struct BadClientContext;

/// The client context for the runtime: Lambda's `X-Amz-Client-Context` is base64 JSON,
/// passed on decoded; cargo lambda's `lambda-runtime-client-context` as it is.
fn client_context(headers: &HeaderMap) -> Result<Option<HeaderValue>, BadClientContext> {
    let Some(encoded) = headers.get("x-amz-client-context") else {
        return Ok(headers.get("lambda-runtime-client-context").cloned());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| BadClientContext)?;
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&decoded)
        .map_err(|_| BadClientContext)?;
    HeaderValue::from_bytes(&decoded)
        .map(Some)
        .map_err(|_| BadClientContext)
}

fn json_response(payload: Bytes) -> Response {
    let mut response = (StatusCode::OK, payload).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    response
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// An error of the Lambda service itself (not of the function), as Lambda's REST API
/// answers one: the code in `x-amzn-ErrorType`, `{"Type", "Message"}` in the body.
pub(crate) fn service_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    let kind = if status.is_server_error() {
        "Service"
    } else {
        "User"
    };
    let mut response = (
        status,
        axum::Json(json!({ "Type": kind, "Message": message })),
    )
        .into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(code));
    response
}

/// `ResourceNotFoundException` for a function the runner does not run.
pub(crate) fn not_found(state: &RunnerState, name: &str) -> Response {
    service_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("Function not found: {}", state.context.function_arn(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_named_by_its_name_or_its_arn() {
        assert_eq!(function_name("callback"), "callback");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:callback"),
            "callback"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:callback:$LATEST"),
            "callback"
        );
    }

    #[test]
    fn a_client_context_is_decoded_from_lambdas_header_or_taken_from_cargo_lambdas() {
        let mut headers = HeaderMap::new();
        assert_eq!(client_context(&headers).unwrap(), None);
        headers.insert(
            "lambda-runtime-client-context",
            r#"{"a":1}"#.parse().unwrap(),
        );
        assert_eq!(client_context(&headers).unwrap().unwrap(), r#"{"a":1}"#);
        headers.insert("x-amz-client-context", "eyJiIjoyfQ==".parse().unwrap());
        assert_eq!(client_context(&headers).unwrap().unwrap(), r#"{"b":2}"#);
        headers.insert("x-amz-client-context", "not base64!".parse().unwrap());
        assert!(client_context(&headers).is_err());
    }
}
