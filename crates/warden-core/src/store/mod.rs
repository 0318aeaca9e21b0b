//! State that outlives a process and is shared by every warden process on the state
//! dir: approvals and jobs (PRODUCT.md §10). [`Store`] is the port; the
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

/// Where a job is. `running` until every host's command ended (or was found gone);
/// then exactly one of the others, once (`finish` is conditional on `running`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    /// Every host's command exited 0.
    Succeeded,
    /// Some host's command exited non-zero or failed to start.
    Failed,
    /// Stopped by `cancel`.
    Cancelled,
    /// Stopped at its deadline (`timeout_ms`).
    TimedOut,
    /// A host's process is gone and left no exit code (killed, host rebooted).
    Lost,
    /// warden could not learn how it ended (the host was unreachable, or the work was
    /// in warden's own process, which died).
    OutcomeUnknown,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::TimedOut,
        JobState::Lost,
        JobState::OutcomeUnknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::TimedOut => "timed_out",
            JobState::Lost => "lost",
            JobState::OutcomeUnknown => "outcome_unknown",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// One call's work that may outlive the call (and the process): written before its
/// first host is reached.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    /// Who started it (see `engine::approve::owner`): the only caller that sees it.
    #[serde(skip)]
    pub owner: String,
    pub tool: String,
    /// The command (masked), or what the tool does, for people and `jobs_list`.
    pub summary: String,
    /// In target order; a host's spool files are named by its index here.
    pub hosts: Vec<String>,
    /// Whether the hosts run spooled commands (`exec`, `run`) that a restarted warden
    /// can find again; other work lives in warden's process only.
    pub spooled: bool,
    /// The process watching it (its audit instance): another process takes it over
    /// only once that one is gone.
    #[serde(skip)]
    pub instance: String,
    pub state: JobState,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// When its commands are stopped as timed out (`timeout_ms` after the start).
    pub deadline_at: i64,
    pub finished_at: Option<i64>,
    /// The final answer (masked), once finished.
    pub result: Option<serde_json::Value>,
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

    async fn create_job(&self, job: &Job) -> Result<()>;
    async fn job(&self, id: &str) -> Result<Option<Job>>;
    /// Jobs of `owner` (all when `None`) in `state` (any when `None`), newest first.
    async fn jobs(
        &self,
        owner: Option<&str>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<Job>>;
    /// `running → state` with its result, if `instance` still watches it; false when
    /// another process finished or took it over first.
    async fn finish_job(
        &self,
        id: &str,
        instance: &str,
        state: JobState,
        result: &serde_json::Value,
        now: i64,
    ) -> Result<bool>;
    /// Moves a running job from a dead `from` instance to `to`; false when another
    /// process got there first.
    async fn adopt_job(&self, id: &str, from: &str, to: &str, now: i64) -> Result<bool>;
    /// Forgets finished jobs that ended before `before`; returns how many.
    async fn prune_jobs(&self, before: i64) -> Result<u64>;
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
