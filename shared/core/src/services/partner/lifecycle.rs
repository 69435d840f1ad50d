//! A conversation's lifecycle: `open`, or `closed` by an agent (with an optional closing
//! text) until the user writes again — the user's next message reopens it and reaches the
//! partner as `conversation.reopened`. The closed mark lives on the channel user (see
//! [`crate::model::ChannelUser::closed`]); the partner gets `conversation.closed`.

use super::{
    valid_client_id, Answer, CloseRequest, ConversationView, PartnerApi, PartnerError, SendRequest,
};
use crate::model::{CloseReason, Closed, Content, Conversation};
use crate::ports::Ports;
use crate::services::idle;
use crate::services::webhook::{self, Delivery};

impl<P: Ports> PartnerApi<P> {
    /// Closes the partner's conversation (again harmlessly: the first close stands), after
    /// sending the closing text as a reply.
    pub async fn close(
        &self,
        partner: &str,
        conversation_id: &str,
        request: CloseRequest,
    ) -> Answer<ConversationView> {
        // Checked whether or not a closing text comes with it: a malformed id is refused,
        // not ignored.
        if let Some(id) = &request.client_message_id {
            if !valid_client_id(id, 64) {
                return Err(PartnerError::field(
                    "client_message_id",
                    "1 to 64 characters of A-Z a-z 0-9 - _ . : @",
                ));
            }
        }
        let conversation = self.own_conversation(partner, conversation_id).await?;
        if let Some(text) = request.closing_text {
            let Some(client_message_id) = request.client_message_id else {
                return Err(PartnerError::field(
                    "client_message_id",
                    "required with closing_text, so that a repeat sends it once",
                ));
            };
            let closing = SendRequest {
                conversation_id: Some(conversation.id.clone()),
                to: None,
                client_message_id,
                content: Content::Text { text },
            };
            self.send(partner, closing).await?;
        }
        let closed = self.mark_closed(&conversation, CloseReason::Agent).await?;
        let user = self.user_of(&conversation).await?;
        let Some(receiver) = self.bridge.config.partner(partner) else {
            return Err(PartnerError::NotFound("conversation"));
        };
        let (delivery_id, body) = idle::closed_webhook(&conversation, &closed, &user);
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let now_secs = self.now_ms().div_euclid(1000);
        let delivered = webhook::deliver(
            &self.bridge.webhooks,
            receiver,
            "conversation.closed",
            &delivery_id,
            body,
            now_secs,
        )
        .await;
        if delivered != Delivery::Delivered {
            return Err(PartnerError::NotDelivered("request"));
        }
        Ok(self.view(conversation, &user))
    }

    /// Marks the conversation closed on its user; a conversation closed already keeps its
    /// first close.
    async fn mark_closed(
        &self,
        conversation: &Conversation,
        reason: CloseReason,
    ) -> Answer<Closed> {
        let at_ms = self.now_ms();
        self.change_user(conversation, |user| {
            match user.closed.get(&conversation.id) {
                Some(closed) => (*closed, false),
                None => {
                    let closed = Closed { at_ms, reason };
                    user.closed.insert(conversation.id.clone(), closed);
                    (closed, true)
                }
            }
        })
        .await
    }
}
