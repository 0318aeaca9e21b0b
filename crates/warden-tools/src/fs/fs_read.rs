//! `fs_read`: part or all of a regular file, as text or base64, with its sha256.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope, sha256_hex};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsRead;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsReadParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// File to read.
    pub path: String,
    /// Byte offset to start at.
    #[serde(default)]
    pub offset: u64,
    /// Bytes to read at most (capped by limits.max_read_bytes).
    #[serde(default)]
    pub length: Option<u64>,
    /// "text" (default; invalid UTF-8 replaced) or "base64".
    #[serde(default)]
    pub encoding: Encoding,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Text,
    Base64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsReadOutput {
    /// The resolved path.
    pub path: String,
    /// The whole file's size.
    pub size: u64,
    pub offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// Bytes returned.
    pub bytes: u64,
    /// SHA-256 of the returned bytes (of the whole file when it was read whole).
    pub sha256: String,
    /// More of the file follows what was returned.
    pub truncated: bool,
}

impl Tool for FsRead {
    type Params = FsReadParams;
    type Output = FsReadOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_read",
        domain: Domain::Fs,
        summary: "Read file at path",
        description: "Read a regular file (offset/length, text or base64) with its sha256; truncated: true when more follows. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, POLICY_DENIED, INVALID_INPUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/app.conf"}"#,
    };

    fn plan(&self, params: &FsReadParams, planning: &PlanContext) -> Result<Plan> {
        params
            .scope
            .plan(planning, Effect::ReadOnly, &[(&params.path, Last::Follow)])
    }

    fn run(
        &self,
        params: FsReadParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsReadOutput>> + Send + 'static {
        async move {
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let (resolved, meta) =
                file_args::existing(&sandbox, &params.path, Last::Follow).await?;
            if meta.kind != FileKind::File {
                return Err(Error::invalid_input(format!(
                    "{} is not a regular file ({:?}); fs_list reads directories",
                    resolved.path, meta.kind
                ))
                .with_path(&resolved.path));
            }
            let cap = context.config().config.limits.max_read_bytes as u64;
            let length = params.length.unwrap_or(cap).min(cap);
            let data = sandbox
                .files()
                .read(&resolved.path, params.offset, length)
                .await?;
            let bytes = data.len() as u64;
            let (content, content_base64) = match params.encoding {
                Encoding::Text => (Some(String::from_utf8_lossy(&data).into_owned()), None),
                Encoding::Base64 => (None, Some(data_encoding::BASE64.encode(&data))),
            };
            context.note(Event::Read, &resolved.path);
            Ok(FsReadOutput {
                truncated: params.offset.saturating_add(bytes) < meta.size,
                sha256: sha256_hex(&data),
                path: resolved.path,
                size: meta.size,
                offset: params.offset,
                content,
                content_base64,
                bytes,
            })
        }
    }
}
