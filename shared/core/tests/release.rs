//! Planning the release of held replies: packed only when sends are scarce.
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

use wxbridge_core::config::BridgeConfig;
use wxbridge_core::model::{
    Conversation, MessageStatus, OutboundRef, StoredMessage, MAX_TEXT_BYTES,
};
use wxbridge_core::ports::store::{MessageStore, Recorded};
use wxbridge_core::services::release::plan;
use wxbridge_testkit::MemoryStore;

fn config() -> BridgeConfig {
    BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}],
        "partners":[{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://hotel/h","signing_secret":"hotel-secret-456789"}],
        "dialog":{"mode":"merged","default_partner":"hotel-9"}}"#,
    )
    .unwrap()
}

async fn held(store: &MemoryStore, n: i64, content: serde_json::Value) -> OutboundRef {
    let conversation = Conversation::new("mp:o_a:hotel-9", "mp", "o_a", "hotel-9", 1_000);
    let message = StoredMessage {
        status: MessageStatus::Held,
        ..StoredMessage::reply(&conversation, format!("out_{n}"), 1_000 + n, content)
    };
    assert_eq!(
        store
            .put_outbound(&message, &conversation, &message.id)
            .await
            .unwrap(),
        Recorded::New
    );
    OutboundRef::to(&message)
}

fn text(t: &str) -> serde_json::Value {
    serde_json::json!({"type": "text", "text": t})
}

fn shape(planned: &[OutboundRef]) -> Vec<Vec<String>> {
    planned
        .iter()
        .map(|t| {
            std::iter::once(t.message_id.clone())
                .chain(t.packed.iter().map(|p| p.message_id.clone()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn held_replies_pack_only_when_sends_are_scarce() {
    let store = MemoryStore::default();
    let card = serde_json::json!({"type": "link", "title": "t", "description": "d", "url": "https://a", "thumb_url": "https://b"});
    let mut refs = Vec::new();
    for n in 1..=3 {
        refs.push(held(&store, n, text(&format!("text {n}"))).await);
    }
    refs.push(held(&store, 4, card).await);
    for n in 5..=6 {
        refs.push(held(&store, n, text(&format!("text {n}"))).await);
    }
    let plenty = plan(&store, &config(), &refs, 6).await.unwrap();
    assert_eq!(plenty, refs, "enough sends: each goes alone, in order");
    let scarce = plan(&store, &config(), &refs, 5).await.unwrap();
    assert_eq!(
        shape(&scarce),
        [
            vec!["out_1", "out_2", "out_3"],
            vec!["out_4"],
            vec!["out_5", "out_6"]
        ],
        "consecutive texts pack, the link goes alone, order is kept"
    );
    // A packed reply held again is planned again as its parts.
    let again = plan(&store, &config(), &scarce, 6).await.unwrap();
    assert_eq!(again, refs);
}

#[tokio::test]
async fn a_packed_text_leaves_room_for_the_senders_name() {
    let store = MemoryStore::default();
    let prefix = config().sender_of("hotel-9").unwrap().len();
    let long = "x".repeat(MAX_TEXT_BYTES - prefix - 1);
    let refs = [
        held(&store, 1, text(&long)).await,
        held(&store, 2, text("y")).await,
        held(&store, 3, text("z")).await,
    ];
    let planned = plan(&store, &config(), &refs, 1).await.unwrap();
    assert_eq!(shape(&planned), [vec!["out_1"], vec!["out_2", "out_3"]]);
}
