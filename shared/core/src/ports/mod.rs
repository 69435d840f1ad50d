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

/// An adapter's own error (an SDK's, an I/O error), kept beneath a port's error as its
/// source: [`queue::QueueError`], [`store::StoreError::Unavailable`].
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An error and each of its sources in turn (`a: b: c`): how a port's error names its
/// cause in its message, which is what logs and retry reasons read.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

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
