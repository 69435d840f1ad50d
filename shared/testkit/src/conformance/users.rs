//! Channel users ([`UserStore`]): read and written over their version, found by their app
//! user.

use super::{first_message, OPENID};
use wxbridge_core::ports::store::{MessageStore, UserStore};

/// Users bound to an app user are found by it.
pub async fn bound_users_are_found_by_their_app_user<S: UserStore + MessageStore>(
    store: &S,
    channel: &str,
) {
    let app_user = format!("{channel}-app-7");
    assert!(store.users_of_app_user(&app_user).await.unwrap().is_empty());
    first_message(store, channel).await;
    let mut bound = store.user(channel, OPENID).await.unwrap().unwrap();
    bound.app_user_id = Some(app_user.clone());
    store.put_user(&bound).await.unwrap();
    let found = store.users_of_app_user(&app_user).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|u| (u.channel.as_str(), u.openid.as_str()))
            .collect::<Vec<_>>(),
        [(channel, OPENID)]
    );
}
