//! What `push` and `sync` share: a file on warden's own machine streamed to a host in
//! chunks (never whole in memory), written atomically, and files hashed in chunks.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fs::file_args::CHUNK_BYTES;
use crate::fs::fs_write::keep_owner;
use warden_core::PlanContext;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::HostFiles;
use warden_core::sandbox::{Last, temp_beside};
use warden_core::tool::{Effect, Plan, RolloutParams};

/// Copies the `size` bytes of `source_path` (on warden's machine) to `dest_path` on a
/// host: a temp file beside it, filled chunk by chunk (the next chunk is read while the
/// last one is written), fsynced, given `mode`, then renamed over `dest_path`. Returns
/// the sha256 of what was sent. A source whose size changed meanwhile fails with
/// `CONFLICT` and leaves `dest_path` as it was.
pub async fn copy_atomic(
    source: &dyn HostFiles,
    source_path: &str,
    size: u64,
    dest: &dyn HostFiles,
    dest_path: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<String> {
    let temp = temp_beside(dest_path);
    // Owner read/write while the content goes in: `mode` may forbid writing (0444).
    dest.create_new(&temp, &[], 0o600).await?;
    let target = Target {
        temp: &temp,
        path: dest_path,
        mode,
        owner,
    };
    let copied = fill_and_rename(source, source_path, size, dest, &target).await;
    if copied.is_err() {
        let _ = dest.remove_file(&temp).await;
    }
    copied
}

/// Where a copy lands: its temp file, the path it replaces, mode and owner to give it.
struct Target<'a> {
    temp: &'a str,
    path: &'a str,
    mode: u32,
    owner: Option<(u32, u32)>,
}

async fn fill_and_rename(
    source: &dyn HostFiles,
    source_path: &str,
    size: u64,
    dest: &dyn HostFiles,
    target: &Target<'_>,
) -> Result<String> {
    let temp = target.temp;
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    let mut chunk = read_exact(source, source_path, 0, CHUNK_BYTES.min(size)).await?;
    while !chunk.is_empty() {
        hasher.update(&chunk);
        let next = offset + chunk.len() as u64;
        let want = CHUNK_BYTES.min(size - next);
        let (_, following) = tokio::try_join!(
            dest.write_at(temp, offset, &chunk),
            read_exact(source, source_path, next, want)
        )?;
        offset = next;
        chunk = following;
    }
    if !source.read(source_path, size, 1).await?.is_empty() {
        return Err(source_changed(source_path));
    }
    dest.sync(temp).await?;
    dest.set_mode(temp, target.mode).await?;
    keep_owner(dest, temp, target.mode, target.owner).await?;
    dest.rename(temp, target.path).await?;
    Ok(hex::encode(hasher.finalize()))
}

/// Exactly `length` bytes at `offset` (none for 0), else the source changed.
async fn read_exact(
    files: &dyn HostFiles,
    path: &str,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>> {
    if length == 0 {
        return Ok(Vec::new());
    }
    let data = files.read(path, offset, length).await?;
    if data.len() as u64 != length {
        return Err(source_changed(path));
    }
    Ok(data)
}

fn source_changed(path: &str) -> Error {
    Error::new(
        ErrorCode::Conflict,
        format!("{path} changed while it was being copied; call again"),
    )
    .with_path(path)
}

/// An error as a fleet result shows it, naming the host.
pub fn error_json(host_id: &str, error: &Error) -> Value {
    error.clone().with_host(host_id).to_json()["error"].clone()
}

/// The plan of a fleet file tool: the target's hosts (as `rollout` draws and batches
/// them), file work, a source read on `local`. Dry runs are the tool's own (per host),
/// so the engine runs them. A dry run only reads: its plan is read-only, so the hosts'
/// file ports refuse writes. `preview`: nothing will change (the rollout only lists
/// its batches).
pub fn fleet_file_plan(
    planning: &PlanContext,
    target: &str,
    source: &str,
    path: &str,
    dry_run: bool,
    rollout: (&RolloutParams, bool),
) -> Result<Plan> {
    for (name, path) in [("source", source), ("path", path)] {
        if !path.starts_with('/') {
            return Err(
                Error::invalid_input(format!("{name} {path:?} must be an absolute path"))
                    .with_path(path),
            );
        }
    }
    let (rollout, preview) = rollout;
    // The same target, source and path draw the same subset (unless subset_seed says).
    let draw = format!("{target}\n{source}\n{path}");
    let (hosts, rollout) = rollout.plan(
        planning.inventory().resolve(target)?,
        &draw,
        preview,
        planning.previous_job(),
    )?;
    Ok(Plan {
        hosts,
        rollout,
        effect: if dry_run {
            Effect::ReadOnly
        } else {
            Effect::Destructive
        },
        ..Plan::local_state()
    }
    .with_local_source(source)
    .with_path(path, Last::Follow))
}
