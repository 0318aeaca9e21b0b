//! State that outlives a process and is shared by every warden process on the state
//! dir: approvals now, jobs next (PRODUCT.md §10). [`Store`] is the port; the
//! `warden-store` crate implements it on SQLite under the state dir (PostgreSQL for
//! teams and HA is the second implementation to come), so the engine knows no SQL.
//! Every state change is one conditional update (`… WHERE state = 'pending'`), so two
//! processes racing to decide or use an approval cannot both win.

#[cfg(test)]
pub(crate) mod memory;

use serde::Serialize;

use crate::error::Result;

/// Where an approval is in its life. Only `pending → approved | denied | expired` and
/// `approved → used | expired` happen, each once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    Expired,
    /// Approved, and the call it approved ran (single use).
    Used,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Used => "used",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalState> {
        [
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Denied,
            ApprovalState::Expired,
            ApprovalState::Used,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// One call waiting for, or given, a human's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// Public: in the audit log and the operator's CLI.
    pub id: String,
    /// SHA-256 of the secret half of the token only the asking caller was given.
    #[serde(skip)]
    pub secret_hash: String,
    /// Who asked (identity and client name): the only caller that may see or use it.
    pub caller: String,
    /// The client's name, as it gave it (shown, not trusted).
    pub client: String,
    pub identity: String,
    pub tool: String,
    pub hosts: Vec<String>,
    pub summary: String,
    /// Masked arguments, commands, paths and class: what the human decides on.
    pub request: serde_json::Value,
    pub digest: String,
    pub state: ApprovalState,
    /// The approval rule that matched, as `approval.rules[N]`.
    pub rule: String,
    /// Unix milliseconds.
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
}

/// The port every state store implements.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    async fn create_approval(&self, approval: &Approval) -> Result<()>;
    async fn approval(&self, id: &str) -> Result<Option<Approval>>;
    /// Approvals in `state` (all when `None`), of `caller` only when given, newest first.
    async fn approvals(
        &self,
        state: Option<ApprovalState>,
        caller: Option<&str>,
    ) -> Result<Vec<Approval>>;
    /// Moves `id` from `from` to `to` (a decision, a use); false when it was not in
    /// `from` any more (another process or person got there first, or it expired).
    async fn transition(
        &self,
        id: &str,
        from: ApprovalState,
        to: ApprovalState,
        by: Option<&str>,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool>;
    /// Pending and approved approvals past their expiry become `expired`; returns them.
    async fn expire(&self, now: i64) -> Result<Vec<Approval>>;
}

/// The public part of an approval token (`apr-….secret`): what logs and people see.
pub fn public_id(token: &str) -> &str {
    token.split_once('.').map_or(token, |(id, _)| id)
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or_default()
}
