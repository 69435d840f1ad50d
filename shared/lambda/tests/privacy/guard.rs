//! The checks on everything a partner receives: every path on the allow-list, and no
//! byte of an entry's context anywhere but in what its own partner receives — and there
//! only at paths that are the partner's own.

use super::allow_list::{AllowList, Breach, Class};
use super::world::Received;
use std::collections::BTreeMap;

/// A value of an entry's context and whose it is: a partner, or `None` when the entry
/// named none (then whichever partner receives it first is the only one that may).
#[derive(Debug, Clone)]
pub struct Secret {
    pub value: String,
    pub owner: Option<&'static str>,
}

pub struct Guard {
    pub allow: AllowList,
    secrets: Vec<Secret>,
    /// The partner that first received each secret.
    pub receivers: BTreeMap<String, &'static str>,
    checked: usize,
}

impl Guard {
    pub fn new() -> Self {
        Self {
            allow: AllowList::new(),
            secrets: Vec::new(),
            receivers: BTreeMap::new(),
            checked: 0,
        }
    }

    pub fn keep(&mut self, value: impl Into<String>, owner: Option<&'static str>) {
        self.secrets.push(Secret {
            value: value.into(),
            owner,
        });
    }

    /// Another run (another world): its own secrets; the allow-list's record of what was
    /// seen goes on.
    pub fn next_run(&mut self) {
        self.secrets.clear();
        self.receivers.clear();
        self.checked = 0;
    }

    /// Checks what was received since the last check; every breach, described.
    pub fn check(&mut self, received: &[Received]) -> Vec<String> {
        let mut breaches = Vec::new();
        for item in &received[self.checked..] {
            breaches.extend(self.check_one(item));
        }
        self.checked = received.len();
        breaches
    }

    fn check_one(&mut self, item: &Received) -> Vec<String> {
        let mut breaches = Vec::new();
        let leaves = match self.allow.classify(&item.kind, item.json.as_ref()) {
            Ok(leaves) => leaves,
            Err(Breach::UnknownKind(kind)) => {
                return vec![format!(
                    "{} received {kind}, which the allow-list does not know",
                    item.partner
                )]
            }
            Err(Breach::UnlistedPath { kind, path }) => {
                return vec![format!(
                    "{} received `{path}` in {kind}: not on the allow-list",
                    item.partner
                )]
            }
        };
        let bytes = String::from_utf8_lossy(&item.bytes);
        for secret in &self.secrets {
            if !bytes.contains(&secret.value) {
                continue;
            }
            let owner = match secret.owner {
                Some(owner) => owner,
                None => *self
                    .receivers
                    .entry(secret.value.clone())
                    .or_insert(item.partner),
            };
            self.receivers
                .entry(secret.value.clone())
                .or_insert(item.partner);
            if owner != item.partner {
                breaches.push(format!(
                    "{} received {owner}'s entry context `{}` in {}: {}",
                    item.partner, secret.value, item.kind, bytes
                ));
                continue;
            }
            for (path, class, value) in &leaves {
                let holds = value.is_none_or(|v| v.to_string().contains(&secret.value));
                if holds && *class != Class::Own {
                    breaches.push(format!(
                        "{}'s entry context `{}` at `{path}` of {}, a path that is {class:?}, not the partner's own",
                        item.partner, secret.value, item.kind
                    ));
                }
            }
        }
        breaches
    }
}
