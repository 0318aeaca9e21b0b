//! What every file tool shares: where it works (a session, or a host and an absolute
//! path under `policy.allowed_roots`), its plan, and how entries are shown.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::walk::{MAX_WALK_ENTRIES, too_many_entries};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, FileMeta, HostFiles};
use warden_core::inventory::Host;
use warden_core::sandbox::{Last, Resolved, Sandbox};
use warden_core::tool::{Effect, Plan};
use warden_core::{PlanContext, RunContext};

/// Where a file tool works: give `session_id`, or `host_id` with an absolute path.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct FileScope {
    /// Session; paths relative to its root.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Or a host; absolute paths.
    #[serde(default)]
    pub host_id: Option<String>,
}

impl FileScope {
    /// The plan of a file call working on `paths` (each with how its last symlink is
    /// treated): the engine checks and resolves them before anything runs.
    pub fn plan(
        &self,
        planning: &PlanContext,
        effect: Effect,
        paths: &[(&str, Last)],
    ) -> Result<Plan> {
        let hosts = match (&self.session_id, &self.host_id) {
            (Some(_), None) => Vec::new(),
            (None, Some(host_id)) => vec![planning.inventory().require(host_id)?],
            (Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    "give session_id (from session_open) or host_id, not both",
                ));
            }
            (None, None) => {
                return Err(Error::invalid_input(
                    "name where the file is: session_id (from session_open) or host_id with an absolute path",
                ));
            }
        };
        let mut plan = Plan {
            hosts,
            effect,
            session: self.session_id.clone(),
            ..Plan::local_state()
        };
        for (path, last) in paths {
            plan = plan.with_path(path, *last);
        }
        Ok(plan)
    }
}

/// The call's one host and its sandbox for `path`.
pub async fn open(context: &RunContext, path: &str) -> Result<(Arc<Host>, Sandbox)> {
    let host = context
        .planned_hosts()
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("file call without a host"))?;
    let sandbox = context.sandbox(&host, path).await?;
    Ok((host, sandbox))
}

/// Resolves `path` and requires something to be there.
pub async fn existing(sandbox: &Sandbox, path: &str, last: Last) -> Result<(Resolved, FileMeta)> {
    let resolved = sandbox.resolve(path, last).await?;
    match resolved.meta.clone() {
        Some(meta) => Ok((resolved, meta)),
        None => Err(Error::new(
            ErrorCode::FileNotFound,
            format!("{path}: no such file or directory"),
        )
        .with_path(&resolved.path)),
    }
}

/// What a tool that needs a regular file says of anything else at `path`.
pub fn not_a_file(path: &str, kind: FileKind) -> Error {
    Error::invalid_input(format!("{path} is a {kind:?}, not a regular file")).with_path(path)
}

/// Refuses a copy or move to `to` when its parent directory is missing or it is
/// `from` itself.
pub fn check_destination(from: &str, to: &Resolved) -> Result<()> {
    if to.parent_missing {
        return Err(Error::new(
            ErrorCode::FileNotFound,
            format!("{}: its parent directory does not exist", to.path),
        )
        .with_path(&to.path));
    }
    if from == to.path {
        return Err(Error::invalid_input("from and to are the same path").with_path(&to.path));
    }
    Ok(())
}

/// A directory copied or moved (`verb`) into itself.
pub fn into_itself(verb: &str, from: &str, to: &str) -> Error {
    Error::invalid_input(format!("cannot {verb} {from} into itself ({to})")).with_path(to)
}

/// One file system entry as results show it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Entry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits in octal, e.g. "0644".
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Where a symlink points (not followed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Entry {
    pub async fn new(sandbox: &Sandbox, path: String, meta: &FileMeta) -> Entry {
        let target = if meta.kind == FileKind::Symlink {
            sandbox.files().read_link(&path).await.ok()
        } else {
            None
        };
        Entry {
            path,
            kind: meta.kind,
            size: meta.size,
            mode: format!("{:04o}", meta.mode),
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            target,
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Bytes read or written per step by whole-file scans and copies: memory stays a few
/// MiB whatever a file's size.
pub const CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// Reads the first `size` bytes of a regular file in bounded chunks, handing each to
/// `visit`: hashing a multi-GB file never holds it whole.
pub async fn for_each_chunk(
    files: &dyn HostFiles,
    path: &str,
    size: u64,
    mut visit: impl FnMut(&[u8]),
) -> Result<()> {
    let mut at = 0;
    while at < size {
        let data = files.read(path, at, CHUNK_BYTES.min(size - at)).await?;
        if data.is_empty() {
            break;
        }
        at += data.len() as u64;
        visit(&data);
    }
    Ok(())
}

/// SHA-256 of the first `size` bytes of a regular file (`u64::MAX`: all of it) and how
/// many bytes that was.
pub async fn hash_file(files: &dyn HostFiles, path: &str, size: u64) -> Result<(String, u64)> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut length = 0u64;
    for_each_chunk(files, path, size, |data| {
        hasher.update(data);
        length += data.len() as u64;
    })
    .await?;
    Ok((hex::encode(hasher.finalize()), length))
}

/// Parses an octal mode such as "644" or "0755".
pub fn parse_mode(text: &str) -> Result<u32> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| {
            Error::invalid_input(format!("mode {text:?} is not an octal mode like \"0644\""))
        })
}

/// What `fs_chmod` and `fs_chown` change: a path and, when recursive, its tree.
pub struct ChangeTargets {
    pub resolved: Resolved,
    pub meta: FileMeta,
    /// Entries to change, parents before children; symlinks left out.
    pub entries: Vec<(String, FileMeta)>,
    /// Symlinks met in the walk and left alone.
    pub skipped_symlinks: usize,
}

/// Resolves `path` without following a last symlink (a link there is refused: `tool`
/// never follows links) and lists it, with `recursive` its whole tree, for a change.
pub async fn change_targets(
    sandbox: &Sandbox,
    path: &str,
    recursive: bool,
    tool: &str,
) -> Result<ChangeTargets> {
    let (resolved, meta) = existing(sandbox, path, Last::NoFollow).await?;
    if meta.kind == FileKind::Symlink {
        return Err(Error::invalid_input(format!(
            "{} is a symlink: {tool} never follows links; give the path it points to",
            resolved.path
        ))
        .with_path(&resolved.path));
    }
    let mut entries = if recursive {
        tree(sandbox, &resolved.path, meta.clone(), MAX_WALK_ENTRIES).await?
    } else {
        vec![(resolved.path.clone(), meta.clone())]
    };
    let listed = entries.len();
    entries.retain(|(_, entry)| entry.kind != FileKind::Symlink);
    Ok(ChangeTargets {
        skipped_symlinks: listed - entries.len(),
        resolved,
        meta,
        entries,
    })
}

/// `path` and, when it is a directory, everything below it, parents before children.
/// Symlinks are listed, never followed; every entry passes deny_paths (one denied
/// entry refuses the whole walk, before the caller changes anything, as do more than
/// `cap` entries).
pub(crate) async fn tree(
    sandbox: &Sandbox,
    path: &str,
    meta: FileMeta,
    cap: usize,
) -> Result<Vec<(String, FileMeta)>> {
    let mut out = Vec::new();
    let mut pending = vec![(path.to_owned(), meta)];
    while let Some((current, meta)) = pending.pop() {
        if out.len() == cap {
            return Err(too_many_entries(path, cap));
        }
        sandbox.check(&current)?;
        let is_dir = meta.kind == FileKind::Dir;
        out.push((current.clone(), meta));
        if is_dir {
            for entry in sandbox.files().read_dir(&current).await? {
                let child = format!("{}/{}", current.trim_end_matches('/'), entry.name);
                pending.push((child, entry.meta));
            }
        }
    }
    Ok(out)
}
