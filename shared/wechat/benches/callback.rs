//! verify + decrypt + parse of a typical encrypted text push, XML and JSON.
//!
//! The payloads are written to `target/wxbridge-bench/payloads.json` so that
//! `scripts/bench_wechatpy.py` measures the Python baseline on the very same bytes in the
//! same run (`make bench` runs both and prints the ratio).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use wxbridge_wechat::callback::{open_push, parse_document, Freshness};
use wxbridge_wechat::encode::{seal, SignedPush};
use wxbridge_wechat::endpoint::{EncryptionMode, PushEndpoint, PushFormat};
use wxbridge_wechat::event::{CallbackEvent, EventKind};
use wxbridge_wechat::signature::{msg_signature, signature_matches};

const TIMESTAMP: i64 = 1_714_112_445;

fn channels() -> std::collections::HashMap<&'static str, PushEndpoint> {
    let endpoint = |name: &str, format| {
        PushEndpoint::new(
            name,
            "wx2c2769f8efd9abc2",
            "gh_10f6c3c3ac5a",
            "spamtest",
            Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
            EncryptionMode::Safe,
            format,
        )
        .expect("bench endpoint")
    };
    std::collections::HashMap::from([
        ("xml", endpoint("xml", PushFormat::Xml)),
        ("json", endpoint("json", PushFormat::Json)),
    ])
}

fn typical_text() -> CallbackEvent {
    CallbackEvent {
        to_user_name: "gh_10f6c3c3ac5a".into(),
        from_user_name: "oyORnuP8q7ou2gfYjqLzSIWZf0rs".into(),
        create_time: TIMESTAMP,
        business_id: None,
        kind: EventKind::Text {
            msg_id: "24602948207352816".into(),
            content: "你好，请问我的酒店订单 #HT-20261126-0042 含早餐吗？Is breakfast included?"
                .into(),
        },
    }
}

fn write_payloads(pushes: &[(&str, &SignedPush)]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wxbridge-bench");
    std::fs::create_dir_all(&dir).expect("bench output dir");
    let payloads: Vec<_> = pushes
        .iter()
        .map(|(format, push)| {
            json!({
                "format": format,
                "token": "spamtest",
                "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                "app_id": "wx2c2769f8efd9abc2",
                "query": push.query.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "body": push.body,
            })
        })
        .collect();
    std::fs::write(
        dir.join("payloads.json"),
        serde_json::to_string_pretty(&payloads).unwrap(),
    )
    .expect("write payloads");
}

fn open(c: &mut Criterion) {
    let channels = channels();
    let event = typical_text();
    let xml = seal(
        channels.get("xml").unwrap(),
        &event,
        TIMESTAMP,
        "1320562132",
    );
    let json = seal(
        channels.get("json").unwrap(),
        &event,
        TIMESTAMP,
        "1320562132",
    );
    write_payloads(&[("xml", &xml), ("json", &json)]);

    let freshness = Freshness {
        now_secs: TIMESTAMP,
        tolerance_secs: Some(300),
    };
    let mut group = c.benchmark_group("open_push");
    group.throughput(Throughput::Elements(1));
    for (format, push) in [("xml", &xml), ("json", &json)] {
        let channel = channels.get(format).unwrap();
        let query = push.push_query();
        assert_eq!(
            open_push(channel, &query, push.body.as_bytes(), freshness).unwrap(),
            event
        );
        group.bench_function(format, |b| {
            b.iter(|| {
                open_push(
                    channel,
                    black_box(&query),
                    black_box(push.body.as_bytes()),
                    freshness,
                )
                .unwrap()
            })
        });
    }
    group.finish();

    // Where the time goes, stage by stage.
    let json_channel = channels.get("json").unwrap();
    let key = json_channel.key.as_ref().unwrap();
    let (timestamp, nonce, received) = (
        query_value(&json, "timestamp"),
        query_value(&json, "nonce"),
        query_value(&json, "msg_signature"),
    );
    let encrypt = encrypt_of(&json);
    let mut stages = c.benchmark_group("open_push_stages");
    stages.bench_function("msg_signature", |b| {
        b.iter(|| {
            let expected = msg_signature("spamtest", timestamp, nonce, black_box(&encrypt));
            signature_matches(received, &expected)
        })
    });
    stages.bench_function("decrypt", |b| {
        b.iter(|| {
            key.decrypt(black_box(&encrypt), "wx2c2769f8efd9abc2")
                .unwrap()
        })
    });
    for (format, push) in [("json", &json), ("xml", &xml)] {
        let inner = key
            .decrypt(&encrypt_of(push), "wx2c2769f8efd9abc2")
            .unwrap();
        stages.bench_function(format!("parse_event_{format}"), |b| {
            b.iter(|| {
                CallbackEvent::from_document(parse_document(black_box(&inner)).unwrap()).unwrap()
            })
        });
    }
    stages.finish();
}

fn query_value<'p>(push: &'p SignedPush, name: &str) -> &'p str {
    &push
        .query
        .iter()
        .find(|(k, _)| k == name)
        .expect("query parameter")
        .1
}

fn encrypt_of(push: &SignedPush) -> String {
    let outer = parse_document(&push.body).unwrap();
    outer
        .get("Encrypt")
        .and_then(|n| n.as_str())
        .unwrap()
        .to_owned()
}

criterion_group!(benches, open);
criterion_main!(benches);
