//! Where the running local stack is: `make dev` (and `make demo`) write
//! `.local/stack.json`; the tools read it from `$WXBRIDGE_STACK` or from `.local/` in the
//! current directory or one of its parents.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wxbridge::config::BridgeConfig;

pub const STACK_ENV: &str = "WXBRIDGE_STACK";

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
}

impl Stack {
    /// The stack file to use: `$WXBRIDGE_STACK`, else `.local/stack.json` here or above.
    pub fn locate() -> Result<PathBuf, String> {
        if let Ok(path) = std::env::var(STACK_ENV) {
            return Ok(PathBuf::from(path));
        }
        let here = std::env::current_dir().map_err(|e| e.to_string())?;
        here.ancestors()
            .map(|dir| dir.join(".local/stack.json"))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                "no running local stack found (.local/stack.json): start it with `make dev`, \
                 or set WXBRIDGE_STACK"
                    .to_owned()
            })
    }

    pub fn load() -> Result<Self, String> {
        Self::read(&Self::locate()?)
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
