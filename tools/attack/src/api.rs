//! Inputs at the partner API, as an unfriendly partner sends them: broken or borrowed
//! authentication, other partners' conversations and users, bad requests, repeats and
//! races, image URLs aimed inside. Expected answers are docs/partner-api.md's.

use crate::effects::Control;
use crate::report::{Expect, Report, Tried};
use crate::target::{fresh_nonce, now_secs, Answer, Headers, Target};
use futures_util::future::join_all;
use serde_json::{json, Value};
use wxbridge_core::config::Secret;
use wxbridge_core::services::partner::auth::SignedRequest;

const HOTEL: &str = "hotel-9";
const PLATFORM: &str = "platform";
const UNAUTHORIZED: Expect = Expect::Refused(401, Some("unauthorized"));
const INVALID: Expect = Expect::Refused(400, Some("invalid_request"));
const NOT_FOUND: Expect = Expect::Refused(404, Some("not_found"));

pub async fn attack(target: &Target, control: &mut Control, report: &mut Report) {
    authentication(target, report).await;
    privacy(target, control, report).await;
    validation(target, control, report).await;
    idempotency(target, control, report).await;
    concurrency(target, control, report).await;
    image_urls(target, control, report).await;
}

fn reply(conversation_id: &str, client_id: &str, text: &str) -> String {
    json!({"conversation_id": conversation_id, "client_message_id": client_id,
           "content": {"type": "text", "text": text}})
    .to_string()
}

async fn authentication(target: &Target, report: &mut Report) {
    const GROUP: &str = "api: authentication";
    let path = "/v1/conversations?app_user_id=u-nobody";
    let hotel = target.secret(HOTEL);
    let signed = |partner: &str,
                  secret: &Secret,
                  method: &str,
                  path: &str,
                  body: &str,
                  ts: i64,
                  nonce: &str| {
        let request = SignedRequest {
            method,
            path_and_query: path,
            body: body.as_bytes(),
        };
        target.signed_headers(partner, secret, request, ts, nonce)
    };
    let now = now_secs();
    let without = |headers: Vec<(String, String)>, name: &str| -> Vec<(String, String)> {
        headers
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect()
    };
    let replace =
        |headers: Vec<(String, String)>, name: &str, value: &str| -> Vec<(String, String)> {
            headers
                .into_iter()
                .map(|(n, v)| {
                    if n.eq_ignore_ascii_case(name) {
                        (n, value.to_owned())
                    } else {
                        (n, v)
                    }
                })
                .collect()
        };
    let good = || signed(HOTEL, &hotel, "GET", path, "", now, &fresh_nonce());
    let cases: Vec<(&str, &str, &str, Headers, String)> = vec![
        ("no headers", "GET", path, vec![], String::new()),
        (
            "no headers, a route that does not exist",
            "GET",
            "/v1/admin/users",
            vec![],
            String::new(),
        ),
        (
            "no headers, a method that does not exist",
            "DELETE",
            "/v1/messages",
            vec![],
            String::new(),
        ),
        (
            "another secret",
            "GET",
            path,
            signed(
                HOTEL,
                &Secret::new("not-the-hotel-secret-123"),
                "GET",
                path,
                "",
                now,
                &fresh_nonce(),
            ),
            String::new(),
        ),
        (
            "another partner's name, own secret",
            "GET",
            path,
            signed(PLATFORM, &hotel, "GET", path, "", now, &fresh_nonce()),
            String::new(),
        ),
        (
            "an unknown partner",
            "GET",
            path,
            signed("hotel-0", &hotel, "GET", path, "", now, &fresh_nonce()),
            String::new(),
        ),
        (
            "5 minutes and a second old",
            "GET",
            path,
            signed(HOTEL, &hotel, "GET", path, "", now - 301, &fresh_nonce()),
            String::new(),
        ),
        (
            // Ahead by more than the run can take to reach the check: the requests go one
            // after another from one `now`, so a second's margin flipped on a busy machine.
            "5 and a half minutes ahead",
            "GET",
            path,
            signed(HOTEL, &hotel, "GET", path, "", now + 330, &fresh_nonce()),
            String::new(),
        ),
        (
            "timestamp not a number",
            "GET",
            path,
            replace(good(), "x-wxbridge-timestamp", "soon"),
            String::new(),
        ),
        (
            "nonce of 7 characters",
            "GET",
            path,
            signed(HOTEL, &hotel, "GET", path, "", now, "abcdefg"),
            String::new(),
        ),
        (
            "nonce with a space",
            "GET",
            path,
            signed(HOTEL, &hotel, "GET", path, "", now, "abc defgh"),
            String::new(),
        ),
        (
            "nonce of 65 characters",
            "GET",
            path,
            signed(HOTEL, &hotel, "GET", path, "", now, &"n".repeat(65)),
            String::new(),
        ),
        (
            "signature missing",
            "GET",
            path,
            without(good(), "x-wxbridge-signature"),
            String::new(),
        ),
        (
            "timestamp missing",
            "GET",
            path,
            without(good(), "x-wxbridge-timestamp"),
            String::new(),
        ),
        (
            "nonce missing",
            "GET",
            path,
            without(good(), "x-wxbridge-nonce"),
            String::new(),
        ),
        (
            "partner missing",
            "GET",
            path,
            without(good(), "x-wxbridge-partner"),
            String::new(),
        ),
        (
            "signature of another scheme",
            "GET",
            path,
            replace(good(), "x-wxbridge-signature", "v2=00"),
            String::new(),
        ),
        (
            "signature empty",
            "GET",
            path,
            replace(good(), "x-wxbridge-signature", ""),
            String::new(),
        ),
        (
            "query changed after signing",
            "GET",
            "/v1/conversations?app_user_id=u-other",
            good(),
            String::new(),
        ),
        (
            "method changed after signing",
            "POST",
            path,
            good(),
            String::new(),
        ),
        ("body added after signing", "GET", path, good(), "{}".into()),
        (
            "body changed after signing",
            "POST",
            "/v1/messages",
            signed(
                HOTEL,
                &hotel,
                "POST",
                "/v1/messages",
                "{\"a\":1}",
                now,
                &fresh_nonce(),
            ),
            "{\"a\":2}".into(),
        ),
    ];
    for (name, method, path, headers, body) in cases {
        let answer = target.api_raw(method, path, &headers, body).await;
        report.add(answer.tried(GROUP, name, UNAUTHORIZED));
    }
    // A replay: the same signed request twice.
    let headers = good();
    let first = target.api_raw("GET", path, &headers, "").await;
    report.add(first.tried(GROUP, "a signed request", Expect::Accepted(200)));
    for n in 1..=3 {
        let again = target.api_raw("GET", path, &headers, "").await;
        report.add(again.tried(GROUP, format!("the same request again ({n})"), UNAUTHORIZED));
    }
}

/// What the conversations list shows: their ids.
fn listed(answer: &Answer) -> Vec<String> {
    answer.body["conversations"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Tried: an answer that must be the same as for a user who does not exist.
fn same_as_unknown(group: &'static str, name: &str, answer: &Answer, unknown: &Answer) -> Tried {
    let same = answer.status == unknown.status && answer.body == unknown.body;
    Tried {
        group,
        name: format!("{name} (answered as for an unknown user)"),
        expect: Expect::Refused(404, None),
        // An answer that differs is an oracle: counted as wrongly accepted.
        status: if same { Some(404) } else { Some(200) },
        code: None,
    }
}

async fn privacy(target: &Target, control: &Control, report: &mut Report) {
    const GROUP: &str = "api: other partners' users";
    let stranger = &control.platform_only;
    let channel = &control.channel;
    let platform_conversation = format!("{channel}:{}:{PLATFORM}", stranger.openid);
    let cases: Vec<(&str, &str, String, String)> = vec![
        (
            "the platform's conversation: history",
            "GET",
            format!("/v1/conversations/{platform_conversation}/messages"),
            String::new(),
        ),
        (
            "the platform's conversation: reply",
            "POST",
            "/v1/messages".into(),
            reply(&platform_conversation, "idor-1", "hello"),
        ),
        (
            "the platform's conversation: typing",
            "POST",
            format!("/v1/conversations/{platform_conversation}/typing"),
            json!({"typing": true}).to_string(),
        ),
    ];
    for (name, method, path, body) in cases {
        let answer = target.api(HOTEL, method, &path, &body).await;
        report.add(answer.tried(GROUP, name, NOT_FOUND));
    }
    // A user the hotel never talked with, by openid and by app user: exactly as unknown.
    let message = |to: Value, id: &str| {
        json!({"to": to, "client_message_id": id, "content": {"type": "text", "text": "hello"}})
            .to_string()
    };
    let push = |to: Value, id: &str| {
        json!({"to": to, "push_id": id, "content": {"type": "text", "text": "hello"}}).to_string()
    };
    let by_openid = |openid: &str| json!({"channel": channel, "openid": openid});
    let by_app_user = |app_user: &str| json!({"app_user_id": app_user});
    let known = (
        by_openid(&stranger.openid),
        by_app_user(&control.platform_only_app_user),
    );
    let unknown = (by_openid("oNobodyAtAll"), by_app_user("u-nobody-at-all"));
    for (what, known_to, unknown_to) in [
        ("by openid", &known.0, &unknown.0),
        ("by app user", &known.1, &unknown.1),
    ] {
        for (kind, build) in [
            ("reply", &message as &dyn Fn(Value, &str) -> String),
            ("push", &push),
        ] {
            let path = if kind == "reply" {
                "/v1/messages"
            } else {
                "/v1/pushes"
            };
            let id = format!("idor-{kind}-{}", fresh_nonce());
            let answer = target
                .api(HOTEL, "POST", path, &build(known_to.clone(), &id))
                .await;
            let unknown_answer = target
                .api(HOTEL, "POST", path, &build(unknown_to.clone(), &id))
                .await;
            report.add(answer.tried(GROUP, format!("a stranger {what}: {kind}"), NOT_FOUND));
            report.add(same_as_unknown(
                GROUP,
                &format!("a stranger {what}: {kind}"),
                &answer,
                &unknown_answer,
            ));
        }
    }
    for (what, query, unknown_query) in [
        (
            "by openid",
            format!("channel={channel}&openid={}", stranger.openid),
            format!("channel={channel}&openid=oNobodyAtAll"),
        ),
        (
            "by app user",
            format!("app_user_id={}", control.platform_only_app_user),
            "app_user_id=u-nobody-at-all".to_owned(),
        ),
    ] {
        let answer = target
            .api(HOTEL, "GET", &format!("/v1/conversations?{query}"), "")
            .await;
        let unknown_answer = target
            .api(
                HOTEL,
                "GET",
                &format!("/v1/conversations?{unknown_query}"),
                "",
            )
            .await;
        report.add(answer.tried(
            GROUP,
            format!("a stranger's conversations {what}"),
            Expect::Accepted(200),
        ));
        report.add(same_as_unknown(
            GROUP,
            &format!("a stranger's conversations {what}"),
            &answer,
            &unknown_answer,
        ));
        if !listed(&answer).is_empty() {
            report.add(Tried {
                group: GROUP,
                name: format!("a stranger's conversations {what} listed"),
                expect: Expect::Refused(404, None),
                status: Some(200),
                code: None,
            });
        }
    }
    let answer = target
        .api(
            HOTEL,
            "PUT",
            &format!("/v1/bindings/{channel}/{}", stranger.openid),
            &json!({"app_user_id": "u-taken-over", "replace": true}).to_string(),
        )
        .await;
    report.add(answer.tried(
        GROUP,
        "binding without can_bind",
        Expect::Refused(403, Some("forbidden")),
    ));
}

async fn validation(target: &Target, control: &Control, report: &mut Report) {
    const GROUP: &str = "api: bad requests";
    let conversation = &control.users[0].conversation;
    let content = |c: Value| {
        json!({"conversation_id": conversation, "client_message_id": format!("bad-{}", fresh_nonce()), "content": c}).to_string()
    };
    let big = "x".repeat(600 * 1024);
    let cases: Vec<(&str, &str, String, String, Expect)> = vec![
        ("not JSON", "POST", "/v1/messages".into(), "{\"conversation_id\": ".into(), Expect::Refused(400, Some("invalid_json"))),
        ("JSON array", "POST", "/v1/messages".into(), "[]".into(), INVALID),
        ("no client_message_id", "POST", "/v1/messages".into(), json!({"conversation_id": conversation, "content": {"type": "text", "text": "x"}}).to_string(), INVALID),
        ("client_message_id with a space", "POST", "/v1/messages".into(), reply(conversation, "a b", "x"), INVALID),
        ("client_message_id of 65 characters", "POST", "/v1/messages".into(), reply(conversation, &"c".repeat(65), "x"), INVALID),
        ("both conversation_id and to", "POST", "/v1/messages".into(), json!({"conversation_id": conversation, "to": {"app_user_id": "u"}, "client_message_id": "b-1", "content": {"type": "text", "text": "x"}}).to_string(), INVALID),
        ("neither conversation_id nor to", "POST", "/v1/messages".into(), json!({"client_message_id": "b-2", "content": {"type": "text", "text": "x"}}).to_string(), INVALID),
        ("to with openid and app user", "POST", "/v1/messages".into(), json!({"to": {"channel": "mp-demo", "openid": "o", "app_user_id": "u"}, "client_message_id": "b-3", "content": {"type": "text", "text": "x"}}).to_string(), INVALID),
        ("empty text", "POST", "/v1/messages".into(), content(json!({"type": "text", "text": " "})), INVALID),
        ("text over 2048 bytes", "POST", "/v1/messages".into(), content(json!({"type": "text", "text": "字".repeat(700)})), INVALID),
        ("unknown content type", "POST", "/v1/messages".into(), content(json!({"type": "video", "url": "https://x/v.mp4"})), INVALID),
        ("text as a number", "POST", "/v1/messages".into(), content(json!({"type": "text", "text": 5})), INVALID),
        ("image with url and base64", "POST", "/v1/messages".into(), content(json!({"type": "image", "url": "https://x/i.png", "base64": "R0lG"})), INVALID),
        ("image base64 that is not", "POST", "/v1/messages".into(), content(json!({"type": "image", "base64": "%%%"})), INVALID),
        ("image base64 of a text file", "POST", "/v1/messages".into(), content(json!({"type": "image", "base64": "aGVsbG8gd29ybGQ="})), INVALID),
        ("image file:// URL", "POST", "/v1/messages".into(), content(json!({"type": "image", "url": "file:///etc/passwd"})), INVALID),
        ("image gopher:// URL", "POST", "/v1/messages".into(), content(json!({"type": "image", "url": "gopher://127.0.0.1:6379/_INFO"})), INVALID),
        ("link with javascript: URL", "POST", "/v1/messages".into(), content(json!({"type": "link", "title": "t", "description": "d", "url": "javascript:alert(1)", "thumb_url": "https://x/t.png"})), INVALID),
        ("card with an http page path", "POST", "/v1/messages".into(), content(json!({"type": "miniprogrampage", "title": "t", "pagepath": "https://evil", "thumb_media_id": "m"})), INVALID),
        ("body over 512 KiB", "POST", "/v1/messages".into(), content(json!({"type": "text", "text": big})), Expect::Refused(413, Some("too_large"))),
        ("limit 0", "GET", format!("/v1/conversations/{conversation}/messages?limit=0"), String::new(), INVALID),
        ("limit 101", "GET", format!("/v1/conversations/{conversation}/messages?limit=101"), String::new(), INVALID),
        ("limit not a number", "GET", format!("/v1/conversations/{conversation}/messages?limit=ten"), String::new(), INVALID),
        ("a cursor not made by the bridge", "GET", format!("/v1/conversations/{conversation}/messages?cursor=AAAA"), String::new(), INVALID),
        ("conversations with no query", "GET", "/v1/conversations".into(), String::new(), INVALID),
        ("conversations with openid but no channel", "GET", "/v1/conversations?openid=o".into(), String::new(), INVALID),
        ("a conversation id that is no id", "GET", "/v1/conversations/x/messages".into(), String::new(), NOT_FOUND),
        ("an unknown channel", "GET", "/v1/conversations?channel=nope&openid=o".into(), String::new(), NOT_FOUND),
        ("an unknown route", "GET", "/v1/admin".into(), String::new(), NOT_FOUND),
        ("a wrong method", "PATCH", "/v1/messages".into(), String::new(), Expect::Refused(405, None)),
        ("typing not a boolean", "POST", format!("/v1/conversations/{conversation}/typing"), json!({"typing": "yes"}).to_string(), INVALID),
        ("push with no push_id", "POST", "/v1/pushes".into(), json!({"to": {"channel": "mp-demo", "openid": control.users[0].openid}, "content": {"type": "text", "text": "x"}}).to_string(), INVALID),
        ("push with an image", "POST", "/v1/pushes".into(), json!({"to": {"channel": "mp-demo", "openid": control.users[0].openid}, "push_id": "p-img", "content": {"type": "image", "url": "https://x/i.png"}}).to_string(), INVALID),
        ("push with a template the partner may not use", "POST", "/v1/pushes".into(), json!({"to": {"channel": "mp-demo", "openid": control.users[0].openid}, "push_id": "p-tpl", "content": {"type": "text", "text": "x"}, "subscribe": {"template_id": "tpl-not-ours", "data": {"thing1": {"value": "x"}}}}).to_string(), Expect::Refused(403, Some("forbidden"))),
        ("media of an unknown channel", "GET", "/v1/media/nope/MEDIA".into(), String::new(), NOT_FOUND),
    ];
    for (name, method, path, body, expect) in cases {
        let answer = target.api(HOTEL, method, &path, &body).await;
        report.add(answer.tried(GROUP, name, expect));
    }
}

async fn idempotency(target: &Target, control: &mut Control, report: &mut Report) {
    const GROUP: &str = "api: repeats";
    let user = control.users[0].clone();
    let id = format!("rep-{}", target.run);
    let text = format!("repeat {}", target.run);
    let body = reply(&user.conversation, &id, &text);
    let first = target.api(HOTEL, "POST", "/v1/messages", &body).await;
    report.add(first.tried(GROUP, "a reply", Expect::Accepted(202)));
    for n in 1..=2 {
        let again = target.api(HOTEL, "POST", "/v1/messages", &body).await;
        let same = again.body["message_id"] == first.body["message_id"];
        report.add(Tried {
            group: GROUP,
            name: format!("the same reply again ({n}) answers the first"),
            expect: Expect::Accepted(202),
            status: again.status.filter(|_| same).or(Some(409)),
            code: None,
        });
    }
    control.expect_sent(&user.openid, &text);
    let other = target
        .api(
            HOTEL,
            "POST",
            "/v1/messages",
            &reply(&user.conversation, &id, "another text"),
        )
        .await;
    report.add(other.tried(
        GROUP,
        "the same id, another text",
        Expect::Refused(409, Some("client_message_id_reused")),
    ));
    let channel = control.channel.clone();
    let push_body = |text: &str| {
        json!({"to": {"channel": channel, "openid": user.openid}, "push_id": format!("push-{}", target.run), "content": {"type": "text", "text": text}}).to_string()
    };
    let push_text = format!("pushed {}", target.run);
    let first = target
        .api(HOTEL, "POST", "/v1/pushes", &push_body(&push_text))
        .await;
    report.add(first.tried(GROUP, "a push", Expect::Accepted(202)));
    let again = target
        .api(HOTEL, "POST", "/v1/pushes", &push_body(&push_text))
        .await;
    report.add(again.tried(GROUP, "the same push again", Expect::Accepted(202)));
    control.expect_sent(&user.openid, &push_text);
    let other = target
        .api(HOTEL, "POST", "/v1/pushes", &push_body("another push text"))
        .await;
    report.add(other.tried(
        GROUP,
        "the same push id, another text",
        Expect::Refused(409, Some("push_id_reused")),
    ));
}

async fn concurrency(target: &Target, control: &mut Control, report: &mut Report) {
    const GROUP: &str = "api: races";
    let user = control.users[1].clone();
    let text = format!("race {}", target.run);
    let body = reply(&user.conversation, &format!("race-{}", target.run), &text);
    // All in flight before any answer is read.
    let answers = join_all((0..20).map(|_| target.api(HOTEL, "POST", "/v1/messages", &body))).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .filter_map(|a| a.body["message_id"].as_str().map(str::to_owned))
        .collect();
    for (n, answer) in answers.iter().enumerate() {
        report.add(answer.tried(
            GROUP,
            format!("20 at once, one client_message_id ({n})"),
            Expect::Accepted(202),
        ));
    }
    report.add(Tried {
        group: GROUP,
        name: "20 at once give one message".into(),
        expect: Expect::Accepted(202),
        status: Some(if ids.len() == 1 { 202 } else { 409 }),
        code: None,
    });
    control.expect_sent(&user.openid, &text);
    // Different users at once, two replies each, each sent once.
    let mut texts = Vec::new();
    for (n, user) in control.users.iter().enumerate().skip(2) {
        for k in 0..2 {
            texts.push((user.clone(), format!("burst {n}.{k} {}", target.run)));
        }
    }
    let answers = join_all(texts.iter().map(|(user, text)| {
        let body = reply(
            &user.conversation,
            &format!("burst-{}", fresh_nonce()),
            text,
        );
        async move { target.api(HOTEL, "POST", "/v1/messages", &body).await }
    }))
    .await;
    for ((user, text), answer) in texts.iter().zip(answers) {
        report.add(answer.tried(
            GROUP,
            format!("a burst of replies ({text})"),
            Expect::Accepted(202),
        ));
        control.expect_sent(&user.openid, text);
    }
}

async fn image_urls(target: &Target, control: &mut Control, report: &mut Report) {
    const GROUP: &str = "api: image URLs inside";
    let user = control.users.last().expect("users").clone();
    for url in [
        "http://127.0.0.1:9000/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/a.png",
        "http://192.168.1.1/a.png",
        "http://[::1]/a.png",
        "http://198.18.0.1/a.png",
        "http://192.0.0.1/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://[::127.0.0.1]/a.png",
        "http://[64:ff9b::a00:1]/a.png",
        "http://[2002:a00:1::]/a.png",
        "http://[fec0::1]/a.png",
        "http://[fe80::1]/a.png",
        "http://localhost/a.png",
        "http://2130706433/a.png",
        "http://0x7f.1/a.png",
        "http://0/a.png",
    ] {
        let body = json!({"conversation_id": user.conversation, "client_message_id": format!("ssrf-{}", fresh_nonce()),
                          "content": {"type": "image", "url": url}})
        .to_string();
        let answer = target.api(HOTEL, "POST", "/v1/messages", &body).await;
        // Taken (the URL is well formed), then refused when fetched: it must end failed.
        if let Some(message_id) = answer.body["message_id"].as_str() {
            control.expect_failed(&user.conversation, message_id, url);
        }
        let expect = Expect::Accepted(202);
        report.add(answer.tried(GROUP, url, expect));
    }
}
