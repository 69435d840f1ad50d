//! wxbridge: the customer-service conversation of a WeChat Mini Program, bridged to a
//! platform's own in-app chat.
//!
//! One module per concept; the Lambda functions under `functions/` only wire these up.

pub mod api_auth;
pub mod aws;
pub mod callback;
pub mod config;
pub mod crypto;
pub mod dispatch;
pub mod document;
pub mod encode;
pub mod event;
pub mod handlers;
pub mod inbound;
pub mod media;
pub mod metrics;
pub mod outbound;
pub mod partner_api;
pub mod push;
pub mod queue;
pub mod release;
pub mod reply_window;
pub mod report;
pub mod routing;
pub mod session_from;
pub mod signature;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod token;
pub mod vectors;
pub mod webhook;
pub mod wechat_api;
pub mod xml;
