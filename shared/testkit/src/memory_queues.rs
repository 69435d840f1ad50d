//! In-memory queues for unit tests: what FIFO SQS would keep, every attempt recorded.

use crate::interrupt::stop_point;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wxbridge_core::model::{InboundMessage, MediaJob, OutboundRef};
use wxbridge_core::ports::queue::{InboundQueue, MediaQueue, OutboundQueue, Parking, QueueError};

/// An in-memory queue for unit tests: records every attempt, keeps what FIFO SQS would
/// keep (repeats of a deduplication id dropped), and can be told to fail.
#[derive(Debug, Default, Clone)]
pub struct MemoryQueue {
    attempts: Arc<Mutex<Vec<InboundMessage>>>,
    failing: Arc<AtomicBool>,
}

impl MemoryQueue {
    /// Every message handed to the queue, repeats included.
    pub fn attempts(&self) -> Vec<InboundMessage> {
        self.attempts.lock().expect("queue lock").clone()
    }

    /// What the queue holds: the first message of each deduplication id.
    pub fn sent(&self) -> Vec<InboundMessage> {
        let mut kept: Vec<InboundMessage> = Vec::new();
        for message in self.attempts() {
            if !kept
                .iter()
                .any(|m| m.deduplication_id() == message.deduplication_id())
            {
                kept.push(message);
            }
        }
        kept
    }

    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl InboundQueue for MemoryQueue {
    async fn enqueue(&self, message: &InboundMessage) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError("memory queue told to fail".into()));
        }
        self.attempts
            .lock()
            .expect("queue lock")
            .push(message.clone());
        Ok(())
    }
}

/// An in-memory `outbound.fifo` (or `push.fifo`, `media.fifo`) for unit tests: every
/// enqueue with its deduplication id, and every copy job.
#[derive(Debug, Default, Clone)]
pub struct MemoryOutboundQueue {
    sent: Arc<Mutex<Vec<(OutboundRef, String)>>>,
    copies: Arc<Mutex<Vec<MediaJob>>>,
    failing: Arc<AtomicBool>,
}

impl MemoryOutboundQueue {
    pub fn sent(&self) -> Vec<(OutboundRef, String)> {
        self.sent.lock().expect("queue lock").clone()
    }

    /// Every copy job asked for, repeats included.
    pub fn copies(&self) -> Vec<MediaJob> {
        self.copies.lock().expect("queue lock").clone()
    }

    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl OutboundQueue for MemoryOutboundQueue {
    async fn enqueue(
        &self,
        target: &OutboundRef,
        deduplication_id: &str,
    ) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError("memory queue told to fail".into()));
        }
        stop_point().await;
        self.sent
            .lock()
            .expect("queue lock")
            .push((target.clone(), deduplication_id.to_owned()));
        stop_point().await;
        Ok(())
    }
}

impl MediaQueue for MemoryOutboundQueue {
    async fn enqueue_copy(&self, job: &MediaJob) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError("memory queue told to fail".into()));
        }
        self.copies.lock().expect("queue lock").push(job.clone());
        Ok(())
    }
}

/// A dead-letter queue and visibility changes in memory: what a FIFO consumer parked (record
/// id, reason) and delayed (receipt, seconds).
#[derive(Debug, Default, Clone)]
pub struct MemoryParking {
    parked: Arc<Mutex<Vec<(String, String)>>>,
    delays: Arc<Mutex<Vec<(String, i32)>>>,
}

impl MemoryParking {
    pub fn parked(&self) -> Vec<(String, String)> {
        self.parked.lock().expect("parking lock").clone()
    }

    pub fn delays(&self) -> Vec<(String, i32)> {
        self.delays.lock().expect("parking lock").clone()
    }
}

impl Parking for MemoryParking {
    async fn park(&self, _: &str, _: &str, id: &str, reason: &str) -> Result<(), QueueError> {
        self.parked
            .lock()
            .expect("parking lock")
            .push((id.to_owned(), reason.to_owned()));
        Ok(())
    }

    async fn delay(&self, receipt: &str, seconds: i32) -> Result<(), QueueError> {
        self.delays
            .lock()
            .expect("parking lock")
            .push((receipt.to_owned(), seconds));
        Ok(())
    }
}
