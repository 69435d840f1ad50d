//! A partner's desk in a terminal, for the local stack: receives and verifies the bridge's
//! webhooks, and answers through the partner API with signed requests. See
//! `partner-desk help`.

use serde_json::{json, Value};
use std::path::PathBuf;
use wxbridge_core::config::BridgeConfig;
use wxbridge_devstack::cli::{fail, show_received, take_flag, take_option, Shown, WaitFor};
use wxbridge_devstack::desk::{describe_webhook, read_log, router, PartnerClient, Receiver};
use wxbridge_devstack::stack::Stack;
use wxbridge_wechat::subscribe::field_limit;

const USAGE: &str = "\
usage: partner-desk [--stack DIR] [--partner ID] COMMAND

  serve [--port N] [--log FILE] [--config FILE] [--quiet]
                         receive the bridge's webhooks for every partner at
                         /hooks/{partner}, verify each signature and print it
                         (`make dev` runs this for you)
  received [--wait-for TEXT] [--timeout SECS]
                         the webhooks received (for --partner, or every partner);
                         --wait-for waits until one contains TEXT, fails after SECS
  reply (--conversation ID | --openid OPENID [--channel ID] | --app-user ID) WORDS…
                         reply with a text (POST /v1/messages)
  push (--openid OPENID [--channel ID] | --app-user ID) [--template ID] WORDS…
                         push a notification (POST /v1/pushes); --template adds a
                         subscribe-message form used when the reply window is closed,
                         the text in its field thing1 (cut to 20 characters)
  history CONVERSATION_ID
                         the conversation, newest first
  conversation CONVERSATION_ID
                         the conversation now: status, active partner, and its window
                         (sends left, until when, the entry allowance, grants)
  handover CONVERSATION_ID --to PARTNER [--note-user TEXT] [--note-partner TEXT]
                         hand the user over to another partner (merged mode)
  close CONVERSATION_ID [--text TEXT]
                         close the conversation, after the closing text
  image CONVERSATION_ID [--wait SECS] [--out FILE]
                         the conversation's latest image message: its copy (waiting up
                         to SECS while it is pending), the kept copy as the API serves
                         it (saved to FILE), and WeChat's own copy
  conversations (--openid OPENID [--channel ID] | --app-user ID)
                         the partner's conversations with a user
  api METHOD PATH [BODY] any signed request, e.g. api GET /v1/conversations?app_user_id=u-42

The partner defaults to $WXBRIDGE_PARTNER or the configuration's default partner; the
channel to $WXBRIDGE_CHANNEL or the first channel with an app_secret. Requests are signed
with the partner's signing_secret from the stack's configuration. The stack is the one whose
state directory --stack or $WXBRIDGE_STACK names, else `make dev`'s (.local/dev). Exit
status: 0 for a 2xx answer, 4 for 404, 1 otherwise.";

fn load_config(path: &std::path::Path) -> BridgeConfig {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", path.display())));
    BridgeConfig::from_json(&text).unwrap_or_else(|e| fail(e))
}

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "help" | "-h" | "--help") {
        println!("{USAGE}");
        return;
    }
    let stack_dir = take_option(&mut args, "--stack");
    let partner = take_option(&mut args, "--partner").or(std::env::var("WXBRIDGE_PARTNER").ok());
    if args.is_empty() {
        fail(format!("a command is missing\n\n{USAGE}"));
    }
    let command = args.remove(0);
    if command == "serve" {
        return serve(args, stack_dir.as_deref()).await;
    }
    let stack = Stack::load(stack_dir.as_deref()).unwrap_or_else(|e| fail(e));
    let config = stack.bridge_config().unwrap_or_else(|e| fail(e));
    if command == "received" {
        let wait = WaitFor::take(&mut args);
        return received(&stack, partner.as_deref(), &wait).await;
    }
    let partner = partner
        .or(config.dialog.default_partner.clone())
        .or(config.partners.first().map(|p| p.id.clone()))
        .unwrap_or_else(|| fail("the configuration has no partner"));
    let api_url = stack.function_url("api").unwrap_or_else(|e| fail(e));
    let client = PartnerClient::new(&config, api_url, &partner).unwrap_or_else(|e| fail(e));
    let channel = take_option(&mut args, "--channel")
        .or(std::env::var("WXBRIDGE_CHANNEL").ok())
        .or(config
            .channels
            .iter()
            .find(|c| c.app_secret.is_some())
            .map(|c| c.id.clone()))
        .unwrap_or_default();
    if command == "image" {
        let wait = take_option(&mut args, "--wait")
            .map(|w| w.parse().unwrap_or_else(|_| fail("--wait takes seconds")))
            .unwrap_or(0);
        let out = take_option(&mut args, "--out").map(PathBuf::from);
        let [conversation] = args.as_slice() else {
            fail(format!("image takes one conversation id\n\n{USAGE}"));
        };
        let (kept, lines) = client
            .latest_image(
                &conversation_path(conversation),
                &channel,
                std::time::Duration::from_secs(wait),
                out.as_deref(),
            )
            .await
            .unwrap_or_else(|e| fail(e));
        for line in lines {
            println!("[{partner}] {line}");
        }
        std::process::exit(if kept { 0 } else { 1 });
    }
    let (method, path, body) = match command.as_str() {
        "reply" => {
            let target = target(&mut args, &channel, true);
            let text = words(&args);
            let mut body = json!({
                "client_message_id": format!("desk-{}", uuid::Uuid::new_v4().simple()),
                "content": {"type": "text", "text": text},
            });
            merge(&mut body, target);
            (
                "POST".to_owned(),
                "/v1/messages".to_owned(),
                body.to_string(),
            )
        }
        "push" => {
            let to = target(&mut args, &channel, false);
            let template = take_option(&mut args, "--template");
            let text = words(&args);
            let mut body = json!({
                "push_id": format!("desk-{}", uuid::Uuid::new_v4().simple()),
                "content": {"type": "text", "text": text},
            });
            merge(&mut body, to);
            if let Some(template_id) = template {
                // WeChat refuses (47003) a `thing` value over 20 characters.
                let value = wxbridge_core::model::push::cut(&text, field_limit("thing1"));
                if value != text {
                    eprintln!("partner-desk: thing1 cut to {value:?}");
                }
                body["subscribe"] = json!({
                    "template_id": template_id,
                    "data": {"thing1": {"value": value}},
                });
            }
            ("POST".to_owned(), "/v1/pushes".to_owned(), body.to_string())
        }
        "history" if args.len() == 1 => (
            "GET".to_owned(),
            format!("/v1/conversations/{}/messages", conversation_path(&args[0])),
            String::new(),
        ),
        "conversation" if args.len() == 1 => (
            "GET".to_owned(),
            format!("/v1/conversations/{}", conversation_path(&args[0])),
            String::new(),
        ),
        "handover" => {
            let to = take_option(&mut args, "--to")
                .unwrap_or_else(|| fail("handover takes --to PARTNER"));
            let note_user = take_option(&mut args, "--note-user");
            let note_partner = take_option(&mut args, "--note-partner");
            let [conversation] = args.as_slice() else {
                fail(format!("handover takes one conversation id\n\n{USAGE}"));
            };
            let body = json!({
                "handover_id": format!("desk-{}", uuid::Uuid::new_v4().simple()),
                "to": to,
                "note_to_user": note_user,
                "note_to_partner": note_partner,
            });
            (
                "POST".to_owned(),
                format!(
                    "/v1/conversations/{}/handover",
                    conversation_path(conversation)
                ),
                body.to_string(),
            )
        }
        "close" => {
            let text = take_option(&mut args, "--text");
            let [conversation] = args.as_slice() else {
                fail(format!("close takes one conversation id\n\n{USAGE}"));
            };
            let body = match text {
                Some(text) => json!({
                    "closing_text": text,
                    "client_message_id": format!("desk-{}", uuid::Uuid::new_v4().simple()),
                }),
                None => json!({}),
            };
            (
                "POST".to_owned(),
                format!(
                    "/v1/conversations/{}/close",
                    conversation_path(conversation)
                ),
                body.to_string(),
            )
        }
        "conversations" => {
            let query = match (
                take_option(&mut args, "--openid"),
                take_option(&mut args, "--app-user"),
            ) {
                (Some(openid), _) => format!("channel={channel}&openid={openid}"),
                (None, Some(app_user)) => format!("app_user_id={app_user}"),
                _ => fail("conversations takes --openid or --app-user"),
            };
            (
                "GET".to_owned(),
                format!("/v1/conversations?{query}"),
                String::new(),
            )
        }
        "api" if (2..=3).contains(&args.len()) => (
            args[0].to_ascii_uppercase(),
            args[1].clone(),
            args.get(2).cloned().unwrap_or_default(),
        ),
        _ => fail(format!(
            "unknown or incomplete command: {command}\n\n{USAGE}"
        )),
    };
    let (status, answer) = client
        .request(&method, &path, &body)
        .await
        .unwrap_or_else(|e| fail(e));
    println!("[{partner}] {method} {path} → {status} {answer}");
    std::process::exit(match status {
        200..=299 => 0,
        404 => 4,
        _ => 1,
    });
}

/// A conversation id as a path segment (its `:` kept).
fn conversation_path(id: &str) -> String {
    wxbridge_wechat::encode::percent_encode(id).replace("%3A", ":")
}

/// `--conversation`, `--openid` or `--app-user`, as the request's target fields.
fn target(args: &mut Vec<String>, channel: &str, conversation_allowed: bool) -> Value {
    let conversation = take_option(args, "--conversation");
    let openid = take_option(args, "--openid");
    let app_user = take_option(args, "--app-user");
    match (conversation, openid, app_user) {
        (Some(id), None, None) if conversation_allowed => json!({"conversation_id": id}),
        (None, Some(openid), None) => json!({"to": {"channel": channel, "openid": openid}}),
        (None, None, Some(app_user)) => json!({"to": {"app_user_id": app_user}}),
        _ => fail("name the recipient once: --conversation, --openid or --app-user"),
    }
}

fn merge(body: &mut Value, fields: Value) {
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
}

fn words(args: &[String]) -> String {
    if args.is_empty() {
        fail("what to write is missing");
    }
    args.join(" ")
}

async fn serve(mut args: Vec<String>, stack_dir: Option<&str>) {
    let quiet = take_flag(&mut args, "--quiet");
    let port = take_option(&mut args, "--port");
    let log = take_option(&mut args, "--log");
    let config_path = take_option(&mut args, "--config");
    let stack = if port.is_none() || log.is_none() || config_path.is_none() {
        Some(Stack::load(stack_dir).unwrap_or_else(|e| fail(e)))
    } else {
        None
    };
    let port: u16 = match port {
        Some(port) => port
            .parse()
            .unwrap_or_else(|_| fail("--port takes a number")),
        None => stack
            .as_ref()
            .and_then(|s| s.desk_url.rsplit(':').next()?.parse().ok())
            .unwrap_or_else(|| fail("no --port and none in the stack")),
    };
    let log = log
        .map(PathBuf::from)
        .or(stack.as_ref().map(|s| s.desk_log.clone()))
        .unwrap_or_else(|| fail("no --log"));
    let config = load_config(
        &config_path
            .map(PathBuf::from)
            .or(stack.as_ref().map(|s| s.config.clone()))
            .unwrap_or_else(|| fail("no --config")),
    );
    let partners: Vec<String> = config.partners.iter().map(|p| p.id.clone()).collect();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on 127.0.0.1:{port}: {e}")));
    println!(
        "partner desk on http://127.0.0.1:{port}/hooks/{{partner}} (partners: {}; log {})",
        partners.join(", "),
        log.display()
    );
    let app = router(Receiver::new(config, log, quiet));
    axum::serve(listener, app).await.unwrap_or_else(|e| fail(e));
}

async fn received(stack: &Stack, partner: Option<&str>, wait: &WaitFor) {
    show_received(
        wait,
        "webhook",
        |n| format!("{n} webhook(s) received:"),
        || async {
            Ok(read_log(&stack.desk_log)
                .iter()
                .filter(|w| partner.is_none_or(|p| w.partner == p))
                .map(|w| {
                    let line = describe_webhook(w);
                    Shown {
                        line: format!("  {line}"),
                        searched: line,
                    }
                })
                .collect())
        },
    )
    .await
}
