//! [`Preview`]: the engine's answer to a `dry_run: true` call of a tool that leaves
//! dry runs to it (`exec`, `run`, `facts`): what would run where, and policy's word on
//! each host. Nothing has run.

use schemars::JsonSchema;
use serde::Serialize;

use crate::engine::PathRecord;
use crate::policy::Verdict;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Preview {
    /// Always true: nothing ran.
    pub dry_run: bool,
    pub tool: String,
    pub hosts: Vec<String>,
    /// The caller's commands, as a shell would read them.
    pub commands: Vec<String>,
    /// warden's own probes (label and script).
    pub probes: Vec<ProbePreview>,
    /// Planned paths and where each resolved.
    pub paths: Vec<PathRecord>,
    pub policy: Vec<HostVerdict>,
    pub summary: PreviewSummary,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProbePreview {
    pub label: String,
    pub script: String,
}

/// Policy's decision for one command or probe on one host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostVerdict {
    pub host_id: String,
    pub decision: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviewSummary {
    pub ok: bool,
    pub job_id: String,
}

/// A tool's own answer or the engine's preview: the output schema of tools that take
/// `dry_run`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Answer<T> {
    Done(T),
    Preview(Preview),
}
