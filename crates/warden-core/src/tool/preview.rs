//! [`Preview`]: the engine's answer when a call is only shown, not run: `dry_run:
//! true` on any tool, or a destructive command (`exec`, `run`) without `confirm:
//! true`. What would run where, how policy reads each command, and policy's word on
//! each host; with a `plan_token` that a confirmed call can carry to run exactly this.
//! Tools that preview file changes themselves (diffs, files replaced) answer in their
//! own output with the same two keys, `preview` and `plan_token`.

use schemars::JsonSchema;
use serde::Serialize;

use crate::engine::PathRecord;
use crate::policy::{Analysis, Verdict};
use crate::tool::rollout::RolloutReport;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Preview {
    /// True: a dry run was asked for. False: the call needs `confirm: true`.
    pub dry_run: bool,
    /// What would happen, and what to call next.
    pub preview: String,
    pub tool: String,
    pub hosts: Vec<String>,
    /// The caller's commands, as a shell would read them, with policy's reading.
    pub commands: Vec<CommandPreview>,
    /// warden's own probes (label and script).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbePreview>,
    /// Planned paths and where each resolved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathRecord>,
    pub policy: Vec<HostVerdict>,
    /// The batches that would run, in order (a rollout was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutReport>,
    /// Give this with `confirm: true` to run exactly this plan (`PLAN_CHANGED` if it
    /// changed meanwhile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_token: Option<String>,
    pub summary: PreviewSummary,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CommandPreview {
    pub command: String,
    #[serde(flatten)]
    pub analysis: Analysis,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviewSummary {
    /// False when policy denies it on some host.
    pub ok: bool,
    pub job_id: String,
}

/// A tool's own answer or the engine's preview: every tool's output schema.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Answer<T> {
    Done(T),
    Preview(Box<Preview>),
}

/// A job tool's answer: its own, the engine's preview, or the job still running after
/// `wait_ms`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum JobAnswer<T> {
    Done(T),
    Preview(Box<Preview>),
    Running(Box<super::job::JobView>),
}
