//! The DynamoDB store against the local emulator keeps the same contract as the memory
//! store (`wxbridge_testkit::conformance`).

use wxbridge_aws::DynamoStore;
use wxbridge_integration::{create_table, dynamodb_client, new_table};

// Every rule of the contract, one test each, on a table of its own.
wxbridge_testkit::store_conformance!(
    store: new_table().await.store(),
    cache: new_table().await.media_cache(),
    nonces: new_table().await.nonces()
);

/// DynamoDB answers at most 1 MB a page: history of large messages (base64 images are
/// stored whole) still comes whole, and pages walk all of it.
#[tokio::test]
async fn history_of_large_messages_crosses_dynamodbs_pages() {
    use wxbridge_core::model::{Conversation, MessageCursor, StoredMessage};
    use wxbridge_core::ports::store::MessageStore;
    let client = dynamodb_client().await;
    let store = DynamoStore::new(client.clone(), create_table(&client).await);
    let conversation = Conversation::new("mp:o_big:hotel-9", "mp", "o_big", "hotel-9", 1_000);
    let image = "A".repeat(340 * 1024);
    for n in 0..6 {
        let message = StoredMessage::reply(
            &conversation,
            format!("out_{n}"),
            1_000 + n,
            serde_json::json!({"type": "image", "base64": image}),
        );
        store
            .put_outbound(&message, &conversation, &message.id)
            .await
            .unwrap();
    }
    let all = store
        .history_page(&conversation.id, 21, None)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["out_5", "out_4", "out_3", "out_2", "out_1", "out_0"]
    );
    let mut walked = Vec::new();
    let mut before: Option<MessageCursor> = None;
    loop {
        let page = store
            .history_page(&conversation.id, 4, before.as_ref())
            .await
            .unwrap();
        walked.extend(page.iter().map(|m| m.id.clone()));
        match page.last() {
            Some(last) if page.len() == 4 => before = Some(MessageCursor::after(last)),
            _ => break,
        }
    }
    assert_eq!(walked.len(), 6, "{walked:?}");
}
