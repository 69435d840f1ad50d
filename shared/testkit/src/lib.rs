//! What the bridge's tests share: a memory adapter for every port, the store conformance
//! suite (one test per rule, run on the memory store here and on DynamoDB by the
//! integration tests), WeChat's server API scripted in memory, and sample events.
//! Test code only: no production crate depends on this one.
//!
//! It may unwrap: the conformance rules are assertions, and a memory adapter's lock is
//! poisoned only by a test that panicked already; a panic here is a failing test.
#![allow(
    clippy::unwrap_used,
    reason = "test support: a panic here is a failing test"
)]

pub mod conformance;
pub mod events;
pub mod fuzz;
pub mod images;
pub mod interrupt;
pub mod memory_queues;
pub mod memory_store;
pub mod scripted_wechat;
pub mod webhooks;

pub use images::{MemoryArchive, MemoryImages};
pub use memory_queues::{MemoryOutboundQueue, MemoryParking, MemoryQueue};
pub use memory_store::MemoryStore;
pub use scripted_wechat::ScriptedWechat;
pub use webhooks::RecordingWebhooks;

use wxbridge_core::config::BridgeConfig;
use wxbridge_core::ports::Ports;
use wxbridge_core::services::images::Images;
use wxbridge_core::services::Bridge;

/// Every port in memory. Each adapter is a handle on shared state, so a test keeps a clone
/// and sees what the services wrote.
#[derive(Debug)]
pub struct MemoryPorts;

impl Ports for MemoryPorts {
    type Store = MemoryStore;
    type TokenStore = MemoryStore;
    type Wechat = ScriptedWechat;
    type Webhooks = RecordingWebhooks;
    type Queue = MemoryOutboundQueue;
    type MediaCache = MemoryStore;
    type Images = MemoryImages;
    type Archive = MemoryArchive;
}

/// The memory adapters of one test, to build services on and to look into.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    pub store: MemoryStore,
    pub wechat: ScriptedWechat,
    pub webhooks: RecordingWebhooks,
    pub outbound: MemoryOutboundQueue,
    pub pushes: MemoryOutboundQueue,
    pub images: MemoryImages,
    /// `media.fifo`.
    pub media: MemoryOutboundQueue,
    pub archive: MemoryArchive,
}

impl Memory {
    /// A bridge on these adapters (the store keeps tokens and media ids too), at `now_ms`.
    pub fn bridge(&self, config: BridgeConfig, now_ms: i64) -> Bridge<MemoryPorts> {
        Bridge::new(
            config,
            Clone::clone(&self.store),
            Clone::clone(&self.store),
            Clone::clone(&self.wechat),
            Clone::clone(&self.webhooks),
        )
        .with_clock(move || now_ms)
    }

    /// The image parts of `dispatch` on these adapters.
    pub fn images(&self) -> Images<MemoryPorts> {
        Images::new(Clone::clone(&self.store), Clone::clone(&self.images))
    }
}
