//! The bridge's Lambda edge: the `callback` and partner-API HTTP handlers, the SQS
//! handlers of `inbound`, `dispatch` and `push` on one FIFO consumer, and the
//! [`bootstrap`] every `functions/*/src/main.rs` starts with. HTTP status codes live here,
//! and nowhere below.

pub mod api;
pub mod bootstrap;
pub mod callback;
pub mod emf;
pub mod http;
pub mod sqs;
