//! Random runs: users entering from partners' pages (signed or not, in a sub-merchant's
//! chat or the mini program's own), switching and writing, sending images; partners
//! replying, pushing, handing over, closing, reading and fetching images; the idle sweep.
//! After every step, everything each partner received passes the [`Guard`], and a partner
//! fetching an image of a conversation not its own gets exactly the answer of an image
//! that does not exist.

use super::guard::Guard;
use super::world::{session_from, Mode, Partner, World, CHANNEL};
use proptest::prelude::*;
use serde_json::{json, Value};

const USERS: [&str; 2] = ["o_alice", "o_bob"];

#[derive(Debug, Clone)]
enum Step {
    /// A user enters; `chat` 0 is the mini program's own, 1 and 2 the sub-merchant chats
    /// of the second and third partner (sub-merchant mode). `names` is the partner the
    /// `session-from` names, if any; `binds` puts the user's own openid in it.
    Enter {
        user: usize,
        chat: usize,
        names: Option<usize>,
        vouched: bool,
        binds: bool,
    },
    Write {
        user: usize,
        chat: usize,
    },
    /// `#Display Name` (merged mode).
    Switch {
        user: usize,
        to: usize,
    },
    Image {
        user: usize,
        chat: usize,
    },
    Reply {
        partner: usize,
        user: usize,
    },
    HandOver {
        partner: usize,
        user: usize,
        to: usize,
    },
    Close {
        partner: usize,
        user: usize,
    },
    Push {
        partner: usize,
        user: usize,
    },
    Read {
        partner: usize,
        user: usize,
    },
    FetchImage {
        partner: usize,
        image: usize,
    },
    IdleSweep,
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0..USERS.len();
    let partner = 0..3usize;
    prop_oneof![
        4 => (user.clone(), 0..3usize, proptest::option::of(0..3usize), any::<bool>(), any::<bool>())
            .prop_map(|(user, chat, names, vouched, binds)| Step::Enter { user, chat, names, vouched, binds }),
        4 => (user.clone(), 0..3usize).prop_map(|(user, chat)| Step::Write { user, chat }),
        2 => (user.clone(), partner.clone()).prop_map(|(user, to)| Step::Switch { user, to }),
        1 => (user.clone(), 0..3usize).prop_map(|(user, chat)| Step::Image { user, chat }),
        4 => (partner.clone(), user.clone()).prop_map(|(partner, user)| Step::Reply { partner, user }),
        2 => (partner.clone(), user.clone(), partner.clone())
            .prop_map(|(partner, user, to)| Step::HandOver { partner, user, to }),
        1 => (partner.clone(), user.clone()).prop_map(|(partner, user)| Step::Close { partner, user }),
        1 => (partner.clone(), user.clone()).prop_map(|(partner, user)| Step::Push { partner, user }),
        2 => (partner.clone(), user.clone()).prop_map(|(partner, user)| Step::Read { partner, user }),
        1 => (partner, 0..4usize).prop_map(|(partner, image)| Step::FetchImage { partner, image }),
        1 => Just(Step::IdleSweep),
    ]
}

/// Runs the steps; the first breach, with the step it followed.
async fn run(mode: Mode, steps: Vec<Step>) -> Result<(), String> {
    let mut world = World::new(mode).await;
    let mut guard = Guard::new();
    let partners = mode.partners();
    let mut images: Vec<String> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let chat_of =
            |chat: usize| (mode == Mode::SubMerchant && chat > 0).then(|| partners[chat].id);
        match step {
            Step::Enter {
                user,
                chat,
                names,
                vouched,
                binds,
            } => {
                let (order, uid) = (format!("ZQ{n}ORDERZ"), format!("ZQ{n}UIDZ"));
                let named = names.map(|p| partners[p].id);
                let mut pairs: Vec<(&str, &str)> =
                    named.map(|p| ("partner", p)).into_iter().collect();
                let app_user = format!("app-{}", USERS[*user]);
                if *binds {
                    pairs.extend([("uid", app_user.as_str()), ("openid", USERS[*user])]);
                } else {
                    pairs.push(("uid", &uid));
                    guard.keep(uid.clone(), chat_of(*chat).or(named));
                }
                pairs.push(("order", &order));
                guard.keep(order.clone(), chat_of(*chat).or(named));
                let from = session_from(&pairs, *vouched, world.now_ms());
                world.enters(USERS[*user], chat_of(*chat), &from).await;
            }
            Step::Write { user, chat } => {
                world
                    .writes(USERS[*user], chat_of(*chat), "Any news?")
                    .await;
            }
            Step::Switch { user, to } => {
                let text = format!("#{}", partners[*to].name);
                world.writes(USERS[*user], None, &text).await;
            }
            Step::Image { user, chat } => {
                images.push(world.sends_image(USERS[*user], chat_of(*chat)).await);
            }
            Step::Reply { partner, user } => {
                let body = json!({"to": {"channel": CHANNEL, "openid": USERS[*user]},
                                  "client_message_id": format!("r-{n}"),
                                  "content": {"type": "text", "text": "Noted."}});
                let id = partners[*partner].id;
                world
                    .api(id, "POST", "/v1/messages", "/v1/messages", body)
                    .await;
            }
            Step::HandOver { partner, user, to } => {
                let (from, to) = (partners[*partner], partners[*to]);
                let path = format!(
                    "/v1/conversations/{}/handover",
                    world.conversation_id(from.id, USERS[*user])
                );
                let body = json!({"handover_id": format!("ho-{n}"), "to": to.id,
                                  "note_to_user": "Someone else will answer.", "note_to_partner": "Over to you."});
                world
                    .api(
                        from.id,
                        "POST",
                        "/v1/conversations/{conversation_id}/handover",
                        &path,
                        body,
                    )
                    .await;
            }
            Step::Close { partner, user } => {
                let id = partners[*partner].id;
                let path = format!(
                    "/v1/conversations/{}/close",
                    world.conversation_id(id, USERS[*user])
                );
                let body = json!({"closing_text": "Bye.", "client_message_id": format!("c-{n}")});
                world
                    .api(
                        id,
                        "POST",
                        "/v1/conversations/{conversation_id}/close",
                        &path,
                        body,
                    )
                    .await;
            }
            Step::Push { partner, user } => {
                let body = json!({"to": {"channel": CHANNEL, "openid": USERS[*user]},
                                  "push_id": format!("p-{n}"),
                                  "content": {"type": "text", "text": "Your order shipped."}});
                let id = partners[*partner].id;
                world
                    .api(id, "POST", "/v1/pushes", "/v1/pushes", body)
                    .await;
            }
            Step::Read { partner, user } => {
                world.reads(partners[*partner].id, USERS[*user]).await;
            }
            Step::FetchImage { partner, image } => {
                if let Some(media_id) = images.get(*image) {
                    let partner = partners[*partner];
                    fetch_image(&mut world, partner, media_id).await?;
                }
            }
            Step::IdleSweep => world.idle_sweep().await,
        }
        let breaches = guard.check(&world.received);
        if !breaches.is_empty() {
            return Err(format!(
                "after step {n} ({step:?}):\n{}",
                breaches.join("\n\n")
            ));
        }
    }
    Ok(())
}

/// The partner fetches a user's image by its media id: its own conversation's image is
/// served; any other is answered exactly as a media id no user sent.
async fn fetch_image(world: &mut World, partner: Partner, media_id: &str) -> Result<(), String> {
    let route = "/v1/media/{channel}/{media_id}";
    let owner = world
        .received
        .iter()
        .find(|r| {
            r.kind.starts_with("message.received") || r.kind.starts_with("conversation.reopened")
        }
            && r.json.as_ref().is_some_and(|j| j["message"]["content"]["media_id"] == json!(media_id)))
        .map(|r| r.partner)
        .ok_or_else(|| format!("nobody received the image {media_id}"))?;
    let path = format!("/v1/media/{CHANNEL}/{media_id}");
    let (status, _, fetched) = world
        .api(partner.id, "GET", route, &path, Value::Null)
        .await;
    if owner == partner.id {
        return match status {
            200 => Ok(()),
            _ => Err(format!(
                "{} may not fetch the image of its own conversation: {status}",
                partner.id
            )),
        };
    }
    let absent = format!("/v1/media/{CHANNEL}/MEDIA-nobody-sent-this");
    let (absent_status, _, nothing) = world
        .api(partner.id, "GET", route, &absent, Value::Null)
        .await;
    if (status, &fetched) != (absent_status, &nothing) {
        return Err(format!(
            "{} fetched {owner}'s user's image {media_id}: {status} {}, where an absent one answers {absent_status} {}",
            partner.id,
            String::from_utf8_lossy(&fetched),
            String::from_utf8_lossy(&nothing)
        ));
    }
    Ok(())
}

fn check(mode: Mode, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(run(mode, steps))
        .map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Merged mode: the platform, the hotel and the shop share each user's chat.
    #[test]
    fn merged_no_partner_receives_another_partners_entry_context(steps in proptest::collection::vec(step(), 1..30)) {
        check(Mode::Merged, steps)?;
    }

    /// Sub-merchant mode: the hotel and the airline each have a chat of their own.
    #[test]
    fn sub_merchant_no_partner_receives_another_partners_entry_context(steps in proptest::collection::vec(step(), 1..30)) {
        check(Mode::SubMerchant, steps)?;
    }
}
