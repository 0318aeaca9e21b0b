//! `fs_find`: entries below a directory that pass name, type, size and age filters.
//! The walk never follows a symlink (a link can match, its target is not searched).

use std::ops::ControlFlow;
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, Entry, FileScope};
use crate::fs::walk::{self, WalkEntry, WalkOptions};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsFind;

const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 5000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsFindParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Directory to search [the session's cwd].
    #[serde(default)]
    pub path: Option<String>,
    /// Glob on the entry's name, e.g. "*.log".
    #[serde(default)]
    pub name: Option<String>,
    /// Entry type.
    #[serde(default, rename = "type")]
    pub kind: Option<FileKind>,
    /// Bytes at least.
    #[serde(default)]
    pub min_size: Option<u64>,
    /// Bytes at most.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Modified at most this many seconds ago.
    #[serde(default)]
    pub newer_than_s: Option<u64>,
    /// Modified at least this many seconds ago.
    #[serde(default)]
    pub older_than_s: Option<u64>,
    /// Levels to descend [all].
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Results at most [200, max 5000].
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsFindOutput {
    /// The resolved directory searched.
    pub path: String,
    /// Matches, shallowest first, with absolute paths.
    pub entries: Vec<Entry>,
    /// More may match: limit or the 100000-entry walk bound reached.
    pub truncated: bool,
    /// Entries examined.
    pub scanned: usize,
    /// Entries hidden by deny_paths.
    pub skipped_denied: usize,
    /// Directories that could not be read.
    pub unreadable: usize,
}

impl Tool for FsFind {
    type Params = FsFindParams;
    type Output = FsFindOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_find",
        domain: Domain::Fs,
        summary: "Find entries below path",
        description: "Find entries below a directory by name glob, type, size (bytes) and age (seconds); never follows symlinks. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, POLICY_DENIED, INVALID_INPUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app", "name": "*.txt"}"#,
    };

    fn plan(&self, params: &FsFindParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::ReadOnly,
            &[(params.path.as_deref().unwrap_or("."), Last::Follow)],
        )
    }

    fn run(
        &self,
        params: FsFindParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsFindOutput>> + Send + 'static {
        async move {
            let filter = Filter::new(&params)?;
            let path = params.path.clone().unwrap_or_else(|| String::from("."));
            let (_, sandbox) = file_args::open(&context, &path).await?;
            let (resolved, meta) = file_args::existing(&sandbox, &path, Last::Follow).await?;
            if meta.kind != FileKind::Dir {
                return Err(
                    Error::invalid_input(format!("{} is not a directory", resolved.path))
                        .with_path(&resolved.path),
                );
            }
            let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
            let options = WalkOptions {
                max_depth: params.max_depth.unwrap_or(usize::MAX),
                max_entries: walk::MAX_WALK_ENTRIES,
            };
            let mut found = Vec::new();
            let mut scanned = 0;
            let stats = walk::visit(&sandbox, &resolved.path, options, |entry| {
                scanned += 1;
                if !filter.matches(&entry) {
                    return ControlFlow::Continue(());
                }
                // One match past the limit proves there are more.
                if found.len() == limit {
                    return ControlFlow::Break(());
                }
                found.push(entry);
                ControlFlow::Continue(())
            })
            .await?;
            let mut entries = Vec::with_capacity(found.len());
            for entry in found {
                entries.push(Entry::new(&sandbox, entry.path, &entry.meta).await);
            }
            context.note(Event::Read, &resolved.path);
            Ok(FsFindOutput {
                path: resolved.path,
                entries,
                truncated: stats.truncated,
                scanned,
                skipped_denied: stats.skipped_denied,
                unreadable: stats.unreadable,
            })
        }
    }
}

/// The call's filters, checked against each entry as the walk meets it.
struct Filter {
    name: Option<globset::GlobMatcher>,
    kind: Option<FileKind>,
    min_size: u64,
    max_size: u64,
    /// Modification times accepted (inclusive), seconds since the epoch by warden's
    /// clock.
    modified_after: u64,
    modified_before: u64,
}

impl Filter {
    fn new(params: &FsFindParams) -> Result<Filter> {
        let name = params
            .name
            .as_deref()
            .map(|glob| {
                globset::Glob::new(glob)
                    .map(|glob| glob.compile_matcher())
                    .map_err(|error| Error::invalid_input(format!("name glob {glob:?}: {error}")))
            })
            .transpose()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Ok(Filter {
            name,
            kind: params.kind,
            min_size: params.min_size.unwrap_or(0),
            max_size: params.max_size.unwrap_or(u64::MAX),
            modified_after: params
                .newer_than_s
                .map_or(0, |seconds| now.saturating_sub(seconds)),
            modified_before: params
                .older_than_s
                .map_or(u64::MAX, |seconds| now.saturating_sub(seconds)),
        })
    }

    fn matches(&self, entry: &WalkEntry) -> bool {
        let meta = &entry.meta;
        let name = entry.relative.rsplit('/').next().unwrap_or_default();
        self.kind.is_none_or(|kind| kind == meta.kind)
            && (self.min_size..=self.max_size).contains(&meta.size)
            && (self.modified_after..=self.modified_before).contains(&meta.mtime)
            && self.name.as_ref().is_none_or(|glob| glob.is_match(name))
    }
}
