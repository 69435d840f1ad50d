//! A write DynamoDB refuses for good (a key longer than it takes) is not retried as if the
//! store were down: the record is refused, and parked with its reason at once.

use wxbridge_core::clock::system_clock_ms;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::InboundMessage;
use wxbridge_core::services::inbound::{Inbound, Outcome};
use wxbridge_integration::{bridge_on, create_fifo_queues, fifo_queue, new_table, sqs_client};
use wxbridge_wechat::event::{CallbackEvent, EventKind};

#[tokio::test]
async fn an_inbound_message_the_store_cannot_hold_is_refused_not_retried() {
    let config = BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
        "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://127.0.0.1:9/h","signing_secret":"hotel-secret-456789"}],
        "dialog":{"mode":"merged","default_partner":"hotel-9"}}"#,
    )
    .unwrap();
    let table = new_table().await;
    let sqs = sqs_client().await;
    let outbound = fifo_queue(&sqs, &create_fifo_queues(&sqs, "outbound").await.queue_url);
    let inbound = Inbound::new(bridge_on(&config, &table), outbound);
    let now = system_clock_ms();
    // What an older callback let through: an openid of 2,000 characters, which makes the
    // conversation's sort key longer than DynamoDB's 1,024 bytes.
    let event = CallbackEvent {
        to_user_name: "gh_1".into(),
        from_user_name: "o".repeat(2000),
        create_time: now / 1000,
        business_id: None,
        kind: EventKind::Text {
            msg_id: "1".into(),
            content: "hi".into(),
        },
    };
    let outcome = inbound
        .process(&InboundMessage::new("mp", event, now), now)
        .await;
    let Outcome::Refused(reason) = outcome else {
        panic!("retried as if the store were down: {outcome:?}")
    };
    assert!(reason.contains("ValidationException"), "{reason}");
}
