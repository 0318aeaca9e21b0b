//! `fs_write`: atomic file write (temp file in the same directory, fsync, rename).
//! Replacing an existing file needs `confirm: true`; without it the answer is a
//! preview of the change and nothing is written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope, parse_mode, sha256_hex};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, HostFiles};
use warden_core::sandbox::{Last, Sandbox, parent_of, temp_beside};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsWrite;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsWriteParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// File to write.
    pub path: String,
    /// New content as text (or give content_base64).
    #[serde(default)]
    pub content: Option<String>,
    /// New content as base64 (binary files).
    #[serde(default)]
    pub content_base64: Option<String>,
    /// Octal mode, e.g. "0644" [the replaced file's, else 0644].
    #[serde(default)]
    pub mode: Option<String>,
    /// Create missing parent directories.
    #[serde(default)]
    pub create_dirs: bool,
    /// Write only if the file's current sha256 is this (else CONFLICT).
    #[serde(default)]
    pub expected_sha256: Option<String>,
    /// Required to replace an existing file; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsWriteOutput {
    pub path: String,
    /// Written (false: a preview, nothing changed).
    pub written: bool,
    pub created: bool,
    pub bytes: u64,
    pub sha256: String,
    /// sha256 of the content replaced (or that would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// In a preview of replacing a text file: the unified diff (cut at 8 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// Texts up to this size are diffed in a preview.
const PREVIEW_DIFF_FILE_BYTES: u64 = 64 * 1024;
/// The diff in a preview is cut here (on a line boundary).
const PREVIEW_DIFF_BYTES: usize = 8 * 1024;

/// The diff of replacing `path` (`size` bytes now) with `data`, when both are text
/// small enough to show.
async fn preview_diff(sandbox: &Sandbox, path: &str, size: u64, data: &[u8]) -> Option<String> {
    if size > PREVIEW_DIFF_FILE_BYTES || data.len() as u64 > PREVIEW_DIFF_FILE_BYTES {
        return None;
    }
    let old = String::from_utf8(sandbox.files().read(path, 0, size).await.ok()?).ok()?;
    let new = String::from_utf8(data.to_vec()).ok()?;
    let names = (format!("a{path}"), format!("b{path}"));
    let diff =
        tokio::task::spawn_blocking(move || crate::fs::fs_diff::unified_diff(&old, &new, 3, names))
            .await
            .ok()?
            .ok()?;
    if diff.len() <= PREVIEW_DIFF_BYTES {
        return Some(diff);
    }
    let cut = diff[..PREVIEW_DIFF_BYTES]
        .rfind('\n')
        .map_or(0, |at| at + 1);
    Some(format!(
        "{}… (diff cut at {PREVIEW_DIFF_BYTES} bytes)\n",
        &diff[..cut]
    ))
}

impl Tool for FsWrite {
    type Params = FsWriteParams;
    type Output = FsWriteOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_write",
        domain: Domain::Fs,
        summary: "Write file at path",
        description: "Write a file atomically (temp, fsync, rename). Replacing one needs confirm: true (else a preview); expected_sha256 guards lost updates. Errors: CONFLICT, PATH_OUTSIDE_ROOT, POLICY_DENIED, FILE_NOT_FOUND, LOCAL_DISABLED.",
        effect: Effect::Destructive,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/new.conf", "content": "port = 8080\n"}"#,
    };

    fn plan(&self, params: &FsWriteParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::Destructive,
            &[(&params.path, Last::Follow)],
        )
    }

    fn run(
        &self,
        params: FsWriteParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsWriteOutput>> + Send + 'static {
        async move {
            let data = content_of(&params)?;
            let (host, sandbox) = file_args::open(&context, &params.path).await?;
            // A symlink as the last component is followed, and must stay inside.
            let resolved = sandbox.resolve(&params.path, Last::Follow).await?;
            // Read, check and write alone: two writers with one expected_sha256
            // cannot both win. The file is looked at again under the lock.
            let _lock = context.file_lock(&host, &resolved.path).await?;
            let current = sandbox.files().lstat(&resolved.path).await?;
            let previous = match &current {
                Some(meta) if meta.kind == FileKind::File => Some(meta.clone()),
                Some(meta) => {
                    return Err(file_args::not_a_file(&resolved.path, meta.kind));
                }
                None => None,
            };
            let previous_sha256 = match &previous {
                Some(meta) => Some(
                    file_args::hash_file(sandbox.files().as_ref(), &resolved.path, meta.size)
                        .await?
                        .0,
                ),
                None => None,
            };
            if let Some(expected) = &params.expected_sha256
                && previous_sha256.as_deref() != Some(expected.to_ascii_lowercase().as_str())
            {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "{} changed: its sha256 is {}, not the expected {expected}",
                        resolved.path,
                        previous_sha256.as_deref().unwrap_or("(no file)")
                    ),
                )
                .with_path(&resolved.path)
                .with_recovery_tool("fs_read"));
            }
            let sha256 = sha256_hex(&data);
            let mut output = FsWriteOutput {
                path: resolved.path.clone(),
                written: false,
                created: previous.is_none(),
                bytes: data.len() as u64,
                sha256,
                previous_sha256,
                previous_size: previous.as_ref().map(|meta| meta.size),
                preview: None,
                diff: None,
            };
            if let Some(meta) = previous.as_ref().filter(|_| !params.confirm) {
                output.diff = preview_diff(&sandbox, &resolved.path, meta.size, &data).await;
                output.preview = Some(format!(
                    "would replace {} ({} bytes) with {} bytes; call again with confirm: true and the plan_token",
                    resolved.path,
                    meta.size,
                    data.len()
                ));
                return Ok(output);
            }
            if resolved.parent_missing {
                if !params.create_dirs {
                    return Err(Error::new(
                        ErrorCode::FileNotFound,
                        format!(
                            "{}: the parent directory does not exist (create_dirs: true makes it)",
                            resolved.path
                        ),
                    )
                    .with_path(&resolved.path));
                }
                make_dirs(&sandbox, parent_of(&resolved.path)).await?;
            }
            let mode = match &params.mode {
                Some(text) => parse_mode(text)?,
                None => previous.as_ref().map_or(0o644, |meta| meta.mode),
            };
            let owner = previous.as_ref().map(|meta| (meta.uid, meta.gid));
            write_atomic_as(&sandbox, &resolved.path, &data, mode, owner).await?;
            context.note(Event::Written, &resolved.path);
            output.written = true;
            Ok(output)
        }
    }
}

fn content_of(params: &FsWriteParams) -> Result<Vec<u8>> {
    match (&params.content, &params.content_base64) {
        (Some(text), None) => Ok(text.clone().into_bytes()),
        (None, Some(encoded)) => {
            data_encoding::BASE64
                .decode(encoded.as_bytes())
                .map_err(|error| {
                    Error::invalid_input(format!("content_base64 is not base64: {error}"))
                })
        }
        _ => Err(Error::invalid_input(
            "give content or content_base64 (one of them)",
        )),
    }
}

/// Temp file beside the target, fsynced, then renamed over it: readers see the old
/// file or the new one, never a part.
pub async fn write_atomic(sandbox: &Sandbox, path: &str, data: &[u8], mode: u32) -> Result<()> {
    write_atomic_as(sandbox, path, data, mode, None).await
}

/// [`write_atomic`], giving the new file `owner` (the replaced file's uid and gid) so
/// an edit made as root does not take a service's file away from it. A login that may
/// not give files away (not root) keeps its own ownership: that is no failure.
pub async fn write_atomic_as(
    sandbox: &Sandbox,
    path: &str,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let temp = temp_beside(path);
    sandbox.files().create_new(&temp, data, mode).await?;
    if let Err(error) = finish_temp(sandbox, &temp, path, mode, owner).await {
        let _ = sandbox.files().remove_file(&temp).await;
        return Err(error);
    }
    Ok(())
}

/// Puts a symlink to `target` at `path` atomically, replacing the link or file there:
/// a new link beside it, renamed over it.
pub async fn symlink_atomic(files: &dyn HostFiles, target: &str, path: &str) -> Result<()> {
    let temp = temp_beside(path);
    files.symlink(target, &temp).await?;
    if let Err(error) = files.rename(&temp, path).await {
        let _ = files.remove_file(&temp).await;
        return Err(error);
    }
    Ok(())
}

/// Gives a written temp file its owner (if asked) and renames it over `path`.
async fn finish_temp(
    sandbox: &Sandbox,
    temp: &str,
    path: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    keep_owner(sandbox.files().as_ref(), temp, mode, owner).await?;
    sandbox.files().rename(temp, path).await
}

/// Gives the file about to replace another that file's owner (uid, gid), so a change
/// made as root does not take a service's file away from it. A login that may not give
/// files away (not root) keeps its own ownership: that is no failure.
pub async fn keep_owner(
    files: &dyn HostFiles,
    temp: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    match files.set_owner(temp, uid, gid).await {
        // The kernel drops set-id bits on chown; they were asked for.
        Ok(()) if mode & 0o6000 != 0 => files.set_mode(temp, mode).await,
        Ok(()) => Ok(()),
        Err(error) if error.code == ErrorCode::PermissionDenied => Ok(()),
        Err(error) => Err(error),
    }
}

/// Creates `directory` and its missing parents, each resolved inside the root.
pub async fn make_dirs(sandbox: &Sandbox, directory: &str) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = directory.to_owned();
    loop {
        let resolved = sandbox.resolve(&current, Last::Follow).await?;
        match resolved.meta {
            Some(meta) if meta.kind == FileKind::Dir => break,
            Some(_) => {
                return Err(Error::invalid_input(format!(
                    "{} exists and is not a directory",
                    resolved.path
                ))
                .with_path(&resolved.path));
            }
            None => {
                missing.push(resolved.path.clone());
                current = parent_of(&resolved.path).to_owned();
            }
        }
    }
    for path in missing.iter().rev() {
        sandbox.files().mkdir(path, 0o755).await?;
    }
    Ok(())
}
