//! Idle close on the emulator: a user's message through the real `inbound` service sets
//! the conversation's deadline in DynamoDB's idle index; the sweep the `lifecycle`
//! function runs finds it there, closes it and tells the partner over HTTP.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::{CloseReason, InboundMessage};
use wxbridge_core::ports::store::UserStore;
use wxbridge_core::services::idle::sweep;
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_integration::*;
use wxbridge_wechat::event::{CallbackEvent, EventKind};

#[tokio::test]
async fn a_conversation_idle_past_its_partners_timeout_is_closed_and_the_partner_told() {
    let hotel = WebhookReceiver::start().await;
    let config = BridgeConfig::from_json(&format!(
        r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}}],
        "partners":[{{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"{}/hooks","signing_secret":"hotel-secret-456789","idle_close_after_secs":60}}],
        "dialog":{{"mode":"merged","default_partner":"hotel-9"}}}}"#,
        hotel.url
    ))
    .unwrap();
    let table = new_table().await;
    let sqs = sqs_client().await;
    let outbound = create_fifo_queues(&sqs, "outbound").await;
    let now = system_clock_ms();
    let openid = format!("o_idle_{now}");
    let event = CallbackEvent {
        to_user_name: "gh_1".into(),
        from_user_name: openid.clone(),
        create_time: now / 1000,
        business_id: None,
        kind: EventKind::Text {
            msg_id: format!("{now}"),
            content: "Is the pool open?".into(),
        },
    };
    let inbound = Inbound::new(
        bridge_on(&config, &table),
        fifo_queue(&sqs, &outbound.queue_url),
    );
    let message = InboundMessage::new("mp", event, now);
    assert_eq!(inbound.process(&message, now).await, Outcome::Delivered);

    let clock = Arc::new(AtomicI64::new(now + 59_000));
    let at = Arc::clone(&clock);
    let lifecycle = bridge_on(&config, &table).with_clock(move || at.load(Ordering::SeqCst));
    assert_eq!(sweep(&lifecycle).await.unwrap().closed, 0, "not yet");
    clock.store(now + 60_000, Ordering::SeqCst);
    assert_eq!(sweep(&lifecycle).await.unwrap().closed, 1);
    let closed = hotel.received().last().unwrap().json();
    assert_eq!(closed["type"], "conversation.closed");
    assert_eq!(closed["closed"]["reason"], "idle");
    let user = table.store().user("mp", &openid).await.unwrap().unwrap();
    let id = format!("mp:{openid}:hotel-9");
    assert_eq!(user.closed[&id].reason, CloseReason::Idle);
    assert_eq!(
        sweep(&lifecycle).await.unwrap().closed,
        0,
        "the deadline is cleared"
    );
}
