//! Access tokens on memory adapters: what the cache and the lease do beyond WeChat (the
//! integration tests run them against DynamoDB and the fake).

use std::sync::Arc;
use wxbridge_core::clock::SharedClock;
use wxbridge_core::config::BridgeConfig;
use wxbridge_core::ports::tokens::TokenStore;
use wxbridge_core::services::tokens::{TokenError, Tokens};
use wxbridge_testkit::{MemoryStore, ScriptedWechat};

const NOW: i64 = 1_764_150_000_000;

#[tokio::test]
async fn a_channel_without_its_secret_takes_no_lease_that_would_hold_others_back() {
    let config = BridgeConfig::from_json(
        r#"{"channels":[{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"json"}]}"#,
    )
    .unwrap();
    let store = MemoryStore::default();
    let clock: SharedClock = Arc::new(|| NOW);
    let tokens = Tokens::new(store.clone(), ScriptedWechat::default(), clock);
    let channel = &config.channels[0];
    for _ in 0..2 {
        assert!(matches!(
            tokens.get(channel).await,
            Err(TokenError::NoSecret(id)) if id == "mp"
        ));
    }
    assert!(
        store
            .try_lease("wx1", "another-instance", NOW)
            .await
            .unwrap(),
        "the lease is free"
    );
}
