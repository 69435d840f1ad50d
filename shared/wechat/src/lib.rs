//! WeChat's message push for mini programs (消息推送), as a small library with no AWS,
//! Lambda or HTTP-server dependency: the URL and body signatures, the AES envelope, a strict
//! XML reader, a borrowed document both push formats are read into, typed events, opening
//! a push and sealing one as WeChat would, and the official test vectors.
//!
//! Every rule cites the project's protocol notes (`docs/wechat-protocol.md`, "§…").
//!
//! Opening a push as the callback endpoint does, with the official safe-mode vector
//! (protocol notes §1.4, §7.1):
//!
//! ```
//! use wxbridge_wechat::callback::{open_push, Freshness, PushQuery};
//! use wxbridge_wechat::endpoint::{EncryptionMode, PushEndpoint, PushFormat};
//! use wxbridge_wechat::vectors::*;
//!
//! let endpoint = PushEndpoint::new(
//!     "mp",
//!     MP_APPID,
//!     MP_ORIGINAL_ID,
//!     MP_TOKEN,
//!     Some(MP_ENCODING_AES_KEY),
//!     EncryptionMode::Safe,
//!     PushFormat::Json,
//! )
//! .unwrap();
//! let query = PushQuery::from_pairs(MP_SAFE_QUERY.iter().copied());
//! let freshness = Freshness {
//!     now_secs: MP_SAFE_TIMESTAMP.parse().unwrap(),
//!     tolerance_secs: Some(300),
//! };
//! let event = open_push(&endpoint, &query, MP_SAFE_BODY.as_bytes(), freshness).unwrap();
//! assert_eq!(event.from_user_name, MP_OPENID);
//! ```
//!
//! Sealing an event the way WeChat would push it, and opening it again:
//!
//! ```
//! use wxbridge_wechat::callback::{open_push, Freshness};
//! use wxbridge_wechat::encode::seal;
//! use wxbridge_wechat::endpoint::{EncryptionMode, PushEndpoint, PushFormat};
//! use wxbridge_wechat::event::{CallbackEvent, EventKind};
//!
//! let endpoint = PushEndpoint::new(
//!     "mp",
//!     "wx0123456789abcdef",
//!     "gh_0123456789ab",
//!     "token",
//!     Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
//!     EncryptionMode::Safe,
//!     PushFormat::Xml,
//! )
//! .unwrap();
//! let event = CallbackEvent {
//!     to_user_name: "gh_0123456789ab".into(),
//!     from_user_name: "o_user".into(),
//!     create_time: 1_764_150_000,
//!     // Written in the session of the sub-merchant 1001; `None` is the mini program's own.
//!     business_id: Some("1001".into()),
//!     kind: EventKind::Text { msg_id: "1".into(), content: "你好".into() },
//! };
//! let push = seal(&endpoint, &event, 1_764_150_000, "nonce");
//! let fresh = Freshness { now_secs: 1_764_150_000, tolerance_secs: Some(300) };
//! let opened = open_push(&endpoint, &push.push_query(), push.body.as_bytes(), fresh).unwrap();
//! assert_eq!(opened, event);
//! ```

pub mod callback;
pub mod crypto;
pub mod document;
pub mod encode;
pub mod endpoint;
pub mod event;
pub mod signature;
pub mod subscribe;
#[cfg(any(test, feature = "test-support"))]
pub mod vectors;
pub mod xml;
