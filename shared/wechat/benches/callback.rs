//! verify + decrypt + parse of a typical encrypted text push, XML and JSON, beside the
//! floor: the raw primitives it cannot do without, on the same bytes.
//!
//! The payloads are written to `target/wxbridge-bench/payloads.json` so that
//! `scripts/bench_wechatpy.py` measures the Python baseline on the very same bytes in the
//! same run (`make bench` runs both and prints the ratios).
#![allow(clippy::unwrap_used, reason = "a benchmark: a panic is a failed run")]

mod common;

use common::{cases, Case, APP_ID, ENCODING_AES_KEY, FLOOR_PARTS, FRESHNESS, TOKEN};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use wxbridge_wechat::callback::{open_push, parse_document};
use wxbridge_wechat::event::CallbackEvent;
use wxbridge_wechat::signature::{msg_signature, signature_matches};

fn write_payloads(cases: &[Case]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wxbridge-bench");
    std::fs::create_dir_all(&dir).expect("bench output dir");
    let payloads: Vec<_> = cases
        .iter()
        .map(|case| {
            json!({
                "format": case.format,
                "token": TOKEN,
                "encoding_aes_key": ENCODING_AES_KEY,
                "app_id": APP_ID,
                "query": case.push.query.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "body": case.push.body,
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
    let cases = cases();
    write_payloads(&cases);

    let mut group = c.benchmark_group("open_push");
    group.throughput(Throughput::Elements(1));
    for case in &cases {
        let body = case.push.body.as_bytes();
        assert_eq!(
            open_push(&case.channel, &case.query, body, FRESHNESS).unwrap(),
            common::typical_text()
        );
        group.bench_function(case.format, |b| {
            b.iter(|| {
                open_push(
                    &case.channel,
                    black_box(&case.query),
                    black_box(body),
                    FRESHNESS,
                )
                .unwrap()
            })
        });
    }
    group.finish();

    // Where the time goes, stage by stage.
    let mut stages = c.benchmark_group("open_push_stages");
    for case in &cases {
        let format = case.format;
        let key = case.channel.key.as_ref().unwrap();
        let (timestamp, nonce, received) = (
            case.query_value("timestamp"),
            case.query_value("nonce"),
            case.query_value("msg_signature"),
        );
        let encrypt = case.encrypt();
        stages.bench_function(format!("msg_signature_{format}"), |b| {
            b.iter(|| {
                let expected = msg_signature(TOKEN, timestamp, nonce, black_box(&encrypt));
                signature_matches(received, &expected)
            })
        });
        stages.bench_function(format!("decrypt_{format}"), |b| {
            b.iter(|| key.decrypt(black_box(&encrypt), APP_ID).unwrap())
        });
        let body = case.push.body.as_str();
        stages.bench_function(format!("envelope_{format}"), |b| {
            b.iter(|| parse_document(black_box(body)).unwrap())
        });
        let inner = key.decrypt(&encrypt, APP_ID).unwrap();
        stages.bench_function(format!("parse_event_{format}"), |b| {
            b.iter(|| {
                CallbackEvent::from_document(parse_document(black_box(&inner)).unwrap()).unwrap()
            })
        });
    }
    stages.finish();

    let mut floor = c.benchmark_group("floor");
    for case in &cases {
        let mut primitives = case.floor();
        for part in FLOOR_PARTS {
            floor.bench_function(format!("{part}_{}", case.format), |b| {
                b.iter(|| primitives.run(part))
            });
        }
    }
    floor.finish();
}

criterion_group!(benches, open);
criterion_main!(benches);
