//! `coldstart`: how long each function takes from `exec` to its first request for work
//! (`GET /2018-06-01/runtime/invocation/next`), beside a hello-world `lambda_runtime`
//! function built with the same profile, with each one's resident memory then and its
//! binary's size. Runs are interleaved (every function once, then again), so the noise of a
//! shared machine falls on all alike; figures are medians and ratios against the baseline
//! measured in the same run.
//!
//! With `--invocations N`, the callback and the baseline then serve N invocations of a
//! sample event each, and their peak resident memory after them is reported too.
//!
//! `scripts/coldstart.sh` (`make coldstart`) builds the binaries and runs this twice: with
//! the configuration in a file, and in Secrets Manager on the local emulator.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};

const USAGE: &str = "\
usage: coldstart --bin-dir DIR [--runs N] [--invocations N] [--event FILE]
                 (--config FILE | --secret NAME) FUNCTION…

Starts each FUNCTION (a binary in DIR) and coldstart-hello RUNS times, interleaved, against
a stand-in of the Lambda Runtime API, and prints, per function: the median and 90th
percentile time from exec to its first GET …/invocation/next, the ratio of the median to
the baseline's, the resident memory at that moment, and the binary's size. --config names
the configuration file (WXBRIDGE_CONFIG_FILE); --secret a Secrets Manager secret
(WXBRIDGE_CONFIG_SECRET) at $AWS_ENDPOINT_URL. --invocations N then has `callback` and the
baseline serve N invocations of --event (a Lambda event JSON) and reports their peak
resident memory.";

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const START_LIMIT: Duration = Duration::from_secs(20);

struct Options {
    bin_dir: PathBuf,
    runs: usize,
    invocations: usize,
    event: Option<PathBuf>,
    config: Config,
    functions: Vec<String>,
}

enum Config {
    File(PathBuf),
    Secret(String),
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("coldstart: {message}");
    std::process::exit(2)
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let (mut bin_dir, mut runs, mut invocations, mut event, mut config) = (None, 40, 0, None, None);
    let mut functions = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(USAGE));
        match arg.as_str() {
            "--bin-dir" => bin_dir = Some(PathBuf::from(value())),
            "--runs" => runs = value().parse().unwrap_or_else(|_| fail(USAGE)),
            "--invocations" => invocations = value().parse().unwrap_or_else(|_| fail(USAGE)),
            "--event" => event = Some(PathBuf::from(value())),
            "--config" => config = Some(Config::File(PathBuf::from(value()))),
            "--secret" => config = Some(Config::Secret(value())),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ if arg.starts_with("--") => fail(USAGE),
            _ => functions.push(arg),
        }
    }
    Options {
        bin_dir: bin_dir.unwrap_or_else(|| fail(USAGE)),
        runs: runs.max(1),
        invocations,
        event,
        config: config.unwrap_or_else(|| fail(USAGE)),
        functions,
    }
}

/// What one start measured.
struct Start {
    to_first_next: Duration,
    rss_kib: u64,
}

/// What the Runtime API stand-in saw: a request for work, an answer, an init error.
#[derive(Debug)]
enum Seen {
    AskedForWork,
    Answered,
    InitError,
}

/// The Runtime API stand-in of one instance: it tells what it sees, and hands out the
/// events it is given, one per request for work.
struct RuntimeApi {
    address: String,
    seen: mpsc::UnboundedReceiver<Seen>,
    events: mpsc::UnboundedSender<Vec<u8>>,
}

#[derive(Clone)]
struct Shared {
    seen: mpsc::UnboundedSender<Seen>,
    events: Arc<Mutex<mpsc::UnboundedReceiver<Vec<u8>>>>,
    name: String,
}

async fn next(State(shared): State<Shared>) -> Response {
    let _ = shared.seen.send(Seen::AskedForWork);
    // Held until an event is given (or forever: the instance is killed).
    let event = shared.events.lock().await.recv().await;
    let Some(event) = event else {
        return std::future::pending().await;
    };
    let arn = format!(
        "arn:aws:lambda:us-east-1:000000000000:function:{}",
        shared.name
    );
    let headers = [
        ("content-type", "application/json".to_owned()),
        (
            "lambda-runtime-aws-request-id",
            format!("req-{}", uuid_like()),
        ),
        ("lambda-runtime-deadline-ms", "4102444800000".to_owned()),
        ("lambda-runtime-invoked-function-arn", arn),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ];
    let mut response = Response::new(Body::from(event));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

async fn answered(State(shared): State<Shared>) -> StatusCode {
    let _ = shared.seen.send(Seen::Answered);
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Shared>) -> StatusCode {
    let _ = shared.seen.send(Seen::InitError);
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    async fn start(name: &str) -> Self {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            seen: seen_tx,
            events: Arc::new(Mutex::new(events_rx)),
            name: name.to_owned(),
        };
        let app = Router::new()
            .route(NEXT, get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(answered),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(answered))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| fail(format!("cannot listen: {e}")));
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            seen,
            events,
        }
    }

    async fn saw(&mut self) -> Seen {
        self.seen
            .recv()
            .await
            .unwrap_or_else(|| fail("the stand-in stopped"))
    }
}

fn environment(command: &mut tokio::process::Command, name: &str, config: &Config, api: &str) {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(
            // Where root certificates are read from, if the run says (as Lambda's image
            // has them: one bundle file).
            ["SSL_CERT_FILE", "SSL_CERT_DIR"]
                .into_iter()
                .filter_map(|name| Some((name, std::env::var(name).ok()?))),
        )
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .env("_HANDLER", "bootstrap")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "coldstart")
        .env("AWS_SECRET_ACCESS_KEY", "coldstart")
        // What the template gives the functions: names only, nothing is reached at init.
        .env("TABLE_NAME", "coldstart-bridge")
        .env("MEDIA_BUCKET", "coldstart-media");
    for queue in ["INBOUND", "OUTBOUND", "PUSH", "MEDIA"] {
        command
            .env(
                format!("{queue}_QUEUE_URL"),
                format!("http://127.0.0.1:9/{queue}.fifo"),
            )
            .env(
                format!("{queue}_DLQ_URL"),
                format!("http://127.0.0.1:9/{queue}-dlq.fifo"),
            );
    }
    match config {
        Config::File(path) => command.env("WXBRIDGE_CONFIG_FILE", path),
        Config::Secret(secret) => command.env("WXBRIDGE_CONFIG_SECRET", secret).env(
            "AWS_ENDPOINT_URL",
            std::env::var("AWS_ENDPOINT_URL")
                .unwrap_or_else(|_| fail("--secret needs AWS_ENDPOINT_URL")),
        ),
    };
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// Starts `binary` once: until its first request for work; then, with `event`, serves it
/// `invocations` times and answers the peak resident memory after them.
async fn start(
    binary: &Path,
    name: &str,
    config: &Config,
    serve: Option<(&[u8], usize)>,
) -> (Start, Option<u64>) {
    let mut api = RuntimeApi::start(name).await;
    let mut command = tokio::process::Command::new(binary);
    environment(&mut command, name, config, &api.address);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let began = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| fail(format!("{}: {e}", binary.display())));
    let pid = child.id().unwrap_or_default();
    let first = tokio::select! {
        seen = tokio::time::timeout(START_LIMIT, api.saw()) => seen
            .unwrap_or_else(|_| fail(format!("{name} did not ask for work within {START_LIMIT:?}"))),
        status = child.wait() => fail(format!(
            "{name} exited before asking for work ({}); run it by hand to see why",
            status.map(|s| s.to_string()).unwrap_or_default()
        )),
    };
    let to_first_next = began.elapsed();
    if !matches!(first, Seen::AskedForWork) {
        fail(format!("{name} reported {first:?} at start"));
    }
    let measured = Start {
        to_first_next,
        rss_kib: rss_kib(pid, "VmRSS:"),
    };
    let mut peak = None;
    if let Some((event, invocations)) = serve {
        for n in 0..invocations {
            let _ = api.events.send(event.to_vec());
            match api.saw().await {
                Seen::Answered => {}
                other => fail(format!("{name}: invocation {n} ended with {other:?}")),
            }
            match api.saw().await {
                Seen::AskedForWork => {}
                other => fail(format!("{name}: after invocation {n}, {other:?}")),
            }
        }
        peak = Some(rss_kib(pid, "VmHWM:"));
    }
    let _ = child.kill().await;
    (measured, peak)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = options();
    let mut names = options.functions.clone();
    names.push("coldstart-hello".to_owned());
    let binaries: Vec<PathBuf> = names.iter().map(|n| options.bin_dir.join(n)).collect();
    for binary in &binaries {
        if !binary.is_file() {
            fail(format!("{} is not built", binary.display()));
        }
    }
    let mut starts: Vec<Vec<Start>> = names.iter().map(|_| Vec::new()).collect();
    for _ in 0..options.runs {
        for (i, (name, binary)) in names.iter().zip(&binaries).enumerate() {
            starts[i].push(start(binary, name, &options.config, None).await.0);
        }
    }
    let medians: Vec<Duration> = starts
        .iter()
        .map(|s| {
            let mut times: Vec<Duration> = s.iter().map(|s| s.to_first_next).collect();
            times.sort();
            percentile(&times, 0.5)
        })
        .collect();
    let hello = medians[names.len() - 1].as_secs_f64();
    let hello_size = std::fs::metadata(&binaries[names.len() - 1])
        .map(|m| m.len())
        .unwrap_or(1);
    println!(
        "| function | init (median) | p90 | × hello | RSS after init | bootstrap | × hello |\n|---|---|---|---|---|---|---|"
    );
    for (i, name) in names.iter().enumerate() {
        let mut times: Vec<Duration> = starts[i].iter().map(|s| s.to_first_next).collect();
        times.sort();
        let mut rss: Vec<u64> = starts[i].iter().map(|s| s.rss_kib).collect();
        rss.sort();
        let size = std::fs::metadata(&binaries[i])
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "| {name} | {} | {} | {:.2}× | {} | {} | {:.1}× |",
            ms(medians[i]),
            ms(percentile(&times, 0.9)),
            medians[i].as_secs_f64() / hello,
            mib(rss[rss.len() / 2] * 1024),
            mib(size),
            size as f64 / hello_size as f64
        );
    }
    println!("({} interleaved runs each)", options.runs);

    if options.invocations > 0 {
        let event = options
            .event
            .as_ref()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| fail(format!("{}: {e}", p.display()))))
            .unwrap_or_else(|| fail("--invocations needs --event"));
        println!(
            "\n| function | peak RSS after {} invocations |\n|---|---|",
            options.invocations
        );
        for (name, binary) in names.iter().zip(&binaries) {
            if name != "callback" && name != "coldstart-hello" {
                continue;
            }
            let (_, peak) = start(
                binary,
                name,
                &options.config,
                Some((&event, options.invocations)),
            )
            .await;
            println!("| {name} | {} |", mib(peak.unwrap_or(0) * 1024));
        }
    }
}
