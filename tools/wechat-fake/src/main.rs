//! The WeChat fake as a server, for the local stack:
//! `wechat-fake [--port 9100] [--app wx0123456789abcdef:secret]… [--config config.json]`
//!
//! `--config` registers every channel of a bridge configuration that has an `app_secret`,
//! so the fake and the bridge agree on the credentials by construction.

use wechat_fake::Fake;
use wxbridge::config::BridgeConfig;

const USAGE: &str = "usage: wechat-fake [--port N] [--app appid:secret]… [--config FILE]";

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
                let config = BridgeConfig::from_json(&document)
                    .unwrap_or_else(|e| panic!("--config {path}: {e}"));
                for channel in &config.channels {
                    if let Some(secret) = &channel.app_secret {
                        fake.add_app(&channel.app_id, secret.expose());
                        apps.push(channel.app_id.clone());
                    }
                }
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
        "wechat-fake on http://{} (apps: {})",
        listener.local_addr().expect("address"),
        if apps.is_empty() {
            "none".to_owned()
        } else {
            apps.join(", ")
        }
    );
    axum::serve(listener, fake.router()).await.expect("serve");
}
