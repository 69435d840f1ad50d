//! The sample events of `events/` — JSON, as Lambda hands them to the functions — through
//! the handlers in process on the test kit's memory adapters: each SQS invocation built as
//! the runtime builds it (`LambdaEvent::new(event, context)`) and run as `run_sqs` runs it,
//! each HTTP event read as `lambda_http` reads it. The integration tier runs the same files
//! against the emulator and the WeChat fake, and keeps them in step with what the code
//! builds (`tests/tests/sample_events.rs`, `tests/tests/sample_events_functions.rs`).

#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use std::path::PathBuf;
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::{Conversation, StoredMessage};
use wxbridge_core::ports::store::MessageStore;
use wxbridge_core::services::dispatch::Dispatch;
use wxbridge_core::services::inbound::Inbound;
use wxbridge_lambda::bootstrap::invoke_sqs;
use wxbridge_lambda::callback::CallbackService;
use wxbridge_lambda::sqs::dispatch::DispatchHandler;
use wxbridge_lambda::sqs::inbound::InboundHandler;
use wxbridge_testkit::{Memory, MemoryParking, MemoryQueue};

/// When the sample user wrote (`events/inbound-text.json`); the reply of
/// `events/dispatch-reply.json` was accepted a minute later and goes out a minute after.
const WROTE_AT_MS: i64 = 1_764_150_000_000;
const REPLIED_AT_MS: i64 = WROTE_AT_MS + 60_000;
const DISPATCHED_AT_MS: i64 = WROTE_AT_MS + 120_000;
const OPENID: &str = "o_sample_user";

/// A path of the repository.
fn repo_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn repo_file(path: &str) -> String {
    let path = repo_path(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn events_file(name: &str) -> String {
    repo_file(&format!("events/{name}"))
}

/// `events/NAME` as the runtime hands it to an SQS-triggered function, a minute before
/// the invocation's deadline.
fn sqs_invocation(name: &str) -> LambdaEvent<SqsEvent> {
    let mut context = Context::default();
    context.request_id = format!("sample-{name}");
    context.deadline = u64::try_from(system_clock_ms() + 60_000).unwrap();
    LambdaEvent::new(serde_json::from_str(&events_file(name)).unwrap(), context)
}

/// The sample events' deployment: channel `mp`, Hotel Lotus the default partner.
fn config() -> BridgeConfig {
    BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx00000000000000e1","original_id":"gh_sample","token":"t","mode":"plaintext","push_format":"json","app_secret":"the-app-secret"}],
          "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"https://hotel.example/hooks","signing_secret":"hotel-secret-456789"}],
          "dialog":{"mode":"merged","default_partner":"hotel-9"}}"#,
    )
    .unwrap()
}

#[tokio::test]
async fn the_users_text_reaches_the_partner_and_the_partners_reply_the_user() {
    let memory = Memory::default();

    // inbound: the user's first message is stored and delivered to the hotel.
    let inbound = InboundHandler::new(
        Inbound::new(
            memory.bridge(config(), WROTE_AT_MS),
            memory.outbound.clone(),
        ),
        MemoryParking::default(),
    );
    let response = invoke_sqs(&inbound, sqs_invocation("inbound-text.json")).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let delivered = memory.webhooks.deliveries();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let (_, webhook) = &delivered[0];
    assert_eq!(
        webhook["conversation"]["id"],
        format!("mp:{OPENID}:hotel-9")
    );
    assert_eq!(
        webhook["message"]["content"]["content"],
        "Is breakfast included?"
    );

    // dispatch: the reply `outbound.fifo` names, stored by the API, reaches the user.
    let reply: StoredMessage = serde_json::from_value(json!({
        "id": "out_sample_reply",
        "conversation_id": format!("mp:{OPENID}:hotel-9"),
        "channel": "mp",
        "openid": OPENID,
        "partner": "hotel-9",
        "direction": "out",
        "status": "queued",
        "created_at_ms": REPLIED_AT_MS,
        "content": {"type": "text", "text": "We open at 7."}
    }))
    .unwrap();
    let conversation =
        Conversation::new(&reply.conversation_id, "mp", OPENID, "hotel-9", WROTE_AT_MS);
    memory
        .store
        .put_outbound(&reply, &conversation, "sample")
        .await
        .unwrap();
    let dispatch = DispatchHandler::new(
        Dispatch::new(
            memory.bridge(config(), DISPATCHED_AT_MS),
            memory.images(),
            memory.outbound.clone(),
        ),
        MemoryParking::default(),
    );
    let response = invoke_sqs(&dispatch, sqs_invocation("dispatch-reply.json")).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let sent = memory.wechat.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["touser"], OPENID);
    assert_eq!(sent[0]["text"]["content"], "【Hotel Lotus】We open at 7.");
}

/// A callback sample: the file, the status it is answered with, and what lands in
/// `inbound.fifo` (the channel, the message or event type), if anything.
struct CallbackSample {
    file: &'static str,
    status: u16,
    lands: Option<(&'static str, &'static str)>,
}

const CALLBACK_SAMPLES: [CallbackSample; 8] = [
    CallbackSample {
        file: "callback-get-verify.json",
        status: 200,
        lands: None,
    },
    CallbackSample {
        file: "callback-post-plaintext-json.json",
        status: 200,
        lands: Some(("mp-plain", "debug_demo")),
    },
    CallbackSample {
        file: "callback-post-plaintext-xml.json",
        status: 200,
        lands: Some(("mp-plain", "text")),
    },
    CallbackSample {
        file: "callback-post-safe-json.json",
        status: 200,
        lands: Some(("mp-safe", "debug_demo")),
    },
    CallbackSample {
        file: "callback-post-safe-xml.json",
        status: 200,
        lands: Some(("mp-safe", "text")),
    },
    CallbackSample {
        file: "callback-post-compatible-xml.json",
        status: 200,
        lands: Some(("oa-compat", "text")),
    },
    CallbackSample {
        file: "callback-post-sub-merchant-json.json",
        status: 200,
        lands: Some(("mp-plain", "text")),
    },
    CallbackSample {
        file: "callback-post-forged.json",
        status: 401,
        lands: None,
    },
];

#[tokio::test]
async fn each_callback_sample_is_answered_and_queued_as_its_push_says() {
    // The callback samples are signed for `make dev`'s configuration.
    let config = BridgeConfig::from_json(&repo_file("config/local.json")).unwrap();
    for sample in &CALLBACK_SAMPLES {
        let callback = CallbackService::new(&config, MemoryQueue::default());
        let request = lambda_http::request::from_str(&events_file(sample.file)).unwrap();
        let response = callback.handle(request).await;
        assert_eq!(response.status(), sample.status, "{}", sample.file);
        let landed: Vec<(String, String)> = callback
            .queue()
            .sent()
            .iter()
            .map(|message| {
                let kind = message
                    .event
                    .event_name()
                    .unwrap_or(message.event.msg_type());
                (message.channel.clone(), kind.to_owned())
            })
            .collect();
        let expected: Vec<(String, String)> = sample
            .lands
            .iter()
            .map(|(channel, kind)| ((*channel).to_owned(), (*kind).to_owned()))
            .collect();
        assert_eq!(landed, expected, "{}", sample.file);
    }
    let callback_files = std::fs::read_dir(repo_path("events"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("callback-"))
        .count();
    assert_eq!(
        callback_files,
        CALLBACK_SAMPLES.len(),
        "every callback sample is run here"
    );
}
