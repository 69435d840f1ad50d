//! The memory store keeps the store contract, rule by rule.

use wxbridge_testkit::MemoryStore;

wxbridge_testkit::store_conformance!(
    store: MemoryStore::default(),
    cache: MemoryStore::default(),
    nonces: MemoryStore::default()
);
