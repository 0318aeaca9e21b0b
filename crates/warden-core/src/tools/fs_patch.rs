//! `fs_patch`: applies a unified diff to one file. Every hunk must match exactly (no
//! fuzz; a hunk may sit at another line than its header says, as with `patch`), or
//! nothing changes and `PATCH_FAILED` names the hunk. The result replaces the file
//! atomically with its mode and owner kept. No `confirm`: the diff's context lines are
//! the statement of what the caller expects to change.

use diffy::{Line, Patch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file_args::{self, FileScope, sha256_hex};
use super::fs_write::write_atomic_as;
use super::{Effect, Plan, Tool, ToolInfo};
use crate::engine::{Engine, RunContext};
use crate::error::{Error, ErrorCode, Result};
use crate::files::FileKind;
use crate::sandbox::Last;
use crate::sessions::Event;

pub struct FsPatch;

/// Largest file patched: the file, the diff and the result are held in memory.
pub const MAX_PATCH_FILE_BYTES: u64 = 8 * 1024 * 1024;

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
        summary: "Patch file at path",
        description: "Apply a unified diff to a file atomically: all hunks match exactly or nothing changes. Errors: PATCH_FAILED (names the hunk), CONFLICT, FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, INVALID_INPUT.",
        effect: Effect::Mutating,
        idempotent: false,
        open_world: true,
    };

    fn plan(&self, params: &FsPatchParams, engine: &Engine) -> Result<Plan> {
        parse(&params.unified_diff)?;
        params.scope.plan(engine, Effect::Mutating, false)
    }

    fn run(
        &self,
        params: FsPatchParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsPatchOutput>> + Send + 'static {
        async move {
            let patch = parse(&params.unified_diff)?;
            let (host, sandbox) = file_args::open(&context, &params.path).await?;
            let (resolved, _) = file_args::existing(&sandbox, &params.path, Last::Follow).await?;
            let path = resolved.path;
            // Read, check and write alone: of two patches made against the same
            // content, the second sees the first one's result.
            let _lock = context.file_lock(&host, &path).await;
            let meta = sandbox.files().lstat(&path).await?.ok_or_else(|| {
                Error::new(ErrorCode::FileNotFound, format!("{path}: no such file"))
                    .with_path(&path)
            })?;
            if meta.kind != FileKind::File {
                return Err(Error::invalid_input(format!(
                    "{path} is a {:?}, not a regular file",
                    meta.kind
                ))
                .with_path(&path));
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
            let patched = diffy::apply_bytes(&original, &patch)
                .map_err(|error| hunk_failed(&path, &patch, &original, &error.to_string()))?;
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
                hunks_applied: patch.hunks().len(),
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

/// `PATCH_FAILED` naming the hunk diffy could not place (its message is "error
/// applying hunk #N") and the first line of it that differs from the file where its
/// header points.
fn hunk_failed(path: &str, patch: &Patch<'_, [u8]>, original: &[u8], message: &str) -> Error {
    let number: usize = message
        .rsplit('#')
        .next()
        .and_then(|digits| digits.trim().parse().ok())
        .unwrap_or(1);
    let Some(hunk) = patch.hunks().get(number.saturating_sub(1)) else {
        return Error::new(ErrorCode::PatchFailed, format!("{path}: {message}")).with_path(path);
    };
    let header = format!("@@ -{} +{} @@", hunk.old_range(), hunk.new_range());
    let expected: Vec<&[u8]> = hunk
        .lines()
        .iter()
        .filter_map(|line| match line {
            Line::Context(text) | Line::Delete(text) => Some(*text),
            Line::Insert(_) => None,
        })
        .collect();
    let file_lines: Vec<&[u8]> = original.split_inclusive(|byte| *byte == b'\n').collect();
    let start = hunk.old_range().start().saturating_sub(1);
    let why = expected
        .iter()
        .enumerate()
        .find_map(|(offset, wanted)| {
            let line = start + offset + 1;
            match file_lines.get(start + offset) {
                None => Some(format!(
                    "the file ends before line {line}, where the hunk expects {}",
                    shown(wanted)
                )),
                Some(found) if found != wanted => Some(format!(
                    "line {line} is {} where the hunk expects {}",
                    shown(found),
                    shown(wanted)
                )),
                Some(_) => None,
            }
        })
        .unwrap_or_else(|| {
            String::from("its lines overlap a hunk applied before it (hunks out of order?)")
        });
    Error::new(
        ErrorCode::PatchFailed,
        format!(
            "{path}: hunk #{number} ({header}) does not apply: its {} context/removed lines are found nowhere in the file; {why}. Nothing was changed.",
            expected.len()
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
