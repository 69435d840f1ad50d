//! A local Lambda for the local stack: runs the template's functions from their built
//! binaries behind Lambda's invoke API, function URLs and runtime API (see
//! `wxbridge_devstack::runner`). `scripts/lib.sh` starts it with the stack.

use std::path::PathBuf;
use wxbridge_devstack::cli::{arguments_or_usage, fail, stop_signal, take_option};
use wxbridge_devstack::runner::{read_env_file, read_functions, Runner};

const USAGE: &str = "\
usage: lambda-runner [--address ADDR] [--port PORT] [--bin-dir DIR] [--env-file FILE]
                     [--reports FILE] FUNCTIONS_JSON

Runs each function of FUNCTIONS_JSON (what `scripts/local_aws.py functions` prints) as
Lambda would, at http://ADDR:PORT (127.0.0.1:9000 by default):

  POST /2015-03-31/functions/NAME/invocations   Lambda's Invoke API
  ANY  /lambda-url/NAME/PATH…                    the function's URL (payload 2.0)
  GET  /                                         200 once it listens

One instance per function, started from DIR/NAME (DIR: $CARGO_TARGET_DIR/debug, else
target/debug) at the function's first invocation. An instance that crashes, exceeds its
Timeout, or whose binary is rebuilt is replaced at the next invocation. Each function gets
its variables from FUNCTIONS_JSON, then the KEY=VALUE lines of FILE. Functions' output is
shown under [NAME], and after each invocation Lambda's REPORT line (duration, billed
duration, peak memory, init duration on a cold start); --reports also appends each as a
JSON line to FILE. SIGINT or SIGTERM stops it and every instance.";

#[tokio::main]
async fn main() {
    let mut args = arguments_or_usage(USAGE);
    let address = take_option(&mut args, "--address").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = take_option(&mut args, "--port").unwrap_or_else(|| "9000".to_owned());
    let bin_dir = take_option(&mut args, "--bin-dir")
        .map(PathBuf::from)
        .unwrap_or_else(default_bin_dir);
    let env_file = take_option(&mut args, "--env-file");
    let reports = take_option(&mut args, "--reports");
    let [functions_json] = args.as_slice() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    // Listening before anything starts: a stop sent while the runner starts still counts.
    let stop_requested = stop_signal();

    let overrides = match &env_file {
        Some(path) => read_env_file(path.as_ref()).unwrap_or_else(|e| fail(e)),
        None => Vec::new(),
    };
    let functions =
        read_functions(functions_json.as_ref(), &bin_dir, &overrides).unwrap_or_else(|e| fail(e));
    let listener = tokio::net::TcpListener::bind(format!("{address}:{port}"))
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {address}:{port}: {e}")));
    for function in &functions {
        let missing = if function.binary.exists() {
            ""
        } else {
            " (not built yet)"
        };
        println!(
            "lambda-runner: [{}] {}{missing}, timeout {} s",
            function.name,
            function.binary.display(),
            function.timeout.as_secs()
        );
    }
    let runner = Runner::start(
        listener,
        functions,
        reports.as_deref().map(std::path::Path::new),
    )
    .unwrap_or_else(|e| fail(format!("cannot start: {e}")));
    println!(
        "lambda-runner: listening on {} (instances start at their first invocation)",
        runner.url()
    );
    stop_requested.await;
    println!("lambda-runner: stopping every instance");
    runner.stop().await;
}

/// Where cargo puts debug binaries: `$CARGO_TARGET_DIR/debug`, else `target/debug`.
fn default_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("debug")
}
