//! A load run through the whole local stack: simulated users write texts through
//! `callback`, the partner desk receives them and the partner answers each through the API;
//! every text and reply is followed to its end. See `load help`.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wxbridge_devstack::cli::{arguments_or_usage, fail, take_flag, take_option};
use wxbridge_devstack::desk::{read_log, PartnerClient};
use wxbridge_devstack::load::{self, FunctionLoad, Leg, LegSummary};
use wxbridge_devstack::now_ms;
use wxbridge_devstack::runner::read_reports;
use wxbridge_devstack::stack::Stack;
use wxbridge_devstack::user::{pick_channel, Simulator, UserInput};

/// How long a user of a held run waits for a reply before writing the next text.
const WRITE_ON_AFTER: Duration = Duration::from_secs(5);

const USAGE: &str = "\
usage: load [--stack DIR] [--users N] [--messages M] [--no-replies] [--timeout SECS]
            [--replies-per-text R] [--repeat-pushes K] [--reply-attempts A]

N users (4) each write M texts (40) in order through the stack's callback, all users at
once. The partner who receives a text answers it through the API, and the user writes the
next text once that answer is in WeChat (a conversation: WeChat lets a partner send 5
messages per user message); with --no-replies the users write all their texts at once (a
burst) and nobody answers. Every text is followed to the partner's webhook and every reply
to the WeChat fake. Prints what was sent, accepted and delivered, duplicates and
order breaks per user, the drain time, latency percentiles, each function's invocations
and billed time (the runner's reports) and the AWS requests the emulator served. Exit
status 1 on a loss, a duplicate, an order break or a refused request; SECS (120) bounds
the wait for the last delivery.

--replies-per-text R: the partner answers each text with R replies (1), one after another
through the API without waiting for them to reach WeChat. Beyond the window's 5 sends per
user message they are held and released by the user's next text, packed when sends are
scarce, while the next text's replies are accepted and queued: each user's replies must
still reach WeChat once each, in the order the API accepted them. The user writes the next
text once the first reply to this one is in WeChat, or the API said it will be held, or
none of its replies arrived for 5 s (a forecast is not a promise); after its last text it writes closing texts (not counted, not answered) until every reply
arrived.
--repeat-pushes K sends each text's push K times (1), as WeChat repeats a push the
callback was slow to answer: the same message (MsgId, CreateTime) each time, the first
copy and half of the others at once, the rest one after another, every other copy signed
afresh (a new timestamp and nonce); each text must still reach the partner once.
--reply-attempts A: a reply the API answers 503 is sent up to A times in all (3), a
second apart, with the same client_message_id, as a partner's desk repeats it.";

type Shared<T> = Arc<Mutex<T>>;

#[tokio::main]
async fn main() {
    let mut args = arguments_or_usage(USAGE);
    let number = |args: &mut Vec<String>, name: &str, default: usize| {
        take_option(args, name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| fail(format!("{name} takes a number")))
        })
    };
    let stack_dir = take_option(&mut args, "--stack");
    let users = number(&mut args, "--users", 4);
    let messages = number(&mut args, "--messages", 40);
    let timeout = Duration::from_secs(number(&mut args, "--timeout", 120) as u64);
    let replies_on = !take_flag(&mut args, "--no-replies");
    let repeat_pushes = number(&mut args, "--repeat-pushes", 1);
    let reply_attempts = number(&mut args, "--reply-attempts", 3);
    let per_text = number(&mut args, "--replies-per-text", 1);
    if repeat_pushes == 0 || reply_attempts == 0 || per_text == 0 {
        fail("--repeat-pushes, --reply-attempts and --replies-per-text take 1 or more");
    }
    if !args.is_empty() {
        fail(format!("unknown arguments: {}\n{USAGE}", args.join(" ")));
    }
    let stack = Stack::load(stack_dir.as_deref()).unwrap_or_else(|e| fail(e));
    let config = stack.bridge_config().unwrap_or_else(|e| fail(e));
    let channel = pick_channel(&config, None).unwrap_or_else(|e| fail(e));
    let client = reqwest::Client::new();
    let run = format!("L{:x}", now_ms() % 0xff_ffff);
    let total = users * messages;
    let total_replies = total * per_text;
    println!(
        "load run {run}: {users} users × {messages} texts{}{}",
        match (replies_on, per_text) {
            (false, _) => String::new(),
            (true, 1) => ", the partner answering each".to_owned(),
            (true, r) => format!(", the partner answering each with {r} replies"),
        },
        if repeat_pushes > 1 {
            format!(", each pushed {repeat_pushes} times")
        } else {
            String::new()
        }
    );

    let requests_before = aws_requests(&client, &stack).await;
    let started_ms = now_ms();
    let started = Instant::now();
    let inbound: Shared<Leg> = Arc::default();
    let replies: Shared<Leg> = Arc::default();
    let refused: Shared<Vec<String>> = Arc::default();
    // Replies the API asked to repeat (503), by user.
    let repeated: Shared<Vec<usize>> = Arc::default();
    // Replies the API said it will hold (its 202's will_hold), as (user, reply number).
    let will_hold: Shared<HashSet<(usize, usize)>> = Arc::default();
    // Closing texts the users wrote to release their last held replies.
    let closing: Shared<usize> = Arc::default();
    // Texts written without waiting for the first answer to the one before (nothing
    // arrived for WRITE_ON_AFTER).
    let wrote_on: Shared<usize> = Arc::default();

    // The users, all at once, each one's texts in order.
    let mut senders = Vec::new();
    for user in 1..=users {
        let simulator = Arc::new(Simulator {
            client: client.clone(),
            callback_url: format!(
                "{}/wechat",
                stack.function_url("callback").unwrap_or_else(|e| fail(e))
            ),
            fake_url: stack.wechat_fake_url.clone(),
            channel: channel.clone(),
            openid: format!("o{run}u{user}"),
            business_id: None,
        });
        let (inbound, replies, refused, run) = (
            inbound.clone(),
            replies.clone(),
            refused.clone(),
            run.clone(),
        );
        let (will_hold, closing, wrote_on) = (will_hold.clone(), closing.clone(), wrote_on.clone());
        senders.push(tokio::spawn(async move {
            let push = |n: usize| {
                let (simulator, refused, run) = (simulator.clone(), refused.clone(), run.clone());
                async move {
                    let input = UserInput::Text(load::text(&run, user, n));
                    for answer in push_repeatedly(&simulator, &input, repeat_pushes).await {
                        match answer {
                            Ok(answer) if answer.status == 200 => {}
                            Ok(answer) => {
                                lock(&refused).push(format!("callback {}", answer.status))
                            }
                            Err(error) => lock(&refused).push(error),
                        }
                    }
                }
            };
            for n in 1..=messages {
                lock(&inbound).sent(user, n, now_ms());
                push(n).await;
                // A conversation: the next text once the first answer to this one is in
                // WeChat, or the API said it will be held (WeChat lets a partner send 5
                // messages per user message; a burst of texts answered one by one would
                // hold the 6th answer on).
                // With several replies a text, the API's forecast is only a forecast: a reply
                // it said would go out can still be held (the window's sends taken by
                // replies released in the same moment), and then only the user's next text
                // sends it. So the user writes on, as a person would, once none of their
                // replies arrived for WRITE_ON_AFTER.
                let first = (n - 1) * per_text + 1;
                let (mut seen, mut quiet_since) =
                    (lock(&replies).arrived_from(user), Instant::now());
                while replies_on
                    && !lock(&replies).has_arrived(user, first)
                    && !lock(&will_hold).contains(&(user, first))
                {
                    let arrived = lock(&replies).arrived_from(user);
                    if arrived > seen {
                        (seen, quiet_since) = (arrived, Instant::now());
                    } else if per_text > 1 && quiet_since.elapsed() > WRITE_ON_AFTER {
                        *lock(&wrote_on) += 1;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            // Held replies go out with the user's next message: the user writes closing
            // texts (numbers past the last, neither counted nor answered) while replies
            // are missing and none arrived for a while.
            if !replies_on || per_text == 1 {
                return;
            }
            let (mut extra, mut seen, mut quiet_since) = (messages, 0, Instant::now());
            loop {
                let arrived = lock(&replies).arrived_from(user);
                if arrived >= messages * per_text {
                    break;
                }
                if arrived > seen {
                    (seen, quiet_since) = (arrived, Instant::now());
                } else if quiet_since.elapsed() > Duration::from_secs(3) {
                    extra += 1;
                    *lock(&closing) += 1;
                    push(extra).await;
                    quiet_since = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    // Each user's replies in order, from the partner who received the text.
    let api_url = stack
        .function_url("api")
        .unwrap_or_else(|e| fail(e))
        .to_owned();
    let mut reply_queues: HashMap<usize, mpsc::UnboundedSender<(usize, String, String)>> =
        HashMap::new();
    let mut repliers = Vec::new();
    if replies_on {
        for user in 1..=users {
            let (queue, mut texts) = mpsc::unbounded_channel::<(usize, String, String)>();
            reply_queues.insert(user, queue);
            let (replies, refused, repeated, run) = (
                replies.clone(),
                refused.clone(),
                repeated.clone(),
                run.clone(),
            );
            let will_hold = will_hold.clone();
            let (config, api_url) = (config.clone(), api_url.clone());
            repliers.push(tokio::spawn(async move {
                let mut partners: HashMap<String, PartnerClient> = HashMap::new();
                while let Some((n, partner, conversation)) = texts.recv().await {
                    let client = partners.entry(partner.clone()).or_insert_with(|| {
                        PartnerClient::new(&config, &api_url, &partner).unwrap_or_else(|e| fail(e))
                    });
                    for k in 1..=per_text {
                        let reply = (n - 1) * per_text + k;
                        let body = json!({
                            "client_message_id": format!("{run}-u{user}-{reply}"),
                            "conversation_id": conversation,
                            "content": {"type": "text", "text": format!("re {}", load::text(&run, user, reply))},
                        });
                        lock(&replies).sent(user, reply, now_ms());
                        // A 503 asks the partner to repeat the request, which is idempotent
                        // by its client_message_id: a partner's desk does so, twice at most.
                        for attempt in 1..=reply_attempts {
                            match client.request("POST", "/v1/messages", &body.to_string()).await {
                                Ok((status, answer)) if (200..300).contains(&status) => {
                                    if answer["will_hold"] == true {
                                        lock(&will_hold).insert((user, reply));
                                    }
                                }
                                Ok((503, _)) if attempt < reply_attempts => {
                                    lock(&repeated).push(user);
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    continue;
                                }
                                Ok((status, answer)) => {
                                    lock(&refused).push(format!("reply {status}: {answer}"))
                                }
                                Err(error) => lock(&refused).push(error),
                            }
                            break;
                        }
                    }
                }
            }));
        }
    }

    // Follow both legs until everything arrived or the time is up.
    let mut desk_lines_seen = 0;
    let mut wechat_seen = 0;
    let mut last_inbound = None;
    let mut last_reply = None;
    let mut repeats = 0;
    let mut sending_took = None;
    let deadline = started + timeout;
    let mut settled_at: Option<Instant> = None;
    loop {
        if sending_took.is_none() && senders.iter().all(|s| s.is_finished()) {
            sending_took = Some(started.elapsed());
        }
        let webhooks = read_log(&stack.desk_log);
        for webhook in webhooks.iter().skip(desk_lines_seen) {
            if webhook.event != "message.received" {
                continue;
            }
            let message = &webhook.body["message"];
            let Some((user, n)) =
                text_of(&message["content"]).and_then(|t| load::parse_text(&run, &t))
            else {
                continue;
            };
            if webhook.repeat {
                repeats += 1; // the same delivery again: the webhook contract allows it
                continue;
            }
            // A closing text: neither counted nor answered.
            if n > messages {
                continue;
            }
            let first = !lock(&inbound).has_arrived(user, n);
            lock(&inbound).arrived(user, n, webhook.received_at_ms);
            last_inbound = Some(webhook.received_at_ms);
            if let (true, Some(queue)) = (first, reply_queues.get(&user)) {
                let conversation = webhook.body["conversation"]["id"]
                    .as_str()
                    .unwrap_or_default();
                let _ = queue.send((n, webhook.partner.clone(), conversation.to_owned()));
            }
        }
        desk_lines_seen = webhooks.len();
        for sent in wechat_sends(&client, &stack, wechat_seen).await {
            wechat_seen = wechat_seen.max(sent["index"].as_u64().unwrap_or(0) as usize + 1);
            let at = sent["accepted_at_ms"].as_i64().unwrap_or_else(now_ms);
            let text = text_of(&sent["body"]).unwrap_or_default();
            for (user, n) in load::parse_texts(&run, &text) {
                lock(&replies).arrived(user, n, at);
                last_reply = Some(at);
            }
        }
        let done = lock(&inbound).delivered() >= total
            && (!replies_on || lock(&replies).delivered() >= total_replies);
        match (done, settled_at) {
            // A moment more for anything delivered twice.
            (true, None) => settled_at = Some(Instant::now()),
            (true, Some(at)) if at.elapsed() > Duration::from_secs(2) => break,
            _ if Instant::now() > deadline => break,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(reply_queues);
    for task in senders.into_iter().chain(repliers) {
        task.abort();
    }

    let inbound = lock(&inbound).summary(last_inbound);
    let replies = lock(&replies).summary(last_reply);
    let sending_took = sending_took.unwrap_or_else(|| started.elapsed());
    let reports = stack
        .invocations_log
        .as_deref()
        .map(read_reports)
        .unwrap_or_default();
    let functions = load::function_load(&reports, started_ms as u64);
    let requests = match (requests_before, aws_requests(&client, &stack).await) {
        (Some(before), Some(after)) => Some(load::requests_between(&before, &after)),
        _ => None,
    };
    let refused = lock(&refused).clone();

    println!(
        "  sent {total} texts in {:.1} s ({:.0} /s); {} refused",
        sending_took.as_secs_f64(),
        total as f64 / sending_took.as_secs_f64(),
        refused.len()
    );
    for reason in refused.iter().take(5) {
        println!("    refused: {reason}");
    }
    print_leg("user → partner webhook", &inbound, started_ms);
    if replies_on {
        print_leg("partner reply → WeChat", &replies, started_ms);
    }
    if repeat_pushes > 1 {
        println!(
            "  each text pushed {repeat_pushes} times ({} at once, then one by one): {} pushes",
            load::push_copies(repeat_pushes)
                .iter()
                .filter(|c| c.with_the_first)
                .count(),
            total * repeat_pushes
        );
    }
    let (held, closing, wrote_on) = (lock(&will_hold).len(), *lock(&closing), *lock(&wrote_on));
    if per_text > 1 {
        println!(
            "  {held} replies the API said it will hold; {wrote_on} texts written after {} s without a reply; {closing} closing texts released the last",
            WRITE_ON_AFTER.as_secs()
        );
    }
    let repeated = lock(&repeated).len();
    if repeated > 0 {
        println!("  {repeated} replies repeated after a 503, as the API asks");
    }
    if repeats > 0 {
        println!("  {repeats} webhooks repeated a delivery id (a retry, dropped by the desk)");
    }
    let drained_ms = inbound
        .last_arrival_ms
        .max(replies.last_arrival_ms)
        .unwrap_or(now_ms())
        - started_ms;
    println!(
        "  drained {:.1} s after the first text: {:.1}× the time it took to send them",
        drained_ms as f64 / 1e3,
        drained_ms as f64 / 1e3 / sending_took.as_secs_f64()
    );
    print_functions(&functions, total);
    print_requests(requests.as_ref(), total);

    // One line for scripts (make faults): the run's figures, times in epoch milliseconds.
    let leg_figures = |leg: &LegSummary| {
        json!({
            "sent": leg.sent,
            "delivered": leg.delivered,
            "duplicates": leg.duplicates,
            "order_breaks": leg.order_breaks,
            "last_ms": leg.last_arrival_ms,
            "p50_ms": leg.percentiles_ms.map(|p| p.p50),
            "p99_ms": leg.percentiles_ms.map(|p| p.p99),
        })
    };
    println!(
        "figures {}",
        json!({
            "run": run,
            "started_ms": started_ms,
            "pushes_per_text": repeat_pushes,
            "replies_per_text": per_text,
            "held": held,
            "wrote_on": wrote_on,
            "refused": refused.len(),
            "webhook_repeats": repeats,
            "inbound": leg_figures(&inbound),
            "replies": replies_on.then(|| leg_figures(&replies)),
        })
    );

    let legs: Vec<&LegSummary> = if replies_on {
        vec![&inbound, &replies]
    } else {
        vec![&inbound]
    };
    let failed = !refused.is_empty()
        || legs
            .iter()
            .any(|leg| leg.delivered < leg.sent || leg.duplicates > 0 || leg.order_breaks > 0)
        || inbound.sent < total
        || (replies_on && replies.sent < total_replies);
    if failed {
        println!("✗ load run {run}: lost, duplicated, out of order or refused (above)");
        std::process::exit(1);
    }
    println!("✓ load run {run}: every text and reply delivered once, in order per user");
}

/// Pushes `input` `copies` times as WeChat repeats a push ([`load::push_copies`]): the
/// callback's answer to each copy.
async fn push_repeatedly(
    simulator: &Arc<Simulator>,
    input: &UserInput,
    copies: usize,
) -> Vec<Result<wxbridge_devstack::user::Answer, String>> {
    let event = match simulator.prepare(input).await {
        Ok(event) => event,
        Err(error) => return vec![Err(error)],
    };
    let first = simulator.seal(&event);
    let push_of = |copy: &load::PushCopy| {
        if copy.signed_afresh {
            simulator.seal(&event)
        } else {
            first.clone()
        }
    };
    let copies = load::push_copies(copies);
    let at_once: Vec<_> = copies
        .iter()
        .filter(|copy| copy.with_the_first)
        .map(|copy| {
            let (simulator, push) = (Arc::clone(simulator), push_of(copy));
            tokio::spawn(async move { simulator.deliver(&push).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in at_once {
        answers.push(task.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    for copy in copies.iter().filter(|copy| !copy.with_the_first) {
        answers.push(simulator.deliver(&push_of(copy)).await);
    }
    answers
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The text of a message content as the bridge's webhooks carry it, or of a WeChat send.
fn text_of(content: &Value) -> Option<String> {
    [
        &content["text"],
        &content["content"],
        &content["text"]["content"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().map(str::to_owned))
}

/// The fake's accepted sends from index `from` on.
async fn wechat_sends(client: &reqwest::Client, stack: &Stack, from: usize) -> Vec<Value> {
    let Ok(answer) = client
        .get(format!("{}/_fake/sent", stack.wechat_fake_url))
        .send()
        .await
    else {
        return Vec::new();
    };
    let sent: Value = answer.json().await.unwrap_or_default();
    sent["sent"]
        .as_array()
        .map(|all| all.iter().skip(from).cloned().collect())
        .unwrap_or_default()
}

/// The emulator's request counts (`scripts/moto_server.py`), when it serves them.
async fn aws_requests(client: &reqwest::Client, stack: &Stack) -> Option<BTreeMap<String, u64>> {
    client
        .get(format!("{}/_wxbridge/requests", stack.aws_endpoint_url))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

fn print_leg(name: &str, leg: &LegSummary, started_ms: i64) {
    let latency = leg.percentiles_ms.map_or("-".to_owned(), |p| {
        format!(
            "p50 {:.0} ms, p90 {:.0}, p99 {:.0}, max {:.0}",
            p.p50, p.p90, p.p99, p.max
        )
    });
    println!(
        "  {name}: {} of {} delivered, {} duplicated, {} users out of order; latency {latency}; last at {:.1} s",
        leg.delivered,
        leg.sent,
        leg.duplicates,
        leg.order_breaks,
        leg.last_arrival_ms.map_or(0.0, |at| (at - started_ms) as f64 / 1e3)
    );
}

fn print_functions(functions: &BTreeMap<String, FunctionLoad>, texts: usize) {
    if functions.is_empty() {
        println!("  (no invocation reports: the runner was started without --reports)");
        return;
    }
    println!(
        "  {:<10}{:>12}{:>6}{:>8}{:>22}{:>11}{:>12}{:>8}{:>9}",
        "function",
        "invocations",
        "cold",
        "errors",
        "duration p50/p99 ms",
        "billed ms",
        "per text ms",
        "MB",
        "peak MB"
    );
    for (name, f) in functions {
        let duration = f
            .duration_ms
            .map_or("-".to_owned(), |p| format!("{:.1} / {:.1}", p.p50, p.p99));
        println!(
            "  {name:<10}{:>12}{:>6}{:>8}{duration:>22}{:>11}{:>12.2}{:>8}{:>9}",
            f.invocations,
            f.cold_starts,
            f.errors,
            f.billed_ms,
            f.billed_ms as f64 / texts as f64,
            f.memory_size_mb,
            f.max_memory_used_mb
                .map_or("-".to_owned(), |mb| mb.to_string()),
        );
    }
    let gb_s: f64 = functions.values().map(FunctionLoad::gb_seconds).sum();
    let invocations: usize = functions.values().map(|f| f.invocations).sum();
    println!(
        "  per text: {:.2} invocations, {:.6} GB-s (at each function's MemorySize)",
        invocations as f64 / texts as f64,
        gb_s / texts as f64
    );
}

fn print_requests(requests: Option<&BTreeMap<String, u64>>, texts: usize) {
    let Some(requests) = requests else {
        println!("  (AWS request counts: the emulator does not serve them)");
        return;
    };
    // The event source mappings' polling is a cost per queue and hour, not per text (and the
    // local mapping polls without a long poll, far more often than Lambda's).
    let (polling, work): (Vec<_>, Vec<_>) = requests
        .iter()
        .partition(|(operation, _)| operation.ends_with(".ReceiveMessage"));
    let mut by_service: BTreeMap<&str, u64> = BTreeMap::new();
    for (operation, n) in &work {
        let service = operation.split(['.', '_']).next().unwrap_or(operation);
        *by_service.entry(service).or_default() += *n;
    }
    let line: Vec<String> = by_service
        .iter()
        .map(|(service, n)| format!("{service} {n} ({:.2} per text)", *n as f64 / texts as f64))
        .collect();
    println!(
        "  AWS requests (the emulator's count, polling aside): {}",
        line.join(", ")
    );
    let detail: Vec<String> = work.iter().map(|(op, n)| format!("{op} {n}")).collect();
    println!("    {}", detail.join(", "));
    let polls: u64 = polling.iter().map(|(_, n)| **n).sum();
    println!("    polling: ReceiveMessage {polls}");
}
