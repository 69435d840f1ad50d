//! Which partner a user's message goes to, and which conversation it belongs to.
//!
//! **Merged** mode: many partners share the user's one WeChat conversation. A message goes
//! to the *active partner*; with none, the dialog's `default_partner` answers. What moves
//! the active partner:
//! - the user's choice: an explicit switch (`#` and a partner's number or name: `#2`,
//!   `#Hotel Lotus`; the numbers count the partners the user has talked to, most recent
//!   first) or an entry from a partner's page (a vouched `session-from` naming it);
//! - a hand-over by the partner the user's messages go to (or by the default partner);
//! - a partner writing to the user (a reply or push sent), but only while the user has no
//!   choice standing: nobody is active, or the active partner is one that became so by
//!   writing. Once the user chose (or was handed over), another partner's reply is still
//!   delivered, with its name, and the user's next message still goes to the partner chosen.
//!
//! Of two choices (or hand-overs) the later counts; a choice wins over partners writing
//! whenever either came; of two partners writing, the later counts. The active partner's
//! own replies keep why it is active: a user handed over stays so while the receiving
//! partner answers.
//! **Separate** mode: the channel belongs to one partner.
//! **Sub-merchant** mode: the session belongs to one partner — a push with a `BusinessId`
//! to the partner registered under it, one without to the default partner (the inbound
//! service resolves the id; [`partner_for`] answers the main session's).
//!
//! Conversation ids are derived, so get-or-create is one conditional write.

use crate::config::{BridgeConfig, ChannelConfig, DialogMode};
use serde::{Deserialize, Serialize};

/// How many partners a user's switch list remembers.
pub const RECENT_PARTNERS: usize = 9;

/// Why a partner is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveBecause {
    SessionFrom,
    PartnerWrote,
    UserSwitched,
    /// Another partner handed the user over (`POST /v1/conversations/{id}/handover`).
    HandedOver,
}

impl ActiveBecause {
    /// The user's own choice (a switch, an entry from a partner's page) or a hand-over:
    /// it holds against partners writing.
    pub fn holds(self) -> bool {
        self != Self::PartnerWrote
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivePartner {
    pub partner: String,
    pub since_ms: i64,
    pub because: ActiveBecause,
}

/// Routing state kept on the channel user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub active: Option<ActivePartner>,
    /// Partners the user has talked to, most recent first: the numbers of `#n`. The active
    /// partner is first.
    pub recent: Vec<String>,
    /// Hand-overs (`{partner}:{handover id}`) an earlier version kept on the user, before
    /// each hand-over had a record of its own in the store: still known as applied, never
    /// written any more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handovers: Vec<String>,
}

impl Routing {
    /// Whether an earlier version recorded the hand-over `id` (`{partner}:{handover id}`)
    /// on this user.
    pub fn handed_over_before(&self, id: &str) -> bool {
        self.handovers.iter().any(|applied| applied == id)
    }

    /// The user has been routed to `partner`: it is active, or among those talked to.
    pub fn knows(&self, partner: &str) -> bool {
        self.active.as_ref().is_some_and(|a| a.partner == partner)
            || self.recent.iter().any(|p| p == partner)
    }

    /// Whether `partner` may hand the user over: it is the active partner, or the default
    /// partner (which also answers while nobody is active).
    pub fn may_hand_over(&self, partner: &str, default_partner: Option<&str>) -> bool {
        self.active.as_ref().is_some_and(|a| a.partner == partner)
            || default_partner == Some(partner)
    }

    /// `partner` becomes active for `because` at `at_ms`, by the rules of the module's
    /// docs. Events may be handled out of order (a retried push, a slow dispatch): the
    /// outcome is the one of handling them in the order they happened.
    pub fn activate(&mut self, partner: &str, at_ms: i64, because: ActiveBecause) {
        if let Some(active) = &self.active {
            let older = active.since_ms > at_ms;
            match (active.because.holds(), because.holds()) {
                // A partner writing while a choice holds: delivered, remembered second (so
                // `#2` reaches it), the active partner kept.
                (true, false) => {
                    if active.partner != partner {
                        self.remember(partner, 1);
                    }
                    return;
                }
                // Of two choices, or of two partners writing, the later one counts.
                (true, true) | (false, false) if older => return,
                // A choice wins over a partner writing, whichever came first.
                _ => {}
            }
        }
        self.active = Some(ActivePartner {
            partner: partner.to_owned(),
            since_ms: at_ms,
            because,
        });
        self.remember(partner, 0);
    }

    /// Puts `partner` at `place` of the recent list (once, the list bounded).
    fn remember(&mut self, partner: &str, place: usize) {
        self.recent.retain(|p| p != partner);
        self.recent
            .insert(place.min(self.recent.len()), partner.to_owned());
        self.recent.truncate(RECENT_PARTNERS);
    }
}

/// A hand-over applied, kept for good once per `(partner, handover id)` (a store record of
/// its own, as a client message id's): a repeat of the request, however late, finds it and
/// moves nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverRecord {
    /// The handing partner.
    pub partner: String,
    pub handover_id: String,
    /// The handing partner's conversation.
    pub conversation_id: String,
    /// The receiving partner.
    pub to: String,
    pub at_ms: i64,
}

impl HandoverRecord {
    /// Whether `other` asks for the same hand-over (the same user, to the same partner).
    pub fn same_request(&self, other: &HandoverRecord) -> bool {
        self.conversation_id == other.conversation_id && self.to == other.to
    }
}

/// The partner a user's message on `channel` goes to, if any is known.
pub fn partner_for<'c>(
    config: &'c BridgeConfig,
    channel: &'c ChannelConfig,
    routing: &'c Routing,
) -> Option<&'c str> {
    match config.dialog.mode {
        DialogMode::Separate => channel.partner.as_deref(),
        DialogMode::SubMerchant => config.dialog.default_partner.as_deref(),
        DialogMode::Merged => routing
            .active
            .as_ref()
            .map(|a| a.partner.as_str())
            .or(config.dialog.default_partner.as_deref()),
    }
}

/// The conversation of a user with a partner: per partner in merged and sub-merchant mode,
/// per channel in separate mode (where the channel is the partner's).
pub fn conversation_id(mode: DialogMode, channel: &str, openid: &str, partner: &str) -> String {
    match mode {
        DialogMode::Merged | DialogMode::SubMerchant => format!("{channel}:{openid}:{partner}"),
        DialogMode::Separate => format!("{channel}:{openid}"),
    }
}

/// A conversation id's channel and openid: `channel:openid:partner` in merged and
/// sub-merchant mode,
/// `channel:openid` in separate mode. Channel and partner ids have no `:` (configuration
/// refuses them), so they are read from the ends and everything between is the openid:
/// an openid with a `:` in it (WeChat's have none, a forged push's may) still reads back
/// as the id [`conversation_id`] made.
pub fn parse_conversation_id(mode: DialogMode, id: &str) -> Option<(&str, &str)> {
    let (channel, rest) = id.split_once(':')?;
    let openid = match mode {
        DialogMode::Merged | DialogMode::SubMerchant => rest.rsplit_once(':')?.0,
        DialogMode::Separate => rest,
    };
    (!channel.is_empty() && !openid.is_empty()).then_some((channel, openid))
}

/// Reads an explicit switch (`#2`, `#Hotel Lotus`, `#hotel-9`) from a user's text, and
/// resolves it to a partner id. `None` when the text is no switch or names no partner.
pub fn switch_target(config: &BridgeConfig, routing: &Routing, text: &str) -> Option<String> {
    let wanted = text.trim().strip_prefix(['#', '＃'])?.trim();
    if wanted.is_empty() {
        return None;
    }
    if let Ok(number) = wanted.parse::<usize>() {
        return routing.recent.get(number.checked_sub(1)?).cloned();
    }
    config
        .partners
        .iter()
        .find(|p| p.id.eq_ignore_ascii_case(wanted) || p.display_name.eq_ignore_ascii_case(wanted))
        .map(|p| p.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: &str) -> BridgeConfig {
        BridgeConfig::from_json(&format!(
            r#"{{"channels":[{{"id":"mp","app_id":"wx1","original_id":"gh_1","token":"t","mode":"plaintext","push_format":"xml","partner":"hotel-9"}}],
            "partners":[
              {{"id":"platform","display_name":"Trip Service","webhook_url":"http://127.0.0.1/p","signing_secret":"platform-secret-0123"}},
              {{"id":"hotel-9","display_name":"Hotel Lotus","webhook_url":"http://127.0.0.1/h","signing_secret":"hotel-secret-456789"}},
              {{"id":"air-2","display_name":"Sky Air","webhook_url":"http://127.0.0.1/a","signing_secret":"airline-secret-0000"}}],
            "dialog":{{"mode":"{mode}","default_partner":"platform"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn merged_routing_follows_the_last_writer_until_the_user_chooses() {
        let config = config("merged");
        let channel = &config.channels[0];
        let mut routing = Routing::default();
        assert_eq!(
            partner_for(&config, channel, &routing),
            Some("platform"),
            "default partner"
        );
        routing.activate("hotel-9", 1_000, ActiveBecause::PartnerWrote);
        assert_eq!(partner_for(&config, channel, &routing), Some("hotel-9"));
        routing.activate("air-2", 2_000, ActiveBecause::PartnerWrote);
        assert_eq!(partner_for(&config, channel, &routing), Some("air-2"));
        // An older write handled late does not take over.
        routing.activate("hotel-9", 1_500, ActiveBecause::PartnerWrote);
        assert_eq!(partner_for(&config, channel, &routing), Some("air-2"));
        // The user's entry from the hotel's page is a choice: the airline writing after it
        // is delivered, but the user's next message still goes to the hotel.
        routing.activate("hotel-9", 3_000, ActiveBecause::SessionFrom);
        routing.activate("air-2", 4_000, ActiveBecause::PartnerWrote);
        assert_eq!(partner_for(&config, channel, &routing), Some("hotel-9"));
        assert_eq!(
            routing.recent,
            ["hotel-9", "air-2"],
            "#2 reaches the airline"
        );
        // The hotel answering keeps why it is active.
        routing.activate("hotel-9", 5_000, ActiveBecause::PartnerWrote);
        let active = routing.active.clone().unwrap();
        assert_eq!(
            (active.because, active.since_ms),
            (ActiveBecause::SessionFrom, 3_000)
        );
        routing.activate("air-2", 6_000, ActiveBecause::UserSwitched);
        assert_eq!(partner_for(&config, channel, &routing), Some("air-2"));
    }

    #[test]
    fn a_choice_handled_late_still_wins_over_a_partner_writing_after_it() {
        let mut routing = Routing::default();
        routing.activate("platform", 1_000, ActiveBecause::PartnerWrote);
        routing.activate("air-2", 3_000, ActiveBecause::PartnerWrote);
        // The user switched at 2 000; the push was handled after the airline's reply.
        routing.activate("hotel-9", 2_000, ActiveBecause::UserSwitched);
        assert_eq!(routing.active.as_ref().unwrap().partner, "hotel-9");
        // An older choice handled late does not undo a newer one.
        routing.activate("platform", 1_500, ActiveBecause::SessionFrom);
        assert_eq!(routing.active.as_ref().unwrap().partner, "hotel-9");
    }

    #[test]
    fn only_the_partner_the_user_talks_to_or_the_default_partner_hands_over() {
        let mut routing = Routing::default();
        assert!(routing.may_hand_over("platform", Some("platform")));
        assert!(!routing.may_hand_over("hotel-9", Some("platform")));
        routing.activate("hotel-9", 1, ActiveBecause::UserSwitched);
        assert!(routing.may_hand_over("hotel-9", Some("platform")));
        assert!(routing.may_hand_over("platform", Some("platform")));
        assert!(!routing.may_hand_over("air-2", Some("platform")));
        assert!(!routing.may_hand_over("air-2", None));
    }

    #[test]
    fn separate_routing_is_by_channel() {
        let config = config("separate");
        let mut routing = Routing::default();
        routing.activate("air-2", 1, ActiveBecause::PartnerWrote);
        assert_eq!(
            partner_for(&config, &config.channels[0], &routing),
            Some("hotel-9")
        );
        assert_eq!(
            conversation_id(DialogMode::Separate, "mp", "o1", "hotel-9"),
            "mp:o1"
        );
        assert_eq!(
            conversation_id(DialogMode::Merged, "mp", "o1", "hotel-9"),
            "mp:o1:hotel-9"
        );
    }

    #[test]
    fn a_hand_over_holds_until_the_user_or_another_hand_over_moves_on() {
        let config = config("merged");
        let channel = &config.channels[0];
        let mut routing = Routing::default();
        routing.activate("platform", 1, ActiveBecause::PartnerWrote);
        routing.activate("hotel-9", 2, ActiveBecause::HandedOver);
        routing.activate("platform", 3, ActiveBecause::PartnerWrote);
        assert_eq!(
            partner_for(&config, channel, &routing),
            Some("hotel-9"),
            "the handing partner's note does not take the user back"
        );
        // The receiving partner answering keeps the hand-over: the handing one writing
        // again still does not take the user back.
        routing.activate("hotel-9", 4, ActiveBecause::PartnerWrote);
        routing.activate("platform", 5, ActiveBecause::PartnerWrote);
        assert_eq!(partner_for(&config, channel, &routing), Some("hotel-9"));
        routing.activate("air-2", 6, ActiveBecause::UserSwitched);
        assert_eq!(partner_for(&config, channel, &routing), Some("air-2"));
    }

    #[test]
    fn explicit_switch_by_number_or_name() {
        let config = config("merged");
        let mut routing = Routing::default();
        routing.activate("hotel-9", 1, ActiveBecause::PartnerWrote);
        routing.activate("air-2", 2, ActiveBecause::PartnerWrote);
        assert_eq!(
            switch_target(&config, &routing, "#2").as_deref(),
            Some("hotel-9")
        );
        assert_eq!(
            switch_target(&config, &routing, " ＃1 ").as_deref(),
            Some("air-2")
        );
        assert_eq!(
            switch_target(&config, &routing, "#hotel lotus").as_deref(),
            Some("hotel-9")
        );
        assert_eq!(
            switch_target(&config, &routing, "#platform").as_deref(),
            Some("platform")
        );
        for not_a_switch in ["#", "#0", "#7", "#Nobody", "hello #2", "2"] {
            assert_eq!(
                switch_target(&config, &routing, not_a_switch),
                None,
                "{not_a_switch}"
            );
        }
    }

    #[test]
    fn the_recent_list_is_bounded_and_deduplicated() {
        let mut routing = Routing::default();
        for n in 0..20 {
            routing.activate(&format!("p{}", n % 12), n, ActiveBecause::PartnerWrote);
        }
        assert_eq!(routing.recent.len(), RECENT_PARTNERS);
        assert_eq!(routing.recent[0], "p7");
    }

    #[test]
    fn sender_prefix_uses_the_display_name() {
        assert_eq!(config("merged").sender_prefix("hotel-9"), "【Hotel Lotus】");
    }

    #[test]
    fn conversation_ids_name_their_channel_and_user() {
        assert_eq!(
            parse_conversation_id(DialogMode::Merged, "mp:o1:hotel-9"),
            Some(("mp", "o1"))
        );
        assert_eq!(parse_conversation_id(DialogMode::Merged, "mp:o1"), None);
        assert_eq!(
            parse_conversation_id(DialogMode::Merged, "mp::hotel-9"),
            None
        );
        assert_eq!(
            parse_conversation_id(DialogMode::Separate, "mp:o1"),
            Some(("mp", "o1"))
        );
        assert_eq!(parse_conversation_id(DialogMode::Separate, "mp:"), None);
    }

    #[test]
    fn every_id_the_bridge_issues_reads_back_whatever_the_openid_holds() {
        for openid in [
            "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
            "o:with:colons",
            ":",
            "o:",
            "中文",
        ] {
            for mode in [
                DialogMode::Merged,
                DialogMode::Separate,
                DialogMode::SubMerchant,
            ] {
                let id = conversation_id(mode, "mp", openid, "hotel-9");
                assert_eq!(
                    parse_conversation_id(mode, &id),
                    Some(("mp", openid)),
                    "{mode:?} {id}"
                );
            }
        }
    }
}
