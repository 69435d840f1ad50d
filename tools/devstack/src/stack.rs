//! Where the running local stack is. Each stack keeps its files in a state directory of
//! its own: `make dev` in `.local/dev/`, each `make demo` in a fresh `.local/demo-{pid}/`,
//! so a demo never touches a running `make dev`. The stack's `stack.json` there says where
//! everything runs; the tools find it through `--stack DIR`, else `$WXBRIDGE_STACK`, else
//! `.local/dev/` in the current directory or one of its parents.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wxbridge_core::config::BridgeConfig;

/// Names the state directory of the stack to use (or its `stack.json`).
pub const STACK_ENV: &str = "WXBRIDGE_STACK";

/// `make dev`'s state directory, relative to the repo.
pub const DEV_STATE_DIR: &str = ".local/dev";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stack {
    /// The configuration document the functions run with.
    pub config: PathBuf,
    /// Base URL of each HTTP function (`…/lambda-url/{name}`), by function name.
    pub http_functions: std::collections::BTreeMap<String, String>,
    pub wechat_fake_url: String,
    /// Where the partner desk's receiver listens, and the file it logs webhooks to.
    pub desk_url: String,
    pub desk_log: PathBuf,
    pub aws_endpoint_url: String,
    /// The table's name on the emulator.
    pub table: String,
    /// The runner's invocation reports (`lambda-runner --reports`), one JSON line each.
    #[serde(default)]
    pub invocations_log: Option<PathBuf>,
}

impl Stack {
    /// The stack file to use: `explicit` (`--stack`), else `$WXBRIDGE_STACK`, else
    /// `.local/dev/stack.json` here or above. Each may name the state directory or the
    /// `stack.json` in it.
    pub fn locate(explicit: Option<&str>) -> Result<PathBuf, String> {
        let named = explicit
            .map(str::to_owned)
            .or_else(|| std::env::var(STACK_ENV).ok().filter(|v| !v.is_empty()));
        if let Some(named) = named {
            let path = PathBuf::from(named);
            return Ok(if path.is_dir() {
                path.join("stack.json")
            } else {
                path
            });
        }
        let here = std::env::current_dir().map_err(|e| e.to_string())?;
        here.ancestors()
            .map(|dir| dir.join(DEV_STATE_DIR).join("stack.json"))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                format!(
                    "no running local stack found ({DEV_STATE_DIR}/stack.json): start it with \
                     `make dev`, or name a stack's state directory with --stack or {STACK_ENV}"
                )
            })
    }

    /// The stack named by `explicit`, `$WXBRIDGE_STACK` or the `make dev` one.
    pub fn load(explicit: Option<&str>) -> Result<Self, String> {
        Self::read(&Self::locate(explicit)?)
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn bridge_config(&self) -> Result<BridgeConfig, String> {
        let text = std::fs::read_to_string(&self.config)
            .map_err(|e| format!("cannot read {}: {e}", self.config.display()))?;
        BridgeConfig::from_json(&text).map_err(|e| e.to_string())
    }

    /// The base URL of an HTTP function of the template (e.g. `callback`, `api`).
    pub fn function_url(&self, name: &str) -> Result<&str, String> {
        self.http_functions
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("the stack runs no HTTP function named {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_state_directory_or_stack_file_is_used_as_named() {
        let dir = std::env::temp_dir().join(format!("wxbridge-stack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stack.json");
        let named = dir.to_str().unwrap();
        assert_eq!(Stack::locate(Some(named)).unwrap(), file);
        assert_eq!(Stack::locate(Some(file.to_str().unwrap())).unwrap(), file);
        let missing = Stack::load(Some(named)).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
