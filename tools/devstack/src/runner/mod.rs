//! A local Lambda: runs the template's functions from their built binaries and answers on
//! one address as Lambda does (the `lambda-runner` binary; the local stack's functions).
//!
//! - [`invoke_api`]: `POST /2015-03-31/functions/{name}/invocations`, Lambda's Invoke API
//!   (the event source mapping and `cargo lambda invoke` call it);
//! - [`function_url`]: `ANY /lambda-url/{name}/{path…}`, the function URL of each function;
//! - [`runtime_api`]: `/.rt/{name}/{instance}/2018-06-01/runtime/…`, the runtime API of
//!   each instance, which waits for the next invocation for as long as it takes;
//! - [`host`] and [`instance`]: one instance per function, started on its first
//!   invocation, replaced after a crash, a timeout or a rebuild of its binary.
//!
//! `GET /` answers 200 once the runner listens. Functions' output goes to the runner's,
//! each line under `[name]`; the runner's own lines (`lambda-runner: [name] …`) say when
//! instances start, end and are replaced, and name a function error by its type only;
//! [`report`] writes Lambda's `REPORT` line after each invocation.

mod clock;
mod function_url;
mod functions;
mod host;
mod instance;
mod invoke_api;
mod report;
mod runtime_api;

pub use functions::{read_env_file, read_functions, FunctionSpec, SpecError};
pub use host::FunctionError;
pub use report::{read_reports, InvocationReport};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::Router;
use host::FunctionHost;
use runtime_api::Mailboxes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The account the runner's ARNs name: the one the local AWS emulator (moto) uses.
const ACCOUNT: &str = "123456789012";

/// How long a stop waits for the instances' processes to be gone.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What the runner's parts share.
pub(crate) struct RunnerContext {
    /// `http://127.0.0.1:PORT`: where instances reach their runtime API.
    runtime_api_base: String,
    region: String,
    mailboxes: Mailboxes,
    instance_ids: AtomicU64,
    /// True once the runner stops: every instance is stopped, no new one starts.
    shutdown: watch::Sender<bool>,
    /// How many instance processes have not yet been reaped.
    live: watch::Sender<usize>,
    /// Where each invocation's report goes as a JSON line, besides the log.
    reports: Option<report::ReportFile>,
}

impl RunnerContext {
    fn report(&self, report: &InvocationReport) {
        log(&report.function, report.line());
        if let Some(file) = &self.reports {
            file.append(report);
        }
    }

    fn next_instance_id(&self) -> u64 {
        self.instance_ids.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{ACCOUNT}:function:{name}", self.region)
    }
}

/// What the routes see.
pub(crate) struct RunnerState {
    context: Arc<RunnerContext>,
    functions: HashMap<String, Arc<FunctionHost>>,
}

/// A line of the runner's own about `function`.
pub(crate) fn log(function: &str, message: impl std::fmt::Display) {
    println!("lambda-runner: [{function}] {message}");
}

/// A running runner: its address, and [`Runner::stop`].
pub struct Runner {
    url: String,
    context: Arc<RunnerContext>,
    server: JoinHandle<()>,
}

impl Runner {
    /// Serves `functions` on `listener`. Nothing starts before a function's first
    /// invocation. The region named in ARNs and given to functions that set none is
    /// `AWS_REGION`'s (else `us-east-1`). With `reports`, each invocation's report is
    /// appended there as a JSON line (see [`InvocationReport`]).
    pub fn start(
        listener: TcpListener,
        functions: Vec<FunctionSpec>,
        reports: Option<&std::path::Path>,
    ) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let loopback = if address.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], address.port()))
        } else {
            address
        };
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_owned());
        let context = Arc::new(RunnerContext {
            runtime_api_base: format!("http://{loopback}"),
            region,
            mailboxes: Mailboxes::default(),
            instance_ids: AtomicU64::new(0),
            shutdown: watch::channel(false).0,
            live: watch::channel(0).0,
            reports: reports.map(report::ReportFile::create).transpose()?,
        });
        let functions = functions
            .into_iter()
            .map(|spec| {
                let name = spec.name.clone();
                (
                    name,
                    Arc::new(FunctionHost::new(spec, Arc::clone(&context))),
                )
            })
            .collect();
        let state = Arc::new(RunnerState {
            context: Arc::clone(&context),
            functions,
        });
        let app = Router::new()
            .route("/", get(index))
            .route(
                "/2015-03-31/functions/{function}/invocations",
                post(invoke_api::invoke),
            )
            .route("/lambda-url/{function}", any(function_url::serve))
            .route("/lambda-url/{function}/", any(function_url::serve))
            .route("/lambda-url/{function}/{*path}", any(function_url::serve))
            .merge(runtime_api::routes())
            .fallback(unknown_path)
            .with_state(state);
        let server = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, service).await {
                eprintln!("lambda-runner: stopped serving: {error}");
            }
        });
        Ok(Self {
            url: format!("http://{loopback}"),
            context,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops every instance (SIGKILL), waits a moment for them to be gone, and stops
    /// serving.
    pub async fn stop(self) {
        self.context.shutdown.send_replace(true);
        let mut live = self.context.live.subscribe();
        let _ = tokio::time::timeout(STOP_GRACE, live.wait_for(|n| *n == 0)).await;
        self.server.abort();
    }
}

/// What `GET /` answers: that the runner is up, and what it runs.
async fn index(axum::extract::State(state): axum::extract::State<Arc<RunnerState>>) -> String {
    let mut names: Vec<&str> = state.functions.keys().map(String::as_str).collect();
    names.sort_unstable();
    format!("lambda-runner: {}\n", names.join(", "))
}

async fn unknown_path() -> impl IntoResponse {
    invoke_api::service_error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "nothing here: the runner answers /2015-03-31/functions/{name}/invocations and /lambda-url/{name}/…",
    )
}
