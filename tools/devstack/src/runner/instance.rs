//! One instance of a function: its process, started from the function's binary with
//! Lambda's environment, its output relayed line by line under the function's name, and
//! its end watched, whether it exits on its own or is stopped.

use super::functions::FunctionSpec;
use super::runtime_api::{Mailbox, PREFIX};
use super::{log, RunnerContext};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

/// How a process ended, as Lambda words it after "Runtime exited with error: ".
pub(crate) type Exit = String;

/// A running instance. Dropping it stops the process (SIGKILL) and retires its runtime
/// API.
pub(crate) struct Instance {
    /// Runner-wide, so logs and runtime API paths never mix two instances up.
    pub id: u64,
    pub pid: u32,
    pub mailbox: Arc<Mailbox>,
    /// The binary the instance was started from, to see a rebuild.
    started_from: Option<BinaryStamp>,
    exit: watch::Receiver<Option<Exit>>,
    /// Dropped with the instance, which stops the process.
    _stop: oneshot::Sender<()>,
    context: Arc<RunnerContext>,
}

/// What tells one build of a binary from the next: a rebuild writes a new file (a new
/// inode, as cargo links it) or at least a new modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BinaryStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl BinaryStamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

/// Linux's "text file busy": the binary is still being written.
const ETXTBSY: i32 = 26;

impl Instance {
    /// Starts an instance of `spec` (a cold start); why not, when it cannot.
    pub async fn start(spec: &FunctionSpec, context: &Arc<RunnerContext>) -> Result<Self, String> {
        if *context.shutdown.borrow() {
            return Err("the runner is stopping".to_owned());
        }
        let id = context.next_instance_id();
        let runtime_api = format!("{}{PREFIX}/{}/{id}", context.runtime_api_base, spec.name);
        let started_from = BinaryStamp::of(&spec.binary);
        let mut child = spawn(spec, &runtime_api, context).await.map_err(|error| {
            format!(
                "cannot start {}: {error} (is it built? `cargo build --bin {}`)",
                spec.binary.display(),
                spec.name
            )
        })?;
        let pid = child.id().unwrap_or_default();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(relay(spec.name.clone(), stdout, Stream::Stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(relay(spec.name.clone(), stderr, Stream::Stderr));
        }
        let mailbox = context.mailboxes.open(&spec.name, id);
        let (stop, stopped) = oneshot::channel();
        let (exited, exit) = watch::channel(None);
        context.live.send_modify(|live| *live += 1);
        tokio::spawn(supervise(
            spec.name.clone(),
            id,
            child,
            stopped,
            exited,
            Arc::clone(context),
        ));
        Ok(Self {
            id,
            pid,
            mailbox,
            started_from,
            exit,
            _stop: stop,
            context: Arc::clone(context),
        })
    }

    /// How the process ended, once it has.
    pub fn exit(&self) -> Option<Exit> {
        self.exit.borrow().clone()
    }

    /// Resolves when the process has ended, with how.
    pub fn exited(&self) -> impl std::future::Future<Output = Exit> + Send + 'static {
        let mut exit = self.exit.clone();
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(exit) => exit.clone().unwrap_or_default(),
                Err(_) => "ended".to_owned(),
            }
        }
    }

    /// Whether the function's binary was rebuilt since this instance started from it. A
    /// binary that is missing right now (a rebuild between removing and linking it) is
    /// not a change: the instance runs on until a new one is there.
    pub fn binary_changed(&self, spec: &FunctionSpec) -> bool {
        match BinaryStamp::of(&spec.binary) {
            Some(now) => self.started_from.as_ref() != Some(&now),
            None => false,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.context.mailboxes.close(self.id);
    }
}

async fn spawn(
    spec: &FunctionSpec,
    runtime_api: &str,
    context: &RunnerContext,
) -> std::io::Result<Child> {
    let mut command = Command::new(&spec.binary);
    // The runner's own environment (PATH, RUST_BACKTRACE…), the function's variables,
    // then what Lambda sets. The template's LoggingConfig (JSON, INFO) is left out on
    // purpose: local output stays plain text and RUST_LOG keeps working.
    command
        .envs(&spec.env)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        )
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name())
        .env("_HANDLER", "bootstrap")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !spec.env.contains_key("AWS_REGION") {
        command.env("AWS_REGION", &context.region);
    }
    // A binary cargo is still linking is busy for a moment.
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(ETXTBSY) && tries < 10 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            spawned => return spawned,
        }
    }
}

/// `YYYY/MM/DD/[$LATEST]{32 hex}`, as Lambda names an instance's log stream.
fn log_stream_name() -> String {
    let date = super::clock::civil_date(SystemTime::now());
    format!(
        "{:04}/{:02}/{:02}/[$LATEST]{}",
        date.year,
        date.month,
        date.day,
        uuid::Uuid::new_v4().simple()
    )
}

/// Waits for the process to end, or stops it when the instance is dropped or the runner
/// stops; says how it ended. An exit the runner did not cause is logged here.
async fn supervise(
    function: String,
    id: u64,
    mut child: Child,
    stop: oneshot::Receiver<()>,
    exited: watch::Sender<Option<Exit>>,
    context: Arc<RunnerContext>,
) {
    let pid = child.id().unwrap_or_default();
    let mut shutdown = context.shutdown.subscribe();
    let ended = tokio::select! {
        status = child.wait() => Some(status),
        // Sent or dropped: either way the instance is done with.
        _ = stop => None,
        () = async {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        } => None,
    };
    let (status, stopped) = match ended {
        Some(status) => (status, false),
        None => (kill(&mut child).await, true),
    };
    let exit = match status {
        // `exit status: 101`, `signal: 9 (SIGKILL)`
        Ok(status) => status.to_string(),
        Err(error) => format!("lost track of the process: {error}"),
    };
    if !stopped {
        log(
            &function,
            format!(
                "instance {id} (pid {pid}) exited: {exit}; the next invocation starts a new one"
            ),
        );
    }
    exited.send_replace(Some(exit));
    context.live.send_modify(|live| *live -= 1);
}

async fn kill(child: &mut Child) -> std::io::Result<ExitStatus> {
    let _ = child.start_kill();
    child.wait().await
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Relays a function's output, each line under `[function]`, to the runner's own stdout or
/// stderr; a line that is not UTF-8 is shown lossily rather than dropped.
async fn relay(function: String, output: impl AsyncRead + Unpin, stream: Stream) {
    let mut reader = BufReader::new(output);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        match stream {
            Stream::Stdout => println!("[{function}] {text}"),
            Stream::Stderr => eprintln!("[{function}] {text}"),
        }
    }
}
