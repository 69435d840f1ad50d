//! A partner's desk in a terminal, for the local stack: receives and verifies the bridge's
//! webhooks, and answers through the partner API with signed requests. See
//! `partner-desk help`.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wxbridge::config::BridgeConfig;
use wxbridge_devstack::desk::{describe_webhook, read_log, router, PartnerClient, Receiver};
use wxbridge_devstack::stack::Stack;

const USAGE: &str = "\
usage: partner-desk [--partner ID] COMMAND

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
                         subscribe-message form used when the reply window is closed
  history CONVERSATION_ID
                         the conversation, newest first
  conversations (--openid OPENID [--channel ID] | --app-user ID)
                         the partner's conversations with a user
  api METHOD PATH [BODY] any signed request, e.g. api GET /v1/conversations?app_user_id=u-42

The partner defaults to $WXBRIDGE_PARTNER or the configuration's default partner; the
channel to $WXBRIDGE_CHANNEL or the first channel with an app_secret. Requests are signed
with the partner's signing_secret from the stack's configuration. Exit status: 0 for a 2xx
answer, 4 for 404, 1 otherwise.";

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("partner-desk: {message}");
    std::process::exit(1)
}

fn take_option(args: &mut Vec<String>, name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    if at + 1 >= args.len() {
        fail(format!("{name} takes a value"));
    }
    let value = args.remove(at + 1);
    args.remove(at);
    Some(value)
}

fn take_flag(args: &mut Vec<String>, name: &str) -> bool {
    let found = args.iter().position(|a| a == name);
    if let Some(at) = found {
        args.remove(at);
    }
    found.is_some()
}

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
    let partner = take_option(&mut args, "--partner").or(std::env::var("WXBRIDGE_PARTNER").ok());
    let command = args.remove(0);
    if command == "serve" {
        return serve(args).await;
    }
    let stack = Stack::load().unwrap_or_else(|e| fail(e));
    let config = stack.bridge_config().unwrap_or_else(|e| fail(e));
    if command == "received" {
        let wait_for = take_option(&mut args, "--wait-for");
        let timeout = take_option(&mut args, "--timeout")
            .map(|t| {
                t.parse()
                    .unwrap_or_else(|_| fail("--timeout takes seconds"))
            })
            .unwrap_or(30u64);
        return received(&stack, partner.as_deref(), wait_for.as_deref(), timeout).await;
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
                body["subscribe"] = json!({
                    "template_id": template_id,
                    "data": {"thing1": {"value": text}},
                });
            }
            ("POST".to_owned(), "/v1/pushes".to_owned(), body.to_string())
        }
        "history" if args.len() == 1 => (
            "GET".to_owned(),
            format!(
                "/v1/conversations/{}/messages",
                wxbridge::encode::percent_encode(&args[0]).replace("%3A", ":")
            ),
            String::new(),
        ),
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

async fn serve(mut args: Vec<String>) {
    let quiet = take_flag(&mut args, "--quiet");
    let port = take_option(&mut args, "--port");
    let log = take_option(&mut args, "--log");
    let config_path = take_option(&mut args, "--config");
    let stack = if port.is_none() || log.is_none() || config_path.is_none() {
        Some(Stack::load().unwrap_or_else(|e| fail(e)))
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

async fn received(stack: &Stack, partner: Option<&str>, wait_for: Option<&str>, timeout_secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    loop {
        let lines: Vec<String> = read_log(&stack.desk_log)
            .iter()
            .filter(|w| partner.is_none_or(|p| w.partner == p))
            .map(describe_webhook)
            .collect();
        let matching: Vec<&String> = lines
            .iter()
            .filter(|line| wait_for.is_none_or(|text| line.contains(text)))
            .collect();
        let found = wait_for.is_none() || !matching.is_empty();
        if found || Instant::now() >= deadline {
            if wait_for.is_none() {
                println!("{} webhook(s) received:", lines.len());
                lines.iter().for_each(|line| println!("  {line}"));
            } else if found {
                matching.iter().for_each(|line| println!("  {line}"));
            } else {
                lines.iter().for_each(|line| println!("  {line}"));
                fail(format!(
                    "no webhook containing {:?} arrived within {timeout_secs} s (received so far: above)",
                    wait_for.unwrap_or_default()
                ));
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
