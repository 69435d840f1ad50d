//! The SQS-triggered functions: `inbound`, `dispatch` and `push`, each on the one FIFO
//! consumer that keeps a group's order and backs a failed group off.

pub mod dispatch;
pub mod fifo;
pub mod inbound;
pub mod push;
