//! `fs_readlink`: a symlink's text, and where it resolves when that is inside the root
//! (a target outside is never shown resolved: only the text the link holds).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsReadlink;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsReadlinkParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// The symlink.
    pub path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsReadlinkOutput {
    pub path: String,
    /// The link text, as stored.
    pub target: String,
    /// The target resolves inside the root.
    pub inside_root: bool,
    /// Where it resolves (only when inside the root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_target: Option<String>,
    /// Something is there (only when inside the root).
    pub target_exists: bool,
}

impl Tool for FsReadlink {
    type Params = FsReadlinkParams;
    type Output = FsReadlinkOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_readlink",
        domain: Domain::Fs,
        summary: "Read symlink at path",
        description: "A symlink's text, and its resolved target when that stays inside the root. Errors: INVALID_INPUT (not a symlink), FILE_NOT_FOUND, PATH_OUTSIDE_ROOT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/link"}"#,
    };

    fn plan(&self, params: &FsReadlinkParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::ReadOnly,
            &[(&params.path, Last::NoFollow)],
        )
    }

    fn run(
        &self,
        params: FsReadlinkParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsReadlinkOutput>> + Send + 'static {
        async move {
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let (link, meta) = file_args::existing(&sandbox, &params.path, Last::NoFollow).await?;
            if meta.kind != FileKind::Symlink {
                return Err(Error::invalid_input(format!(
                    "{} is a {:?}, not a symlink",
                    link.path, meta.kind
                ))
                .with_path(&link.path));
            }
            let target = sandbox.files().read_link(&link.path).await?;
            let resolved = match sandbox.with_cwd(link.parent()) {
                Ok(beside) => beside.resolve(&target, Last::Follow).await,
                Err(error) => Err(error),
            };
            let (inside_root, resolved_target, target_exists) = match resolved {
                Ok(resolved) => (true, Some(resolved.path), resolved.meta.is_some()),
                // Outside (or a loop): say so, without resolving further.
                Err(error) if error.code == ErrorCode::PathOutsideRoot => (false, None, false),
                Err(error) => return Err(error),
            };
            context.note(Event::Read, &link.path);
            Ok(FsReadlinkOutput {
                path: link.path,
                target,
                inside_root,
                resolved_target,
                target_exists,
            })
        }
    }
}
