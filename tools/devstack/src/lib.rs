//! The local stack's tools, as a library so that the tests drive the same code:
//!
//! - [`user`]: what WeChat sends when a user writes, sends an image or a card, enters the
//!   customer-service session or answers a subscribe pop-up — signed, and encrypted when
//!   the channel is in safe or compatible mode — and how it tells the WeChat fake about it.
//! - [`desk`]: a partner's side — signed webhooks received and verified, signed requests
//!   to the partner API.
//! - [`stack`]: where the running local stack is (the `stack.json` in its state directory,
//!   `.local/dev/` for `make dev`).
//! - [`cli`]: what both tools share — options, failing, `received --wait-for`.
//! - [`event_source`]: what the `event-source` binary adds to Lambda's SQS event source
//!   mapping (`wxbridge_testkit_aws::event_source`, which the integration tests use too):
//!   the template's functions, scheduled events, invocations over the runner's invoke API.
//! - [`runner`]: a local Lambda — the `lambda-runner` binary runs the local stack's
//!   functions from their built binaries behind Lambda's invoke API, function URLs and
//!   runtime API, replacing an instance that crashed, timed out or was rebuilt.

pub mod cli;
pub mod desk;
pub mod event_source;
pub mod load;
pub mod runner;
pub mod stack;
pub mod user;

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A short line for a message content as the bridge stores and sends it (text shown as
/// text, anything else by its type and main field).
pub fn describe_content(content: &serde_json::Value) -> String {
    let kind = content["type"]
        .as_str()
        .or_else(|| content["msgtype"].as_str())
        .unwrap_or("?");
    let text = |v: &serde_json::Value| v.as_str().map(|s| format!("\"{s}\""));
    let detail = match kind {
        "text" => text(&content["text"])
            .or_else(|| text(&content["content"]))
            .or_else(|| text(&content["text"]["content"])),
        "image" => text(&content["url"])
            .or_else(|| text(&content["pic_url"]))
            .or_else(|| text(&content["image"]["media_id"]))
            .map(|s| format!("[image] {s}")),
        "mini_program_page" | "miniprogrampage" => text(&content["title"])
            .or_else(|| text(&content["miniprogrampage"]["title"]))
            .map(|s| format!("[card] {s}")),
        "link" => text(&content["title"])
            .or_else(|| text(&content["link"]["title"]))
            .map(|s| format!("[link] {s}")),
        "user_enter_temp_session" | "user_enter_tempsession" => Some(format!(
            "[entered the chat] session-from {}",
            content["session_from"].as_str().unwrap_or("")
        )),
        "subscribe_popup" | "subscribe_change" => Some(
            content["entries"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| {
                            format!(
                                "[subscribe {} {}: {}]",
                                if kind == "subscribe_popup" {
                                    "pop-up"
                                } else {
                                    "change"
                                },
                                e["template_id"].as_str().unwrap_or("?"),
                                e["status"].as_str().unwrap_or("?")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
        ),
        _ => None,
    };
    detail.unwrap_or_else(|| format!("[{kind}] {content}"))
}

/// A 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];
