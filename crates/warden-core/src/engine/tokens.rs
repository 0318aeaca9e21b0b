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

/// Tokens kept at most; beyond, the oldest go first.
const MAX_TOKENS: usize = 4096;

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
        if entries.len() >= MAX_TOKENS
            && let Some(oldest) = entries
                .iter()
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
        let entry = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(token);
        let changed = |why: &str| {
            Error::new(ErrorCode::PlanChanged, format!("plan_token {token:?} {why}"))
                .with_hint("Call again without plan_token (and without confirm) for a fresh preview, check it, then confirm with its plan_token.")
        };
        match entry {
            None => Err(changed("is unknown, used already, or expired")),
            Some(entry) if entry.client != *client => Err(changed("belongs to another client")),
            Some(entry) if entry.minted.elapsed() >= TOKEN_TTL => Err(changed("has expired")),
            Some(entry) if entry.digest != digest => Err(changed(
                "no longer matches: the hosts, commands, files or policy changed since the preview",
            )),
            Some(_) => Ok(()),
        }
    }
}
