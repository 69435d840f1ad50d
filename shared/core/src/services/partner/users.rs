//! Acting on a user: binding them to an app user, the typing indicator, media they sent
//! (as WeChat holds it, and as the bridge keeps it).

use super::{valid_client_id, Answer, BindRequest, Binding, PartnerApi, PartnerError};
use super::{ConflictCode, MAX_MEDIA_BYTES};
use super::{TypingAnswer, TypingRequest};
use crate::model::media::{is_media_id, object_key};
use crate::ports::media::MediaArchive;
use crate::ports::store::{ConversationStore, MessageMediaStore, StoreError, UserStore};
use crate::ports::wechat::{ApiError, Media, Remedy, WechatApi};
use crate::ports::Ports;
use crate::services::tokens::CallError;

impl<P: Ports> PartnerApi<P> {
    /// Binds a channel user the partner talks with to an app user.
    pub async fn bind(
        &self,
        partner: &str,
        channel: &str,
        openid: &str,
        request: BindRequest,
    ) -> Answer<Binding> {
        if !valid_client_id(&request.app_user_id, 128) {
            return Err(PartnerError::field(
                "app_user_id",
                "1 to 128 characters of A-Z a-z 0-9 - _ . : @",
            ));
        }
        if !self
            .bridge
            .config
            .partner(partner)
            .is_some_and(|p| p.can_bind)
        {
            return Err(PartnerError::Forbidden(
                "this partner may not bind users (partners[].can_bind)",
            ));
        }
        self.channel(partner, channel)?;
        let talks_with = self
            .bridge
            .store
            .conversations(channel, openid)
            .await
            .map_err(PartnerError::store)?
            .iter()
            .any(|c| c.partner == partner);
        if !talks_with {
            return Err(PartnerError::NotFound("user in your conversations"));
        }
        for _ in 0..3 {
            let mut user = self.user(partner, channel, openid).await?;
            match user.app_user_id.as_deref() {
                Some(bound) if bound == request.app_user_id => {}
                Some(_) if !request.replace => {
                    return Err(PartnerError::conflict(
                        ConflictCode::AlreadyBound,
                        "the user is bound to another app user; send replace: true to rebind",
                    ))
                }
                _ => {
                    user.app_user_id = Some(request.app_user_id.clone());
                    match self.bridge.store.put_user(&user).await {
                        Err(StoreError::Conflict) => continue,
                        Err(error) => return Err(PartnerError::store(error)),
                        Ok(()) => {}
                    }
                }
            }
            return Ok(Binding {
                channel: channel.to_owned(),
                openid: openid.to_owned(),
                app_user_id: request.app_user_id,
            });
        }
        Err(PartnerError::conflict(
            ConflictCode::Changed,
            "the user changed meanwhile; retry",
        ))
    }

    /// Shows (or stops) the typing indicator in the user's chat.
    pub async fn typing(
        &self,
        partner: &str,
        conversation_id: &str,
        request: TypingRequest,
    ) -> Answer<TypingAnswer> {
        let conversation = self.own_conversation(partner, conversation_id).await?;
        let channel = self.channel(partner, &conversation.channel)?;
        let business_id = self
            .bridge
            .business_id_for(&channel.id, partner)
            .await
            .map_err(PartnerError::store)?
            .map_err(PartnerError::not_registered)?;
        let (wechat, openid) = (self.bridge.wechat(), conversation.openid.as_str());
        self.bridge
            .tokens
            .call(channel, |token| async move {
                wechat
                    .typing(&token, openid, business_id, request.typing)
                    .await
            })
            .await
            .map_err(PartnerError::wechat)?;
        Ok(TypingAnswer {
            typing: request.typing,
        })
    }

    /// An image a user sent in one of the partner's conversations, as WeChat holds it: its
    /// bytes and type. Another partner's user's image is not found, exactly as a media id
    /// no user sent.
    pub async fn media(&self, partner: &str, channel: &str, media_id: &str) -> Answer<Media> {
        if !is_media_id(media_id) {
            return Err(PartnerError::field("media_id", "not a WeChat media id"));
        }
        let channel = self.channel(partner, channel)?;
        let carried = self
            .bridge
            .store
            .inbound_image(&channel.id, media_id)
            .await
            .map_err(PartnerError::store)?;
        let Some(message) = carried else {
            return Err(PartnerError::NotFound("media"));
        };
        match self
            .own_conversation(partner, &message.conversation_id)
            .await
        {
            Err(PartnerError::NotFound(_)) => return Err(PartnerError::NotFound("media")),
            other => other?,
        };
        let wechat = self.bridge.wechat();
        self.bridge
            .tokens
            .call(channel, |token| async move {
                wechat.media(&token, media_id, MAX_MEDIA_BYTES).await
            })
            .await
            .map_err(|error| match error {
                CallError::Api(error @ ApiError::WeChat { .. })
                    if error.remedy() == Remedy::Final =>
                {
                    PartnerError::MediaNotFound(error.to_string())
                }
                CallError::Api(ApiError::TooLarge(_)) => PartnerError::MediaTooLarge,
                error => PartnerError::wechat(error),
            })
    }

    /// The kept copy of an image message of a conversation the partner may read: its
    /// bytes and type, for as long as the bucket keeps it.
    pub async fn kept_media(
        &self,
        partner: &str,
        conversation_id: &str,
        message_id: &str,
    ) -> Answer<Media> {
        const NOT_STORED: &str = "this message's image is not kept: see its media.status";
        if !valid_client_id(message_id, 256) {
            return Err(PartnerError::field("message_id", "not a message id"));
        }
        let conversation = self.own_conversation(partner, conversation_id).await?;
        let Some(archive) = &self.archive else {
            return Err(PartnerError::MediaNotStored(NOT_STORED));
        };
        let key = object_key(&conversation.channel, &conversation.id, message_id);
        match archive.get(&key).await {
            Ok(Some(media)) => Ok(media),
            Ok(None) => Err(PartnerError::MediaNotStored(NOT_STORED)),
            Err(error) => {
                tracing::warn!(%error, "media archive unavailable");
                Err(PartnerError::ArchiveUnavailable)
            }
        }
    }
}
