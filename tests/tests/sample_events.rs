//! The sample events under `events/` (to post to a running stack's Invoke API) are built from
//! the official WeChat vectors here, and each one is run through the real handler with the
//! local configuration (`config/local.json`) and a real queue on the emulator.
//!
//! `WXBRIDGE_WRITE_EVENTS=1 cargo test -p wxbridge-integration --test sample_events`
//! rewrites the files; otherwise the test fails when they drift from what is built here.

use serde_json::Value;
use std::path::PathBuf;
use wxbridge_aws::SqsFifoQueue;
use wxbridge_core::config::{BridgeConfig, EncryptionMode, PushFormat};
use wxbridge_core::model::InboundMessage;
use wxbridge_integration::{create_inbound_queues, drain, sqs_client};
use wxbridge_lambda::callback::CallbackService;
use wxbridge_testkit::events::http_api_event;
use wxbridge_wechat::crypto::AesKey;
use wxbridge_wechat::encode::{fields_to_xml, wechat_fields};
use wxbridge_wechat::event::{CallbackEvent, EventKind};
use wxbridge_wechat::signature::{msg_signature, to_text};
use wxbridge_wechat::vectors::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A text message from the official test user, as XML.
fn sample_text_xml() -> String {
    let event = CallbackEvent {
        to_user_name: MP_ORIGINAL_ID.into(),
        from_user_name: MP_OPENID.into(),
        create_time: 1714112445,
        business_id: None,
        kind: EventKind::Text {
            msg_id: "24602948207352816".into(),
            content: "Is breakfast included?".into(),
        },
    };
    fields_to_xml(&wechat_fields(&event, PushFormat::Xml))
}

/// (file name, channel, the event, the status the handler must answer, what must land)
fn samples() -> Vec<(&'static str, &'static str, Value, u16, Option<&'static str>)> {
    let safe_query = |msg_signature: &str| {
        pairs(&[
            ("signature", MP_SAFE_SIGNATURE),
            ("timestamp", MP_SAFE_TIMESTAMP),
            ("nonce", MP_SAFE_NONCE),
            ("openid", MP_OPENID),
            ("encrypt_type", "aes"),
            ("msg_signature", msg_signature),
        ])
    };
    // Safe-mode XML: the official key and appid, a text message, a fixed random prefix.
    let key = AesKey::from_encoding_aes_key(MP_ENCODING_AES_KEY).unwrap();
    let xml_encrypt =
        key.encrypt_with_random(sample_text_xml().as_bytes(), MP_APPID, b"wxbridge-sample!");
    let xml_signature = to_text(&msg_signature(
        MP_TOKEN,
        MP_SAFE_TIMESTAMP,
        MP_SAFE_NONCE,
        &xml_encrypt,
    ));
    vec![
        (
            "callback-get-verify.json",
            "mp-plain",
            http_api_event(
                "GET",
                "mp-plain",
                &pairs(&[
                    ("signature", MP_GET_SIGNATURE),
                    ("timestamp", MP_GET_TIMESTAMP),
                    ("nonce", MP_GET_NONCE),
                    ("echostr", MP_GET_ECHOSTR),
                ]),
                None,
            ),
            200,
            None,
        ),
        (
            "callback-post-plaintext-json.json",
            "mp-plain",
            http_api_event(
                "POST",
                "mp-plain",
                &pairs(&[("signature", MP_PLAIN_SIGNATURE), ("timestamp", MP_PLAIN_TIMESTAMP), ("nonce", MP_PLAIN_NONCE)]),
                Some(MP_PLAIN_BODY),
            ),
            200,
            Some("debug_demo"),
        ),
        (
            // The URL signature does not cover the body, so the official plaintext
            // signature carries an XML body as well.
            "callback-post-plaintext-xml.json",
            "mp-plain",
            http_api_event(
                "POST",
                "mp-plain",
                &pairs(&[("signature", MP_PLAIN_SIGNATURE), ("timestamp", MP_PLAIN_TIMESTAMP), ("nonce", MP_PLAIN_NONCE)]),
                Some(&sample_text_xml()),
            ),
            200,
            Some("text"),
        ),
        (
            "callback-post-safe-json.json",
            "mp-safe",
            http_api_event(
                "POST",
                "mp-safe",
                &safe_query(MP_SAFE_MSG_SIGNATURE),
                Some(MP_SAFE_BODY),
            ),
            200,
            Some("debug_demo"),
        ),
        (
            "callback-post-safe-xml.json",
            "mp-safe",
            http_api_event(
                "POST",
                "mp-safe",
                &safe_query(&xml_signature),
                Some(&format!(
                    "<xml><ToUserName><![CDATA[{MP_ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[{xml_encrypt}]]></Encrypt></xml>"
                )),
            ),
            200,
            Some("text"),
        ),
        (
            "callback-post-compatible-xml.json",
            "oa-compat",
            http_api_event(
                "POST",
                "oa-compat",
                &pairs(&[
                    ("timestamp", OA_TIMESTAMP),
                    ("nonce", OA_NONCE),
                    ("encrypt_type", "aes"),
                    ("msg_signature", OA_MSG_SIGNATURE),
                ]),
                Some(&format!(
                    "<xml><ToUserName><![CDATA[{OA_ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[{OA_OPENID}]]></FromUserName><CreateTime>1409735669</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[{OA_ENCRYPT}]]></Encrypt></xml>"
                )),
            ),
            200,
            Some("text"),
        ),
        (
            // The guide's sub-merchant push (protocol notes §10), from the official test user.
            "callback-post-sub-merchant-json.json",
            "mp-plain",
            http_api_event(
                "POST",
                "mp-plain",
                &pairs(&[("signature", MP_PLAIN_SIGNATURE), ("timestamp", MP_PLAIN_TIMESTAMP), ("nonce", MP_PLAIN_NONCE)]),
                Some(
                    &MP_SUB_MERCHANT_TEXT_JSON
                        .replace("\"toUser\"", &format!("\"{MP_ORIGINAL_ID}\""))
                        .replace("\"fromUser\"", &format!("\"{MP_OPENID}\"")),
                ),
            ),
            200,
            Some("text"),
        ),
        (
            "callback-post-forged.json",
            "mp-safe",
            http_api_event(
                "POST",
                "mp-safe",
                &safe_query(MP_SAFE_SIGNATURE),
                Some(MP_SAFE_BODY),
            ),
            401,
            None,
        ),
    ]
}

#[tokio::test]
async fn sample_events_match_the_vectors_and_run_through_the_handler() {
    let events_dir = root().join("events");
    let write = std::env::var("WXBRIDGE_WRITE_EVENTS").is_ok_and(|v| v == "1");
    let config = BridgeConfig::from_json(
        &std::fs::read_to_string(root().join("config/local.json")).unwrap(),
    )
    .unwrap();
    assert!(config
        .channels
        .iter()
        .any(|c| c.mode == EncryptionMode::Compatible));
    let client = sqs_client().await;
    let queues = create_inbound_queues(&client).await;
    let service = CallbackService::new(
        &config,
        SqsFifoQueue::new(client.clone(), &queues.queue_url),
    );

    for (file, channel, event, status, lands) in samples() {
        let path = events_dir.join(file);
        let text = serde_json::to_string_pretty(&event).unwrap() + "\n";
        if write {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            on_disk, text,
            "{file} drifted; rewrite with WXBRIDGE_WRITE_EVENTS=1"
        );

        let response = service
            .handle(lambda_http::request::from_str(&on_disk).unwrap())
            .await;
        assert_eq!(response.status(), status, "{file}");
        if file == "callback-get-verify.json" {
            assert_eq!(response.body().as_ref(), MP_GET_ECHOSTR.as_bytes());
        }
        let landed: Vec<InboundMessage> = drain(&client, &queues.queue_url)
            .await
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect();
        match lands {
            None => assert!(landed.is_empty(), "{file}"),
            Some(kind) => {
                assert_eq!(landed.len(), 1, "{file}");
                assert_eq!(landed[0].channel, channel);
                let got = landed[0]
                    .event
                    .event_name()
                    .unwrap_or(landed[0].event.msg_type());
                assert_eq!(got, kind, "{file}");
            }
        }
    }
    let known: Vec<&str> = samples().iter().map(|s| s.0).collect();
    for entry in std::fs::read_dir(&events_dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            !name.starts_with("callback-") || known.contains(&name.as_str()),
            "{name} is not checked here"
        );
    }
}
