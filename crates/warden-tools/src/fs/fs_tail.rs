//! `fs_tail`: the last lines of a regular file, optionally only those matching a
//! regex. The file is read backwards from its end in chunks, and never further than a
//! byte bound: a multi-gigabyte log costs no more than its tail.

use regex::bytes::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use crate::fs::lines::{self, push_capped};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, HostFiles};
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsTail;

const DEFAULT_LINES: usize = 50;
const MAX_LINES: usize = 1000;
/// Bytes read per request.
const CHUNK: u64 = 64 * 1024;
/// Bytes read back from the end at most, without and with a filter.
const SCAN_BOUND: u64 = 8 * 1024 * 1024;
const FILTERED_SCAN_BOUND: u64 = 64 * 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsTailParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Regular file, e.g. a log.
    pub path: String,
    /// Lines to return [50, max 1000].
    #[serde(default)]
    pub lines: Option<usize>,
    /// Regex: the last lines matching it instead.
    #[serde(default)]
    pub filter: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsTailOutput {
    /// The resolved file.
    pub path: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Oldest first; lines over 500 characters cut, ending in "…".
    pub lines: Vec<String>,
    /// Bytes read back from the end.
    pub bytes_scanned: u64,
    /// Stopped at the read bound (8 MiB; 64 MiB with filter) before finding all lines.
    pub bound_hit: bool,
}

impl Tool for FsTail {
    type Params = FsTailParams;
    type Output = FsTailOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_tail",
        domain: Domain::Fs,
        summary: "Last lines of file path",
        description: "Last lines of a regular file, read backwards from its end; filter (regex) returns the last matching lines. bound_hit: the read bound stopped it. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, POLICY_DENIED, INVALID_INPUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/notes.txt", "lines": 10}"#,
    };

    fn plan(&self, params: &FsTailParams, planning: &PlanContext) -> Result<Plan> {
        params
            .scope
            .plan(planning, Effect::ReadOnly, &[(&params.path, Last::Follow)])
    }

    fn run(
        &self,
        params: FsTailParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsTailOutput>> + Send + 'static {
        async move {
            let filter = params
                .filter
                .as_deref()
                .map(|filter| {
                    RegexBuilder::new(filter)
                        .build()
                        .map_err(|error| Error::invalid_input(format!("filter: {error}")))
                })
                .transpose()?;
            let wanted = params.lines.unwrap_or(DEFAULT_LINES).clamp(1, MAX_LINES);
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let (resolved, meta) =
                file_args::existing(&sandbox, &params.path, Last::Follow).await?;
            if meta.kind != FileKind::File {
                return Err(Error::invalid_input(format!(
                    "{} is not a regular file ({:?})",
                    resolved.path, meta.kind
                ))
                .with_path(&resolved.path));
            }
            let bound = match filter {
                Some(_) => FILTERED_SCAN_BOUND,
                None => SCAN_BOUND,
            };
            let mut reader =
                BackwardLines::new(sandbox.files().as_ref(), &resolved.path, meta.size);
            let mut found = Vec::new();
            while found.len() < wanted {
                let Some((line, cut)) = reader.previous(bound).await? else {
                    break;
                };
                if filter.as_ref().is_none_or(|filter| matches(filter, &line)) {
                    found.push(lines::shown(&line, cut));
                }
            }
            found.reverse();
            let (bytes_scanned, bound_hit) = (reader.scanned, reader.bound_hit);
            context.note(Event::Read, &resolved.path);
            Ok(FsTailOutput {
                path: resolved.path,
                size: meta.size,
                lines: found,
                bytes_scanned,
                bound_hit,
            })
        }
    }
}

fn matches(filter: &Regex, line: &[u8]) -> bool {
    filter.is_match(line.strip_suffix(b"\r").unwrap_or(line))
}

/// A file's lines from the last to the first, read backwards in chunks. Memory: one
/// chunk's lines plus one partial line of at most `lines::LINE_CAP` bytes.
struct BackwardLines<'a> {
    files: &'a dyn HostFiles,
    path: &'a str,
    /// Bytes before this offset are still unread.
    position: u64,
    /// Complete lines from the last chunk, in file order (taken from the end).
    ready: Vec<(Vec<u8>, bool)>,
    /// The earliest line seen so far, whose start is still unread (its first bytes
    /// kept, up to the cap), and whether bytes of it were dropped.
    partial: Vec<u8>,
    partial_cut: bool,
    /// `partial` is a line still to be returned (a file's first line may be empty).
    partial_open: bool,
    scanned: u64,
    bound_hit: bool,
}

impl<'a> BackwardLines<'a> {
    fn new(files: &'a dyn HostFiles, path: &'a str, size: u64) -> BackwardLines<'a> {
        BackwardLines {
            files,
            path,
            position: size,
            ready: Vec::new(),
            partial: Vec::new(),
            partial_cut: false,
            partial_open: size > 0,
            scanned: 0,
            bound_hit: false,
        }
    }

    /// The line before the last one returned, with whether bytes of it were dropped;
    /// `None` at the start of the file or once `bound` bytes have been read.
    async fn previous(&mut self, bound: u64) -> Result<Option<(Vec<u8>, bool)>> {
        loop {
            if let Some(line) = self.ready.pop() {
                return Ok(Some(line));
            }
            if self.position == 0 {
                if !std::mem::take(&mut self.partial_open) {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.partial);
                return Ok(Some((line, self.partial_cut)));
            }
            if self.scanned >= bound {
                self.bound_hit = true;
                return Ok(None);
            }
            let length = CHUNK.min(self.position).min(bound - self.scanned);
            let start = self.position - length;
            let mut data = self.files.read(self.path, start, length).await?;
            if data.len() as u64 != length {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!("{} shrank while being read; try again", self.path),
                )
                .with_path(self.path));
            }
            if self.scanned == 0 && data.last() == Some(&b'\n') {
                // The final newline ends the last line; no empty line follows it.
                data.pop();
            }
            self.scanned += length;
            self.position = start;
            self.split(&data);
        }
    }

    /// Splits a chunk that comes right before what was read so far.
    fn split(&mut self, data: &[u8]) {
        let mut pieces = data.split(|byte| *byte == b'\n');
        let first = pieces.next().unwrap_or_default();
        let mut later: Vec<&[u8]> = pieces.collect();
        let Some(last) = later.pop() else {
            // No newline: all of it belongs to the partial line, in front.
            let mut joined = first.to_vec();
            let cut = push_capped(&mut joined, &self.partial);
            joined.truncate(lines::LINE_CAP);
            self.partial_cut |= cut || first.len() > lines::LINE_CAP;
            self.partial = joined;
            return;
        };
        // A newline was found: the partial line is complete now.
        let mut completed = last.to_vec();
        let cut = push_capped(&mut completed, &self.partial) || self.partial_cut;
        completed.truncate(lines::LINE_CAP);
        let cut = cut || last.len() > lines::LINE_CAP;
        self.ready = later
            .into_iter()
            .map(|line| (line.to_vec(), false))
            .collect();
        self.ready.push((completed, cut));
        self.partial = first.to_vec();
        self.partial_cut = false;
        self.partial_open = true;
    }
}
