//! `fs_diff`: two files on one host as a unified diff (the text `fs_patch` takes).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::{Last, Sandbox};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsDiff;

/// Largest file compared: both are held in memory and diffed line by line.
const MAX_DIFF_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longest stretch of lines between the first and the last difference (a few seconds
/// of CPU at worst: the diff's cost is quadratic in it).
const MAX_DIFF_SPAN_LINES: usize = 10_000;
/// Most context lines asked for.
const MAX_CONTEXT_LINES: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsDiffParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Original file.
    pub path_a: String,
    /// Changed file.
    pub path_b: String,
    /// Unchanged lines around each change [3].
    #[serde(default)]
    pub context_lines: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsDiffOutput {
    pub path_a: String,
    pub path_b: String,
    pub identical: bool,
    /// Either file is not UTF-8 text: no diff is shown.
    pub binary: bool,
    /// Unified diff, empty when identical.
    pub diff: String,
    /// The diff was cut at limits.max_output_bytes.
    pub truncated: bool,
}

impl Tool for FsDiff {
    type Params = FsDiffParams;
    type Output = FsDiffOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_diff",
        domain: Domain::Fs,
        summary: "Diff path_a and path_b",
        description: "Compare two text files (up to 4 MiB, changes within 10000 lines) as a unified diff, usable by fs_patch. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, INVALID_INPUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path_a": "/srv/app/app.conf", "path_b": "/srv/app/release/app.conf"}"#,
    };

    fn plan(&self, params: &FsDiffParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::ReadOnly,
            &[
                (&params.path_a, Last::Follow),
                (&params.path_b, Last::Follow),
            ],
        )
    }

    fn run(
        &self,
        params: FsDiffParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsDiffOutput>> + Send + 'static {
        async move {
            let context_lines = params.context_lines.unwrap_or(3);
            if context_lines > MAX_CONTEXT_LINES {
                return Err(Error::invalid_input(format!(
                    "context_lines is at most {MAX_CONTEXT_LINES}"
                )));
            }
            let (host, sandbox_a) = file_args::open(&context, &params.path_a).await?;
            let sandbox_b = context.sandbox(&host, &params.path_b).await?;
            let (path_a, a) = read_text(&sandbox_a, &params.path_a).await?;
            let (path_b, b) = read_text(&sandbox_b, &params.path_b).await?;
            context.note(Event::Read, &path_a);
            context.note(Event::Read, &path_b);
            let identical = a == b;
            let mut output = FsDiffOutput {
                path_a,
                path_b,
                identical,
                binary: false,
                diff: String::new(),
                truncated: false,
            };
            let (Ok(a), Ok(b)) = (String::from_utf8(a), String::from_utf8(b)) else {
                output.binary = true;
                return Ok(output);
            };
            if identical {
                return Ok(output);
            }
            let names = (output.path_a.clone(), output.path_b.clone());
            let diff =
                tokio::task::spawn_blocking(move || unified_diff(&a, &b, context_lines, names))
                    .await
                    .map_err(|error| Error::internal(format!("diff task failed: {error}")))??;
            let limit = context.config().config.limits.max_output_bytes;
            if diff.len() > limit {
                let cut = (0..=limit)
                    .rev()
                    .find(|index| diff.is_char_boundary(*index))
                    .unwrap_or(0);
                output.diff = diff[..cut].to_owned();
                output.truncated = true;
            } else {
                output.diff = diff;
            }
            Ok(output)
        }
    }
}

/// The diff of two texts, computed off the async runtime by the caller: its cost
/// grows with the square of the lines that differ, so the span between the first and
/// the last differing line is bounded.
pub(crate) fn unified_diff(
    a: &str,
    b: &str,
    context_lines: usize,
    names: (String, String),
) -> Result<String> {
    let (lines_a, lines_b): (Vec<&str>, Vec<&str>) = (
        a.split_inclusive('\n').collect(),
        b.split_inclusive('\n').collect(),
    );
    let prefix = lines_a
        .iter()
        .zip(&lines_b)
        .take_while(|(x, y)| x == y)
        .count();
    let suffix = lines_a[prefix..]
        .iter()
        .rev()
        .zip(lines_b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let span = (lines_a.len() - prefix - suffix).max(lines_b.len() - prefix - suffix);
    if span > MAX_DIFF_SPAN_LINES {
        return Err(Error::invalid_input(format!(
            "{} and {} differ across {span} lines, more than the {MAX_DIFF_SPAN_LINES} fs_diff compares; diff smaller files",
            names.0, names.1
        )));
    }
    Ok(diffy::DiffOptions::new()
        .set_context_len(context_lines)
        .set_original_filename(names.0)
        .set_modified_filename(names.1)
        .create_patch(a, b)
        .to_string())
}

/// A regular file's resolved path and content, bounded in size.
async fn read_text(sandbox: &Sandbox, path: &str) -> Result<(String, Vec<u8>)> {
    let (resolved, meta) = file_args::existing(sandbox, path, Last::Follow).await?;
    if meta.kind != FileKind::File {
        return Err(file_args::not_a_file(&resolved.path, meta.kind));
    }
    let data = sandbox
        .files()
        .read(&resolved.path, 0, MAX_DIFF_FILE_BYTES + 1)
        .await?;
    if data.len() as u64 > MAX_DIFF_FILE_BYTES {
        return Err(Error::invalid_input(format!(
            "{} is larger than the {} MiB fs_diff compares",
            resolved.path,
            MAX_DIFF_FILE_BYTES >> 20
        ))
        .with_path(&resolved.path));
    }
    Ok((resolved.path, data))
}
