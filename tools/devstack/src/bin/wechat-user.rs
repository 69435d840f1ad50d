//! A WeChat user in a terminal, for the local stack: sends what WeChat would push to the
//! bridge for a user, and shows what the user received. See `wechat-user help`.

use wxbridge_aws::DynamoStore;
use wxbridge_core::ports::store::UserStore;
use wxbridge_devstack::cli::{fail, show_received, take_flag, take_option, Shown, WaitFor};
use wxbridge_devstack::stack::Stack;
use wxbridge_devstack::user::{
    describe_received, pick_channel, session_of_received, signed_session_from, Simulator, UserInput,
};

const USAGE: &str = "\
usage: wechat-user [--stack DIR] [--channel ID] [--openid OPENID] [--business ID|NAME] COMMAND

What a WeChat user does, pushed to the bridge's callback as WeChat pushes it (signed, and
encrypted when the channel is in safe or compatible mode); the WeChat fake is told first,
so its reply window opens as WeChat's would.

  text WORDS…                    send a text message
  image [FILE]                   send an image (a small built-in PNG without FILE)
  card TITLE PAGEPATH            share a mini-program card
  enter [--partner ID [--uid APP_USER] [--order ORDER]] [--from RAW]
                                 enter the chat from a contact button; with --partner the
                                 session-from is signed with the configuration's
                                 session_from_secret, as the app signs it
  subscribe TEMPLATE_ID [--reject]
                                 answer a subscribe pop-up (accept by default)
  received [--wait-for TEXT] [--timeout SECS]
                                 what the user received (customer-service messages,
                                 subscribe messages, typing); --wait-for waits until an
                                 item contains TEXT and fails after SECS (default 30)
  time-passes [--hours N]        N hours pass (48 by default): the user's reply window runs
                                 out, at the WeChat fake and in the local table, and the
                                 fake's clock moves on N hours (its access tokens, and its
                                 temporary media after 3 days, run out)

--business acts in the session of a customer-service sub-merchant (its business id, or its
account name as registered at the WeChat fake) instead of the mini program's own; received
then shows that session only. Without it, received shows every session, each item marked
with its session.

The channel defaults to $WXBRIDGE_CHANNEL or the first channel with an app_secret; the
user to $WXBRIDGE_OPENID or oDemoUser. The stack is the one whose state directory --stack
or $WXBRIDGE_STACK names, else `make dev`'s (.local/dev).";

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "help" | "-h" | "--help") {
        println!("{USAGE}");
        return;
    }
    let stack_dir = take_option(&mut args, "--stack");
    let channel = take_option(&mut args, "--channel").or(std::env::var("WXBRIDGE_CHANNEL").ok());
    let openid = take_option(&mut args, "--openid")
        .or(std::env::var("WXBRIDGE_OPENID").ok())
        .unwrap_or_else(|| "oDemoUser".to_owned());
    let business = take_option(&mut args, "--business");
    if args.is_empty() {
        fail(format!("a command is missing\n\n{USAGE}"));
    }
    let stack = Stack::load(stack_dir.as_deref()).unwrap_or_else(|e| fail(e));
    let config = stack.bridge_config().unwrap_or_else(|e| fail(e));
    let channel = pick_channel(&config, channel.as_deref()).unwrap_or_else(|e| fail(e));
    let mut user = Simulator {
        client: reqwest::Client::new(),
        callback_url: format!(
            "{}/wechat",
            stack.function_url("callback").unwrap_or_else(|e| fail(e))
        ),
        fake_url: stack.wechat_fake_url.clone(),
        channel,
        openid,
        business_id: None,
    };
    if let Some(name) = business {
        user.business_id = Some(user.business_id_of(&name).await.unwrap_or_else(|e| fail(e)));
    }
    let command = args.remove(0);
    let who = match user.business_id {
        Some(id) => format!("{}@{}/sub-merchant {id}", user.openid, user.channel.name),
        None => format!("{}@{}", user.openid, user.channel.name),
    };
    let input = match command.as_str() {
        "text" if !args.is_empty() => UserInput::Text(args.join(" ")),
        "image" => {
            let (content_type, bytes) = match args.first() {
                Some(path) => {
                    let bytes =
                        std::fs::read(path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
                    let kind = match path.rsplit('.').next() {
                        Some("jpg" | "jpeg") => "image/jpeg",
                        Some("gif") => "image/gif",
                        _ => "image/png",
                    };
                    (kind, bytes)
                }
                None => ("image/png", wxbridge_devstack::PNG.to_vec()),
            };
            let (media_id, pic_url) = user
                .upload_image(content_type, bytes)
                .await
                .unwrap_or_else(|e| fail(e));
            UserInput::Image { pic_url, media_id }
        }
        "card" if args.len() == 2 => UserInput::Card {
            title: args[0].clone(),
            page_path: args[1].clone(),
            thumb_url: format!("{}/_fake/media/thumb", user.fake_url),
            thumb_media_id: "thumb-media".to_owned(),
        },
        "enter" => {
            let raw = take_option(&mut args, "--from");
            let partner = take_option(&mut args, "--partner");
            let uid = take_option(&mut args, "--uid");
            let order = take_option(&mut args, "--order");
            let session_from = match (raw, partner) {
                (Some(raw), _) => raw,
                (None, Some(partner)) => {
                    let secret = config.session_from_secret.as_ref().unwrap_or_else(|| {
                        fail("the configuration has no session_from_secret to sign with")
                    });
                    signed_session_from(
                        secret,
                        &partner,
                        uid.as_deref(),
                        &user.openid,
                        order.as_deref(),
                        wxbridge_devstack::now_ms() / 1000,
                    )
                }
                (None, None) => String::new(),
            };
            UserInput::Enter { session_from }
        }
        "subscribe" if !args.is_empty() => {
            let accept = !take_flag(&mut args, "--reject");
            UserInput::Subscribe {
                template_id: args[0].clone(),
                accept,
            }
        }
        "received" => {
            let wait = WaitFor::take(&mut args);
            return received(&user, &who, &wait).await;
        }
        "time-passes" => {
            let hours: u64 = take_option(&mut args, "--hours")
                .map(|h| h.parse().unwrap_or_else(|_| fail("--hours takes a number")))
                .unwrap_or(48);
            user.close_window().await.unwrap_or_else(|e| fail(e));
            close_window_in_table(&stack, &user)
                .await
                .unwrap_or_else(|e| fail(e));
            user.time_passes(hours * 3600)
                .await
                .unwrap_or_else(|e| fail(e));
            println!(
                "{who}: {hours} hours pass — the reply window has run out (WeChat fake and local table); the fake's clock is {hours} h on"
            );
            return;
        }
        _ => fail(format!(
            "unknown or incomplete command: {command}\n\n{USAGE}"
        )),
    };
    let answer = user.act(&input).await.unwrap_or_else(|e| fail(e));
    let said = match &input {
        UserInput::Text(text) => format!("\"{text}\""),
        UserInput::Image { media_id, .. } => format!("[image] {media_id}"),
        UserInput::Card { title, .. } => format!("[card] {title}"),
        UserInput::Enter { session_from } => {
            format!("[enters the chat] session-from {session_from:?}")
        }
        UserInput::Subscribe {
            template_id,
            accept,
        } => format!(
            "[subscribe pop-up {template_id}: {}]",
            if *accept { "accept" } else { "reject" }
        ),
    };
    println!(
        "{who} → {said}   (callback: {} {})",
        answer.status,
        answer.body.trim()
    );
    if answer.status != 200 {
        std::process::exit(1);
    }
}

async fn received(user: &Simulator, who: &str, wait: &WaitFor) {
    show_received(
        wait,
        "item",
        |n| format!("{who} received {n} item(s):"),
        || async {
            let in_session = |item: &&serde_json::Value| {
                user.business_id
                    .is_none_or(|id| item["business_id"].as_u64() == Some(id))
            };
            Ok(user
                .received()
                .await?
                .iter()
                .filter(in_session)
                .map(|item| {
                    let line = format!(
                        "({}) {}",
                        session_of_received(item),
                        describe_received(item)
                    );
                    Shown {
                        line: format!("  {who} ← {line}"),
                        searched: format!("{line}\n{}", item["body"]),
                    }
                })
                .collect())
        },
    )
    .await
}

/// The bridge keeps its own copy of the windows (every session's): they run out there too.
async fn close_window_in_table(stack: &Stack, user: &Simulator) -> Result<(), String> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(wxbridge_aws::https_client())
        .endpoint_url(&stack.aws_endpoint_url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "local",
        ))
        .load()
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &stack.table);
    let now = wxbridge_devstack::now_ms();
    for _ in 0..5 {
        let Some(mut state) = store
            .user(&user.channel.name, &user.openid)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let sub_merchants = state
            .sub_merchant_sessions
            .values_mut()
            .map(|s| &mut s.window);
        let windows: Vec<_> = std::iter::once(&mut state.window)
            .chain(sub_merchants)
            .filter_map(Option::as_mut)
            .collect();
        if windows.is_empty() {
            return Ok(());
        }
        for window in windows {
            window.closes_at_ms = window.closes_at_ms.min(now);
        }
        match store.put_user(&state).await {
            Ok(()) => return Ok(()),
            Err(wxbridge_core::ports::store::StoreError::Conflict) => continue,
            Err(error) => return Err(error.to_string()),
        }
    }
    Err("the user's state kept changing; try again".to_owned())
}
