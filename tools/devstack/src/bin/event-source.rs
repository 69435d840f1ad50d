//! Lambda's SQS event source mapping for the local stack: feeds the functions the local
//! Lambda runner runs from their queues on the local AWS emulator, the way Lambda does
//! (see `wxbridge_testkit_aws::event_source`). `scripts/lib.sh` starts it with the stack.

use std::time::Duration;
use tokio::sync::watch;
use wxbridge_devstack::cli::{fail, stop_signal};
use wxbridge_devstack::event_source::{mappings, scheduled_event, HttpInvoker, TemplateFunction};
use wxbridge_testkit_aws::event_source::{EventSourceMapping, Invocation, Outcome};

const USAGE: &str = "\
usage: event-source INVOKE_URL FUNCTIONS_JSON

FUNCTIONS_JSON is what `scripts/local_aws.py functions` prints. Every scheduled function is
invoked with EventBridge's scheduled event at its rate. For every SQS event source of every
function, a poller receives batches (up to the source's BatchSize, at most 10),
invokes the function at INVOKE_URL/2015-03-31/functions/NAME/invocations (the Lambda
runner's Invoke API) and settles the answer as Lambda does. The queues are found through the
AWS_* environment (AWS_ENDPOINT_URL: the emulator). SIGINT or SIGTERM stops it.";

/// How long each poll waits for a first record (receiving every `RECEIVE_PAUSE` of the
/// mapping: it never has the emulator wait), short enough that a stop never waits on it.
const LONG_POLL: Duration = Duration::from_secs(1);

/// The pause after a poll that failed (the emulator restarting) or found no runtime to
/// invoke (still starting), so neither turns into a busy loop.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Lambda's longest function timeout. The runner ends each invocation at its function's
/// `Timeout` first; this only catches a runner that never answers.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(900);

/// How long a stop waits for batches already handed to a function to be settled.
const STOP_GRACE: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [invoke_url, functions_json] = args.as_slice() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    // Listening before anything starts: a stop sent while the pollers start still counts.
    let stop_requested = stop_signal();
    let text = std::fs::read_to_string(functions_json)
        .unwrap_or_else(|e| fail(format!("cannot read {functions_json}: {e}")));
    let functions: Vec<TemplateFunction> =
        serde_json::from_str(&text).unwrap_or_else(|e| fail(format!("{functions_json}: {e}")));
    let sdk = aws_config::from_env()
        .http_client(wxbridge_aws::https_client())
        .load()
        .await;
    let region = sdk
        .region()
        .map(|region| region.to_string())
        .unwrap_or_else(|| fail("no AWS region: set AWS_REGION"));
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let invoker = HttpInvoker::new(invoke_url, INVOKE_TIMEOUT);

    let mappings = mappings(&functions, &region);
    for mapping in &mappings {
        println!("{}", mapping.describe());
    }
    let (stop, stopped) = watch::channel(false);
    let mut pollers: Vec<_> = mappings
        .into_iter()
        .map(|mapping| tokio::spawn(feed(mapping, sqs.clone(), invoker.clone(), stopped.clone())))
        .collect();
    for function in &functions {
        for schedule in &function.schedules {
            println!(
                "schedule: every {} s → {}",
                schedule.every_secs, function.name
            );
            let every = Duration::from_secs(schedule.every_secs.max(1));
            let ticking = tick(
                function.name.clone(),
                every,
                invoker.clone(),
                stopped.clone(),
            );
            pollers.push(tokio::spawn(ticking));
        }
    }
    stop_requested.await;
    let _ = stop.send(true);
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for poller in pollers {
        let _ = tokio::time::timeout_at(deadline, poller).await;
    }
}

/// Invokes `function` with a scheduled event every `every`, until `stopped` turns true; a
/// line per invocation that failed.
async fn tick(
    function: String,
    every: Duration,
    invoker: HttpInvoker,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
        let event = scheduled_event(&function, wxbridge_devstack::now_ms());
        if let Invocation::FunctionError(error) | Invocation::Unreachable(error) =
            invoker.invoke(&function, &event).await
        {
            println!("[{function}] scheduled invocation failed: {error}");
        }
    }
}

/// Feeds `mapping`'s function from its queue until `stopped` turns true: one line per
/// batch; a failed poll is logged and tried again after a pause, never the end.
async fn feed(
    mapping: EventSourceMapping,
    sqs: aws_sdk_sqs::Client,
    invoker: HttpInvoker,
    mut stopped: watch::Receiver<bool>,
) {
    let function = mapping.function.as_str();
    while !*stopped.borrow() {
        let polled = mapping
            .poll(&sqs, LONG_POLL, |event| {
                let invoker = &invoker;
                async move { invoker.invoke(function, &event).await }
            })
            .await;
        let pause = match polled {
            Ok(polled) if polled.records == 0 => false,
            Ok(polled) => {
                println!("{polled}");
                matches!(polled.outcome, Outcome::Returned(_))
            }
            Err(_) if *stopped.borrow() => break,
            Err(error) => {
                println!("[{function}] poll failed: {error}");
                true
            }
        };
        if pause {
            tokio::select! {
                _ = tokio::time::sleep(RETRY_AFTER) => {}
                _ = stopped.changed() => {}
            }
        }
    }
}
