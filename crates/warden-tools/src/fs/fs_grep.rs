//! `fs_grep`: lines matching a regex in a file or in the files below a directory.
//! Files are read in chunks (memory stays bounded whatever their size); binary and
//! very large files are skipped and counted; the walk never follows a symlink.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use regex::bytes::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use crate::fs::lines::{self, push_capped};
use crate::fs::walk::{self, WalkOptions};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::{Last, Sandbox};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsGrep;

const DEFAULT_MATCHES: usize = 100;
const MAX_MATCHES: usize = 1000;
const MAX_CONTEXT_LINES: usize = 10;
/// Bytes read per request.
const CHUNK: u64 = 128 * 1024;
/// A NUL byte in a file's first this many bytes marks it binary.
const BINARY_PROBE: usize = 8 * 1024;
/// Files larger than this are skipped (fs_tail with a filter reads big logs).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes read in one call at most, over all files.
const MAX_SCAN_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsGrepParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// File, or directory to search below.
    pub path: String,
    /// Regex (Rust syntax), matched per line.
    pub pattern: String,
    /// Glob on file names in a directory, e.g. "*.conf".
    #[serde(default)]
    pub glob: Option<String>,
    /// Lines shown before and after a match [0, max 10].
    #[serde(default)]
    pub context_lines: Option<usize>,
    /// Matches returned at most [100, max 1000].
    #[serde(default)]
    pub max_matches: Option<usize>,
    /// Case-insensitive.
    #[serde(default)]
    pub ignore_case: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsGrepOutput {
    /// The resolved file or directory searched.
    pub path: String,
    pub matches: Vec<GrepMatch>,
    /// Stopped early: max_matches, limits.max_read_bytes of text, or a walk/read bound.
    pub truncated: bool,
    /// Files searched.
    pub files_scanned: usize,
    pub skipped: Skipped,
}

/// One matching line. Lines over 500 characters are cut and end with "…".
#[derive(Debug, Serialize, JsonSchema)]
pub struct GrepMatch {
    /// Absolute path of the file.
    pub path: String,
    /// Line number, from 1.
    pub line: u64,
    pub text: String,
    /// Context lines before the match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    /// Context lines after the match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// Files (or directories) not searched, and why.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct Skipped {
    /// A NUL byte in the first 8 KiB.
    pub binary: usize,
    /// Larger than 16 MiB.
    pub too_large: usize,
    /// Hidden by deny_paths.
    pub denied: usize,
    /// Permission denied.
    pub unreadable: usize,
}

impl Tool for FsGrep {
    type Params = FsGrepParams;
    type Output = FsGrepOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_grep",
        domain: Domain::Fs,
        summary: "Search pattern in files at path",
        description: "Regex search in a file or the files below a directory (name glob, context lines); results are path, line number, text. Skips binary and >16 MiB files; never follows symlinks. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, POLICY_DENIED, INVALID_INPUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app", "pattern": "port"}"#,
    };

    fn plan(&self, params: &FsGrepParams, planning: &PlanContext) -> Result<Plan> {
        params
            .scope
            .plan(planning, Effect::ReadOnly, &[(&params.path, Last::Follow)])
    }

    fn run(
        &self,
        params: FsGrepParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsGrepOutput>> + Send + 'static {
        async move {
            let regex = RegexBuilder::new(&params.pattern)
                .case_insensitive(params.ignore_case)
                .build()
                .map_err(|error| Error::invalid_input(format!("pattern: {error}")))?;
            let glob = params
                .glob
                .as_deref()
                .map(|glob| {
                    globset::Glob::new(glob)
                        .map(|glob| glob.compile_matcher())
                        .map_err(|error| Error::invalid_input(format!("glob {glob:?}: {error}")))
                })
                .transpose()?;
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let (resolved, meta) =
                file_args::existing(&sandbox, &params.path, Last::Follow).await?;
            let mut search = Search {
                regex,
                context_lines: params.context_lines.unwrap_or(0).min(MAX_CONTEXT_LINES),
                max_matches: params
                    .max_matches
                    .unwrap_or(DEFAULT_MATCHES)
                    .clamp(1, MAX_MATCHES),
                budget: MAX_SCAN_BYTES,
                text_left: context.config().config.limits.max_read_bytes,
                output: FsGrepOutput {
                    path: resolved.path.clone(),
                    matches: Vec::new(),
                    truncated: false,
                    files_scanned: 0,
                    skipped: Skipped::default(),
                },
            };
            match meta.kind {
                FileKind::File => {
                    // A file named by the caller: its errors are the answer.
                    search.file(&sandbox, &resolved.path, meta.size).await?;
                }
                FileKind::Dir => {
                    let mut files = Vec::new();
                    let options = WalkOptions {
                        max_depth: usize::MAX,
                        max_entries: walk::MAX_WALK_ENTRIES,
                    };
                    let stats = walk::visit(&sandbox, &resolved.path, options, |entry| {
                        let name = entry.relative.rsplit('/').next().unwrap_or_default();
                        if entry.meta.kind == FileKind::File
                            && glob.as_ref().is_none_or(|glob| glob.is_match(name))
                        {
                            files.push((entry.path, entry.meta.size));
                        }
                        ControlFlow::Continue(())
                    })
                    .await?;
                    search.output.truncated = stats.truncated;
                    search.output.skipped.denied = stats.skipped_denied;
                    search.output.skipped.unreadable = stats.unreadable;
                    for (path, size) in files {
                        match search.file(&sandbox, &path, size).await {
                            Ok(Scanned::Completely) => {}
                            Ok(Scanned::Stopped) => break,
                            // Gone, swapped for a FIFO, or unreadable since the walk.
                            Err(error) if error.code == ErrorCode::PermissionDenied => {
                                search.output.skipped.unreadable += 1;
                            }
                            Err(error)
                                if matches!(
                                    error.code,
                                    ErrorCode::FileNotFound | ErrorCode::InvalidInput
                                ) => {}
                            Err(error) => return Err(error),
                        }
                    }
                }
                _ => {
                    return Err(Error::invalid_input(format!(
                        "{} is not a regular file or directory",
                        resolved.path
                    ))
                    .with_path(&resolved.path));
                }
            }
            context.note(Event::Read, &resolved.path);
            Ok(search.output)
        }
    }
}

enum Scanned {
    Completely,
    /// max_matches or the read budget reached: no more files.
    Stopped,
}

/// One call's search state across files.
struct Search {
    regex: Regex,
    context_lines: usize,
    max_matches: usize,
    /// Bytes that may still be read.
    budget: u64,
    /// Bytes of lines (matches and context) that may still be returned.
    text_left: usize,
    output: FsGrepOutput,
}

impl Search {
    /// Searches one regular file of `size` bytes, chunk by chunk.
    async fn file(&mut self, sandbox: &Sandbox, path: &str, size: u64) -> Result<Scanned> {
        if size > MAX_FILE_BYTES {
            self.output.skipped.too_large += 1;
            return Ok(Scanned::Completely);
        }
        let mut lines = FileLines::new(path, self.context_lines);
        let mut offset = 0;
        // Read up to the size the walk saw: a growing log does not keep the scan going.
        while offset < size {
            if self.budget == 0 {
                self.output.truncated = true;
                return Ok(Scanned::Stopped);
            }
            let length = CHUNK.min(size - offset).min(self.budget);
            let data = sandbox.files().read(path, offset, length).await?;
            if offset == 0 {
                let probe = &data[..data.len().min(BINARY_PROBE)];
                if probe.contains(&0) {
                    self.output.skipped.binary += 1;
                    return Ok(Scanned::Completely);
                }
                self.output.files_scanned += 1;
            }
            if data.is_empty() {
                // Shrunk since the walk.
                break;
            }
            offset += data.len() as u64;
            self.budget -= data.len() as u64;
            let mut rest = data.as_slice();
            while let Some(newline) = rest.iter().position(|byte| *byte == b'\n') {
                lines.cut |= push_capped(&mut lines.current, &rest[..newline]);
                rest = &rest[newline + 1..];
                if self.line(&mut lines).is_break() {
                    return Ok(Scanned::Stopped);
                }
            }
            lines.cut |= push_capped(&mut lines.current, rest);
        }
        if size == 0 {
            self.output.files_scanned += 1;
        }
        if !lines.current.is_empty() && self.line(&mut lines).is_break() {
            return Ok(Scanned::Stopped);
        }
        Ok(Scanned::Completely)
    }

    /// Takes the completed `lines.current`: context for earlier matches, then a match
    /// itself. Breaks once one match more than `max_matches` (or more text than
    /// allowed) shows there are more.
    fn line(&mut self, lines: &mut FileLines) -> ControlFlow<()> {
        lines.number += 1;
        let raw = std::mem::take(&mut lines.current);
        let cut = std::mem::take(&mut lines.cut);
        let mut text = None;
        let mut shown = || text.get_or_insert_with(|| lines::shown(&raw, cut)).clone();
        for (index, wanted) in lines.awaiting_after.iter_mut() {
            let after = shown();
            self.text_left = self.text_left.saturating_sub(after.len());
            self.output.matches[*index].after.push(after);
            *wanted -= 1;
        }
        lines.awaiting_after.retain(|(_, wanted)| *wanted > 0);
        let matched = self.regex.is_match(&raw);
        if matched {
            if self.output.matches.len() == self.max_matches || self.text_left == 0 {
                self.output.truncated = true;
                return ControlFlow::Break(());
            }
            if self.context_lines > 0 {
                lines
                    .awaiting_after
                    .push_back((self.output.matches.len(), self.context_lines));
            }
            let found = GrepMatch {
                path: lines.path.clone(),
                line: lines.number,
                text: shown(),
                before: lines.before.iter().cloned().collect(),
                after: Vec::new(),
            };
            let context: usize = found.before.iter().map(String::len).sum();
            let size = found.path.len() + found.text.len() + context;
            self.text_left = self.text_left.saturating_sub(size);
            self.output.matches.push(found);
        }
        if self.context_lines > 0 {
            if lines.before.len() == self.context_lines {
                lines.before.pop_front();
            }
            lines.before.push_back(shown());
        }
        ControlFlow::Continue(())
    }
}

/// The line being assembled in one file, and the context kept around it.
struct FileLines {
    path: String,
    /// Number of the last completed line.
    number: u64,
    current: Vec<u8>,
    /// Bytes of `current` were dropped (over `lines::LINE_CAP`).
    cut: bool,
    /// The last `context_lines` lines, for the next match's `before`.
    before: VecDeque<String>,
    /// Matches (index in the output) still owed `after` lines, and how many.
    awaiting_after: VecDeque<(usize, usize)>,
}

impl FileLines {
    fn new(path: &str, context_lines: usize) -> FileLines {
        FileLines {
            path: path.to_owned(),
            number: 0,
            current: Vec::new(),
            cut: false,
            before: VecDeque::with_capacity(context_lines),
            awaiting_after: VecDeque::new(),
        }
    }
}
