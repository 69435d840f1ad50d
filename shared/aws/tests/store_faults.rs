//! The store's and the queue's faults as AWS answers them, on the functions' SDK settings
//! (`CallBudget`'s retries and timeouts), without an emulator: the SDK's replaying HTTP
//! client answers each attempt in turn and keeps each request it was sent.
//!
//! A DynamoDB write answered 500 (`InternalServerError`, retryable) or throttled is retried
//! by the SDK, a transaction with the same `ClientRequestToken`, so DynamoDB applies it once;
//! the store adds no retry of its own, and only when every attempt failed is it unavailable
//! (503 at the API). A write DynamoDB refuses for good (`ValidationException`) is not retried
//! and is told apart, so the record that asked for it is parked at once.

#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::body::SdkBody;
use std::time::{Duration, Instant};
use wxbridge_aws::{CallBudget, DynamoStore, SqsFifoQueue};
use wxbridge_core::model::{Conversation, OutboundRef, StoredMessage};
use wxbridge_core::ports::queue::OutboundQueue;
use wxbridge_core::ports::store::{MessageStore, StoreError};

const INTERNAL_ERROR: (u16, &str) = (
    500,
    "<!doctype html>\n<title>500 Internal Server Error</title>",
);
const APPLIED: (u16, &str) = (200, "{}");
const THROTTLED: (u16, &str) = (
    400,
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
);
const KEY_TOO_LONG: (u16, &str) = (
    400,
    r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"}"#,
);

/// An HTTP client answering each request with the next of `answers`, keeping the requests.
fn answering(answers: &[(u16, &str)]) -> StaticReplayClient {
    StaticReplayClient::new(
        answers
            .iter()
            .map(|(status, body)| {
                ReplayEvent::new(
                    http::Request::builder()
                        .uri("http://aws.local/")
                        .body(SdkBody::empty())
                        .unwrap(),
                    http::Response::builder()
                        .status(*status)
                        .header("content-type", "application/x-amz-json-1.0")
                        .body(SdkBody::from(*body))
                        .unwrap(),
                )
            })
            .collect(),
    )
}

/// A DynamoDB client as the functions configure it for `budget`, talking to `http`.
fn dynamodb(budget: CallBudget, http: &StaticReplayClient) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .endpoint_url("http://aws.local")
            .retry_config(budget.retry_config())
            .timeout_config(budget.timeout_config())
            .http_client(http.clone())
            .build(),
    )
}

/// A reply stored with its conversation: one TransactWriteItems.
async fn put_reply(http: &StaticReplayClient) -> Result<(), StoreError> {
    let store = DynamoStore::new(dynamodb(CallBudget::Answering, http), "bridge");
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

/// Each request's `X-Amz-Target` and `ClientRequestToken`.
fn sent(http: &StaticReplayClient) -> Vec<(String, String)> {
    http.actual_requests()
        .map(|request| {
            let target = request.headers().get("x-amz-target").unwrap_or_default();
            let body: serde_json::Value =
                serde_json::from_slice(request.body().bytes().unwrap_or_default())
                    .unwrap_or_default();
            let token = body["ClientRequestToken"].as_str().unwrap_or_default();
            (target.to_owned(), token.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_transaction_answered_500_is_retried_with_the_same_token() {
    let http = answering(&[INTERNAL_ERROR, APPLIED]);
    put_reply(&http)
        .await
        .expect("stored on the second attempt");
    let requests = sent(&http);
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
async fn a_throttled_transaction_is_retried_with_the_same_token() {
    let http = answering(&[THROTTLED, APPLIED]);
    put_reply(&http)
        .await
        .expect("stored on the second attempt");
    let requests = sent(&http);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].1, requests[1].1,
        "the same token on each attempt"
    );
}

#[tokio::test]
async fn a_store_answering_500_to_every_attempt_is_unavailable_within_the_budget() {
    let http = answering(&[INTERNAL_ERROR; 3]);
    let started = Instant::now();
    let error = put_reply(&http).await.unwrap_err();
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
            .starts_with("message store unavailable: service error"),
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
    let attempts = sent(&http).len();
    assert!((2..=3).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn a_write_dynamodb_refuses_for_good_is_rejected_without_a_retry() {
    let http = answering(&[KEY_TOO_LONG, APPLIED]);
    let error = put_reply(&http).await.unwrap_err();
    let StoreError::Rejected(reason) = &error else {
        panic!("not told apart from an outage: {error:?}")
    };
    assert!(reason.contains("ValidationException"), "{reason}");
    assert_eq!(sent(&http).len(), 1, "not retried");
}

/// `outbound.fifo` as the SQS consumers configure it, talking to `http`.
fn outbound_queue(http: &StaticReplayClient) -> SqsFifoQueue {
    let budget = CallBudget::Consuming;
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .endpoint_url("http://aws.local")
            .retry_config(budget.retry_config())
            .timeout_config(budget.timeout_config())
            .http_client(http.clone())
            .build(),
    );
    SqsFifoQueue::new(client, "http://aws.local/000000000000/outbound.fifo")
}

fn reply_ref() -> OutboundRef {
    OutboundRef {
        conversation_id: "mp:o_amy:hotel-9".into(),
        created_at_ms: 1_000,
        message_id: "out_1".into(),
        packed: Vec::new(),
        report: false,
    }
}

#[tokio::test]
async fn a_queue_answering_500_to_every_attempt_is_an_error_that_keeps_the_cause() {
    let http = answering(&[INTERNAL_ERROR; 4]);
    let error = outbound_queue(&http)
        .enqueue(&reply_ref(), "out_1")
        .await
        .unwrap_err();
    let cause = std::error::Error::source(&error).expect("a cause");
    assert!(
        cause
            .downcast_ref::<aws_sdk_sqs::error::SdkError<SendMessageError, HttpResponse>>()
            .is_some(),
        "{cause:?}"
    );
    let attempts = sent(&http).len();
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
    assert!(
        sent(&http)
            .iter()
            .all(|(target, _)| target == "AmazonSQS.SendMessage"),
        "{:?}",
        sent(&http)
    );
}

#[tokio::test]
async fn a_throttled_send_is_retried_and_lands() {
    let sqs_throttled = (
        400,
        r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}"#,
    );
    let http = answering(&[sqs_throttled, (200, r#"{"MessageId":"m-1"}"#)]);
    outbound_queue(&http)
        .enqueue(&reply_ref(), "out_1")
        .await
        .expect("sent on the second attempt");
    assert_eq!(sent(&http).len(), 2);
}
