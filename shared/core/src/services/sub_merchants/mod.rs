//! Sub-merchant mode (protocol notes §10): which partner a push's `BusinessId` names, which
//! `business_id` a partner's sends carry, and registering the configured sub-merchants.
//!
//! The partner ↔ `business_id` mapping is what registration stored in the table, never a
//! guess. Each function instance keeps a channel's mapping for [`FRESH_MS`], and reads it
//! again sooner when asked for an id it does not hold (a sub-merchant registered since), at
//! most once per [`RELOAD_ON_MISS_MS`].

use super::Bridge;
use crate::model::{Session, SubMerchant};
use crate::ports::store::{StoreError, SubMerchantStore};
use crate::ports::Ports;
use std::collections::HashMap;
use std::sync::Mutex;
use thiserror::Error;

pub mod registration;

/// How long an instance uses a channel's mapping before reading it again.
pub const FRESH_MS: i64 = 5 * 60_000;
/// How soon an id the mapping lacks has it read again.
pub const RELOAD_ON_MISS_MS: i64 = 10_000;

/// A partner's session that has no sub-merchant registered yet.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "partner {partner} has no sub-merchant registered in channel {channel}: \
     run `wxbridge-admin sub-merchants register`"
)]
pub struct NotRegistered {
    pub channel: String,
    pub partner: String,
}

/// The registered sub-merchants, per channel, as an instance last read them.
#[derive(Default)]
pub struct SubMerchantDirectory {
    channels: Mutex<HashMap<String, Mapping>>,
}

#[derive(Clone)]
struct Mapping {
    read_at_ms: i64,
    by_partner: HashMap<String, u64>,
    by_business: HashMap<u64, String>,
}

impl Mapping {
    fn of(read_at_ms: i64, sub_merchants: Vec<SubMerchant>) -> Self {
        Self {
            read_at_ms,
            by_business: sub_merchants
                .iter()
                .map(|s| (s.business_id, s.partner.clone()))
                .collect(),
            by_partner: sub_merchants
                .into_iter()
                .map(|s| (s.partner, s.business_id))
                .collect(),
        }
    }
}

impl SubMerchantDirectory {
    /// Looks `find` up in the channel's mapping, reading it from the store when it is not
    /// fresh, or when `find` misses and the mapping is older than [`RELOAD_ON_MISS_MS`].
    async fn lookup<S: SubMerchantStore, T>(
        &self,
        store: &S,
        channel: &str,
        now_ms: i64,
        find: impl Fn(&Mapping) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        let held = self.held(channel);
        if let Some(mapping) = &held {
            let age = now_ms - mapping.read_at_ms;
            if age < FRESH_MS {
                if let Some(found) = find(mapping) {
                    return Ok(Some(found));
                }
                if age < RELOAD_ON_MISS_MS {
                    return Ok(None);
                }
            }
        }
        let mapping = Mapping::of(now_ms, store.sub_merchants(channel).await?);
        let found = find(&mapping);
        self.channels
            .lock()
            .expect("sub-merchant directory")
            .insert(channel.to_owned(), mapping);
        Ok(found)
    }

    fn held(&self, channel: &str) -> Option<Mapping> {
        let channels = self.channels.lock().expect("sub-merchant directory");
        channels.get(channel).cloned()
    }
}

impl<P: Ports> Bridge<P> {
    /// The `business_id` a partner's sends to a user of `channel` carry: `None` into the
    /// mini program's own session (any mode but sub-merchant, and the default partner).
    /// The inner error: the partner's sub-merchant is not registered.
    pub async fn business_id_for(
        &self,
        channel: &str,
        partner: &str,
    ) -> Result<Result<Option<u64>, NotRegistered>, StoreError> {
        let Session::SubMerchant(partner) = Session::of(&self.config, partner) else {
            return Ok(Ok(None));
        };
        let found = self
            .sub_merchants
            .lookup(&self.store, channel, self.now_ms(), |m| {
                m.by_partner.get(partner).copied()
            })
            .await?;
        Ok(found.map(Some).ok_or_else(|| NotRegistered {
            channel: channel.to_owned(),
            partner: partner.to_owned(),
        }))
    }

    /// The partner registered under a push's `BusinessId` in `channel`, if any.
    pub async fn partner_of_business(
        &self,
        channel: &str,
        business_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let Ok(business_id) = business_id.trim().parse::<u64>() else {
            return Ok(None);
        };
        self.sub_merchants
            .lookup(&self.store, channel, self.now_ms(), |m| {
                m.by_business.get(&business_id).cloned()
            })
            .await
    }
}
