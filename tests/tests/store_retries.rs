//! A DynamoDB write answered 500 (DynamoDB's `InternalServerError`, retryable; what moto
//! answered when its transactions raced: docs/local-stack.md) is retried by the SDK as
//! the functions configure it (`wxbridge_aws::load_sdk_config`: standard retry mode, 3
//! attempts within the 3 s budget), a transaction with the same `ClientRequestToken`, so
//! DynamoDB applies it once however many attempts reach it. The store adds no retry of its
//! own: only when every attempt failed is the store unavailable (503 at the API).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wxbridge_aws::DynamoStore;
use wxbridge_core::model::{Conversation, StoredMessage};
use wxbridge_core::ports::store::{MessageStore, StoreError};

/// A stand-in for DynamoDB: answers 500 (moto's bare error page) to the first `failures`
/// requests and `{}` (a transaction applied) after; records each request's target and
/// client request token.
#[derive(Clone, Default)]
struct Dynamo {
    failures: usize,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

async fn answer(State(dynamo): State<Dynamo>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let token = request["ClientRequestToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let seen = {
        let mut requests = dynamo.requests.lock().unwrap();
        requests.push((target, token));
        requests.len()
    };
    if seen <= dynamo.failures {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/html; charset=utf-8")],
            "<!doctype html>\n<title>500 Internal Server Error</title>",
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        "{}",
    )
        .into_response()
}

async fn store_on(dynamo: &Dynamo) -> DynamoStore {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(dynamo.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sdk = wxbridge_aws::load_sdk_config(wxbridge_aws::CallBudget::Answering).await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    );
    DynamoStore::new(client, "bridge")
}

/// A reply stored with its conversation: one TransactWriteItems.
async fn put_reply(store: &DynamoStore) -> Result<(), StoreError> {
    let conversation = Conversation::new("mp:o_amy:hotel-9", "mp", "o_amy", "hotel-9", 1_000);
    let message = StoredMessage::reply(
        &conversation,
        "out_1",
        1_000,
        serde_json::json!({"type": "text", "text": "Breakfast is included."}),
    );
    store
        .put_outbound(&message, &conversation, &message.id)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_transaction_answered_500_is_retried_with_the_same_token() {
    let dynamo = Dynamo {
        failures: 1,
        ..Dynamo::default()
    };
    put_reply(&store_on(&dynamo).await)
        .await
        .expect("stored on the second attempt");
    let requests = dynamo.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests
        .iter()
        .all(|(target, _)| target == "DynamoDB_20120810.TransactWriteItems"));
    assert!(!requests[0].1.is_empty(), "a client request token");
    assert_eq!(
        requests[0].1, requests[1].1,
        "the same token on each attempt"
    );
}

#[tokio::test]
async fn a_store_answering_500_to_every_attempt_is_unavailable_within_the_budget() {
    let dynamo = Dynamo {
        failures: usize::MAX,
        ..Dynamo::default()
    };
    let started = Instant::now();
    let error = put_reply(&store_on(&dynamo).await).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    // The SDK's error is kept beneath, and the message names it.
    let cause = std::error::Error::source(&error).expect("a cause");
    assert!(
        cause
            .downcast_ref::<SdkError<TransactWriteItemsError, HttpResponse>>()
            .is_some(),
        "{cause:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("message store unavailable: service error: unhandled error"),
        "{error}"
    );
    // Ended by the 3 s budget (`CallBudget`'s unit tests hold its figures): the attempts
    // below are what it allows; the bound only catches a call that never ends, far from
    // what a busy machine adds.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let attempts = dynamo.requests.lock().unwrap().len();
    assert!((2..=3).contains(&attempts), "{attempts} attempts");
}
