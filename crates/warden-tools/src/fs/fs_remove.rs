//! `fs_remove`: a file, a symlink (never what it points to) or, with
//! `recursive: true`, a directory tree. Without `confirm: true` the answer lists what
//! would go and nothing is removed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use crate::fs::walk::{MAX_WALK_ENTRIES, too_many_entries};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::{Last, Sandbox};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsRemove;

/// Paths named in a preview; the count covers the rest.
const PREVIEW_PATHS: usize = 50;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsRemoveParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Path to remove.
    pub path: String,
    /// Remove a directory and everything below it.
    #[serde(default)]
    pub recursive: bool,
    /// Required to remove; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsRemoveOutput {
    pub path: String,
    /// Removed (false: a preview, nothing changed).
    pub removed: bool,
    /// Entries removed (or that would be), the path itself included.
    pub count: usize,
    /// The first entries, deepest first.
    pub paths: Vec<String>,
}

impl Tool for FsRemove {
    type Params = FsRemoveParams;
    type Output = FsRemoveOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_remove",
        domain: Domain::Fs,
        summary: "Remove path",
        description: "Remove a file, a symlink (not its target) or, with recursive: true, a tree. Needs confirm: true, else a preview. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, POLICY_DENIED, INVALID_INPUT.",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/notes.txt", "confirm": true}"#,
    };

    fn plan(&self, params: &FsRemoveParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::Destructive,
            &[(&params.path, Last::NoFollow)],
        )
    }

    fn run(
        &self,
        params: FsRemoveParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsRemoveOutput>> + Send + 'static {
        async move {
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let (resolved, meta) =
                file_args::existing(&sandbox, &params.path, Last::NoFollow).await?;
            if resolved.path == sandbox.root() {
                return Err(Error::invalid_input("the root itself cannot be removed")
                    .with_path(&resolved.path));
            }
            let mut doomed = Vec::new();
            collect(
                &sandbox,
                &resolved.path,
                meta.kind,
                MAX_WALK_ENTRIES,
                &mut doomed,
            )
            .await?;
            if meta.kind == FileKind::Dir && doomed.len() > 1 && !params.recursive {
                return Err(Error::invalid_input(format!(
                    "{} is a non-empty directory; give recursive: true",
                    resolved.path
                ))
                .with_path(&resolved.path));
            }
            let count = doomed.len();
            let paths = doomed
                .iter()
                .take(PREVIEW_PATHS)
                .map(|(path, _)| path.clone())
                .collect();
            if !params.confirm {
                return Ok(FsRemoveOutput {
                    path: resolved.path,
                    removed: false,
                    count,
                    paths,
                });
            }
            for (path, kind) in &doomed {
                match kind {
                    FileKind::Dir => sandbox.files().remove_dir(path).await?,
                    _ => sandbox.files().remove_file(path).await?,
                }
            }
            context.note(Event::Written, &resolved.path);
            Ok(FsRemoveOutput {
                path: resolved.path,
                removed: true,
                count,
                paths,
            })
        }
    }
}

/// Everything under `path`, deepest first, without following symlinks; every entry is
/// checked against deny_paths (one denied entry refuses the whole removal), and more
/// than `cap` entries refuse it too.
pub(crate) async fn collect(
    sandbox: &Sandbox,
    path: &str,
    kind: FileKind,
    cap: usize,
    out: &mut Vec<(String, FileKind)>,
) -> Result<()> {
    let mut stack = vec![(path.to_owned(), kind, false)];
    let mut seen = 0;
    while let Some((current, kind, expanded)) = stack.pop() {
        if !expanded {
            seen += 1;
            if seen > cap {
                return Err(too_many_entries(path, cap));
            }
        }
        sandbox.check(&current)?;
        if kind != FileKind::Dir || expanded {
            out.push((current, kind));
            continue;
        }
        stack.push((current.clone(), kind, true));
        for entry in sandbox.files().read_dir(&current).await? {
            stack.push((format!("{current}/{}", entry.name), entry.meta.kind, false));
        }
    }
    Ok(())
}
