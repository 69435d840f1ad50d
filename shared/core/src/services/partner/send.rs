//! Writing to users: replies (to `dispatch`) and pushes (to `push`), each stored once per
//! the partner's id for it.

use super::{enqueue_queued, valid_client_id, Answer, PartnerApi, PartnerError};
use super::{
    Accepted, ConflictCode, PushAccepted, PushRequest, Recipient, ReplyAccepted, SendRequest,
};
use crate::model::{
    Allowance, ChannelUser, Content, Conversation, Direction, MessageStatus, PushRecord,
    PushTarget, ReplyWindow, Session, StoredMessage,
};
use crate::ports::store::{through_hiccups, MessageStore, PushStore, Recorded, UserStore};

/// How many of a conversation's latest messages the reply forecast looks through.
const QUEUE_LOOKBACK: usize = 20;
use crate::ports::Ports;

impl<P: Ports> PartnerApi<P> {
    /// Stores the reply as `queued` and hands it to `dispatch`; a repeat of the request
    /// (same `client_message_id`) answers the first message and writes nothing. The answer
    /// says whether the window will hold it.
    pub async fn send(&self, partner: &str, request: SendRequest) -> Answer<ReplyAccepted> {
        if !valid_client_id(&request.client_message_id, 64) {
            return Err(PartnerError::field(
                "client_message_id",
                "1 to 64 characters of A-Z a-z 0-9 - _ . : @",
            ));
        }
        request
            .content
            .validate()
            .map_err(|e| PartnerError::field(e.field, e.reason))?;
        self.fits_with_sender(partner, &request.content)?;
        let now_ms = self.now_ms();
        let mut conversation = self.target(partner, &request, now_ms).await?;
        // A reply needs the partner's session to go into: refused now, not failed later.
        self.bridge
            .business_id_for(&conversation.channel, partner)
            .await
            .map_err(PartnerError::store)?
            .map_err(PartnerError::not_registered)?;
        // Read before the write (whether the conversation is closed), and for the answer's
        // forecast: the one read of the user a reply makes.
        let user = self
            .bridge
            .store
            .user(&conversation.channel, &conversation.openid)
            .await
            .map_err(PartnerError::store)?
            .unwrap_or_else(|| ChannelUser::new(&conversation.channel, &conversation.openid));
        self.partner_wrote(partner, &mut conversation, &user, now_ms);
        let content = serde_json::to_value(&request.content)
            .map_err(|_| PartnerError::field("content", "cannot be stored"))?;
        let message = StoredMessage::reply(
            &conversation,
            format!("out_{}", hex::encode(rand::random::<[u8; 12]>())),
            now_ms,
            content,
        );
        // Through a hiccup: the write is idempotent, and one whose answer was lost after it
        // landed comes back as the message stored, which is then queued — never a 503 for
        // a stored message nobody would enqueue.
        let client_message_id = request.client_message_id.as_str();
        let stored = match through_hiccups(|| {
            self.bridge
                .store
                .put_outbound(&message, &conversation, client_message_id)
        })
        .await
        .map_err(PartnerError::store)?
        {
            Recorded::New => message,
            Recorded::Duplicate(first) => {
                if first.conversation_id != message.conversation_id
                    || first.content != message.content
                {
                    return Err(PartnerError::conflict(
                        ConflictCode::ClientMessageIdReused,
                        "client_message_id was used for a different message",
                    ));
                }
                *first
            }
        };
        enqueue_queued(&self.queue, &stored, "client_message_id").await?;
        tracing::info!(partner, message_id = %stored.id, "reply accepted");
        self.reply_accepted(partner, stored, &user).await
    }

    /// The answer to a stored reply: held or not, as the window stands now (`user`, read
    /// just before) with the replies queued in this conversation (this one among them). One
    /// read of the conversation's latest messages only while the window runs with sends
    /// left: the cost of the forecast.
    async fn reply_accepted(
        &self,
        partner: &str,
        stored: StoredMessage,
        user: &ChannelUser,
    ) -> Answer<ReplyAccepted> {
        let window = self.window_of(user, partner);
        let running = stored.status.is_pending() && window.open_until_ms.is_some();
        let waiting = if running && window.sends_left > 0 {
            let latest = self
                .bridge
                .store
                .history(&stored.conversation_id, QUEUE_LOOKBACK)
                .await
                .map_err(PartnerError::store)?;
            latest
                .iter()
                .filter(|m| {
                    m.direction == Direction::Out && m.push.is_none() && m.status.is_pending()
                })
                .count()
        } else {
            1
        };
        let hold_reason = match (running, window.sends_left as usize) {
            (true, 0) => {
                Some("the window's sends are used up: it goes out when the user writes again".to_owned())
            }
            (true, left) if waiting > left => Some(format!(
                "the window's {left} send(s) left go to the {} repl{} queued before it: it goes out when the user writes again",
                waiting - 1,
                if waiting == 2 { "y" } else { "ies" }
            )),
            _ => None,
        };
        Ok(ReplyAccepted {
            message: Accepted::of(stored),
            will_hold: hold_reason.is_some(),
            hold_reason,
            window,
        })
    }

    /// The partner writes in `conversation` now: its latest message time, and the idle
    /// deadline from now — but not in a conversation closed: a partner's message does not
    /// reopen it (the user's does), nor close it again, so its deadline stays as it was
    /// (the close's own while the partner is still to be told of it, else none).
    fn partner_wrote(
        &self,
        partner: &str,
        conversation: &mut Conversation,
        user: &ChannelUser,
        now_ms: i64,
    ) {
        conversation.last_message_at_ms = now_ms;
        if !user.closed.contains_key(&conversation.id) {
            conversation.idle_at_ms = self.bridge.config.idle_at(partner, now_ms);
        }
    }

    /// Stores the push as `queued` in the partner's conversation with the user and hands it
    /// to `push`; a repeat of the request (same `push_id`) answers the first push and
    /// writes nothing.
    pub async fn push(&self, partner: &str, request: PushRequest) -> Answer<PushAccepted> {
        if !valid_client_id(&request.push_id, 64) {
            return Err(PartnerError::field(
                "push_id",
                "1 to 64 characters of A-Z a-z 0-9 - _ . : @",
            ));
        }
        if matches!(request.content, Content::Image { .. }) {
            return Err(PartnerError::field(
                "content.type",
                "a push is text, link or miniprogrampage",
            ));
        }
        request
            .content
            .validate()
            .map_err(|e| PartnerError::field(e.field, e.reason))?;
        self.fits_with_sender(partner, &request.content)?;
        if let Some(form) = &request.subscribe {
            form.validate()
                .map_err(|(field, reason)| PartnerError::field(&field, reason))?;
            // A user's grant is for one template; another partner's push must not spend it.
            let allowed = self
                .bridge
                .config
                .partner(partner)
                .is_some_and(|p| p.subscribe_templates.contains(&form.template_id));
            if !allowed {
                return Err(PartnerError::Forbidden("this partner may not use this subscribe template (partners[].subscribe_templates)"));
            }
        }
        if request.expires_at_ms.is_some_and(|at| at <= 0) {
            return Err(PartnerError::field(
                "expires_at_ms",
                "milliseconds since the epoch",
            ));
        }
        let Some(pushes) = self.pushes.as_ref() else {
            return Err(PartnerError::PushesNotSetUp);
        };
        let now_ms = self.now_ms();
        let (user, to) = self.push_target(partner, &request.to, now_ms).await?;
        let mut conversation = self
            .conversation_with(partner, &user.channel, &user.openid, now_ms)
            .await?;
        self.partner_wrote(partner, &mut conversation, &user, now_ms);
        let content = serde_json::to_value(&request.content)
            .map_err(|_| PartnerError::field("content", "cannot be stored"))?;
        let record = PushRecord {
            push_id: Some(request.push_id.clone()),
            to,
            subscribe: request.subscribe,
            expires_at_ms: request.expires_at_ms,
            fallback: false,
            attempts: Vec::new(),
            path: None,
        };
        let message = StoredMessage {
            id: format!("push_{}", hex::encode(rand::random::<[u8; 12]>())),
            conversation_id: conversation.id.clone(),
            channel: conversation.channel.clone(),
            openid: conversation.openid.clone(),
            partner: partner.to_owned(),
            direction: Direction::Push,
            status: MessageStatus::Queued,
            status_reason: None,
            created_at_ms: now_ms,
            dedupe_key: None,
            wechat_msg_id: None,
            content,
            released: Vec::new(),
            reported: None,
            push: Some(record.clone()),
            media: None,
        };
        let push_id = request.push_id.as_str();
        let stored =
            match through_hiccups(|| self.bridge.store.put_push(&message, &conversation, push_id))
                .await
                .map_err(PartnerError::store)?
            {
                Recorded::New => message,
                Recorded::Duplicate(first) => {
                    let same = first.content == message.content
                        && first.push.as_ref().is_some_and(|p| p.same_request(&record));
                    if !same {
                        return Err(PartnerError::conflict(
                            ConflictCode::PushIdReused,
                            "push_id was used for a different push",
                        ));
                    }
                    *first
                }
            };
        enqueue_queued(pushes, &stored, "push_id").await?;
        tracing::info!(partner, message_id = %stored.id, "push accepted");
        Ok(PushAccepted {
            push_id: request.push_id,
            message: Accepted::of(stored),
        })
    }

    /// The user a push is stored for, and the target as it is kept: a channel user; or an
    /// app user's binding (on `channel` if named) — one with an open window, else the
    /// first. The push function chooses again among all of them when it delivers.
    async fn push_target(
        &self,
        partner: &str,
        to: &Recipient,
        now_ms: i64,
    ) -> Answer<(ChannelUser, PushTarget)> {
        match to {
            Recipient {
                channel: Some(channel),
                openid: Some(openid),
                app_user_id: None,
            } => {
                let channel = self.channel(partner, channel)?;
                let user = self.user(partner, &channel.id, openid).await?;
                let target = PushTarget {
                    app_user_id: None,
                    channel: Some(user.channel.clone()),
                    openid: Some(user.openid.clone()),
                };
                Ok((user, target))
            }
            Recipient {
                channel,
                openid: None,
                app_user_id: Some(app_user),
            } => {
                if let Some(channel) = channel {
                    self.channel(partner, channel)?;
                }
                let mut users = self.bindings(partner, app_user, channel.as_deref()).await?;
                let session = Session::of(&self.bridge.config, partner);
                let open = users.iter().position(|u| {
                    matches!(
                        ReplyWindow::allowance(u.window_in(session), now_ms),
                        Allowance::Open { .. }
                    )
                });
                if users.is_empty() {
                    return Err(PartnerError::NotFound("user bound to this app user"));
                }
                let user = users.swap_remove(open.unwrap_or(0));
                let target = PushTarget {
                    app_user_id: Some(app_user.clone()),
                    channel: channel.clone(),
                    openid: None,
                };
                Ok((user, target))
            }
            _ => Err(PartnerError::field(
                "to",
                "give channel and openid, or app_user_id (and channel)",
            )),
        }
    }
}
