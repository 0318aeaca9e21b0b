//! [`JobView`]: how a job is shown — the answer of a call that outlived its wait, and
//! of `jobs_show`, `jobs_wait` and `cancel`.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::store::JobState;

/// A job as the caller sees it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobView {
    pub job_id: String,
    /// running, succeeded, failed, cancelled, timed_out, lost or outcome_unknown.
    pub state: JobState,
    pub tool: String,
    /// The command (masked), or what the tool does.
    pub summary: String,
    /// Who started it (identity/client): shown to the operator only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// How many hosts the job runs on.
    pub hosts: usize,
    /// While running: how many hosts finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts_done: Option<usize>,
    /// While running: each host's output so far (the last bytes of each stream).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<HostOutput>,
    /// Since the job started (until it ended, once finished).
    pub elapsed_ms: u64,
    /// The tool's own answer (fleet results, …), once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub result: Option<Value>,
    /// After cancel: the host could not confirm that nothing of the job is left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub may_still_run: Option<bool>,
    /// What to call next.
    pub hint: String,
}

/// One host's output so far.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostOutput {
    pub host_id: String,
    /// Set once the host's command ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last bytes of stdout (invalid UTF-8 replaced).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout_tail: String,
    pub stdout_bytes: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub stderr_bytes: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}
