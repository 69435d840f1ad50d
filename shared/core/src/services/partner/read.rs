//! Reading: a conversation's history a page at a time, and the partner's conversations
//! with a user.

use super::MessageView;
use super::{Answer, ConversationStatus, ConversationView, ConversationsQuery, HistoryPage};
use super::{PartnerApi, PartnerError};
use super::{DEFAULT_PAGE, MAX_PAGE};
use crate::config::DialogMode;
use crate::model::{routing, ChannelUser, Conversation, MessageCursor, Session, WindowState};
use crate::ports::store::{ConversationStore, MessageStore, UserStore};
use crate::ports::Ports;
use base64::Engine;

impl<P: Ports> PartnerApi<P> {
    /// A page of the conversation, newest first.
    pub async fn history(
        &self,
        partner: &str,
        conversation_id: &str,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Answer<HistoryPage> {
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| PartnerError::field("limit", "a number from 1 to 100"))?,
        };
        let before = cursor
            .map(|c| {
                decode_cursor(c)
                    .ok_or_else(|| PartnerError::field("cursor", "not a cursor this API gave"))
            })
            .transpose()?;
        let conversation = self.own_conversation(partner, conversation_id).await?;
        let mut messages = self
            .bridge
            .store
            .history_page(&conversation.id, limit + 1, before.as_ref())
            .await
            .map_err(PartnerError::store)?;
        let more = messages.len() > limit;
        messages.truncate(limit);
        let next_cursor = more
            .then(|| {
                messages
                    .last()
                    .map(|m| encode_cursor(&MessageCursor::after(m)))
            })
            .flatten();
        Ok(HistoryPage {
            messages: messages.into_iter().map(MessageView::from).collect(),
            next_cursor,
        })
    }

    /// The partner's conversations with a channel user or with the users bound to an app
    /// user, latest first.
    pub async fn conversations(
        &self,
        partner: &str,
        query: &ConversationsQuery,
    ) -> Answer<Vec<ConversationView>> {
        let users = match (
            query.channel.as_deref(),
            query.openid.as_deref(),
            query.app_user_id.as_deref(),
        ) {
            (Some(channel), Some(openid), None) => {
                self.channel(partner, channel)?;
                self.bridge
                    .store
                    .user(channel, openid)
                    .await
                    .map_err(PartnerError::store)?
                    .into_iter()
                    .collect()
            }
            (channel, None, Some(app_user)) => self.bindings(partner, app_user, channel).await?,
            _ => {
                return Err(PartnerError::field(
                    "query",
                    "give channel and openid, or app_user_id (and channel)",
                ))
            }
        };
        let mut found = Vec::new();
        for user in users {
            for conversation in self
                .bridge
                .store
                .conversations(&user.channel, &user.openid)
                .await
                .map_err(PartnerError::store)?
            {
                if conversation.partner == partner {
                    found.push(self.view(conversation, &user));
                }
            }
        }
        found.sort_by(|a, b| {
            b.conversation
                .last_message_at_ms
                .cmp(&a.conversation.last_message_at_ms)
        });
        Ok(found)
    }
}

impl<P: Ports> PartnerApi<P> {
    /// One of the partner's conversations, with its window now.
    pub async fn conversation(&self, partner: &str, id: &str) -> Answer<ConversationView> {
        let conversation = self.own_conversation(partner, id).await?;
        let user = self.user_of(&conversation).await?;
        Ok(self.view(conversation, &user))
    }

    /// The conversation with `user` as its partner sees it now.
    pub(super) fn view(&self, conversation: Conversation, user: &ChannelUser) -> ConversationView {
        let config = &self.bridge.config;
        let active_partner = match config.dialog.mode {
            DialogMode::Merged => config
                .channel(&user.channel)
                .and_then(|channel| routing::partner_for(config, channel, &user.routing))
                .map(str::to_owned),
            DialogMode::Separate | DialogMode::SubMerchant => None,
        };
        let closed = user.closed.get(&conversation.id).copied();
        ConversationView {
            window: self.window_of(user, &conversation.partner),
            app_user_id: user.app_user_id.clone(),
            active_partner,
            status: match closed {
                Some(_) => ConversationStatus::Closed,
                None => ConversationStatus::Open,
            },
            closed,
            conversation,
        }
    }

    /// `partner`'s window with `user` now: its session's, with its templates' grants.
    pub(super) fn window_of(&self, user: &ChannelUser, partner: &str) -> WindowState {
        let config = &self.bridge.config;
        let templates = config
            .partner(partner)
            .map_or(&[][..], |p| p.subscribe_templates.as_slice());
        WindowState::of(user, Session::of(config, partner), templates, self.now_ms())
    }
}

fn encode_cursor(cursor: &MessageCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", cursor.created_at_ms, cursor.id))
}

fn decode_cursor(text: &str) -> Option<MessageCursor> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some(MessageCursor {
        created_at_ms: at.parse().ok()?,
        id: id.to_owned(),
    })
}
