//! What the tools share: options taken out of the arguments, failing with a message,
//! stopping on SIGINT or SIGTERM, and `received --wait-for TEXT`: polling until something
//! arrives or the time runs out.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long `--wait-for` waits without `--timeout`.
pub const DEFAULT_WAIT_SECS: u64 = 30;

/// How often `--wait-for` looks again.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Prints `{tool}: {message}` on stderr and exits with status 1.
pub fn fail(message: impl std::fmt::Display) -> ! {
    let tool = std::env::args()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "wxbridge-devstack".to_owned());
    eprintln!("{tool}: {message}");
    std::process::exit(1)
}

/// Resolves at the first SIGINT or SIGTERM (`stop_stack` in `scripts/lib.sh` sends the
/// latter to each part's process group). Listens from the call on, so a signal that comes
/// while the caller is still starting counts.
pub fn stop_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen =
        |kind| signal(kind).unwrap_or_else(|e| fail(format!("cannot listen for signals: {e}")));
    let (mut interrupt, mut terminate) = (
        listen(SignalKind::interrupt()),
        listen(SignalKind::terminate()),
    );
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}

/// Takes `NAME VALUE` out of `args`; fails when `NAME` has no value after it.
/// The program's arguments; with `-h`, `--help` or `help` among them, prints `usage` and
/// exits.
pub fn arguments_or_usage(usage: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .iter()
        .any(|a| a == "-h" || a == "--help" || a == "help")
    {
        println!("{usage}");
        std::process::exit(0);
    }
    args
}

pub fn take_option(args: &mut Vec<String>, name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    if at + 1 >= args.len() {
        fail(format!("{name} takes a value"));
    }
    let value = args.remove(at + 1);
    args.remove(at);
    Some(value)
}

/// Takes the flag `NAME` out of `args`; whether it was there.
pub fn take_flag(args: &mut Vec<String>, name: &str) -> bool {
    let found = args.iter().position(|a| a == name);
    if let Some(at) = found {
        args.remove(at);
    }
    found.is_some()
}

/// `received [--wait-for TEXT] [--timeout SECS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitFor {
    pub text: Option<String>,
    pub timeout: Duration,
}

impl WaitFor {
    /// Takes `--wait-for` and `--timeout` out of `args`.
    pub fn take(args: &mut Vec<String>) -> Self {
        let text = take_option(args, "--wait-for");
        let secs = take_option(args, "--timeout")
            .map(|t| {
                t.parse()
                    .unwrap_or_else(|_| fail("--timeout takes seconds"))
            })
            .unwrap_or(DEFAULT_WAIT_SECS);
        Self {
            text,
            timeout: Duration::from_secs(secs),
        }
    }
}

/// One thing received: the line printed for it, and the text `--wait-for` looks in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub line: String,
    pub searched: String,
}

/// What `received` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// No `--wait-for`: everything received.
    All(Vec<Shown>),
    /// The items containing the text.
    Found(Vec<Shown>),
    /// Nothing contained the text in time: everything received.
    NotFound(Vec<Shown>),
}

/// Fetches what was received until an item contains `wait.text` (once without it), every
/// [`POLL_EVERY`], for at most `wait.timeout`.
pub async fn poll_received<F, Fut>(wait: &WaitFor, mut fetch: F) -> Result<Received, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<Shown>, String>>,
{
    let deadline = Instant::now() + wait.timeout;
    loop {
        let items = fetch().await?;
        let Some(text) = wait.text.as_deref() else {
            return Ok(Received::All(items));
        };
        let matching: Vec<Shown> = items
            .iter()
            .filter(|i| i.searched.contains(text))
            .cloned()
            .collect();
        if !matching.is_empty() {
            return Ok(Received::Found(matching));
        }
        if Instant::now() >= deadline {
            return Ok(Received::NotFound(items));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// `received` for a tool: polls, prints (`header` over the whole list, given its length;
/// only the matching lines once found), and fails naming `what` when nothing containing
/// the text arrived in time.
pub async fn show_received<F, Fut>(
    wait: &WaitFor,
    what: &str,
    header: impl FnOnce(usize) -> String,
    fetch: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<Shown>, String>>,
{
    match poll_received(wait, fetch).await.unwrap_or_else(|e| fail(e)) {
        Received::All(items) => {
            println!("{}", header(items.len()));
            items.iter().for_each(|item| println!("{}", item.line));
        }
        Received::Found(items) => items.iter().for_each(|item| println!("{}", item.line)),
        Received::NotFound(items) => {
            items.iter().for_each(|item| println!("{}", item.line));
            fail(format!(
                "no {what} containing {:?} arrived within {} s (received so far: above)",
                wait.text.as_deref().unwrap_or_default(),
                wait.timeout.as_secs()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn shown(line: &str) -> Shown {
        Shown {
            line: format!("  {line}"),
            searched: line.to_owned(),
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_and_flags_are_taken_out_of_the_arguments() {
        let mut a = args(&["--partner", "hotel-9", "reply", "--quiet", "hi"]);
        assert_eq!(take_option(&mut a, "--partner").as_deref(), Some("hotel-9"));
        assert_eq!(take_option(&mut a, "--openid"), None);
        assert!(take_flag(&mut a, "--quiet"));
        assert!(!take_flag(&mut a, "--quiet"));
        assert_eq!(a, args(&["reply", "hi"]));

        let mut a = args(&["received", "--timeout", "3", "--wait-for", "is sent"]);
        let wait = WaitFor::take(&mut a);
        assert_eq!(wait.text.as_deref(), Some("is sent"));
        assert_eq!(wait.timeout, Duration::from_secs(3));
        assert_eq!(a, args(&["received"]));
        assert_eq!(
            WaitFor::take(&mut args(&[])).timeout,
            Duration::from_secs(DEFAULT_WAIT_SECS)
        );
    }

    #[tokio::test]
    async fn waiting_polls_until_an_item_contains_the_text() {
        let calls = AtomicUsize::new(0);
        let wait = WaitFor {
            text: Some("ready".into()),
            timeout: Duration::from_secs(10),
        };
        let found = poll_received(&wait, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut items = vec![shown("hello")];
                if n >= 2 {
                    items.push(Shown {
                        line: "  a subscribe message".into(),
                        searched: "a subscribe message {\"thing1\":\"room ready\"}".into(),
                    });
                }
                Ok(items)
            }
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let Received::Found(items) = found else {
            panic!("{found:?}")
        };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].line, "  a subscribe message");
    }

    #[tokio::test]
    async fn waiting_ends_at_the_timeout_with_everything_received() {
        let wait = WaitFor {
            text: Some("never".into()),
            timeout: Duration::from_millis(600),
        };
        let started = Instant::now();
        let calls = AtomicUsize::new(0);
        let answer = poll_received(&wait, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(vec![shown("one"), shown("two")]) }
        })
        .await
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(600));
        assert!(calls.load(Ordering::SeqCst) >= 3, "it looked again");
        assert_eq!(answer, Received::NotFound(vec![shown("one"), shown("two")]));

        // Without --wait-for: one look, everything.
        let calls = AtomicUsize::new(0);
        let all = poll_received(
            &WaitFor {
                text: None,
                timeout: Duration::ZERO,
            },
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok(vec![shown("one")]) }
            },
        )
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(all, Received::All(vec![shown("one")]));
    }

    #[tokio::test]
    async fn a_failed_look_is_an_error() {
        let wait = WaitFor {
            text: Some("x".into()),
            timeout: Duration::from_secs(5),
        };
        let answer = poll_received(&wait, || async { Err("the fake is gone".to_owned()) }).await;
        assert_eq!(answer, Err("the fake is gone".to_owned()));
    }
}
