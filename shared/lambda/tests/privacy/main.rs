//! Privacy is an allow-list: every field of every webhook and every API answer is either
//! the receiving partner's own or meant for all ([`allow_list`]), and nothing of one
//! partner's entry context reaches another partner ([`guard`]). Checked on a fixed run
//! through every event and route ([`scenario`]), and on random runs of users entering,
//! switching and writing, partners replying, pushing, handing over and closing
//! ([`properties`]), in merged and sub-merchant mode, on the real services over memory
//! adapters ([`world`]).
#![allow(clippy::unwrap_used, reason = "a test: a panic is a failing test")]

mod allow_list;
mod documented;
mod guard;
mod paths;
mod properties;
mod scenario;
mod world;

use guard::Guard;
use world::{Mode, World};

#[tokio::test]
async fn every_field_partners_receive_is_on_the_allow_list_and_no_entry_context_leaks() {
    let mut guard = Guard::new();
    for mode in [Mode::Merged, Mode::SubMerchant] {
        let mut world = World::new(mode).await;
        let secrets = match mode {
            Mode::Merged => scenario::merged(&mut world).await,
            Mode::SubMerchant => scenario::sub_merchant(&mut world).await,
        };
        for (secret, _) in &secrets {
            guard.keep(secret.value.clone(), secret.owner);
        }
        let breaches = guard.check(&world.received);
        assert!(breaches.is_empty(), "{mode:?}:\n{}", breaches.join("\n\n"));
        // The run is no test unless the contexts reach their own partners.
        for (secret, delivered) in secrets {
            let receiver = guard.receivers.get(&secret.value).copied();
            match (delivered, secret.owner) {
                (true, None) => assert!(receiver.is_some(), "{mode:?}: {}", secret.value),
                (true, Some(owner)) => {
                    assert_eq!(receiver, Some(owner), "{mode:?}: {}", secret.value)
                }
                (false, _) => assert_eq!(receiver, None, "{mode:?}: {}", secret.value),
            }
        }
        guard.next_run();
    }
    let (kinds, entries) = guard.allow.unseen();
    assert!(
        kinds.is_empty() && entries.is_empty(),
        "the fixed run must show every event, answer and listed field (or the list is stale): \
         kinds {kinds:?}, fields {entries:#?}"
    );
}

#[tokio::test]
async fn every_webhook_and_answer_partners_receive_is_as_the_openapi_document_says() {
    let document: serde_json::Value =
        serde_json::from_str(&wxbridge_lambda::api::openapi::document()).unwrap();
    let mut faults = Vec::new();
    let mut webhooks = std::collections::BTreeSet::new();
    for mode in [Mode::Merged, Mode::SubMerchant] {
        let mut world = World::new(mode).await;
        match mode {
            Mode::Merged => scenario::merged(&mut world).await,
            Mode::SubMerchant => scenario::sub_merchant(&mut world).await,
        };
        for received in &world.received {
            let Some(body) = &received.json else { continue };
            if document["webhooks"].get(&received.kind).is_some() {
                webhooks.insert(received.kind.clone());
            }
            let schema = documented::schema_for(&document, &received.kind);
            faults.extend(documented::faults(&document, schema, body, &received.kind));
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
    let events = document["webhooks"].as_object().unwrap();
    assert!(
        events.len() == 7 && events.keys().all(|event| webhooks.contains(event)),
        "the run must show every documented webhook: saw {webhooks:?}"
    );
}
