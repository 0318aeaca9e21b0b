//! `fs_mkdir`: a directory (and its parents with `parents: true`), inside the root.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope, parse_mode};
use crate::fs::fs_write::make_dirs;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsMkdir;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsMkdirParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Directory to create.
    pub path: String,
    /// Create missing parents too; an existing directory is then not an error.
    #[serde(default)]
    pub parents: bool,
    /// Octal mode [0755].
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsMkdirOutput {
    pub path: String,
    pub created: bool,
}

impl Tool for FsMkdir {
    type Params = FsMkdirParams;
    type Output = FsMkdirOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_mkdir",
        domain: Domain::Fs,
        summary: "Make directory path",
        description: "Create a directory; parents: true makes missing parents and accepts an existing one. Errors: CONFLICT, FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, LOCAL_DISABLED.",
        effect: Effect::Mutating,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/logs"}"#,
    };

    fn plan(&self, params: &FsMkdirParams, planning: &PlanContext) -> Result<Plan> {
        params
            .scope
            .plan(planning, Effect::Mutating, &[(&params.path, Last::Follow)])
    }

    fn run(
        &self,
        params: FsMkdirParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsMkdirOutput>> + Send + 'static {
        async move {
            let mode = params
                .mode
                .as_deref()
                .map(parse_mode)
                .transpose()?
                .unwrap_or(0o755);
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let resolved = sandbox.resolve(&params.path, Last::Follow).await?;
            match &resolved.meta {
                Some(meta) if meta.kind == FileKind::Dir && params.parents => {
                    return Ok(FsMkdirOutput {
                        path: resolved.path,
                        created: false,
                    });
                }
                Some(_) => {
                    return Err(Error::new(
                        ErrorCode::Conflict,
                        format!("{} already exists", resolved.path),
                    )
                    .with_path(&resolved.path));
                }
                None => {}
            }
            if params.parents {
                make_dirs(&sandbox, &resolved.path).await?;
                sandbox.files().set_mode(&resolved.path, mode).await?;
            } else {
                if resolved.parent_missing {
                    return Err(Error::new(
                        ErrorCode::FileNotFound,
                        format!(
                            "{}: the parent directory does not exist (parents: true makes it)",
                            resolved.path
                        ),
                    )
                    .with_path(&resolved.path));
                }
                sandbox.files().mkdir(&resolved.path, mode).await?;
            }
            context.note(Event::Written, &resolved.path);
            Ok(FsMkdirOutput {
                path: resolved.path,
                created: true,
            })
        }
    }
}
