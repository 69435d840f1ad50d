//! Every way the services reach outside the domain, as a trait: the store, the queues,
//! partners' webhooks, WeChat's server API, the token cache, API nonces, the media cache,
//! partners' images and the bucket images are kept in. The AWS and HTTP adapter crates implement them for a deployment; the
//! test kit in memory.

pub mod media;
pub mod nonces;
pub mod queue;
pub mod store;
pub mod tokens;
pub mod webhook;
pub mod wechat;

/// The adapters one deployment of the services runs on, named once so a service takes one
/// type parameter instead of one per port.
pub trait Ports: Send + Sync + 'static {
    type Store: store::Store;
    type TokenStore: tokens::TokenStore;
    type Wechat: wechat::WechatApi;
    type Webhooks: webhook::WebhookSender;
    /// `outbound.fifo`, `push.fifo` and `media.fifo`.
    type Queue: queue::OutboundQueue + queue::MediaQueue;
    type MediaCache: media::MediaCache;
    type Images: media::ImageSource;
    /// The bucket image messages' copies are kept in.
    type Archive: media::MediaArchive;
}
