//! One fixed run through every webhook the bridge sends and every route the API answers,
//! in merged and sub-merchant mode: what the allow-list is checked against, field by
//! field.

use super::guard::Secret;
use super::world::{session_from, World, AIR, CHANNEL, HOTEL, PLATFORM, SHOP};
use serde_json::{json, Value};
use wxbridge_testkit::scripted_wechat::{CUSTOM_SEND, SUBSCRIBE_SEND};
use wxbridge_wechat::event::EventKind;

const ALICE: &str = "o_alice";
const BOB: &str = "o_bob";
/// Forty-nine hours: every reply window has closed.
const WINDOWS_CLOSE_MS: i64 = 49 * 3_600_000;
/// A 1×1 GIF.
const GIF: &str = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/// A secret, and whether the run delivers it to its partner (so the check is not empty).
pub type Secrets = Vec<(Secret, bool)>;

fn secret(owner: &'static str, value: &str, delivered: bool) -> (Secret, bool) {
    let secret = Secret {
        value: value.into(),
        owner: Some(owner),
    };
    (secret, delivered)
}

/// A secret of an entry that names no partner: the first partner to receive it is the
/// only one that may.
fn unnamed(value: &str) -> (Secret, bool) {
    let secret = Secret {
        value: value.into(),
        owner: None,
    };
    (secret, true)
}

async fn send(
    world: &mut World,
    partner: &str,
    conversation: &str,
    id: &str,
    content: Value,
) -> Value {
    let request =
        json!({"conversation_id": conversation, "client_message_id": id, "content": content});
    world
        .api(partner, "POST", "/v1/messages", "/v1/messages", request)
        .await
        .1
}

async fn reply(
    world: &mut World,
    partner: &str,
    conversation: &str,
    id: &str,
    text: &str,
) -> Value {
    send(
        world,
        partner,
        conversation,
        id,
        json!({"type": "text", "text": text}),
    )
    .await
}

/// The merged-mode run: the hotel, the shop and the platform share Alice's and Bob's chat.
pub async fn merged(world: &mut World) -> Secrets {
    let hotel = HOTEL.id;
    let alice_hotel = world.conversation_id(hotel, ALICE);
    // Alice taps "contact the hotel" on her booking: a vouched entry with her order.
    let from = session_from(
        &[
            ("partner", hotel),
            ("uid", "HOTELUID7731"),
            ("order", "HOTELORDER7731"),
        ],
        true,
        world.now_ms(),
    );
    world.enters(ALICE, None, &from).await;
    world.writes(ALICE, None, "Is breakfast included?").await;
    let media_id = world.sends_image(ALICE, None).await;
    world.sends_lost_image(ALICE).await;
    world.grants(ALICE, None, "tpl-hotel").await;
    world.subscribe_sent(ALICE, "tpl-hotel").await;
    world.raw(ALICE).await;
    let card = EventKind::MiniProgramPage {
        msg_id: "7100001".into(),
        title: "Room 301".into(),
        app_id: "wx1".into(),
        page_path: "pages/room?id=301".into(),
        thumb_url: "http://mmbiz.qpic.cn/thumb".into(),
        thumb_media_id: "THUMB1".into(),
    };
    world.user_pushes(ALICE, None, card).await;
    reply(world, hotel, &alice_hotel, "h-1", "Breakfast is included.").await;
    let contents = [
        json!({"type": "image", "base64": GIF}),
        json!({"type": "link", "title": "Menu", "description": "Breakfast menu",
               "url": "https://lotus.example/menu", "thumb_url": "https://lotus.example/m.png"}),
        json!({"type": "miniprogrampage", "title": "Your booking", "pagepath": "pages/booking?id=1",
               "thumb_media_id": "THUMB2"}),
    ];
    for (n, content) in contents.into_iter().enumerate() {
        send(world, hotel, &alice_hotel, &format!("h-c{n}"), content).await;
    }
    // The window's sends run out: the next reply is held until Alice writes again.
    for n in 0..6 {
        let answer = reply(
            world,
            hotel,
            &alice_hotel,
            &format!("h-more{n}"),
            "And one more thing",
        )
        .await;
        if answer["will_hold"] == json!(true) {
            break;
        }
    }
    let typing = format!("/v1/conversations/{alice_hotel}/typing");
    world
        .api(
            hotel,
            "POST",
            "/v1/conversations/{conversation_id}/typing",
            &typing,
            json!({"typing": true}),
        )
        .await;
    world.reads(hotel, ALICE).await;
    let first_page = format!("/v1/conversations/{alice_hotel}/messages?limit=1");
    world
        .api(
            hotel,
            "GET",
            "/v1/conversations/{conversation_id}/messages",
            &first_page,
            Value::Null,
        )
        .await;
    kept_media(world, hotel, &alice_hotel).await;
    let media = format!("/v1/media/{CHANNEL}/{media_id}");
    world
        .api(
            hotel,
            "GET",
            "/v1/media/{channel}/{media_id}",
            &media,
            Value::Null,
        )
        .await;

    // Alice turns to the platform, which binds her and hands her to the shop.
    world
        .writes(ALICE, None, &format!("#{}", PLATFORM.name))
        .await;
    world.writes(ALICE, None, "I need a charger too").await;
    world.sends_image(ALICE, None).await;
    // Alice enters again from a page that names no partner: the partner her chat reaches
    // has that context, and no other partner (not even by a hand-over).
    let no_partner = session_from(&[("order", "TRIPORDER3003")], false, world.now_ms());
    world.enters(ALICE, None, &no_partner).await;
    let alice_platform = world.conversation_id(PLATFORM.id, ALICE);
    world
        .api(
            PLATFORM.id,
            "PUT",
            "/v1/bindings/{channel}/{openid}",
            &format!("/v1/bindings/{CHANNEL}/{ALICE}"),
            json!({"app_user_id": "app-alice"}),
        )
        .await;
    world
        .api(
            PLATFORM.id,
            "POST",
            "/v1/conversations/{conversation_id}/handover",
            &format!("/v1/conversations/{alice_platform}/handover"),
            json!({"handover_id": "ho-1", "to": SHOP.id, "note_to_user": "The shop will answer you.",
                   "note_to_partner": "Wants a charger."}),
        )
        .await;
    world.writes(ALICE, None, "Do you have USB-C?").await;
    let alice_shop = world.conversation_id(SHOP.id, ALICE);
    reply(world, SHOP.id, &alice_shop, "s-1", "Yes.").await;
    world
        .api(
            SHOP.id,
            "POST",
            "/v1/conversations/{conversation_id}/close",
            &format!("/v1/conversations/{alice_shop}/close"),
            json!({"closing_text": "Thanks!", "client_message_id": "s-bye"}),
        )
        .await;
    world.writes(ALICE, None, "One more thing").await;
    world.reads(SHOP.id, ALICE).await;
    world.idle_sweep().await;

    // WeChat refuses one send for good.
    world.memory.wechat.answer(CUSTOM_SEND, 40003);
    reply(world, SHOP.id, &alice_shop, "s-2", "Refused by WeChat").await;
    let push = json!({"to": {"channel": CHANNEL, "openid": ALICE}, "push_id": "p-1",
                      "content": {"type": "text", "text": "Your room is ready."}});
    world
        .api(hotel, "POST", "/v1/pushes", "/v1/pushes", push)
        .await;
    // Two days on every window has closed: the hotel's late answer falls back to the
    // subscribe message Alice granted, a push goes the same way (WeChat refuses the first
    // try), another has expired.
    world.advance(WINDOWS_CLOSE_MS);
    reply(
        world,
        hotel,
        &alice_hotel,
        "h-late",
        "Your invoice is ready.",
    )
    .await;
    world.grants(ALICE, None, "tpl-hotel").await;
    world.memory.wechat.answer(SUBSCRIBE_SEND, 47003);
    let push = json!({"to": {"app_user_id": "app-alice"}, "push_id": "p-2",
                      "content": {"type": "text", "text": "Check-in opens at 14:00."},
                      "subscribe": {"template_id": "tpl-hotel", "page": "pages/order?id=1",
                                    "miniprogram_state": "formal", "lang": "en_US",
                                    "data": {"thing1": {"value": "Check-in"}}}});
    world
        .api(hotel, "POST", "/v1/pushes", "/v1/pushes", push)
        .await;
    let expired = json!({"to": {"channel": CHANNEL, "openid": ALICE}, "push_id": "p-3",
                         "content": {"type": "text", "text": "Too late"}, "expires_at_ms": 1});
    world
        .api(hotel, "POST", "/v1/pushes", "/v1/pushes", expired)
        .await;
    world.reads(hotel, ALICE).await;
    // Another partner's conversation: not found.
    let foreign = format!("/v1/conversations/{alice_hotel}");
    world
        .api(
            SHOP.id,
            "GET",
            "/v1/conversations/{conversation_id}",
            &foreign,
            Value::Null,
        )
        .await;

    // Bob enters from the shop's page with an order the app did not sign: the platform,
    // whom Bob's chat reaches, gets the entry but not the shop's context.
    let unsigned = session_from(
        &[("partner", SHOP.id), ("order", "SHOPORDER5521")],
        false,
        world.now_ms(),
    );
    world.enters(BOB, None, &unsigned).await;
    world.writes(BOB, None, "Hello?").await;
    world.reads(PLATFORM.id, BOB).await;
    // The hotel has no conversation with Bob.
    world.reads(hotel, BOB).await;
    vec![
        secret(hotel, "HOTELUID7731", true),
        secret(hotel, "HOTELORDER7731", true),
        unnamed("TRIPORDER3003"),
        secret(SHOP.id, "SHOPORDER5521", false),
    ]
}

/// The kept copy of the first image in the conversation that is kept.
async fn kept_media(world: &mut World, partner: &str, conversation: &str) {
    let history = format!("/v1/conversations/{conversation}/messages?limit=100");
    let (_, page, _) = world
        .api(
            partner,
            "GET",
            "/v1/conversations/{conversation_id}/messages",
            &history,
            Value::Null,
        )
        .await;
    let path = page["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["media"]["status"] == "stored")
        .find_map(|m| m["media"]["path"].as_str())
        .expect("a kept image in the history")
        .to_owned();
    world
        .api(
            partner,
            "GET",
            "/v1/conversations/{conversation_id}/media/{message_id}",
            &path,
            Value::Null,
        )
        .await;
}

/// The sub-merchant run: Alice writes in the hotel's chat, the airline's and the mini
/// program's own.
pub async fn sub_merchant(world: &mut World) -> Secrets {
    let (hotel, air) = (HOTEL.id, AIR.id);
    let from = session_from(
        &[("partner", hotel), ("order", "LOTUSORDER4417")],
        true,
        world.now_ms(),
    );
    world.enters(ALICE, Some(hotel), &from).await;
    world.writes(ALICE, Some(hotel), "Late check-out?").await;
    // The airline's page signs nothing and names no partner: its chat decides.
    let unsigned = session_from(&[("order", "SKYORDER9090")], false, world.now_ms());
    world.enters(ALICE, Some(air), &unsigned).await;
    world
        .writes(ALICE, Some(air), "Is my flight on time?")
        .await;
    world.sends_image(ALICE, Some(air)).await;
    // In the mini program's own chat, an entry naming the hotel: the platform answers
    // that chat and gets the entry, not the hotel's context, which the hotel gets with
    // its next webhook about Alice.
    let named = session_from(
        &[("partner", hotel), ("order", "LOTUSORDER4418")],
        true,
        world.now_ms(),
    );
    world.enters(ALICE, None, &named).await;
    world.writes(ALICE, None, "Hello platform").await;
    reply(
        world,
        air,
        &world.conversation_id(air, ALICE),
        "a-1",
        "On time.",
    )
    .await;
    reply(
        world,
        hotel,
        &world.conversation_id(hotel, ALICE),
        "h-1",
        "Until noon.",
    )
    .await;
    let to_alice = json!({"to": {"channel": CHANNEL, "openid": ALICE}, "client_message_id": "p-1",
                          "content": {"type": "text", "text": "Anything else?"}});
    world
        .api(
            PLATFORM.id,
            "POST",
            "/v1/messages",
            "/v1/messages",
            to_alice,
        )
        .await;
    for partner in [PLATFORM.id, hotel, air] {
        world.reads(partner, ALICE).await;
    }
    world.idle_sweep().await;
    vec![
        secret(hotel, "LOTUSORDER4417", true),
        secret(air, "SKYORDER9090", true),
        secret(hotel, "LOTUSORDER4418", true),
    ]
}
