//! `fs_list`: a directory's entries, optionally recursive. Walks never follow a
//! symlink (it is listed with its target), so they cannot leave the root or loop.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, Entry, FileScope};
use crate::fs::walk::{self, WalkOptions};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsList;

/// Entries returned per call unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 500;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsListParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Directory to list [the session's cwd].
    #[serde(default)]
    pub path: Option<String>,
    /// Levels to descend [1].
    #[serde(default)]
    pub depth: Option<usize>,
    /// Entries per page [500].
    #[serde(default)]
    pub limit: Option<usize>,
    /// Entries to skip (the previous page's next_offset).
    #[serde(default)]
    pub offset: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsListOutput {
    /// The resolved directory; entry paths are relative to it.
    pub path: String,
    pub entries: Vec<Entry>,
    pub total: usize,
    /// Offset of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    /// Present when a deep walk stopped at 100000 entries (`total` counts those).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Tool for FsList {
    type Params = FsListParams;
    type Output = FsListOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_list",
        domain: Domain::Fs,
        summary: "List directory path",
        description: "List a directory (type, size, mode, owner, mtime, link target); depth recurses without following symlinks; limit/offset pages. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app"}"#,
    };

    fn plan(&self, params: &FsListParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::ReadOnly,
            &[(params.path.as_deref().unwrap_or("."), Last::Follow)],
        )
    }

    fn run(
        &self,
        params: FsListParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsListOutput>> + Send + 'static {
        async move {
            let path = params.path.clone().unwrap_or_else(|| String::from("."));
            let (_, sandbox) = file_args::open(&context, &path).await?;
            let (resolved, meta) = file_args::existing(&sandbox, &path, Last::Follow).await?;
            if meta.kind != FileKind::Dir {
                return Err(
                    Error::invalid_input(format!("{} is not a directory", resolved.path))
                        .with_path(&resolved.path),
                );
            }
            let options = WalkOptions {
                max_depth: params.depth.unwrap_or(1),
                max_entries: walk::MAX_WALK_ENTRIES,
            };
            // deny_paths hides entries; it does not fail the listing.
            let mut found = walk::walk(&sandbox, &resolved.path, options).await?;
            found.entries.sort_by(|a, b| a.relative.cmp(&b.relative));
            let total = found.entries.len();
            let limit = params.limit.unwrap_or(DEFAULT_LIMIT).max(1);
            let mut entries = Vec::new();
            for walked in found.entries.into_iter().skip(params.offset).take(limit) {
                let mut entry = Entry::new(&sandbox, walked.path, &walked.meta).await;
                entry.path = walked.relative;
                entries.push(entry);
            }
            let next = params.offset + entries.len();
            context.note(Event::Read, &resolved.path);
            Ok(FsListOutput {
                path: resolved.path,
                entries,
                total,
                next_offset: (next < total).then_some(next),
                truncated: found.stats.truncated,
            })
        }
    }
}
