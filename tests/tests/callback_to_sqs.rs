//! The real `callback` handler against the local AWS emulator: HTTP API events in, messages
//! in a real `inbound.fifo` out.

use lambda_http::{Body, Response};
use wxbridge_aws::SqsFifoQueue;
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::{BridgeConfig, Channels};
use wxbridge_core::model::InboundMessage;
use wxbridge_integration::{
    counted_sqs_client, create_inbound_queues, drain, push_request, sqs_client, FifoQueues,
    RequestCounter,
};
use wxbridge_lambda::callback::CallbackService;
use wxbridge_wechat::encode::{seal, SignedPush};
use wxbridge_wechat::event::{CallbackEvent, EventKind, SubscribeDecision};

const CONFIG: &str = r#"{"channels":[
  {"id":"mp-safe","app_id":"wx1111111111111111","original_id":"gh_safe","token":"safe-token",
   "encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","mode":"safe","push_format":"json"},
  {"id":"mp-xml","app_id":"wx2222222222222222","original_id":"gh_xml","token":"xml-token",
   "encoding_aes_key":"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C","mode":"compatible","push_format":"xml"},
  {"id":"mp-plain","app_id":"wx3333333333333333","original_id":"gh_plain","token":"plain-token",
   "mode":"plaintext","push_format":"xml"}]}"#;

struct Harness {
    config: BridgeConfig,
    channels: Channels,
    service: CallbackService<SqsFifoQueue>,
    client: aws_sdk_sqs::Client,
    counter: RequestCounter,
    queues: FifoQueues,
}

async fn harness() -> Harness {
    let client = sqs_client().await;
    let queues = create_inbound_queues(&client).await;
    let config = BridgeConfig::from_json(CONFIG).unwrap();
    let (handler_client, counter) = counted_sqs_client().await;
    let service = CallbackService::new(
        &config,
        SqsFifoQueue::new(handler_client, &queues.queue_url),
    );
    Harness {
        channels: Channels::new(&config),
        config,
        service,
        client,
        counter,
        queues,
    }
}

impl Harness {
    fn seal(&self, channel: &str, event: &CallbackEvent) -> SignedPush {
        let nonce = &uuid::Uuid::new_v4().simple().to_string()[..10];
        seal(
            self.channels.get(channel).unwrap(),
            event,
            now_secs(),
            nonce,
        )
    }

    async fn post(&self, channel: &str, push: &SignedPush) -> Response<Body> {
        self.service.handle(push_request(push, channel)).await
    }

    async fn landed(&self) -> Vec<(InboundMessage, wxbridge_integration::Received)> {
        drain(&self.client, &self.queues.queue_url)
            .await
            .into_iter()
            .map(|r| {
                (
                    serde_json::from_str(&r.body).expect("inbound message JSON"),
                    r,
                )
            })
            .collect()
    }
}

fn now_secs() -> i64 {
    system_clock_ms() / 1000
}

fn text(to: &str, openid: &str, msg_id: u64, content: &str) -> CallbackEvent {
    CallbackEvent {
        to_user_name: to.into(),
        from_user_name: openid.into(),
        create_time: now_secs(),
        business_id: None,
        kind: EventKind::Text {
            msg_id: msg_id.to_string(),
            content: content.into(),
        },
    }
}

#[tokio::test]
async fn a_push_sent_three_times_lands_once_with_one_aws_request_per_callback() {
    let h = harness().await;
    let event = text("gh_safe", "o_alice", 7_001, "where is my room?");
    let push = h.seal("mp-safe", &event);
    for attempt in 1..=3 {
        let response = h.post("mp-safe", &push).await;
        assert_eq!(response.status(), 200, "attempt {attempt}");
        assert_eq!(response.body().as_ref(), b"success");
        assert_eq!(h.counter.count(), attempt, "one AWS request per callback");
    }
    let landed = h.landed().await;
    assert_eq!(
        landed.len(),
        1,
        "WeChat's retries collapse into one message"
    );
    let (message, raw) = &landed[0];
    assert_eq!(message.event, event);
    assert_eq!(message.channel, "mp-safe");
    assert_eq!(raw.group_id, "mp-safe:o_alice");
    assert_eq!(raw.deduplication_id, "mp-safe:msg:7001");
}

#[tokio::test]
async fn a_forged_push_lands_nothing_and_costs_no_aws_request() {
    let h = harness().await;
    let mut push = h.seal(
        "mp-safe",
        &text("gh_safe", "o_mallory", 7_002, "give me a refund"),
    );
    push.body = push.body.replace("\"Encrypt\":\"", "\"Encrypt\":\"AAAA");
    let response = h.post("mp-safe", &push).await;
    assert_eq!(response.status(), 401);
    let mut stale = h.seal("mp-safe", &text("gh_safe", "o_mallory", 7_003, "replayed"));
    for (name, value) in stale.query.iter_mut() {
        if name == "timestamp" {
            *value = (now_secs() - 3600).to_string();
        }
    }
    assert_eq!(h.post("mp-safe", &stale).await.status(), 401);
    assert_eq!(h.counter.count(), 0);
    assert!(h.landed().await.is_empty());
}

#[tokio::test]
async fn order_is_kept_per_user_across_formats_and_modes() {
    let h = harness().await;
    let mut expected = Vec::new();
    for n in 0..6u64 {
        let event = text(
            "gh_xml",
            "o_bob",
            8_000 + n,
            &format!("message {n} <&> ]]>"),
        );
        assert_eq!(
            h.post("mp-xml", &h.seal("mp-xml", &event)).await.status(),
            200
        );
        expected.push(event);
    }
    let got: Vec<CallbackEvent> = h.landed().await.into_iter().map(|(m, _)| m.event).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn events_without_msgid_land_typed_and_dedupe_by_user_time_and_event() {
    let h = harness().await;
    let entry = CallbackEvent {
        to_user_name: "gh_plain".into(),
        from_user_name: "o_carol".into(),
        create_time: now_secs(),
        business_id: None,
        kind: EventKind::UserEnterTempSession {
            session_from: "partner=hotel-9&order=42".into(),
        },
    };
    let popup = CallbackEvent {
        kind: EventKind::SubscribePopup {
            entries: vec![SubscribeDecision {
                template_id: "tpl-1".into(),
                status: "accept".into(),
                popup_scene: Some(0),
            }],
        },
        ..entry.clone()
    };
    for event in [&entry, &entry, &popup] {
        assert_eq!(
            h.post("mp-plain", &h.seal("mp-plain", event))
                .await
                .status(),
            200
        );
    }
    let landed = h.landed().await;
    let events: Vec<CallbackEvent> = landed.iter().map(|(m, _)| m.event.clone()).collect();
    assert_eq!(events, vec![entry.clone(), popup]);
    let prefix = format!(
        "mp-plain:evt:o_carol:{}:user_enter_tempsession:",
        entry.create_time
    );
    assert!(landed[0].1.deduplication_id.starts_with(&prefix));
}

#[tokio::test]
async fn an_unreachable_queue_answers_503_and_a_retry_lands() {
    let h = harness().await;
    let broken = CallbackService::new(
        &h.config,
        SqsFifoQueue::new(h.client.clone(), format!("{}-missing", h.queues.queue_url)),
    );
    let push = h.seal("mp-safe", &text("gh_safe", "o_dave", 9_001, "hello?"));
    let response = broken.handle(push_request(&push, "mp-safe")).await;
    assert_eq!(response.status(), 503, "WeChat must retry");
    assert_eq!(h.post("mp-safe", &push).await.status(), 200);
    assert_eq!(h.landed().await.len(), 1);
}

#[tokio::test]
async fn a_queue_that_never_answers_gets_503_within_wechats_five_seconds() {
    let h = harness().await;
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let sdk = wxbridge_aws::load_sdk_config(wxbridge_aws::CallBudget::Answering).await;
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    );
    let stuck = CallbackService::new(&h.config, SqsFifoQueue::new(client, "http://q/1/x.fifo"));
    let push = h.seal("mp-safe", &text("gh_safe", "o_erin", 9_101, "anyone?"));
    let started = std::time::Instant::now();
    let response = stuck.handle(push_request(&push, "mp-safe")).await;
    assert_eq!(response.status(), 503);
    // The answering budget (1 s an attempt, 3 s in all: `CallBudget`'s unit tests) ends the
    // call; without one a silent queue holds it for good. The bound only tells the two
    // apart, far from what a busy machine adds.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn the_configuration_is_read_from_a_secrets_manager_secret() {
    let sdk = wxbridge_aws::load_sdk_config(wxbridge_aws::CallBudget::Answering).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = wxbridge_integration::unique_name("config");
    secrets
        .create_secret()
        .name(&name)
        .secret_string(CONFIG)
        .send()
        .await
        .expect("create secret");
    let config = wxbridge_aws::config_loader::config_from_secret(&secrets, &name)
        .await
        .unwrap();
    assert_eq!(config.channels.len(), 3);
    let missing =
        wxbridge_aws::config_loader::config_from_secret(&secrets, &format!("{name}-missing")).await;
    let message = missing.unwrap_err().to_string();
    assert!(message.contains("cannot read secret"), "{message}");
    assert!(!message.contains("safe-token"), "{message}");
}
