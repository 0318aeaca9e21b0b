//! `fs_symlink`: creates a symlink whose target resolves inside the root (a relative
//! target from the link's own directory), so no link warden makes points out of it.
//! The link text is written exactly as given.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsSymlink;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsSymlinkParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// What the link points to (relative: from the link's directory).
    pub target: String,
    /// The link to create (must not exist).
    pub link_path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsSymlinkOutput {
    pub link_path: String,
    /// The link text, as given.
    pub target: String,
    /// Where the target resolves.
    pub resolved_target: String,
    /// Something is there now (a dangling link inside the root is allowed).
    pub target_exists: bool,
}

impl Tool for FsSymlink {
    type Params = FsSymlinkParams;
    type Output = FsSymlinkOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_symlink",
        domain: Domain::Fs,
        summary: "Symlink link_path to target",
        description: "Create a symlink at link_path (must not exist) to target, which must resolve inside the root. Errors: PATH_OUTSIDE_ROOT, CONFLICT (link_path exists), FILE_NOT_FOUND, POLICY_DENIED.",
        effect: Effect::Mutating,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "link_path": "/srv/app/current.conf", "target": "app.conf"}"#,
    };

    fn plan(&self, params: &FsSymlinkParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::Mutating,
            &[(&params.link_path, Last::NoFollow)],
        )
    }

    fn run(
        &self,
        params: FsSymlinkParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsSymlinkOutput>> + Send + 'static {
        async move {
            let (_, sandbox) = file_args::open(&context, &params.link_path).await?;
            let link = sandbox.resolve(&params.link_path, Last::NoFollow).await?;
            if link.meta.is_some() {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!("{} already exists", link.path),
                )
                .with_path(&link.path));
            }
            if link.parent_missing {
                return Err(Error::new(
                    ErrorCode::FileNotFound,
                    format!("{}: its parent directory does not exist", link.path),
                )
                .with_path(&link.path));
            }
            let target = sandbox
                .with_cwd(link.parent())?
                .resolve(&params.target, Last::Follow)
                .await?;
            sandbox.files().symlink(&params.target, &link.path).await?;
            context.note(Event::Written, &link.path);
            Ok(FsSymlinkOutput {
                link_path: link.path,
                target: params.target,
                resolved_target: target.path,
                target_exists: target.meta.is_some(),
            })
        }
    }
}
