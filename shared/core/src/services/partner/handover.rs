//! Hand-over (merged mode): a partner hands a user to another partner. The user's next
//! message goes to the receiving partner; the user may be told in a note (a reply of the
//! handing partner, counted against the window like any); the receiving partner gets a
//! `conversation.handed_over` webhook with the latest messages and a note of its own.
//!
//! Who may hand to whom is configuration ([`crate::config::BridgeConfig::may_hand_over`]);
//! who may hand *this* user over is routing: the partner the user's messages go to, or
//! the default partner ([`crate::model::Routing::may_hand_over`]) — another is refused
//! (409 `not_active_partner`). A repeat of the request (same `handover_id`) does it again
//! harmlessly, however late: the hand-over's record in the store (one per partner and id,
//! kept for good) tells it applied, so the routing is not switched again even after the
//! user moved on (nor refused because the partner is no longer the active one); the note
//! is stored once, the webhook delivered under the same id.

use super::ReplyAccepted;
use super::{valid_client_id, PartnerError, SendRequest};
use super::{Answer, ConflictCode, HandoverAnswer, HandoverRequest, MessageView, PartnerApi};
use crate::config::{DialogMode, PartnerConfig};
use crate::model::{routing, ActiveBecause, Content, Conversation, HandoverRecord, StoredMessage};
use crate::ports::store::{HandoverStore, MessageStore, StoreError};
use crate::ports::Ports;
use crate::services::webhook::{self, Delivery};
use serde_json::json;

/// How many of the latest messages the receiving partner gets as context.
pub const HANDOVER_CONTEXT: usize = 10;
/// The longest note for the receiving partner.
const MAX_PARTNER_NOTE_CHARS: usize = 2000;

impl<P: Ports> PartnerApi<P> {
    /// Hands the user of `partner`'s conversation to `request.to`: the request checked, the
    /// routing switched (once per hand-over id), the note to the user sent, and the
    /// receiving partner told.
    pub async fn hand_over(
        &self,
        partner: &str,
        conversation_id: &str,
        request: HandoverRequest,
    ) -> Answer<HandoverAnswer> {
        handover_in_this_mode(self.bridge.config.dialog.mode)?;
        self.check_id_and_note(partner, &request)?;
        // Another partner's conversation is not found before anything else is said of it.
        let from = self.own_conversation(partner, conversation_id).await?;
        let receiving = self.check_receiving(partner, &request)?;
        let record = HandoverRecord {
            partner: partner.to_owned(),
            handover_id: request.handover_id.clone(),
            conversation_id: from.id.clone(),
            to: request.to.clone(),
            at_ms: self.now_ms(),
        };
        self.apply_handover(&from, &record).await?;
        let note = self.note_to_user(partner, &from, &request).await?;
        let to_id = self
            .tell_receiving(receiving, &from, &record, &request)
            .await?;
        tracing::info!(partner, to = %request.to, "user handed over");
        Ok(HandoverAnswer {
            conversation_id: to_id,
            to: request.to,
            note,
        })
    }

    /// The hand-over's id (55 characters: the note to the user is stored under
    /// `handover:{id}`, within 64) and the note to the user, a reply of this partner's.
    fn check_id_and_note(&self, partner: &str, request: &HandoverRequest) -> Answer<()> {
        if !valid_client_id(&request.handover_id, 55) {
            return Err(PartnerError::field(
                "handover_id",
                "1 to 55 characters of A-Z a-z 0-9 - _ . : @",
            ));
        }
        if let Some(text) = &request.note_to_user {
            let note = Content::Text { text: text.clone() };
            note.validate()
                .map_err(|_| PartnerError::field("note_to_user", "1 to 2048 bytes of text"))?;
            self.fits_with_sender(partner, &note)?;
        }
        Ok(())
    }

    /// The receiving partner: configured, another one, one this partner may hand to; and
    /// the note it gets.
    fn check_receiving(&self, partner: &str, request: &HandoverRequest) -> Answer<&PartnerConfig> {
        let config = &self.bridge.config;
        let Some(receiving) = config.partner(&request.to) else {
            return Err(PartnerError::field("to", "names no partner"));
        };
        if request.to == partner {
            return Err(PartnerError::field(
                "to",
                "the conversation is this partner's already",
            ));
        }
        if request
            .note_to_partner
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_PARTNER_NOTE_CHARS)
        {
            return Err(PartnerError::field(
                "note_to_partner",
                "at most 2000 characters",
            ));
        }
        config
            .may_hand_over(partner, &request.to)
            .map_err(PartnerError::Forbidden)?;
        Ok(receiving)
    }

    /// The note to the user, sent as this partner's reply (stored once, under
    /// `handover:{id}`).
    async fn note_to_user(
        &self,
        partner: &str,
        from: &Conversation,
        request: &HandoverRequest,
    ) -> Answer<Option<ReplyAccepted>> {
        let Some(text) = request.note_to_user.clone() else {
            return Ok(None);
        };
        let note = SendRequest {
            conversation_id: Some(from.id.clone()),
            to: None,
            client_message_id: format!("handover:{}", request.handover_id),
            content: Content::Text { text },
        };
        Ok(Some(self.send(partner, note).await?))
    }

    /// The `conversation.handed_over` webhook, with the latest messages as context and the
    /// user's window as the receiving partner sees it: the receiving conversation's id.
    async fn tell_receiving(
        &self,
        receiving: &PartnerConfig,
        from: &Conversation,
        record: &HandoverRecord,
        request: &HandoverRequest,
    ) -> Answer<String> {
        let mut context = self
            .bridge
            .store
            .history(&from.id, HANDOVER_CONTEXT)
            .await
            .map_err(PartnerError::store)?;
        context.reverse();
        let user = self.user_of(from).await?;
        let mode = self.bridge.config.dialog.mode;
        let to_id = routing::conversation_id(mode, &from.channel, &from.openid, &record.to);
        let delivery_id = format!("handover:{}:{}", record.partner, record.handover_id);
        let body = json!({
            "type": "conversation.handed_over",
            "delivery_id": delivery_id,
            "conversation": {"id": to_id, "channel": from.channel, "partner": record.to},
            "from": {"partner": record.partner, "conversation_id": from.id},
            "note": request.note_to_partner,
            "context": context.into_iter().map(handed).collect::<Vec<_>>(),
            "user": webhook::user_fields(&user, &record.to),
            "window": self.window_of(&user, &record.to),
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let delivered = webhook::deliver(
            &self.bridge.webhooks,
            receiving,
            "conversation.handed_over",
            &delivery_id,
            body,
            record.at_ms.div_euclid(1000),
        )
        .await;
        if delivered != Delivery::Delivered {
            let (partner, to) = (&record.partner, &record.to);
            tracing::warn!(%partner, %to, outcome = delivered.name(), "hand-over webhook not delivered");
            return Err(PartnerError::NotDelivered("handover_id"));
        }
        Ok(to_id)
    }
}

/// Hand-overs are merged mode's: in the others each partner has its own chat.
fn handover_in_this_mode(mode: DialogMode) -> Answer<()> {
    let why = match mode {
        DialogMode::Merged => return Ok(()),
        DialogMode::Separate => {
            "separate mode: each channel belongs to one partner, so there is no one to hand over to"
        }
        DialogMode::SubMerchant => {
            "sub_merchant mode: each partner has its own chat, and the user picks it"
        }
    };
    Err(PartnerError::conflict(
        ConflictCode::HandoverNotInThisMode,
        why,
    ))
}

impl<P: Ports> PartnerApi<P> {
    /// The user's next message goes to the receiving partner, once per hand-over id: a
    /// repeat (found by its record, or on the user as an earlier version kept it) changes
    /// nothing; a new hand-over only by a partner that may hand this user over.
    async fn apply_handover(&self, from: &Conversation, record: &HandoverRecord) -> Answer<()> {
        let default_partner = self.bridge.config.dialog.default_partner.as_deref();
        let kept_on_user = format!("{}:{}", record.partner, record.handover_id);
        for _ in 0..3 {
            let mut user = self.user_of(from).await?;
            if user.routing.handed_over_before(&kept_on_user) {
                return Ok(());
            }
            if !user.routing.may_hand_over(&record.partner, default_partner) {
                // Perhaps a repeat, after the user moved on (or after this very hand-over).
                let first = self
                    .bridge
                    .store
                    .handover(&record.partner, &record.handover_id)
                    .await
                    .map_err(PartnerError::store)?;
                return match first {
                    Some(first) => same_handover(&first, record),
                    None => Err(PartnerError::conflict(
                        ConflictCode::NotActivePartner,
                        "the user talks to another partner: only that partner or the default partner may hand them over",
                    )),
                };
            }
            user.routing
                .activate(&record.to, record.at_ms, ActiveBecause::HandedOver);
            match self.bridge.store.put_handover(&user, record).await {
                Ok(None) => return Ok(()),
                Ok(Some(first)) => return same_handover(&first, record),
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(PartnerError::store(error)),
            }
        }
        Err(PartnerError::conflict(
            ConflictCode::Changed,
            "the user changed meanwhile; retry",
        ))
    }
}

/// A hand-over id recorded before: the same request again is done, another is refused.
fn same_handover(first: &HandoverRecord, again: &HandoverRecord) -> Answer<()> {
    if first.same_request(again) {
        return Ok(());
    }
    Err(PartnerError::conflict(
        ConflictCode::HandoverIdReused,
        "handover_id was used for a different hand-over",
    ))
}

/// A message of the handing conversation as the receiving partner gets it: an entry's
/// `session_from` is the handing partner's page context
/// ([`crate::services::inbound::context_owner`]), so it stays behind.
fn handed(message: StoredMessage) -> MessageView {
    let mut view = MessageView::from(message);
    if let Some(content) = view.content.as_object_mut() {
        content.remove("session_from");
    }
    view
}
