//! `push`: one file from warden's own machine to the same path on every host of a
//! target, concurrently. The source is read through a read-only sandbox on `local`
//! (so `allowed_roots` and `deny_paths` keep keys and secrets out of reach); each host
//! gets an atomic write, then a read-back whose sha256 must equal the source's.

use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fleet::transfer::{self, copy_atomic};
use crate::fs::file_args::hash_file;
use crate::fs::file_args::{self, parse_mode};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, HostFiles};
use warden_core::inventory::Host;
use warden_core::sandbox::Last;
use warden_core::tool::{
    Domain, Effect, Plan, RolloutHost, RolloutParams, RolloutReport, Summary, Tool, ToolInfo,
};
use warden_core::{PlanContext, RunContext};

pub struct Push;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PushParams {
    /// host:ID, host:GLOB, group:G, tag:K=V, all; comma-joined.
    pub target: String,
    /// File on warden's machine (absolute, under allowed_roots).
    pub source: String,
    /// Destination file on each host (absolute).
    pub path: String,
    /// Octal mode, e.g. "0644" [the replaced file's, else the source's].
    #[serde(default)]
    pub mode: Option<String>,
    /// Report what each host would get; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Required to replace a different file; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
    #[serde(flatten)]
    pub rollout: RolloutParams,
}

/// What a host got (or, in a preview, would get).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushAction {
    Created,
    Replaced,
    /// Same content already there; only the mode changed.
    ModeSet,
    Unchanged,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostPush {
    pub host_id: String,
    /// No error on this host (a preview is ok).
    pub ok: bool,
    /// The destination as resolved on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What the host got; in a preview, what it would get.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<PushAction>,
    /// Something was written on this host.
    pub changed: bool,
    /// The host's file was read back and its sha256 is the source's.
    pub verified: bool,
    /// sha256 of the host's file now, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size of the host's file now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why nothing was written (dry_run, or confirm needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub error: Option<Value>,
    /// Not run: the rollout stopped before this host's batch (why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PushOutput {
    /// The source as resolved on warden's machine.
    pub source: String,
    pub sha256: String,
    pub bytes: u64,
    /// Some host would replace a different file: call again with confirm: true.
    pub confirm_needed: bool,
    pub results: Vec<HostPush>,
    /// The batches and how they went (a rollout was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutReport>,
    pub summary: Summary,
}

impl Tool for Push {
    type Params = PushParams;
    type Output = PushOutput;

    const JOBS: bool = true;

    const INFO: ToolInfo = ToolInfo {
        name: "push",
        domain: Domain::Fleet,
        summary: "Push file to target",
        description: "Copy one local file (source) to path on every host of a target, atomically, sha256 verified per host; identical files are left alone. Replacing a different file needs confirm: true (else a preview); dry_run changes nothing. Rolling: batch_size, batch_wait, subset, fail_fast, min_success_rate (as exec). Errors: PATH_OUTSIDE_ROOT, POLICY_DENIED, FILE_NOT_FOUND, TARGET_EMPTY; per host: SSH_*, PERMISSION_DENIED, CONFLICT.",
        effect: Effect::Destructive,
        idempotent: true,
        open_world: true,
        example: r#"{"target": "group:web", "source": "/srv/app/release/app.conf", "path": "/srv/app/app.conf", "confirm": true}"#,
    };

    fn plan(&self, params: &PushParams, planning: &PlanContext) -> Result<Plan> {
        if let Some(mode) = &params.mode {
            parse_mode(mode)?;
        }
        transfer::fleet_file_plan(
            planning,
            &params.target,
            &params.source,
            &params.path,
            params.dry_run,
            (&params.rollout, params.dry_run),
        )
    }

    fn run(
        &self,
        params: PushParams,
        context: RunContext,
    ) -> impl Future<Output = Result<PushOutput>> + Send + 'static {
        async move {
            let started = Instant::now();
            let sandbox = context.local_source(&params.source).await?;
            let (resolved, meta) =
                file_args::existing(&sandbox, &params.source, Last::Follow).await?;
            if meta.kind != FileKind::File {
                return Err(Error::invalid_input(format!(
                    "source {} is not a regular file",
                    resolved.path
                ))
                .with_path(&resolved.path));
            }
            let (sha256, bytes) =
                hash_file(sandbox.files().as_ref(), &resolved.path, u64::MAX).await?;
            let job = Arc::new(Job {
                source_files: Arc::clone(sandbox.files()),
                source: resolved.path.clone(),
                sha256: sha256.clone(),
                bytes,
                source_mode: meta.mode,
                path: params.path,
                mode: params.mode.as_deref().map(parse_mode).transpose()?,
                dry_run: params.dry_run,
                confirm: params.confirm,
            });
            let rolled = context
                .rollout(
                    move |context, host| {
                        let job = Arc::clone(&job);
                        async move { push_to_host(&context, &host, &job).await }
                    },
                    |host, error| HostPush::new(host.id.as_str()).failed(&error),
                )
                .await;
            let confirm_needed = !params.confirm
                && rolled
                    .results
                    .iter()
                    .any(|result| result.action == Some(PushAction::Replaced));
            let summary = rolled.summary(context.job_id(), started);
            Ok(PushOutput {
                source: resolved.path,
                sha256,
                bytes,
                confirm_needed,
                results: rolled.results,
                rollout: rolled.report,
                summary,
            })
        }
    }
}

/// One push, shared by every host's task.
struct Job {
    source_files: Arc<dyn HostFiles>,
    source: String,
    sha256: String,
    bytes: u64,
    source_mode: u32,
    path: String,
    mode: Option<u32>,
    dry_run: bool,
    confirm: bool,
}

async fn push_to_host(context: &RunContext, host: &Arc<Host>, job: &Job) -> HostPush {
    let started = Instant::now();
    let mut result = HostPush::new(host.id.as_str());
    if let Err(error) = push_file(context, host, job, &mut result).await {
        result = result.failed(&error);
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

impl RolloutHost for HostPush {
    fn succeeded(&self) -> bool {
        self.ok
    }

    fn not_run(host_id: &str, reason: &str) -> HostPush {
        HostPush {
            ok: false,
            not_run: Some(reason.to_owned()),
            ..HostPush::new(host_id)
        }
    }
}

impl HostPush {
    fn new(host_id: &str) -> HostPush {
        HostPush {
            host_id: host_id.to_owned(),
            ok: true,
            path: None,
            action: None,
            changed: false,
            verified: false,
            sha256: None,
            bytes: None,
            preview: None,
            error: None,
            not_run: None,
            duration_ms: 0,
        }
    }

    fn failed(mut self, error: &Error) -> HostPush {
        self.ok = false;
        self.error = Some(transfer::error_json(&self.host_id, error));
        self
    }
}

/// Fills `result` as it goes, so a failure still shows how far the host got.
async fn push_file(
    context: &RunContext,
    host: &Arc<Host>,
    job: &Job,
    result: &mut HostPush,
) -> Result<()> {
    let sandbox = context.sandbox(host, &job.path).await?;
    // A symlink as the last component is followed, and must stay inside.
    let resolved = sandbox.resolve(&job.path, Last::Follow).await?;
    result.path = Some(resolved.path.clone());
    let files = sandbox.files().as_ref();
    let previous = match &resolved.meta {
        Some(meta) if meta.kind == FileKind::File => Some(meta.clone()),
        Some(meta) => {
            return Err(file_args::not_a_file(&resolved.path, meta.kind));
        }
        None if resolved.parent_missing => {
            return Err(Error::new(
                ErrorCode::FileNotFound,
                format!("{}: the parent directory does not exist", resolved.path),
            )
            .with_path(&resolved.path));
        }
        None => None,
    };
    let mode = job
        .mode
        .or(previous.as_ref().map(|meta| meta.mode))
        .unwrap_or(job.source_mode);
    let action = match &previous {
        None => PushAction::Created,
        Some(meta) => {
            result.bytes = Some(meta.size);
            if meta.size == job.bytes
                && hash_file(files, &resolved.path, u64::MAX).await?.0 == job.sha256
            {
                result.sha256 = Some(job.sha256.clone());
                result.verified = true;
                if meta.mode == mode {
                    PushAction::Unchanged
                } else {
                    PushAction::ModeSet
                }
            } else {
                PushAction::Replaced
            }
        }
    };
    result.action = Some(action);
    if action == PushAction::Unchanged {
        return Ok(());
    }
    if job.dry_run {
        result.preview = Some(format!(
            "dry run: would {} {} ({} bytes, mode {mode:04o})",
            match action {
                PushAction::Created => "create",
                PushAction::Replaced => "replace",
                _ => "set the mode of",
            },
            resolved.path,
            job.bytes
        ));
        return Ok(());
    }
    if action == PushAction::Replaced && !job.confirm {
        result.preview = Some(format!(
            "would replace {} ({} bytes, different content) with {} bytes; call again with confirm: true",
            resolved.path,
            result.bytes.unwrap_or(0),
            job.bytes
        ));
        return Ok(());
    }
    if action == PushAction::ModeSet {
        files.set_mode(&resolved.path, mode).await?;
        result.changed = true;
        return Ok(());
    }
    let sent = copy_atomic(
        job.source_files.as_ref(),
        &job.source,
        job.bytes,
        files,
        &resolved.path,
        mode,
        previous.as_ref().map(|meta| (meta.uid, meta.gid)),
    )
    .await?;
    result.changed = true;
    if sent != job.sha256 {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "{} changed while it was being pushed (sha256 {sent}, was {}); push again",
                job.source, job.sha256
            ),
        )
        .with_path(&job.source));
    }
    let (on_host, bytes) = hash_file(files, &resolved.path, u64::MAX).await?;
    result.sha256 = Some(on_host.clone());
    result.bytes = Some(bytes);
    if on_host != job.sha256 {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "{} reads back with sha256 {on_host}, not the source's {}: it changed after the write",
                resolved.path, job.sha256
            ),
        )
        .with_path(&resolved.path));
    }
    result.verified = true;
    Ok(())
}
