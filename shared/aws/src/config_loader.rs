//! Where a function reads its configuration document from, at start: `WXBRIDGE_CONFIG`
//! (the document itself), `WXBRIDGE_CONFIG_FILE` (a path to it) or `WXBRIDGE_CONFIG_SECRET`
//! (the name or ARN of a Secrets Manager secret holding it; how deployments keep tokens and
//! keys out of the function's configuration).

use thiserror::Error;
use wxbridge_core::config::{BridgeConfig, ConfigError};

pub const CONFIG_ENV: &str = "WXBRIDGE_CONFIG";
pub const CONFIG_FILE_ENV: &str = "WXBRIDGE_CONFIG_FILE";
pub const CONFIG_SECRET_ENV: &str = "WXBRIDGE_CONFIG_SECRET";

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("configuration: set {CONFIG_ENV} (the JSON document), {CONFIG_FILE_ENV} (a path to it) or {CONFIG_SECRET_ENV} (a Secrets Manager secret holding it)")]
    Missing,
    #[error("configuration: cannot read secret {secret}: {reason}")]
    SecretUnreadable { secret: String, reason: String },
    #[error("configuration: cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Reads and validates the document the environment names.
pub async fn load_config(aws: &aws_config::SdkConfig) -> Result<BridgeConfig, LoadError> {
    if let Ok(document) = std::env::var(CONFIG_ENV) {
        return Ok(BridgeConfig::from_json(&document)?);
    }
    if let Ok(path) = std::env::var(CONFIG_FILE_ENV) {
        let document = std::fs::read_to_string(&path)
            .map_err(|source| LoadError::Unreadable { path, source })?;
        return Ok(BridgeConfig::from_json(&document)?);
    }
    let secret = std::env::var(CONFIG_SECRET_ENV).map_err(|_| LoadError::Missing)?;
    config_from_secret(&aws_sdk_secretsmanager::Client::new(aws), &secret).await
}

/// Reads the document from a Secrets Manager secret (its SecretString).
pub async fn config_from_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> Result<BridgeConfig, LoadError> {
    let unreadable = |reason: String| LoadError::SecretUnreadable {
        secret: secret.to_owned(),
        reason,
    };
    let output = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| {
            unreadable(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
        })?;
    let document = output
        .secret_string()
        .ok_or_else(|| unreadable("the secret has no SecretString".into()))?;
    Ok(BridgeConfig::from_json(document)?)
}
