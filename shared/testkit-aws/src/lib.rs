//! Test support on the local AWS emulator (moto server), for what runs the bridge's code
//! against it without Lambda:
//!
//! - [`emulator`]: clients pointed at `$AWS_ENDPOINT_URL` and nowhere else, unique names,
//!   FIFO queues shaped as `template.yaml` deploys them.
//! - [`event_source`]: Lambda's SQS event source mapping — batches received, shaped and
//!   settled as Lambda does, with what moto does differently made up for.
//!
//! The integration tests (`tests/`) hand the mapping's batches to the handlers in process;
//! the local stack's `event-source` binary (`tools/devstack`) feeds the running functions
//! with the same code. The unit tier needs none of it: `wxbridge-testkit`'s memory
//! adapters stand in for AWS there.

pub mod emulator;
pub mod event_source;
