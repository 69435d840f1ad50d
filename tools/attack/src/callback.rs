//! Inputs at the callback, as an outsider sends them: forged, stale, oversized, bombs,
//! broken envelopes, odd but correctly signed pushes, wrong paths and methods. Expected
//! answers are the callback's answer table (docs/architecture.md).

use crate::report::{Expect, Report};
use crate::target::{fresh_nonce, now_secs, Target};
use reqwest::Method;
use serde_json::{json, Value};
use wxbridge_devstack::user::{self, UserInput};
use wxbridge_wechat::encode::{percent_encode, seal, SignedPush};
use wxbridge_wechat::endpoint::PushEndpoint;
use wxbridge_wechat::signature::{msg_signature, to_text, url_signature};

/// The safe-mode JSON channel the local stack chats on.
pub const SAFE: &str = "mp-demo";
/// A plaintext JSON channel (the official vectors' app).
const PLAIN: &str = "mp-plain";
/// A compatible-mode XML channel (the official vectors' account).
const COMPAT: &str = "oa-compat";

const JSON: &str = "application/json";
const XML: &str = "text/xml";

fn endpoint(target: &Target, id: &str) -> PushEndpoint {
    user::pick_channel(&target.config, Some(id)).expect("the local stack's channels")
}

/// A POST of `body` (JSON) to the channel's callback with this query.
async fn post_to(
    target: &Target,
    channel: &str,
    query: &str,
    body: impl Into<reqwest::Body>,
) -> crate::target::Answer {
    target
        .push(
            Method::POST,
            &format!("/wechat/{channel}"),
            query,
            JSON,
            body,
        )
        .await
}

fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The query with `name` replaced (or removed when `value` is `None`).
fn with(push: &SignedPush, name: &str, value: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = push
        .query
        .iter()
        .filter_map(|(k, v)| match (k == name, value) {
            (true, Some(value)) => Some((k.clone(), value.to_owned())),
            (true, None) => None,
            (false, _) => Some((k.clone(), v.clone())),
        })
        .collect();
    query_string(&pairs)
}

/// A text push sealed for `channel` at `timestamp`.
fn text_push(target: &Target, channel: &PushEndpoint, text: &str, timestamp: i64) -> SignedPush {
    let openid = format!("oAtk{}", target.run);
    let event = user::event(
        channel,
        &openid,
        &UserInput::Text(text.to_owned()),
        timestamp,
    );
    seal(channel, &event, timestamp, &fresh_nonce()[..10])
}

/// The URL signature query of a plaintext push (the body is not signed in plaintext mode).
fn plain_query(channel: &PushEndpoint, timestamp: i64) -> String {
    let nonce = fresh_nonce()[..10].to_owned();
    let signature = to_text(&url_signature(
        channel.token(),
        &timestamp.to_string(),
        &nonce,
    ));
    query_string(&[
        ("signature".into(), signature),
        ("timestamp".into(), timestamp.to_string()),
        ("nonce".into(), nonce),
    ])
}

/// The query of an encrypted push whose `Encrypt` is `encrypt`, signed over it.
fn sealed_query(channel: &PushEndpoint, encrypt: &str, timestamp: impl ToString) -> String {
    let (ts, nonce) = (timestamp.to_string(), fresh_nonce()[..10].to_owned());
    query_string(&[
        (
            "signature".into(),
            to_text(&url_signature(channel.token(), &ts, &nonce)),
        ),
        ("timestamp".into(), ts.clone()),
        ("nonce".into(), nonce.clone()),
        ("encrypt_type".into(), "aes".into()),
        (
            "msg_signature".into(),
            to_text(&msg_signature(channel.token(), &ts, &nonce, encrypt)),
        ),
    ])
}

/// A plaintext JSON push with these fields, for the plaintext channel.
fn plain_fields(target: &Target, channel: &PushEndpoint, overrides: Value) -> String {
    let mut fields = json!({
        "ToUserName": channel.original_id,
        "FromUserName": format!("oAtk{}", target.run),
        "CreateTime": now_secs(),
        "MsgType": "text",
        "Content": "odd but signed",
        "MsgId": user::new_msg_id(),
    });
    for (key, value) in overrides.as_object().cloned().unwrap_or_default() {
        if value.is_null() {
            fields.as_object_mut().expect("object").remove(&key);
        } else {
            fields[key] = value;
        }
    }
    fields.to_string()
}

pub async fn attack(target: &Target, report: &mut Report) {
    forged(target, report).await;
    stale(target, report).await;
    oversized(target, report).await;
    bombs(target, report).await;
    envelopes(target, report).await;
    odd_but_signed(target, report).await;
    paths_and_methods(target, report).await;
}

async fn forged(target: &Target, report: &mut Report) {
    const GROUP: &str = "callback: forged";
    let safe = endpoint(target, SAFE);
    let plain = endpoint(target, PLAIN);
    let now = now_secs();
    let push = text_push(target, &safe, "forged", now);
    let post =
        |query: String, body: String| async move { post_to(target, SAFE, &query, body).await };
    let flipped = |s: &str| -> String {
        let mut chars: Vec<char> = s.chars().collect();
        chars[0] = if chars[0] == 'a' { 'b' } else { 'a' };
        chars.into_iter().collect()
    };
    let msg_sig = push
        .query
        .iter()
        .find(|(k, _)| k == "msg_signature")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "msg_signature changed",
            with(&push, "msg_signature", Some(&flipped(&msg_sig))),
            Expect::Refused(401, Some("bad_signature")),
        ),
        (
            "msg_signature empty",
            with(&push, "msg_signature", Some("")),
            Expect::Refused(401, None),
        ),
        // The same signature in upper-case hex: nothing forged.
        (
            "msg_signature in upper case",
            with(&push, "msg_signature", Some(&msg_sig.to_uppercase())),
            Expect::Accepted(200),
        ),
        (
            "msg_signature missing",
            with(&push, "msg_signature", None),
            Expect::Refused(400, Some("missing_parameter")),
        ),
        (
            "timestamp missing",
            with(&push, "timestamp", None),
            Expect::Refused(400, Some("missing_parameter")),
        ),
        (
            "nonce missing",
            with(&push, "nonce", None),
            Expect::Refused(400, Some("missing_parameter")),
        ),
        (
            "timestamp changed to text after signing",
            with(&push, "timestamp", Some("soon")),
            Expect::Refused(400, Some("bad_timestamp")),
        ),
        (
            "timestamp as text, signed",
            sealed_query(&safe, &json_encrypt(&push.body), "soon"),
            Expect::Refused(400, Some("bad_timestamp")),
        ),
        (
            "nonce changed after signing",
            with(&push, "nonce", Some("123")),
            Expect::Refused(401, Some("bad_signature")),
        ),
        (
            "timestamp changed after signing",
            with(&push, "timestamp", Some(&(now - 1).to_string())),
            Expect::Refused(401, Some("bad_signature")),
        ),
        (
            "signed with the plaintext channel's token",
            {
                let other = PushEndpoint::new(
                    SAFE,
                    &safe.app_id,
                    &safe.original_id,
                    plain.token(),
                    None,
                    safe.mode,
                    safe.format,
                )
                .expect("endpoint");
                let encrypt = json_encrypt(&push.body);
                sealed_query(&other, &encrypt, now)
            },
            Expect::Refused(401, Some("bad_signature")),
        ),
    ];
    for (name, query, expect) in cases {
        report.add(
            post(query, push.body.clone())
                .await
                .tried(GROUP, name, expect),
        );
    }
    // A body swapped under a valid signature: the signature covers another Encrypt.
    let other = text_push(target, &safe, "the other body", now);
    let answer = post(push.query_string(), other.body).await;
    report.add(answer.tried(
        GROUP,
        "Encrypt swapped under the signature",
        Expect::Refused(401, Some("bad_signature")),
    ));
    // Plaintext: the URL signature is all there is.
    let body = plain_fields(target, &plain, json!({}));
    for (name, query) in [
        (
            "plaintext signature changed",
            plain_query(&plain, now).replacen("signature=", "signature=0", 1),
        ),
        (
            "plaintext signature missing",
            plain_query(&plain, now)
                .split('&')
                .skip(1)
                .collect::<Vec<_>>()
                .join("&"),
        ),
    ] {
        let answer = post_to(target, PLAIN, &query, body.clone()).await;
        let expect = if name.ends_with("missing") {
            Expect::Refused(400, Some("missing_parameter"))
        } else {
            Expect::Refused(401, Some("bad_signature"))
        };
        report.add(answer.tried(GROUP, name, expect));
    }
    // The GET verification with a wrong signature.
    let query = format!(
        "{}&echostr=hello",
        plain_query(&plain, now).replacen("signature=", "signature=f", 1)
    );
    let answer = target
        .push(Method::GET, &format!("/wechat/{PLAIN}"), &query, JSON, "")
        .await;
    report.add(answer.tried(
        GROUP,
        "verification with a wrong signature",
        Expect::Refused(401, Some("bad_signature")),
    ));
}

/// The `Encrypt` of a safe-mode JSON body.
fn json_encrypt(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["Encrypt"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn stale(target: &Target, report: &mut Report) {
    const GROUP: &str = "callback: stale";
    let safe = endpoint(target, SAFE);
    let now = now_secs();
    for (name, timestamp) in [
        ("5 minutes and a second old", now - 301),
        ("an hour old", now - 3600),
        // Ahead by more than the run can take to reach the check (a second's margin flipped
        // on a busy machine: the request arrived a second later and was in the window).
        ("5 and a half minutes ahead", now + 330),
        ("a year ahead", now + 365 * 86_400),
        ("the epoch", 0),
        ("before the epoch", -1),
        ("far future (2^40)", 1 << 40),
    ] {
        let push = text_push(target, &safe, "stale", timestamp);
        let answer = post_to(target, SAFE, &push.query_string(), push.body).await;
        report.add(answer.tried(GROUP, name, Expect::Refused(401, Some("stale_timestamp"))));
    }
    let overflow = text_push(target, &safe, "stale", now);
    let query = sealed_query(
        &safe,
        &json_encrypt(&overflow.body),
        "99999999999999999999999",
    );
    let answer = post_to(target, SAFE, &query, overflow.body).await;
    report.add(answer.tried(
        GROUP,
        "timestamp past i64",
        Expect::Refused(400, Some("bad_timestamp")),
    ));
}

async fn oversized(target: &Target, report: &mut Report) {
    const GROUP: &str = "callback: oversized";
    let plain = endpoint(target, PLAIN);
    let limit = target.config.max_body_bytes;
    for (name, size) in [
        ("one byte over max_body_bytes", limit + 1),
        ("1 MiB", 1 << 20),
        ("5 MiB", 5 << 20),
    ] {
        let body = plain_fields(target, &plain, json!({"Content": "x".repeat(size)}));
        let answer = post_to(target, PLAIN, &plain_query(&plain, now_secs()), body).await;
        // A body over the function URL's own limit (6 MB) may be refused before the bridge.
        report.add(answer.tried(GROUP, name, Expect::Refused(413, None)));
    }
}

async fn bombs(target: &Target, report: &mut Report) {
    const GROUP: &str = "callback: XML/JSON bombs";
    let compat = endpoint(target, COMPAT);
    let plain = endpoint(target, PLAIN);
    let to = &compat.original_id;
    let deep = format!("{}x{}", "<a>".repeat(100), "</a>".repeat(100));
    let wide: String = (0..300).map(|i| format!("<f{i}>x</f{i}>")).collect();
    let xml_cases = [
        ("billion laughs", format!("<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><xml><ToUserName>{to}</ToUserName><Content>&c;</Content></xml>")),
        ("external entity", format!("<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><ToUserName>{to}</ToUserName><Content>&e;</Content></xml>")),
        ("parameter entity", "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY % p SYSTEM \"http://127.0.0.1/\"> %p;]><xml/>".to_owned()),
        ("100 levels deep", format!("<xml><ToUserName>{to}</ToUserName>{deep}</xml>")),
        ("300 children", format!("<xml><ToUserName>{to}</ToUserName>{wide}</xml>")),
        ("unclosed", format!("<xml><ToUserName>{to}</ToUserName><Encrypt>abc")),
        ("two roots", format!("<xml><ToUserName>{to}</ToUserName></xml><xml/>")),
        ("not XML", "hello".to_owned()),
        ("empty", String::new()),
        ("undefined entity", format!("<xml><ToUserName>{to}&zz;</ToUserName></xml>")),
    ];
    for (name, body) in xml_cases {
        let answer = target
            .push(
                Method::POST,
                &format!("/wechat/{COMPAT}"),
                &format!(
                    "{}&encrypt_type=aes&msg_signature=00",
                    plain_query(&compat, now_secs())
                ),
                XML,
                body,
            )
            .await;
        report.add(answer.tried(GROUP, name, Expect::Refused(400, Some("malformed_body"))));
    }
    let json_cases = [
        (
            "JSON 10000 levels deep",
            format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
        ),
        (
            "JSON object 10000 levels deep",
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
        ),
        ("JSON broken", "{\"ToUserName\": ".to_owned()),
        ("JSON array", "[1,2,3]".to_owned()),
        ("JSON string", "\"text\"".to_owned()),
        (
            "JSON number as ToUserName",
            plain_fields(target, &plain, json!({"ToUserName": 12})),
        ),
    ];
    for (name, body) in json_cases {
        let answer = post_to(target, PLAIN, &plain_query(&plain, now_secs()), body).await;
        let expect = if name == "JSON number as ToUserName" {
            Expect::Refused(400, None)
        } else {
            Expect::Refused(400, Some("malformed_body"))
        };
        report.add(answer.tried(GROUP, name, expect));
    }
    let not_utf8: Vec<u8> = vec![0xff, 0xfe, b'{', b'}'];
    let answer = post_to(target, PLAIN, &plain_query(&plain, now_secs()), not_utf8).await;
    report.add(answer.tried(
        GROUP,
        "not UTF-8",
        Expect::Refused(400, Some("malformed_body")),
    ));
}

async fn envelopes(target: &Target, report: &mut Report) {
    const GROUP: &str = "callback: envelopes";
    let safe = endpoint(target, SAFE);
    let plain = endpoint(target, PLAIN);
    let key = safe.key.clone().expect("the safe channel has a key");
    let now = now_secs();
    let openid = format!("oAtk{}", target.run);
    let event = user::event(&safe, &openid, &UserInput::Text("envelope".into()), now);
    let inner = wxbridge_wechat::encode::encode(&event, safe.format);
    let post = |encrypt: String| {
        let body = json!({"ToUserName": safe.original_id, "Encrypt": encrypt}).to_string();
        let query = sealed_query(&safe, &encrypt, now);
        async move { post_to(target, SAFE, &query, body).await }
    };
    let valid = key.encrypt(inner.as_bytes(), &safe.app_id);
    let cut = |n: usize| {
        let bytes = base64_decode(&valid);
        base64_encode(&bytes[..bytes.len() - n])
    };
    let mut flipped = base64_decode(&valid);
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "another app's envelope",
            key.encrypt(inner.as_bytes(), "wx0000000000000bad"),
            Expect::Refused(400, Some("wrong_appid")),
        ),
        (
            "an envelope with no app id",
            key.encrypt(inner.as_bytes(), ""),
            Expect::Refused(400, Some("wrong_appid")),
        ),
        (
            "not base64",
            "%%%not-base64%%%".into(),
            Expect::Refused(400, Some("bad_ciphertext")),
        ),
        (
            "not a whole number of blocks",
            cut(5),
            Expect::Refused(400, Some("bad_ciphertext")),
        ),
        ("one block short", cut(16), Expect::Refused(400, None)),
        (
            "last block changed (padding)",
            base64_encode(&flipped),
            Expect::Refused(400, Some("bad_ciphertext")),
        ),
        ("empty Encrypt", String::new(), Expect::Refused(400, None)),
        // Sealed with the channel's key and app id: authentic, kept as `unreadable`, and
        // the envelope (not the inner ToUserName) names the app.
        (
            "an authentic envelope holding no push",
            key.encrypt(b"{\"hello\": 1}", &safe.app_id),
            Expect::Accepted(200),
        ),
        (
            "an authentic envelope naming another account inside",
            key.encrypt(
                inner
                    .replace(&safe.original_id, "gh_0000000bad0")
                    .as_bytes(),
                &safe.app_id,
            ),
            Expect::Accepted(200),
        ),
    ];
    for (name, encrypt, expect) in cases {
        report.add(post(encrypt).await.tried(GROUP, name, expect));
    }
    // Plaintext where encryption is required, and the other way round.
    let body = json!({"ToUserName": safe.original_id, "FromUserName": openid, "CreateTime": now, "MsgType": "text", "Content": "plain", "MsgId": user::new_msg_id()}).to_string();
    let answer = post_to(target, SAFE, &plain_query(&safe, now), body).await;
    report.add(answer.tried(
        GROUP,
        "plaintext to a safe-mode channel",
        Expect::Refused(401, Some("encryption_required")),
    ));
    let sealed = text_push(target, &safe, "sealed", now);
    let query = sealed_query(&plain, &json_encrypt(&sealed.body), now);
    let answer = post_to(target, PLAIN, &query, sealed.body).await;
    report.add(answer.tried(
        GROUP,
        "encrypted to a plaintext channel",
        Expect::Refused(400, Some("encryption_not_configured")),
    ));
    let body = plain_fields(target, &plain, json!({"ToUserName": "gh_0000000bad0"}));
    let answer = post_to(target, PLAIN, &plain_query(&plain, now), body).await;
    report.add(answer.tried(
        GROUP,
        "plaintext for another account",
        Expect::Refused(400, Some("wrong_recipient")),
    ));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn odd_but_signed(target: &Target, report: &mut Report) {
    const GROUP: &str = "callback: odd, signed";
    let plain = endpoint(target, PLAIN);
    let accepted = Expect::Accepted(200);
    let malformed = Expect::Refused(400, Some("malformed_body"));
    let cases: Vec<(&str, Value, Expect)> = vec![
        ("unknown MsgType", json!({"MsgType": "hologram"}), accepted),
        (
            "unknown event",
            json!({"MsgType": "event", "Event": "teleport", "MsgId": null}),
            accepted,
        ),
        ("no MsgId", json!({"MsgId": null}), accepted),
        ("empty Content", json!({"Content": ""}), accepted),
        (
            "emoji and RTL Content",
            json!({"Content": "😀\u{202e}שלום"}),
            accepted,
        ),
        (
            "10 KB Content",
            json!({"Content": "x".repeat(10_000)}),
            accepted,
        ),
        (
            "MsgId as a huge number string",
            json!({"MsgId": "9".repeat(40)}),
            accepted,
        ),
        (
            "FromUserName with a colon",
            json!({"FromUserName": format!("oAtk{}:x", target.run)}),
            accepted,
        ),
        (
            "FromUserName of 2000 characters",
            json!({"FromUserName": "o".repeat(2000)}),
            malformed,
        ),
        (
            "FromUserName with a control character",
            json!({"FromUserName": "o\u{1}x"}),
            malformed,
        ),
        (
            "FromUserName empty",
            json!({"FromUserName": ""}),
            Expect::Refused(400, None),
        ),
        (
            "ToUserName of 2000 characters",
            json!({"ToUserName": "g".repeat(2000)}),
            Expect::Refused(400, None),
        ),
        ("no CreateTime", json!({"CreateTime": null}), malformed),
        ("no MsgType", json!({"MsgType": null}), malformed),
        (
            "CreateTime as text",
            json!({"CreateTime": "yesterday"}),
            Expect::Refused(400, None),
        ),
    ];
    for (name, overrides, expect) in cases {
        let body = plain_fields(target, &plain, overrides);
        let answer = post_to(target, PLAIN, &plain_query(&plain, now_secs()), body).await;
        report.add(answer.tried(GROUP, name, expect));
    }
}

async fn paths_and_methods(target: &Target, report: &mut Report) {
    const GROUP: &str = "callback: paths, methods";
    let plain = endpoint(target, PLAIN);
    let query = plain_query(&plain, now_secs());
    let body = plain_fields(target, &plain, json!({}));
    let cases: Vec<(&str, Method, String, Expect)> = vec![
        (
            "unknown channel",
            Method::POST,
            "/wechat/nope".into(),
            Expect::Refused(404, Some("unknown_channel")),
        ),
        (
            "channel id with a slash",
            Method::POST,
            "/wechat/mp-plain/x".into(),
            Expect::Refused(404, None),
        ),
        (
            "no channel",
            Method::POST,
            "/wechat".into(),
            Expect::Refused(404, None),
        ),
        (
            "another path",
            Method::POST,
            "/admin".into(),
            Expect::Refused(404, Some("not_found")),
        ),
        (
            "PUT",
            Method::PUT,
            format!("/wechat/{PLAIN}"),
            Expect::Refused(405, Some("method_not_allowed")),
        ),
        (
            "DELETE",
            Method::DELETE,
            format!("/wechat/{PLAIN}"),
            Expect::Refused(405, Some("method_not_allowed")),
        ),
        (
            "OPTIONS",
            Method::OPTIONS,
            format!("/wechat/{PLAIN}"),
            Expect::Refused(405, Some("method_not_allowed")),
        ),
    ];
    for (name, method, path, expect) in cases {
        let answer = target.push(method, &path, &query, JSON, body.clone()).await;
        report.add(answer.tried(GROUP, name, expect));
    }
    let verify = format!("{}&echostr=abc123", plain_query(&plain, now_secs()));
    let answer = target
        .push(Method::GET, &format!("/wechat/{PLAIN}"), &verify, JSON, "")
        .await;
    report.add(answer.tried(GROUP, "verification, signed", Expect::Accepted(200)));
}
