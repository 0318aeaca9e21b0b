//! `fs_stream_read`: a large file in chunks from any offset (resume = ask for the next
//! offset again). The chunk that reaches the end also carries the whole file's SHA-256,
//! hashed on warden's side in bounded chunks, so the client can verify what it joined.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope, sha256_hex};
use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsStreamRead;

/// Largest chunk one call returns, and the default.
const MAX_CHUNK: u64 = 4 * 1024 * 1024;
const DEFAULT_CHUNK: u64 = 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsStreamReadParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// File to read.
    pub path: String,
    /// Where the chunk starts.
    #[serde(default)]
    pub offset: u64,
    /// Chunk size in bytes [1 MiB, at most 4 MiB].
    #[serde(default)]
    pub length: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsStreamReadOutput {
    pub path: String,
    pub offset: u64,
    pub bytes: u64,
    pub content_base64: String,
    /// SHA-256 of this chunk.
    pub chunk_sha256: String,
    /// The file's size and mtime now (a change mid-stream shows here).
    pub size: u64,
    pub mtime: u64,
    /// This chunk reaches the end of the file.
    pub eof: bool,
    /// SHA-256 of the whole file, with the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
}

impl Tool for FsStreamRead {
    type Params = FsStreamReadParams;
    type Output = FsStreamReadOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_stream_read",
        domain: Domain::Fs,
        summary: "Download large file at path",
        description: "Read a file in base64 chunks (offset, length up to 4 MiB); the last chunk (eof: true) carries file_sha256. Errors: FILE_NOT_FOUND, PATH_OUTSIDE_ROOT, INVALID_INPUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/app.conf"}"#,
    };

    fn plan(&self, params: &FsStreamReadParams, planning: &PlanContext) -> Result<Plan> {
        params
            .scope
            .plan(planning, Effect::ReadOnly, &[(&params.path, Last::Follow)])
    }

    fn run(
        &self,
        params: FsStreamReadParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsStreamReadOutput>> + Send + 'static {
        async move {
            let length = params.length.unwrap_or(DEFAULT_CHUNK);
            if length == 0 || length > MAX_CHUNK {
                return Err(Error::invalid_input(format!(
                    "length must be 1..={MAX_CHUNK} bytes"
                )));
            }
            let (_, sandbox) = file_args::open(&context, &params.path).await?;
            let (resolved, meta) =
                file_args::existing(&sandbox, &params.path, Last::Follow).await?;
            if meta.kind != FileKind::File {
                return Err(file_args::not_a_file(&resolved.path, meta.kind));
            }
            let files = sandbox.files();
            let data = files.read(&resolved.path, params.offset, length).await?;
            let end = params.offset + data.len() as u64;
            let eof = end >= meta.size;
            let file_sha256 = if !eof {
                None
            } else if params.offset == 0 {
                Some(sha256_hex(&data))
            } else {
                Some(
                    file_args::hash_file(files.as_ref(), &resolved.path, end)
                        .await?
                        .0,
                )
            };
            if params.offset == 0 || eof {
                context.note(Event::Read, &resolved.path);
            }
            Ok(FsStreamReadOutput {
                path: resolved.path,
                offset: params.offset,
                bytes: data.len() as u64,
                chunk_sha256: sha256_hex(&data),
                content_base64: data_encoding::BASE64.encode(&data),
                size: meta.size,
                mtime: meta.mtime,
                eof,
                file_sha256,
            })
        }
    }
}
