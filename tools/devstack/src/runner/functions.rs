//! The functions the runner runs: read from the `functions.json` that
//! `scripts/local_aws.py functions` prints from the template, and from the local stack's
//! environment file (what every function gets on top of its own variables).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lambda's default `Timeout` and `MemorySize`, for an entry that names neither.
const DEFAULT_TIMEOUT_SECS: u64 = 3;
const DEFAULT_MEMORY_MB: u32 = 128;

/// Lambda's longest `Timeout`.
const MAX_TIMEOUT_SECS: u64 = 900;

/// One function as the runner runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The function's name: what the invoke API and the function URLs are called with.
    pub name: String,
    /// The executable each instance runs (the function's `bootstrap`).
    pub binary: PathBuf,
    /// How long one invocation may take (the template's `Timeout`).
    pub timeout: Duration,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (the template's `MemorySize`; not enforced).
    pub memory_mb: u32,
    /// The function's own variables (the template's), then the local stack's overrides.
    pub env: BTreeMap<String, String>,
}

impl FunctionSpec {
    /// A function running `binary`, with Lambda's defaults and no variables.
    pub fn new(name: &str, binary: impl Into<PathBuf>) -> Self {
        Self {
            name: name.to_owned(),
            binary: binary.into(),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            memory_mb: DEFAULT_MEMORY_MB,
            env: BTreeMap::new(),
        }
    }
}

/// Why the functions could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

/// An entry of `functions.json`; the event sources and routes it also has are the event
/// source mapping's and the stack's business.
#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    /// The executable, when it is not `BIN_DIR/{name}`.
    #[serde(default)]
    binary: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    timeout: u64,
    #[serde(default = "default_memory")]
    memory_size: u32,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_memory() -> u32 {
    DEFAULT_MEMORY_MB
}

/// The functions of `functions_json`, each run from `bin_dir/{name}` (unless its entry
/// names a `binary`), with `overrides` set on top of its own variables.
pub fn read_functions(
    functions_json: &Path,
    bin_dir: &Path,
    overrides: &[(String, String)],
) -> Result<Vec<FunctionSpec>, SpecError> {
    let text = std::fs::read_to_string(functions_json).map_err(|source| SpecError::Read {
        path: functions_json.to_owned(),
        source,
    })?;
    let invalid = |detail: String| SpecError::Invalid {
        path: functions_json.to_owned(),
        detail,
    };
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let mut functions: Vec<FunctionSpec> = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.name.is_empty() || entry.name.contains(['/', ':']) {
            return Err(invalid(format!("not a function name: {:?}", entry.name)));
        }
        if functions.iter().any(|f| f.name == entry.name) {
            return Err(invalid(format!("{} is named twice", entry.name)));
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&entry.timeout) {
            return Err(invalid(format!(
                "{}: a timeout of {} s (Lambda allows 1 to {MAX_TIMEOUT_SECS})",
                entry.name, entry.timeout
            )));
        }
        let mut env = entry.env;
        env.extend(overrides.iter().cloned());
        functions.push(FunctionSpec {
            binary: entry.binary.unwrap_or_else(|| bin_dir.join(&entry.name)),
            name: entry.name,
            timeout: Duration::from_secs(entry.timeout),
            memory_mb: entry.memory_size,
            env,
        });
    }
    Ok(functions)
}

/// The `KEY=VALUE` lines of an environment file, in order; blank lines and `#` comments
/// are skipped. Values are taken as they are, quotes included.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_env(&text).map_err(|detail| SpecError::Invalid {
        path: path.to_owned(),
        detail,
    })
}

fn parse_env(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                pairs.push((key.trim().to_owned(), value.to_owned()));
            }
            _ => return Err(format!("line {}: not KEY=VALUE", number + 1)),
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` in a file of its own, for `read` to read; removed afterwards.
    fn with_file<T>(text: &str, read: impl FnOnce(&Path) -> T) -> T {
        let dir = std::env::temp_dir().join(format!("runner-spec-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("functions.json");
        std::fs::write(&path, text).unwrap();
        let read = read(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        read
    }

    #[test]
    fn functions_are_read_as_local_aws_prints_them_with_the_stacks_overrides_on_top() {
        let overrides = [("RUST_LOG".to_owned(), "info".to_owned())];
        let functions = with_file(
            r#"[
              {"logical_id": "CallbackFunction", "name": "callback", "timeout": 6, "memory_size": 256,
               "env": {"INBOUND_QUEUE_URL": "http://q/inbound", "RUST_LOG": "warn"},
               "http_routes": [{"method": "GET", "path": "/wechat/{channel}"}], "sqs_sources": []},
              {"name": "inbound", "binary": "/elsewhere/inbound"}
            ]"#,
            |path| read_functions(path, Path::new("/bin/dir"), &overrides),
        )
        .unwrap();
        assert_eq!(functions.len(), 2);
        let callback = &functions[0];
        assert_eq!(callback.binary, Path::new("/bin/dir/callback"));
        assert_eq!(callback.timeout, Duration::from_secs(6));
        assert_eq!(callback.memory_mb, 256);
        assert_eq!(callback.env["INBOUND_QUEUE_URL"], "http://q/inbound");
        assert_eq!(callback.env["RUST_LOG"], "info", "the stack's value wins");
        let inbound = &functions[1];
        assert_eq!(inbound.binary, Path::new("/elsewhere/inbound"));
        assert_eq!(
            (inbound.timeout, inbound.memory_mb),
            (Duration::from_secs(3), 128),
            "Lambda's defaults"
        );
    }

    #[test]
    fn a_bad_entry_is_refused_with_the_file_named() {
        for text in [
            r#"[{"name": "a", "timeout": 0}]"#,
            r#"[{"name": "a", "timeout": 901}]"#,
            r#"[{"name": "a"}, {"name": "a"}]"#,
            r#"[{"name": "../a"}]"#,
            r#"{"name": "a"}"#,
        ] {
            let error =
                with_file(text, |path| read_functions(path, Path::new("/b"), &[])).unwrap_err();
            assert!(error.to_string().contains("functions.json"), "{error}");
        }
    }

    #[test]
    fn an_env_file_is_key_value_lines() {
        assert_eq!(
            parse_env("# comment\n\nA=1\nB=x=y\nC=\n").unwrap(),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x=y".to_owned()),
                ("C".to_owned(), String::new()),
            ]
        );
        assert!(parse_env("A=1\nnonsense\n").unwrap_err().contains("line 2"));
    }
}
