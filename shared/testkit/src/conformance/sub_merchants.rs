//! Sub-merchants ([`SubMerchantStore`]): one per channel and partner.

use super::T0;
use wxbridge_core::model::{ChannelUser, OutboundRef, ReplyWindow, Session, SubMerchant};
use wxbridge_core::ports::store::{SubMerchantStore, UserStore};

/// A channel's sub-merchants are kept one per partner (a later one replaces it), apart
/// from other channels', and read back whole; a user's sub-merchant sessions are kept with
/// the user.
pub async fn sub_merchants_are_kept_per_channel_and_partner<S: SubMerchantStore + UserStore>(
    store: &S,
    channel: &str,
) {
    let sub_merchant = |partner: &str, business_id: u64, nickname: &str| SubMerchant {
        channel: channel.to_owned(),
        partner: partner.to_owned(),
        business_id,
        account_name: format!("{partner}_account").replace('-', "_"),
        nickname: nickname.to_owned(),
        avatar_sha256: "ab".repeat(32),
        updated_at_ms: T0,
    };
    assert!(store.sub_merchants(channel).await.unwrap().is_empty());
    let hotel = sub_merchant("hotel-9", 1001, "HotelLotus");
    store.put_sub_merchant(&hotel).await.unwrap();
    store
        .put_sub_merchant(&sub_merchant("air-2", 1002, "SkyAir"))
        .await
        .unwrap();
    let renamed = sub_merchant("hotel-9", 1001, "LotusHotel");
    store.put_sub_merchant(&renamed).await.unwrap();
    let mut kept = store.sub_merchants(channel).await.unwrap();
    kept.sort_by_key(|k| k.business_id);
    assert_eq!(kept, [renamed, sub_merchant("air-2", 1002, "SkyAir")]);
    let other = format!("{channel}-other");
    assert!(
        store.sub_merchants(&other).await.unwrap().is_empty(),
        "per channel"
    );

    // A user's sub-merchant sessions are kept with the user.
    let mut user = ChannelUser::new(channel, "o_sessions");
    *user.window_in_mut(Session::SubMerchant("hotel-9")) = Some(ReplyWindow {
        remaining: 3,
        closes_at_ms: T0 + 1_000,
        ..Default::default()
    });
    user.held_in_mut(Session::SubMerchant("hotel-9"))
        .push(OutboundRef::new("c:o:hotel-9", T0, "out_1"));
    store.put_user(&user).await.unwrap();
    let read = store.user(channel, "o_sessions").await.unwrap().unwrap();
    assert_eq!(read.sub_merchant_sessions, user.sub_merchant_sessions);
}
