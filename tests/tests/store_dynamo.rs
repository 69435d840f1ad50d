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

#[tokio::test]
async fn a_nonce_is_claimed_once_per_partner() {
    use wxbridge::api_auth::NonceStore;
    let client = dynamodb_client().await;
    let store = DynamoStore::new(client.clone(), create_table(&client).await);
    assert!(store
        .claim("hotel-9", "nonce-0001", 1_764_150_600)
        .await
        .unwrap());
    assert!(!store
        .claim("hotel-9", "nonce-0001", 1_764_150_600)
        .await
        .unwrap());
    assert!(store
        .claim("air-2", "nonce-0001", 1_764_150_600)
        .await
        .unwrap());
}

#[tokio::test]
async fn media_ids_are_cached_until_they_expire() {
    let client = dynamodb_client().await;
    let store = DynamoStore::new(client.clone(), create_table(&client).await);
    wxbridge::store::conformance::check_media_cache(&store, "wx0000000000000077").await;
}
