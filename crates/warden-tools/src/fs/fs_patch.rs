//! `fs_patch`: applies a unified diff to one file. Every hunk must match exactly (no
//! fuzz; a hunk may sit at another line than its header says, as with `patch`), or
//! nothing changes and `PATCH_FAILED` names the hunk. The result replaces the file
//! atomically with its mode and owner kept. No `confirm`: the diff's context lines are
//! the statement of what the caller expects to change.

use diffy::{Hunk, Line, Patch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope, sha256_hex};
use crate::fs::fs_write::write_atomic_as;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsPatch;

/// Largest file patched: the file, the diff and the result are held in memory.
pub const MAX_PATCH_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Line comparisons allowed for searching misplaced hunks (about a second of CPU).
const MAX_SEARCH_COMPARISONS: usize = 200_000_000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsPatchParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// File to patch.
    pub path: String,
    /// Unified diff (---/+++ headers optional).
    pub unified_diff: String,
    /// Patch only if the file's sha256 is this (else CONFLICT).
    #[serde(default)]
    pub expected_sha256: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsPatchOutput {
    pub path: String,
    pub sha256_before: String,
    pub sha256_after: String,
    pub hunks_applied: usize,
    /// Size after patching.
    pub bytes: u64,
}

impl Tool for FsPatch {
    type Params = FsPatchParams;
    type Output = FsPatchOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_patch",
        domain: Domain::Fs,
        summary: "Patch file at path",
        description: "Apply a unified diff to a file atomically: all hunks match exactly or nothing changes. Errors: PATCH_FAILED (names the hunk), CONFLICT, FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, INVALID_INPUT.",
        effect: Effect::Mutating,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/app.conf", "unified_diff": "--- a/app.conf\n+++ b/app.conf\n@@ -1 +1 @@\n-port = 80\n+port = 8080\n"}"#,
    };

    fn plan(&self, params: &FsPatchParams, planning: &PlanContext) -> Result<Plan> {
        parse(&params.unified_diff)?;
        params
            .scope
            .plan(planning, Effect::Mutating, &[(&params.path, Last::Follow)])
    }

    fn run(
        &self,
        params: FsPatchParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsPatchOutput>> + Send + 'static {
        async move {
            let (host, sandbox) = file_args::open(&context, &params.path).await?;
            let (resolved, _) = file_args::existing(&sandbox, &params.path, Last::Follow).await?;
            let path = resolved.path;
            // Read, check and write alone: of two patches made against the same
            // content, the second sees the first one's result.
            let _lock = context.file_lock(&host, &path).await?;
            let meta = sandbox.files().lstat(&path).await?.ok_or_else(|| {
                Error::new(ErrorCode::FileNotFound, format!("{path}: no such file"))
                    .with_path(&path)
            })?;
            if meta.kind != FileKind::File {
                return Err(file_args::not_a_file(&path, meta.kind));
            }
            let original = sandbox
                .files()
                .read(&path, 0, MAX_PATCH_FILE_BYTES + 1)
                .await?;
            if original.len() as u64 > MAX_PATCH_FILE_BYTES {
                return Err(Error::invalid_input(format!(
                    "{path} is larger than the {} MiB fs_patch edits; use fs_write",
                    MAX_PATCH_FILE_BYTES >> 20
                ))
                .with_path(&path));
            }
            let sha256_before = sha256_hex(&original);
            if let Some(expected) = &params.expected_sha256
                && !expected.eq_ignore_ascii_case(&sha256_before)
            {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "{path} changed: its sha256 is {sha256_before}, not the expected {expected}"
                    ),
                )
                .with_path(&path)
                .with_recovery_tool("fs_read"));
            }
            let (patched, hunks_applied) = apply(&path, params.unified_diff, original).await?;
            write_atomic_as(
                &sandbox,
                &path,
                &patched,
                meta.mode,
                Some((meta.uid, meta.gid)),
            )
            .await?;
            context.note(Event::Written, &path);
            Ok(FsPatchOutput {
                path,
                sha256_before,
                sha256_after: sha256_hex(&patched),
                hunks_applied,
                bytes: patched.len() as u64,
            })
        }
    }
}

/// The diff, which must hold at least one hunk.
fn parse(diff: &str) -> Result<Patch<'_, [u8]>> {
    let patch = Patch::from_bytes(diff.as_bytes()).map_err(|error| {
        Error::invalid_input(format!("unified_diff is not a unified diff: {error}"))
    })?;
    if patch.hunks().is_empty() {
        return Err(Error::invalid_input(
            "unified_diff holds no hunk (no \"@@ -a,b +c,d @@\" line)",
        ));
    }
    Ok(patch)
}

/// Applies `diff` to `original` off the async runtime: placing hunks costs CPU time
/// on big files. Returns the new content and the number of hunks.
async fn apply(path: &str, diff: String, original: Vec<u8>) -> Result<(Vec<u8>, usize)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let patch = parse(&diff)?;
        let lines: Vec<&[u8]> = original.split_inclusive(|byte| *byte == b'\n').collect();
        // A hunk not where its header says is searched for across the whole file, at a
        // cost of (file lines x hunk lines): beyond a budget, only the stated lines count.
        let hunk_lines: usize = patch
            .hunks()
            .iter()
            .map(|hunk| hunk.old_range().len())
            .sum();
        if lines.len().saturating_mul(hunk_lines) > MAX_SEARCH_COMPARISONS {
            for (index, hunk) in patch.hunks().iter().enumerate() {
                if let Some(why) = mismatch(hunk, &lines) {
                    return Err(hunk_error(
                        &path,
                        index + 1,
                        hunk,
                        &format!("{why}; a file this large is not searched for it elsewhere"),
                    ));
                }
            }
        }
        let patched = diffy::apply_bytes(&original, &patch).map_err(|error| {
            // diffy says "error applying hunk #N".
            let text = error.to_string();
            let number: usize = text
                .rsplit('#')
                .next()
                .and_then(|digits| digits.trim().parse().ok())
                .unwrap_or(1);
            match patch.hunks().get(number.saturating_sub(1)) {
                Some(hunk) => {
                    let why = mismatch(hunk, &lines).unwrap_or_else(|| {
                        String::from("its lines overlap a hunk applied before it")
                    });
                    hunk_error(
                        &path,
                        number,
                        hunk,
                        &format!(
                            "its {} context/removed lines are found nowhere in the file; {why}",
                            hunk.old_range().len()
                        ),
                    )
                }
                None => {
                    Error::new(ErrorCode::PatchFailed, format!("{path}: {text}")).with_path(&path)
                }
            }
        })?;
        Ok((patched, patch.hunks().len()))
    })
    .await
    .map_err(|error| Error::internal(format!("patch task failed: {error}")))?
}

/// Where `hunk` differs from `lines` at the place its header names, said for a person.
fn mismatch(hunk: &Hunk<'_, [u8]>, lines: &[&[u8]]) -> Option<String> {
    let start = hunk.old_range().start().saturating_sub(1);
    hunk.lines()
        .iter()
        .filter_map(|line| match line {
            Line::Context(text) | Line::Delete(text) => Some(*text),
            Line::Insert(_) => None,
        })
        .enumerate()
        .find_map(|(offset, wanted)| {
            let number = start + offset + 1;
            match lines.get(start + offset) {
                None => Some(format!(
                    "the file ends before line {number}, where the hunk expects {}",
                    shown(wanted)
                )),
                Some(found) if *found != wanted => Some(format!(
                    "line {number} is {} where the hunk expects {}",
                    shown(found),
                    shown(wanted)
                )),
                Some(_) => None,
            }
        })
}

/// `PATCH_FAILED` naming hunk `number` by its header.
fn hunk_error(path: &str, number: usize, hunk: &Hunk<'_, [u8]>, why: &str) -> Error {
    Error::new(
        ErrorCode::PatchFailed,
        format!(
            "{path}: hunk #{number} (@@ -{} +{} @@) does not apply: {why}. Nothing was changed.",
            hunk.old_range(),
            hunk.new_range()
        ),
    )
    .with_path(path)
    .with_recovery_tool("fs_read")
}

/// A line for an error message: quoted, without its newline, cut when long.
fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    let cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}
