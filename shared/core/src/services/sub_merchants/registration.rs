//! Registering the configured sub-merchants with WeChat, as the operator's command runs it.
//!
//! Idempotent: a partner whose kept record matches its configuration (account name,
//! nickname, the avatar's bytes) is left alone; otherwise its avatar is uploaded, its
//! account name looked up (`business/get`) and the sub-merchant updated if WeChat has it,
//! registered if not — never registered twice — and what WeChat answered kept in the table.

use super::super::Bridge;
use crate::config::{ChannelConfig, PartnerConfig, SubMerchantConfig};
use crate::model::SubMerchant;
use crate::ports::media::{FetchError, ImageSource};
use crate::ports::store::{StoreError, SubMerchantStore};
use crate::ports::wechat::{BusinessProfile, WechatApi, NO_SUCH_BUSINESS};
use crate::ports::Ports;
use crate::services::images;
use crate::services::tokens::CallError;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// What registration did for one partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// WeChat had no sub-merchant under the account name: registered now.
    Registered,
    /// WeChat had it: its nickname and avatar updated, and its id kept.
    Updated,
    /// Kept as configured already: nothing sent to WeChat.
    Unchanged,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Registered => "registered",
            Registration::Updated => "updated",
            Registration::Unchanged => "unchanged",
        }
    }
}

/// Why a partner's sub-merchant was not registered.
#[derive(Debug, Error)]
pub enum RegistrationError {
    #[error("the avatar {url} could not be fetched: {error}")]
    Avatar { url: String, error: FetchError },
    #[error("uploading the avatar failed: {0}")]
    Upload(CallError),
    #[error("WeChat refused {call} of {account_name}: {error}")]
    WeChat {
        call: &'static str,
        account_name: String,
        error: CallError,
    },
    #[error("the business id could not be kept: {0}")]
    Store(#[from] StoreError),
}

/// One partner's outcome.
#[derive(Debug)]
pub struct PartnerRegistration {
    pub partner: String,
    pub account_name: String,
    pub outcome: Result<(Registration, u64), RegistrationError>,
}

/// Registers (or updates) every partner's sub-merchant declared in the configuration in
/// `channel`, one after another; a partner that fails does not stop the others.
pub async fn register_all<P: Ports>(
    bridge: &Bridge<P>,
    images: &P::Images,
    channel: &ChannelConfig,
) -> Result<Vec<PartnerRegistration>, StoreError> {
    let kept = bridge.store.sub_merchants(&channel.id).await?;
    let mut report = Vec::new();
    for partner in &bridge.config.partners {
        let Some(wanted) = &partner.sub_merchant else {
            continue;
        };
        let kept = kept.iter().find(|k| k.partner == partner.id);
        let outcome = register(bridge, images, channel, partner, wanted, kept).await;
        report.push(PartnerRegistration {
            partner: partner.id.clone(),
            account_name: wanted.account_name.clone(),
            outcome,
        });
    }
    Ok(report)
}

async fn register<P: Ports>(
    bridge: &Bridge<P>,
    images: &P::Images,
    channel: &ChannelConfig,
    partner: &PartnerConfig,
    wanted: &SubMerchantConfig,
    kept: Option<&SubMerchant>,
) -> Result<(Registration, u64), RegistrationError> {
    let avatar =
        images
            .fetch(&wanted.avatar_url)
            .await
            .map_err(|error| RegistrationError::Avatar {
                url: wanted.avatar_url.clone(),
                error,
            })?;
    let avatar_sha256 = hex::encode(Sha256::digest(&avatar.bytes));
    if let Some(kept) = kept.filter(|k| {
        k.account_name == wanted.account_name
            && k.nickname == wanted.nickname
            && k.avatar_sha256 == avatar_sha256
    }) {
        return Ok((Registration::Unchanged, kept.business_id));
    }
    let file_name = format!("{}.{}", wanted.account_name, avatar.kind.extension());
    let icon_media_id = images::upload(bridge, channel, &file_name, &avatar)
        .await
        .map_err(RegistrationError::Upload)?;
    let wechat = bridge.wechat();
    let profile = BusinessProfile {
        account_name: wanted.account_name.clone(),
        nickname: wanted.nickname.clone(),
        icon_media_id,
    };
    let refused = |call| {
        let account_name = wanted.account_name.clone();
        move |error| RegistrationError::WeChat {
            call,
            account_name,
            error,
        }
    };
    let account_name = profile.account_name.as_str();
    let found = bridge
        .tokens
        .call(channel, |token| async move {
            wechat.business_get(&token, account_name).await
        })
        .await;
    let (registration, business_id) = match found {
        Ok(info) => {
            let profile = &profile;
            bridge
                .tokens
                .call(channel, |token| async move {
                    wechat
                        .business_update(&token, info.business_id, profile)
                        .await
                })
                .await
                .map_err(refused("business/update"))?;
            (Registration::Updated, info.business_id)
        }
        Err(error) if error.errcode() == Some(NO_SUCH_BUSINESS) => {
            let profile = &profile;
            let business_id = bridge
                .tokens
                .call(channel, |token| async move {
                    wechat.business_register(&token, profile).await
                })
                .await
                .map_err(refused("business/register"))?;
            (Registration::Registered, business_id)
        }
        Err(error) => return Err(refused("business/get")(error)),
    };
    bridge
        .store
        .put_sub_merchant(&SubMerchant {
            channel: channel.id.clone(),
            partner: partner.id.clone(),
            business_id,
            account_name: wanted.account_name.clone(),
            nickname: wanted.nickname.clone(),
            avatar_sha256,
            updated_at_ms: bridge.now_ms(),
        })
        .await?;
    Ok((registration, business_id))
}
