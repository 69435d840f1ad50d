//! The WeChat fake as a server, for the local stack:
//! `wechat-fake --port 9100 --app wx0123456789abcdef:secret …`

use wechat_fake::Fake;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let fake = Fake::default();
    let mut port = 0u16;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(value)) => port = value.parse().expect("--port takes a number"),
            ("--app", Some(value)) => {
                let (appid, secret) = value.split_once(':').expect("--app takes appid:secret");
                fake.add_app(appid, secret);
            }
            _ => panic!("usage: wechat-fake [--port N] [--app appid:secret]…"),
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!(
        "wechat-fake on http://{}",
        listener.local_addr().expect("address")
    );
    axum::serve(listener, fake.router()).await.expect("serve");
}
