//! The SQS-triggered functions: `inbound`, `dispatch`, `push` and `media`, each on the one FIFO
//! consumer that keeps a group's order and backs a failed group off.

pub mod dispatch;
pub mod fifo;
pub mod inbound;
pub mod media;
pub mod push;
