//! The DynamoDB store against the local emulator keeps the same contract as the memory
//! store (`wxbridge::store::conformance`).

use wxbridge::store::dynamo::DynamoStore;
use wxbridge_integration::{create_table, dynamodb_client};

#[tokio::test]
async fn the_dynamodb_store_keeps_the_contract() {
    let client = dynamodb_client().await;
    let table = create_table(&client).await;
    wxbridge::store::conformance::check(&DynamoStore::new(client, table), "mp").await;
}
