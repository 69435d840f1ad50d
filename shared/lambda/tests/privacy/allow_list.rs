//! The allow-list: every JSON path a partner may receive, per webhook event and API answer,
//! and whose it is. A path not on it fails the tests until it is put here with its class,
//! so no new field reaches partners unseen.

use super::paths::leaves;
use serde_json::Value;
use std::collections::BTreeSet;

/// Whose the value at a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The receiving partner's own: its conversation, its messages, its window, its
    /// pushes, the entry context of its page. Another partner's value there is a leak.
    Own,
    /// Meant for every partner that reaches the user: the event's name, the user's ids
    /// and binding (bindings are shared), who the user's next message goes to, the API's
    /// fixed refusal texts. Never any partner's entry context.
    All,
    /// The handing partner's, given to the receiving partner by the hand-over it asked
    /// for: the handing conversation's latest messages and its note. Never entry context.
    Handed,
}

use Class::{All, Handed, Own};

/// A shape partners receive in several places: (path inside it, class) for each field.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    name: &'static str,
    paths: &'static [(&'static str, Class)],
}

const WINDOW: Group = Group {
    name: "WINDOW",
    paths: &[
        ("open", Own),
        ("open_until_ms", Own),
        ("sends_left", Own),
        ("entry_allowance", Own),
        ("entry_allowance_until_ms", Own),
        // Empty, or the grants of the partner's own templates.
        ("subscribe_grants", Own),
        ("subscribe_grants.*", Own),
        ("last_user_message_at_ms", Own),
    ],
};

/// `conversation` in webhooks: the receiving partner's conversation.
const WEBHOOK_CONVERSATION: Group = Group {
    name: "WEBHOOK_CONVERSATION",
    paths: &[("id", Own), ("channel", Own), ("partner", Own)],
};

/// `user` in webhooks.
const USER: Group = Group {
    name: "USER",
    paths: &[
        ("channel", All),
        ("openid", All),
        ("unionid", All),
        ("app_user_id", All),
        // Empty unless the latest entry's context is the receiving partner's.
        ("session_context", Own),
        ("session_context[][]", Own),
    ],
};

/// What the user sent (a push as `inbound` types it), in a conversation of the partner.
const USER_CONTENT: Group = Group {
    name: "USER_CONTENT",
    paths: &[
        ("type", Own),
        ("msg_id", Own),
        ("content", Own),
        ("media_id", Own),
        ("pic_url", Own),
        ("title", Own),
        ("app_id", Own),
        ("page_path", Own),
        ("thumb_url", Own),
        ("thumb_media_id", Own),
        ("entries[].template_id", Own),
        ("entries[].status", Own),
        ("entries[].popup_scene", Own),
        ("entries[].msg_id", Own),
        ("entries[].error_code", Own),
        ("entries[].error_status", Own),
        ("msg_type", Own),
        ("fields.*", Own),
        ("business_id", Own),
        ("reopened.at_ms", Own),
        ("reopened.reason", Own),
    ],
};

/// An entry's raw `session-from`: only in the conversation of the partner the entry's
/// context belongs to, and never handed over with it.
const ENTRY: Group = Group {
    name: "ENTRY",
    paths: &[("session_from", Own)],
};

/// What a partner sent, as history shows it.
const PARTNER_CONTENT: Group = Group {
    name: "PARTNER_CONTENT",
    paths: &[
        ("type", Own),
        ("text", Own),
        ("url", Own),
        ("base64_bytes", Own),
        ("title", Own),
        ("description", Own),
        ("thumb_url", Own),
        ("pagepath", Own),
        ("thumb_media_id", Own),
    ],
};

/// An image message's copy.
const MEDIA: Group = Group {
    name: "MEDIA",
    paths: &[
        ("status", Own),
        ("content_type", Own),
        ("bytes", Own),
        ("reason", Own),
        ("path", Own),
    ],
};

/// A push as history shows it (`push`), and its attempts.
const PUSH_RECORD: Group = Group {
    name: "PUSH_RECORD",
    paths: &[
        ("push_id", Own),
        ("to.app_user_id", All),
        ("to.channel", All),
        ("to.openid", All),
        ("subscribe.template_id", Own),
        ("subscribe.data.*.value", Own),
        ("subscribe.page", Own),
        ("subscribe.miniprogram_state", Own),
        ("subscribe.lang", Own),
        ("expires_at_ms", Own),
        ("fallback", Own),
        ("attempts", Own),
        ("path", Own),
    ],
};

const ATTEMPT: Group = Group {
    name: "ATTEMPT",
    paths: &[
        ("path", Own),
        ("outcome", Own),
        ("channel", All),
        ("openid", All),
        ("reason", Own),
        ("errcode", Own),
        ("at_ms", Own),
    ],
};

/// A message as history (and a hand-over's context) shows it.
const MESSAGE_VIEW: Group = Group {
    name: "MESSAGE_VIEW",
    paths: &[
        ("id", Own),
        ("conversation_id", Own),
        ("direction", Own),
        ("partner", Own),
        ("status", Own),
        ("status_reason", Own),
        ("created_at_ms", Own),
    ],
};

/// `message` in `message.received`, `conversation.started` and `conversation.reopened`.
const WEBHOOK_MESSAGE: Group = Group {
    name: "WEBHOOK_MESSAGE",
    paths: &[
        ("id", Own),
        ("direction", Own),
        ("created_at_ms", Own),
        ("wechat_msg_id", Own),
        // `null`, or the copy of an image (pending when the webhook goes).
        ("media", Own),
        ("media.status", Own),
        ("media.path", Own),
    ],
};

/// A conversation as the API shows it.
const CONVERSATION_VIEW: Group = Group {
    name: "CONVERSATION_VIEW",
    paths: &[
        ("id", Own),
        ("channel", Own),
        ("openid", All),
        ("partner", Own),
        ("created_at_ms", Own),
        ("last_message_at_ms", Own),
        ("idle_at_ms", Own),
        ("app_user_id", All),
        // Merged mode: who the user's next message goes to, another partner included (a desk
        // needs it to know whether to answer or hand over).
        ("active_partner", All),
        ("status", Own),
        ("closed.at_ms", Own),
        ("closed.reason", Own),
    ],
};

/// A stored reply or push, as its 202 says.
const ACCEPTED: Group = Group {
    name: "ACCEPTED",
    paths: &[
        ("message_id", Own),
        ("conversation_id", Own),
        ("status", Own),
        ("created_at_ms", Own),
    ],
};

const REPLY_FORECAST: Group = Group {
    name: "REPLY_FORECAST",
    paths: &[("will_hold", Own), ("hold_reason", Own)],
};

/// The fields of an event or answer itself.
const EVENT: Group = Group {
    name: "EVENT",
    paths: &[("type", All), ("delivery_id", Own)],
};
const STATUS: Group = Group {
    name: "STATUS",
    paths: &[("id", Own), ("status", Own), ("reason", Own), ("path", Own)],
};
const PUSH_STATUS: Group = Group {
    name: "PUSH_STATUS",
    paths: &[
        ("id", Own),
        ("message_id", Own),
        ("status", Own),
        ("reason", Own),
        ("path", Own),
        ("attempts", Own),
    ],
};
const REOPENED: Group = Group {
    name: "REOPENED",
    paths: &[
        ("reopened", Own),
        ("reopened.at_ms", Own),
        ("reopened.reason", Own),
    ],
};
const CLOSED: Group = Group {
    name: "CLOSED",
    paths: &[("at_ms", Own), ("reason", Own)],
};
const HANDOVER_FROM: Group = Group {
    name: "HANDOVER_FROM",
    paths: &[("partner", Handed), ("conversation_id", Handed)],
};
const HANDOVER_ANSWER: Group = Group {
    name: "HANDOVER_ANSWER",
    paths: &[("conversation_id", Own), ("to", All)],
};
const BINDING: Group = Group {
    name: "BINDING",
    paths: &[("channel", All), ("openid", All), ("app_user_id", All)],
};
const TYPING: Group = Group {
    name: "TYPING",
    paths: &[("typing", Own)],
};
const PAGE: Group = Group {
    name: "PAGE",
    paths: &[("next_cursor", Own)],
};
const REFUSAL: Group = Group {
    name: "REFUSAL",
    paths: &[("error", All), ("reason", All)],
};
const HANDOVER_NOTE: Group = Group {
    name: "HANDOVER_NOTE",
    paths: &[("note", Handed)],
};
const PUSH_ID: Group = Group {
    name: "PUSH_ID",
    paths: &[("push_id", Own)],
};
/// `GET /v1/conversations` with no conversation of the partner's.
const NO_CONVERSATIONS: Group = Group {
    name: "NO_CONVERSATIONS",
    paths: &[("conversations", Own)],
};

/// An answer that is not JSON: an image's bytes.
const BYTES: Group = Group {
    name: "BYTES",
    paths: &[("(bytes)", Own)],
};

/// Where a group sits in an event or answer, and the class it takes there (`None`: each
/// path's own).
type Placement = (String, Group, Option<Class>);

fn at(prefix: &str, group: Group) -> Placement {
    (prefix.to_owned(), group, None)
}

fn inbound_webhook() -> Vec<Placement> {
    vec![
        at("", EVENT),
        at("message", WEBHOOK_MESSAGE),
        at("message.content", USER_CONTENT),
        at("message.content", ENTRY),
        at("conversation", WEBHOOK_CONVERSATION),
        at("user", USER),
        at("window", WINDOW),
        at("", REOPENED),
    ]
}

/// Messages as history shows them; a hand-over's context without an entry's raw
/// `session_from` (the handing partner's context stays behind).
fn message_views(prefix: &str, handed: bool) -> Vec<Placement> {
    let mut groups = vec![
        ("", MESSAGE_VIEW),
        (".content", USER_CONTENT),
        (".content", PARTNER_CONTENT),
        (".media", MEDIA),
        (".push", PUSH_RECORD),
        (".push.attempts[]", ATTEMPT),
    ];
    if !handed {
        groups.push((".content", ENTRY));
    }
    let class = handed.then_some(Handed);
    groups
        .into_iter()
        .map(|(inner, group)| (format!("{prefix}{inner}"), group, class))
        .collect()
}

fn conversation_view(prefix: &str) -> Vec<Placement> {
    let window = match prefix {
        "" => "window".to_owned(),
        _ => format!("{prefix}.window"),
    };
    vec![at(prefix, CONVERSATION_VIEW), at(&window, WINDOW)]
}

/// Every event and answer partners receive, with where each group sits in it.
pub fn kinds() -> Vec<(&'static str, Vec<Placement>)> {
    let mut handed_over = vec![
        at("", EVENT),
        at("conversation", WEBHOOK_CONVERSATION),
        at("from", HANDOVER_FROM),
        at("", HANDOVER_NOTE),
        at("user", USER),
        at("window", WINDOW),
    ];
    handed_over.extend(message_views("context[]", true));
    let mut history = vec![at("", PAGE)];
    history.extend(message_views("messages[]", false));
    let mut listed = conversation_view("conversations[]");
    listed.push(at("", NO_CONVERSATIONS));
    let status = |object: &str, group: Group| {
        vec![
            at("", EVENT),
            at(object, group),
            at(&format!("{object}.attempts[]"), ATTEMPT),
            at("conversation", WEBHOOK_CONVERSATION),
        ]
    };
    vec![
        ("message.received", inbound_webhook()),
        ("conversation.started", inbound_webhook()),
        ("conversation.reopened", inbound_webhook()),
        ("message.status", status("message", STATUS)),
        ("push.status", status("push", PUSH_STATUS)),
        ("conversation.handed_over", handed_over),
        (
            "conversation.closed",
            vec![
                at("", EVENT),
                at("conversation", WEBHOOK_CONVERSATION),
                at("closed", CLOSED),
                at("user", USER),
            ],
        ),
        (
            "POST /v1/messages 202",
            vec![
                at("", ACCEPTED),
                at("", REPLY_FORECAST),
                at("window", WINDOW),
            ],
        ),
        (
            "POST /v1/pushes 202",
            vec![at("", ACCEPTED), at("", PUSH_ID)],
        ),
        ("GET /v1/conversations 200", listed),
        (
            "GET /v1/conversations/{conversation_id} 200",
            conversation_view(""),
        ),
        (
            "GET /v1/conversations/{conversation_id}/messages 200",
            history,
        ),
        (
            "POST /v1/conversations/{conversation_id}/typing 200",
            vec![at("", TYPING)],
        ),
        (
            "POST /v1/conversations/{conversation_id}/handover 200",
            vec![
                at("", HANDOVER_ANSWER),
                at("note", ACCEPTED),
                at("note", REPLY_FORECAST),
                at("note.window", WINDOW),
            ],
        ),
        (
            "POST /v1/conversations/{conversation_id}/close 200",
            conversation_view(""),
        ),
        (
            "PUT /v1/bindings/{channel}/{openid} 200",
            vec![at("", BINDING)],
        ),
        (
            "GET /v1/conversations/{conversation_id}/media/{message_id} 200",
            vec![at("", BYTES)],
        ),
        (
            "GET /v1/media/{channel}/{media_id} 200",
            vec![at("", BYTES)],
        ),
        ("error", vec![at("", REFUSAL)]),
    ]
}

/// A leaf of what a partner received: its path, its class and its value (`None` for the
/// bytes of an answer that is not JSON).
pub type Leaf<'v> = (String, Class, Option<&'v Value>);

/// The allow-list, and which of its entries were seen.
pub struct AllowList {
    kinds: Vec<(&'static str, Vec<Placement>)>,
    seen: BTreeSet<(&'static str, usize)>,
    kinds_seen: BTreeSet<&'static str>,
}

/// What a check found wrong.
#[derive(Debug)]
pub enum Breach {
    UnknownKind(String),
    UnlistedPath { kind: String, path: String },
}

impl AllowList {
    pub fn new() -> Self {
        Self {
            kinds: kinds(),
            seen: BTreeSet::new(),
            kinds_seen: BTreeSet::new(),
        }
    }

    /// The class of `path` in `kind`, and marks it seen; `Err` when it is not listed.
    pub fn class_of(&mut self, kind: &str, path: &str) -> Result<Class, Breach> {
        let Some((name, placements)) = self.kinds.iter().find(|(k, _)| *k == kind) else {
            return Err(Breach::UnknownKind(kind.to_owned()));
        };
        self.kinds_seen.insert(name);
        let mut found = None;
        for (prefix, group, class) in placements {
            let inner = match (prefix.is_empty(), path.strip_prefix(prefix.as_str())) {
                (true, _) => Some(path),
                (false, Some(rest)) => rest.strip_prefix('.'),
                (false, None) => None,
            };
            let Some(inner) = inner else { continue };
            if let Some(index) = group.paths.iter().position(|(p, _)| *p == inner) {
                self.seen.insert((group.name, index));
                found = found.or(Some(class.unwrap_or(group.paths[index].1)));
            }
        }
        found.ok_or_else(|| Breach::UnlistedPath {
            kind: kind.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Every leaf of a received JSON body (or its bytes), with its class.
    pub fn classify<'v>(
        &mut self,
        kind: &str,
        json: Option<&'v Value>,
    ) -> Result<Vec<Leaf<'v>>, Breach> {
        let Some(json) = json else {
            let class = self.class_of(kind, "(bytes)")?;
            return Ok(vec![("(bytes)".into(), class, None)]);
        };
        leaves(json)
            .into_iter()
            .map(|(path, value)| {
                let class = self.class_of(kind, &path)?;
                Ok((path, class, Some(value)))
            })
            .collect()
    }

    /// The kinds never received, and the group entries no received path used.
    pub fn unseen(&self) -> (Vec<&'static str>, Vec<String>) {
        let kinds = self
            .kinds
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !self.kinds_seen.contains(k))
            .collect();
        let mut entries = Vec::new();
        for group in GROUPS {
            for (index, (path, _)) in group.paths.iter().enumerate() {
                if !self.seen.contains(&(group.name, index)) {
                    entries.push(format!("{}: {path}", group.name));
                }
            }
        }
        (kinds, entries)
    }
}

const GROUPS: &[Group] = &[
    WINDOW,
    WEBHOOK_CONVERSATION,
    USER,
    USER_CONTENT,
    ENTRY,
    PARTNER_CONTENT,
    MEDIA,
    PUSH_RECORD,
    ATTEMPT,
    MESSAGE_VIEW,
    WEBHOOK_MESSAGE,
    CONVERSATION_VIEW,
    ACCEPTED,
    REPLY_FORECAST,
    EVENT,
    STATUS,
    PUSH_STATUS,
    REOPENED,
    CLOSED,
    HANDOVER_FROM,
    HANDOVER_ANSWER,
    HANDOVER_NOTE,
    BINDING,
    TYPING,
    PAGE,
    REFUSAL,
    BYTES,
    PUSH_ID,
    NO_CONVERSATIONS,
];
