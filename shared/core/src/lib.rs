//! The bridge's domain, apart from any cloud: the model, every port as a trait, and the
//! services that run on them. Between WeChat's protocol (`wxbridge-wechat`, below) and the
//! adapters and Lambda edge (above), so the arrows point one way: this crate depends on no
//! AWS SDK, Lambda runtime, HTTP client or server.

pub mod clock;
pub mod config;
pub mod metrics;
pub mod model;
pub mod ports;
pub mod services;
