//! Plan tokens: a preview's promise that a confirmed call runs exactly what was
//! shown. A token is a digest of the call's tool, arguments (without the controls),
//! resolved hosts, commands, paths (with what each held) and the policy version;
//! short-lived, single-use, and bound to the caller that saw the preview.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ClientId;
use crate::error::{Error, ErrorCode, Result};

/// How long a preview may be confirmed.
pub const TOKEN_TTL: Duration = Duration::from_secs(600);

/// Tokens kept per client at most; beyond, that client's oldest go first (one client
/// cannot push out another's).
const MAX_TOKENS_PER_CLIENT: usize = 256;

struct Entry {
    digest: String,
    client: ClientId,
    minted: Instant,
}

#[derive(Default)]
pub(crate) struct PlanTokens {
    entries: Mutex<HashMap<String, Entry>>,
}

impl PlanTokens {
    pub fn mint(&self, client: &ClientId, digest: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let token = format!("pt_{}", &id[..20]);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|_, entry| entry.minted.elapsed() < TOKEN_TTL);
        let mine = entries
            .values()
            .filter(|entry| entry.client == *client)
            .count();
        if mine >= MAX_TOKENS_PER_CLIENT
            && let Some(oldest) = entries
                .iter()
                .filter(|(_, entry)| entry.client == *client)
                .min_by_key(|(_, entry)| entry.minted)
                .map(|(token, _)| token.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            token.clone(),
            Entry {
                digest: digest.to_owned(),
                client: client.clone(),
                minted: Instant::now(),
            },
        );
        token
    }

    /// Uses up `token` if it is the caller's, still fresh, and its digest is
    /// `digest`; else `PLAN_CHANGED` saying why. A token is gone after one try.
    pub fn redeem(&self, client: &ClientId, token: &str, digest: &str) -> Result<()> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another client's try does not use the token up.
        let entry = match entries.get(token) {
            Some(entry) if entry.client != *client => None,
            _ => entries.remove(token),
        };
        drop(entries);
        let changed = |why: &str| {
            Error::new(ErrorCode::PlanChanged, format!("plan_token {token:?} {why}"))
                .with_hint("Call again without plan_token (and without confirm) for a fresh preview, check it, then confirm with its plan_token.")
        };
        match entry {
            None => Err(changed(
                "is unknown, another client's, used already, or expired",
            )),
            Some(entry) if entry.minted.elapsed() >= TOKEN_TTL => Err(changed("has expired")),
            Some(entry) if entry.digest != digest => Err(changed(
                "no longer matches: the hosts, commands, files or policy changed since the preview",
            )),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_its_clients_once_and_for_its_digest() {
        let tokens = PlanTokens::default();
        let (alice, mallory) = (ClientId::new("alice"), ClientId::new("mallory"));
        let token = tokens.mint(&alice, "digest");
        // Another client cannot use it, nor burn it.
        assert!(tokens.redeem(&mallory, &token, "digest").is_err());
        assert!(tokens.redeem(&alice, &token, "other digest").is_err());
        // A wrong digest used it up.
        assert!(tokens.redeem(&alice, &token, "digest").is_err());
        let token = tokens.mint(&alice, "digest");
        assert!(tokens.redeem(&alice, &token, "digest").is_ok());
        assert!(
            tokens.redeem(&alice, &token, "digest").is_err(),
            "single use"
        );
        // One client's many previews do not push out another's token.
        let kept = tokens.mint(&alice, "kept");
        for _ in 0..(MAX_TOKENS_PER_CLIENT + 10) {
            tokens.mint(&mallory, "flood");
        }
        assert!(tokens.redeem(&alice, &kept, "kept").is_ok());
    }
}
