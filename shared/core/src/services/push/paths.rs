//! The two WeChat paths of the chain: a customer-service message while the window allows
//! it, a subscribe message where the user granted one.

use super::chain::Chain;
use super::{Push, PushOutcome};
use crate::config::LostSendAnswer;
use crate::model::message::lost_answer;
use crate::model::{
    Allowance, AttemptOutcome, ChannelUser, Content, MessageStatus, PushPath, ReplyWindow, Session,
    StoredMessage, SubscribeForm,
};
use crate::ports::store::{PushStore, StoreError};
use crate::ports::wechat::WechatApi;
use crate::ports::Ports;
use crate::services::tokens::CallError;
use serde_json::Value;

/// What a path sends to WeChat.
enum Outgoing<'a> {
    /// A customer-service message body (without `touser`), into the sub-merchant's session
    /// with a `business_id`.
    Custom(&'a Value, Option<u64>),
    Subscribe(&'a SubscribeForm),
}

impl<P: Ports> Push<P> {
    /// Sends to `user` on their channel (with a fresh token after a stale one); `None` when
    /// the channel is not configured, which is recorded as a skipped attempt.
    async fn send_to(
        &self,
        chain: &mut Chain,
        path: PushPath,
        user: &ChannelUser,
        outgoing: Outgoing<'_>,
    ) -> Option<Result<(), CallError>> {
        let Some(channel) = self.channel(&user.channel) else {
            chain.attempt(
                path,
                AttemptOutcome::Skipped,
                Some(user),
                Some("channel is not configured".into()),
                None,
            );
            return None;
        };
        let (wechat, openid) = (self.bridge.wechat(), user.openid.as_str());
        let sent = self
            .bridge
            .tokens
            .call(channel, |token| {
                let outgoing = &outgoing;
                async move {
                    match outgoing {
                        Outgoing::Custom(body, business_id) => {
                            wechat.send_custom(&token, openid, *business_id, body).await
                        }
                        Outgoing::Subscribe(form) => {
                            wechat.send_subscribe(&token, openid, form).await
                        }
                    }
                }
            })
            .await;
        Some(sent)
    }

    pub(super) async fn customer_service(
        &self,
        message: &StoredMessage,
        chain: &mut Chain,
        users: &[ChannelUser],
    ) -> Result<Option<PushOutcome>, StoreError> {
        let path = PushPath::CustomerService;
        let session = Session::of(&self.bridge.config, &message.partner);
        let mut open: Vec<(&ChannelUser, u32, i64)> = users
            .iter()
            .filter_map(|u| {
                let window = u.window_in(session);
                match ReplyWindow::allowance(window, chain.now_ms) {
                    Allowance::Open { remaining } => {
                        Some((u, remaining, window.map_or(0, |w| w.closes_at_ms)))
                    }
                    _ => None,
                }
            })
            .collect();
        if open.is_empty() {
            let reason = match users.iter().find(|u| {
                ReplyWindow::allowance(u.window_in(session), chain.now_ms) == Allowance::QuotaUsed
            }) {
                Some(user) => {
                    chain.attempt(
                        path,
                        AttemptOutcome::Skipped,
                        Some(user),
                        Some("the window's sends are used up".into()),
                        None,
                    );
                    return Ok(None);
                }
                None if users.is_empty() => "no such user (or the app user is bound to none now)",
                None => "the reply window is closed",
            };
            let user = users.first();
            chain.attempt(
                path,
                AttemptOutcome::Skipped,
                user,
                Some(reason.into()),
                None,
            );
            return Ok(None);
        }
        // The open window with the most sends left, then the one open longest.
        open.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
        let Ok(content) = serde_json::from_value::<Content>(message.content.clone()) else {
            chain.attempt(
                path,
                AttemptOutcome::Skipped,
                None,
                Some("stored content is unreadable".into()),
                None,
            );
            return Ok(None);
        };
        let held_first = self
            .bridge
            .config
            .partner(&message.partner)
            .is_none_or(|p| p.held_replies_first);
        for (user, remaining, _) in open {
            let business_id = match self
                .bridge
                .business_id_for(&user.channel, &message.partner)
                .await?
            {
                Ok(business_id) => business_id,
                Err(missing) => {
                    let reason = Some(missing.to_string());
                    chain.attempt(path, AttemptOutcome::Skipped, Some(user), reason, None);
                    continue;
                }
            };
            if held_first {
                let waiting = self.bridge.waiting_replies(user, session).await?;
                if waiting as u32 >= remaining {
                    let reason = format!(
                        "{remaining} send(s) left, kept for {waiting} waiting repl{}",
                        if waiting == 1 { "y" } else { "ies" }
                    );
                    chain.attempt(
                        path,
                        AttemptOutcome::Skipped,
                        Some(user),
                        Some(reason),
                        None,
                    );
                    continue;
                }
            }
            let sender = self.bridge.config.sender_of(&message.partner);
            let body = content.wechat_body(sender.as_deref(), None);
            let Some(sent) = self
                .send_to(chain, path, user, Outgoing::Custom(&body, business_id))
                .await
            else {
                continue;
            };
            match sent {
                Ok(()) => {
                    // The status first: a function stopped after it never sends again.
                    let now_ms = chain.now_ms;
                    let outcome = self.delivered(message, chain, path, user).await;
                    self.update_user(user, |u| u.partner_sent(&message.partner, session, now_ms))
                        .await;
                    return outcome.map(Some);
                }
                Err(error) => {
                    if let Some(outcome) = self.not_sent(message, chain, path, user, error).await? {
                        return Ok(Some(outcome));
                    }
                }
            }
        }
        Ok(None)
    }

    pub(super) async fn subscribe(
        &self,
        message: &StoredMessage,
        chain: &mut Chain,
        users: &[ChannelUser],
    ) -> Result<Option<PushOutcome>, StoreError> {
        let path = PushPath::Subscribe;
        let Some(form) = chain.record.subscribe.clone() else {
            chain.attempt(
                path,
                AttemptOutcome::Skipped,
                None,
                Some("no subscribe form".into()),
                None,
            );
            return Ok(None);
        };
        let granted: Vec<&ChannelUser> = users
            .iter()
            .filter(|u| u.grants.get(&form.template_id).is_some_and(|n| *n > 0))
            .collect();
        if granted.is_empty() {
            let reason = format!("no grant for template {}", form.template_id);
            chain.attempt(
                path,
                AttemptOutcome::Skipped,
                users.first(),
                Some(reason),
                None,
            );
            return Ok(None);
        }
        for user in granted {
            let Some(sent) = self
                .send_to(chain, path, user, Outgoing::Subscribe(&form))
                .await
            else {
                continue;
            };
            let template = form.template_id.as_str();
            match sent {
                Ok(()) => {
                    // The status first, then the grant it spent (one grant is one send).
                    let outcome = self.delivered(message, chain, path, user).await;
                    self.update_user(user, |u| {
                        if let Some(left) = u.grants.get_mut(template) {
                            *left = left.saturating_sub(1);
                            if *left == 0 {
                                u.grants.remove(template);
                            }
                        }
                    })
                    .await;
                    return outcome.map(Some);
                }
                Err(error) => {
                    if error.errcode() == Some(43101) {
                        // Refused, or no grant left at WeChat: ours is wrong, forget it.
                        self.update_user(user, |u| {
                            u.grants.remove(template);
                        })
                        .await;
                    }
                    if let Some(outcome) = self.not_sent(message, chain, path, user, error).await? {
                        return Ok(Some(outcome));
                    }
                }
            }
        }
        Ok(None)
    }

    /// A send WeChat did not take: refused for good, it is recorded and the chain goes on
    /// (`None`); otherwise it goes back to `queued` to be retried.
    async fn not_sent(
        &self,
        message: &StoredMessage,
        chain: &mut Chain,
        path: PushPath,
        user: &ChannelUser,
        error: CallError,
    ) -> Result<Option<PushOutcome>, StoreError> {
        if error.is_final() {
            chain.attempt(
                path,
                AttemptOutcome::Refused,
                Some(user),
                Some(error.to_string()),
                error.errcode(),
            );
            return Ok(None);
        }
        // WeChat may have delivered it: the setting decides between sending again and
        // ending it `uncertain`; the attempt says so either way.
        let lost = error.answer_lost();
        let reason = error.to_string();
        chain.attempt(
            path,
            if lost {
                AttemptOutcome::AnswerLost
            } else {
                AttemptOutcome::Retry
            },
            Some(user),
            Some(reason.clone()),
            error.errcode(),
        );
        if lost && self.bridge.config.lost_send_answer == LostSendAnswer::Report {
            chain.record.path = Some(path);
            let record = chain.record.clone();
            let uncertain = Some(lost_answer::UNCERTAIN.to_owned());
            return Ok(Some(
                self.settle(message, record, MessageStatus::Uncertain, uncertain)
                    .await?,
            ));
        }
        // WeChat was busy, or the answer was lost and it is sent again: the push goes back
        // to `queued` and the record is retried.
        self.bridge
            .store
            .record_push(
                message,
                &[MessageStatus::Sending],
                MessageStatus::Queued,
                Some(&reason),
                &chain.record,
            )
            .await?;
        Ok(Some(PushOutcome::Retry(reason)))
    }
}
