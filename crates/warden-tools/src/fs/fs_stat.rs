//! `fs_stat`: one entry's type, size, mode, owner, mtime (and a symlink's target).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::fs::file_args::{self, Entry, FileScope};
use warden_core::error::Result;
use warden_core::sandbox::Last;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsStat;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsStatParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Path to describe.
    pub path: String,
    /// Describe what a final symlink points to (inside the root) instead of the link.
    #[serde(default)]
    pub follow: bool,
}

impl Tool for FsStat {
    type Params = FsStatParams;
    type Output = Entry;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_stat",
        domain: Domain::Fs,
        summary: "Stat path",
        description: "Type, size, mode, owner, mtime of a path; a symlink describes itself unless follow: true. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/app.conf"}"#,
    };

    fn plan(&self, params: &FsStatParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::ReadOnly,
            &[(
                &params.path,
                if params.follow {
                    Last::Follow
                } else {
                    Last::NoFollow
                },
            )],
        )
    }

    fn run(
        &self,
        params: FsStatParams,
        context: RunContext,
    ) -> impl Future<Output = Result<Entry>> + Send + 'static {
        async move {
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let last = if params.follow {
                Last::Follow
            } else {
                Last::NoFollow
            };
            let (resolved, meta) = file_args::existing(&sandbox, &params.path, last).await?;
            Ok(Entry::new(&sandbox, resolved.path, &meta).await)
        }
    }
}
