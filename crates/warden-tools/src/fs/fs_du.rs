//! `fs_du`: apparent size and entry counts below a directory, and its largest
//! children. Symlinks are counted, never followed.

use std::collections::HashMap;
use std::ops::ControlFlow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use crate::fs::walk::{self, WalkOptions};
use warden_core::error::Result;
use warden_core::files::{FileKind, FileMeta};
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsDu;

const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsDuParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Directory to measure [the session's cwd].
    #[serde(default)]
    pub path: Option<String>,
    /// Levels to count [all].
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Largest children to list [10, max 100].
    #[serde(default)]
    pub top: Option<usize>,
}

/// Totals of a tree.
#[derive(Debug, Default, Clone, Copy, Serialize, JsonSchema)]
pub struct Usage {
    /// Sum of regular files' sizes (apparent bytes).
    pub bytes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Symlinks (not followed) and special files.
    pub other: u64,
}

impl Usage {
    fn add(&mut self, meta: &FileMeta) {
        match meta.kind {
            FileKind::File => {
                self.files += 1;
                self.bytes += meta.size;
            }
            FileKind::Dir => self.dirs += 1,
            FileKind::Symlink | FileKind::Special => self.other += 1,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Child {
    /// Absolute path.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: FileKind,
    /// The child and everything below it.
    #[serde(flatten)]
    pub usage: Usage,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsDuOutput {
    /// The resolved path measured.
    pub path: String,
    /// Everything below path.
    #[serde(flatten)]
    pub usage: Usage,
    /// Largest direct children by bytes.
    pub top: Vec<Child>,
    /// Counting stopped at the 100000-entry walk bound: totals are partial.
    pub truncated: bool,
    /// Entries hidden by deny_paths (not counted).
    pub skipped_denied: usize,
    /// Directories that could not be read (not counted).
    pub unreadable: usize,
}

impl Tool for FsDu {
    type Params = FsDuParams;
    type Output = FsDuOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_du",
        domain: Domain::Fs,
        summary: "Disk usage of path",
        description: "Apparent bytes, file and directory counts below a path, and its largest children with their totals; symlinks are counted, never followed. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, POLICY_DENIED.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app"}"#,
    };

    fn plan(&self, params: &FsDuParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::ReadOnly,
            &[(params.path.as_deref().unwrap_or("."), Last::Follow)],
        )
    }

    fn run(
        &self,
        params: FsDuParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsDuOutput>> + Send + 'static {
        async move {
            let path = params.path.clone().unwrap_or_else(|| String::from("."));
            let (_, sandbox) = file_args::open(&context, &path).await?;
            let (resolved, meta) = file_args::existing(&sandbox, &path, Last::Follow).await?;
            let mut output = FsDuOutput {
                path: resolved.path.clone(),
                usage: Usage::default(),
                top: Vec::new(),
                truncated: false,
                skipped_denied: 0,
                unreadable: 0,
            };
            if meta.kind != FileKind::Dir {
                output.usage.add(&meta);
                context.note(Event::Read, &resolved.path);
                return Ok(output);
            }
            let options = WalkOptions {
                max_depth: params.max_depth.unwrap_or(usize::MAX),
                max_entries: walk::MAX_WALK_ENTRIES,
            };
            let mut children: HashMap<String, (FileKind, Usage)> = HashMap::new();
            let stats = walk::visit(&sandbox, &resolved.path, options, |entry| {
                output.usage.add(&entry.meta);
                let (name, _) = entry
                    .relative
                    .split_once('/')
                    .unwrap_or((&entry.relative, ""));
                // A child is met before anything below it (breadth first).
                children
                    .entry(name.to_owned())
                    .or_insert((entry.meta.kind, Usage::default()))
                    .1
                    .add(&entry.meta);
                ControlFlow::Continue(())
            })
            .await?;
            let mut top: Vec<(String, (FileKind, Usage))> = children.into_iter().collect();
            top.sort_by(|a, b| b.1.1.bytes.cmp(&a.1.1.bytes).then_with(|| a.0.cmp(&b.0)));
            let directory = resolved.path.trim_end_matches('/');
            output.top = top
                .into_iter()
                .take(params.top.unwrap_or(DEFAULT_TOP).min(MAX_TOP))
                .map(|(name, (kind, usage))| Child {
                    path: format!("{directory}/{name}"),
                    kind,
                    usage,
                })
                .collect();
            output.truncated = stats.truncated;
            output.skipped_denied = stats.skipped_denied;
            output.unreadable = stats.unreadable;
            context.note(Event::Read, &resolved.path);
            Ok(output)
        }
    }
}
