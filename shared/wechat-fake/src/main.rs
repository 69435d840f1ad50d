//! The WeChat fake as a server, for the local stack:
//! `wechat-fake [--port 9100] [--app wx0123456789abcdef:secret]… [--config config.json]
//! [--entry-policy keep|replace]`
//!
//! `--config` registers every channel of a bridge configuration that has an `app_secret`,
//! so the fake and the bridge agree on the credentials by construction. Only what the fake
//! needs is read from the document (each `channels[]` entry's `app_id` and `app_secret`);
//! the bridge's own validation of it is none of the fake's business.
//!
//! `--entry-policy` decides whether the user entering the session narrows a window a user
//! message opened (`replace`) or leaves it open (`keep`, the default); see the crate docs.

use serde::Deserialize;
use std::collections::BTreeMap;
use wechat_fake::{EntryPolicy, Fake};

const USAGE: &str = "usage: wechat-fake [--port N] [--app appid:secret]… [--config FILE] \
                     [--entry-policy keep|replace]";

/// The part of a bridge configuration document the fake reads.
#[derive(Deserialize)]
struct ConfigDocument {
    channels: Vec<ConfigChannel>,
}

#[derive(Deserialize)]
struct ConfigChannel {
    app_id: String,
    #[serde(default)]
    app_secret: Option<String>,
}

/// The (appid, secret) pairs of a configuration document's channels that have a secret.
/// Several channels may share an app (plaintext and safe mode of one mini program); they
/// must then agree on its secret.
fn apps_of_config(document: &str) -> Result<BTreeMap<String, String>, String> {
    let config: ConfigDocument = serde_json::from_str(document).map_err(|e| e.to_string())?;
    let mut apps = BTreeMap::new();
    for channel in config.channels {
        let Some(secret) = channel.app_secret else {
            continue;
        };
        match apps.get(&channel.app_id) {
            Some(known) if *known != secret => {
                return Err(format!("app {}: two different app_secret", channel.app_id))
            }
            _ => {
                apps.insert(channel.app_id, secret);
            }
        }
    }
    Ok(apps)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let fake = Fake::default();
    let mut port = 0u16;
    let mut apps = Vec::new();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(value)) => port = value.parse().expect("--port takes a number"),
            ("--app", Some(value)) => {
                let (appid, secret) = value.split_once(':').expect("--app takes appid:secret");
                fake.add_app(appid, secret);
                apps.push(appid.to_owned());
            }
            ("--config", Some(path)) => {
                let document = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("--config {path}: {e}"));
                let found =
                    apps_of_config(&document).unwrap_or_else(|e| panic!("--config {path}: {e}"));
                for (appid, secret) in found {
                    fake.add_app(&appid, &secret);
                    apps.push(appid);
                }
            }
            ("--entry-policy", Some(value)) => {
                let policy: EntryPolicy = value.parse().unwrap_or_else(|e| {
                    eprintln!("--entry-policy: {e}\n{USAGE}");
                    std::process::exit(2);
                });
                fake.set_entry_policy(policy);
            }
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!(
        "wechat-fake on http://{} (apps: {}; entry policy: {})",
        listener.local_addr().expect("address"),
        if apps.is_empty() {
            "none".to_owned()
        } else {
            apps.join(", ")
        },
        fake.entry_policy().as_str()
    );
    axum::serve(listener, fake.router()).await.expect("serve");
}

#[cfg(test)]
mod tests {
    use super::apps_of_config;

    #[test]
    fn a_config_gives_the_apps_with_a_secret_and_ignores_the_rest() {
        let document = r#"{
            "channels": [
                {"id": "a", "app_id": "wx01", "token": "t", "mode": "safe", "app_secret": "s1"},
                {"id": "b", "app_id": "wx02", "token": "t", "mode": "plaintext"},
                {"id": "c", "app_id": "wx01", "app_secret": "s1", "push_format": "xml"}
            ],
            "partners": [{"id": "p", "signing_secret": "x"}],
            "wechat_api_base": "http://127.0.0.1:9100"
        }"#;
        let apps = apps_of_config(document).unwrap();
        assert_eq!(
            apps.into_iter().collect::<Vec<_>>(),
            [("wx01".to_owned(), "s1".to_owned())]
        );
    }

    #[test]
    fn a_config_without_channels_or_with_clashing_secrets_is_refused() {
        assert!(apps_of_config(r#"{"partners": []}"#).is_err());
        assert!(apps_of_config(r#"{"channels": [{"app_secret": "s"}]}"#).is_err());
        let clash = r#"{"channels": [{"app_id": "wx01", "app_secret": "s1"},
                                     {"app_id": "wx01", "app_secret": "s2"}]}"#;
        assert!(apps_of_config(clash).unwrap_err().contains("wx01"));
    }
}
