//! `fs_stream_write`: a large file in chunks, resumable, verified, all or nothing.
//!
//! Chunks go to a partial file beside the destination (`.NAME.warden-upload-ID.part`,
//! created exclusively, mode 0600); its size is the verified offset the next chunk must
//! start at, so a client cut off midway asks where to resume (a call with `upload_id`
//! and no content) and goes on. `finish` checks the SHA-256 of everything received
//! against the client's, syncs, and renames the partial file over the destination: the
//! destination shows the old file or the whole new one, never a part.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::file_args::{self, FileScope, parse_mode};
use crate::fs::fs_write::{keep_owner, make_dirs};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, HostFiles};
use warden_core::sandbox::hidden_prefix;
use warden_core::sandbox::{Last, Sandbox, parent_of};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::uploads::Received;
use warden_core::{PlanContext, RunContext};

pub struct FsStreamWrite;

/// Largest chunk one call carries (decoded). Bounds warden's memory per call (the
/// request line, its parsed copy and the decoded bytes): 4 MiB keeps an upload under
/// 64 MB of RSS while per-call costs stay small next to the data.
pub const MAX_CHUNK: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsStreamWriteParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Destination file.
    pub path: String,
    /// From the first call's answer; omit to start.
    #[serde(default)]
    pub upload_id: Option<String>,
    /// Where this chunk starts (must equal next_offset).
    #[serde(default)]
    pub offset: u64,
    /// The chunk, base64 (at most 4 MiB decoded).
    #[serde(default)]
    pub content_base64: Option<String>,
    /// Complete the upload (sha256 required).
    #[serde(default)]
    pub finish: bool,
    /// SHA-256 of the whole file, checked at finish.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Octal mode [the replaced file's, else 0644].
    #[serde(default)]
    pub mode: Option<String>,
    /// Create missing parent directories.
    #[serde(default)]
    pub create_dirs: bool,
    /// Required to replace an existing file; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
    /// Drop the upload and its partial file.
    #[serde(default)]
    pub abort: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsStreamWriteOutput {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Bytes received so far: where the next chunk starts.
    pub next_offset: u64,
    /// SHA-256 of the bytes received so far (verify before resuming).
    pub received_sha256: String,
    /// The destination now holds the whole file.
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

impl Tool for FsStreamWrite {
    type Params = FsStreamWriteParams;
    type Output = FsStreamWriteOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_stream_write",
        domain: Domain::Fs,
        summary: "Upload large file at path",
        description: "Upload a file in base64 chunks: first call without upload_id, then chunks at next_offset, finish: true with sha256. Resumable (call with upload_id only to learn next_offset); nothing appears at path until finish. Replacing a file: confirm: true on the first and the finishing call. Errors: CONFLICT (offset or sha256), CONFIRM_REQUIRED, PATH_OUTSIDE_ROOT, FILE_NOT_FOUND, LOCAL_DISABLED.",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/upload.bin", "content_base64": "aGVsbG8K"}"#,
    };

    fn plan(&self, params: &FsStreamWriteParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::Destructive,
            &[(&params.path, Last::Follow)],
        )
    }

    fn run(
        &self,
        params: FsStreamWriteParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsStreamWriteOutput>> + Send + 'static {
        async move {
            let chunk = chunk_of(&params)?;
            let (host, sandbox) = file_args::open(&context, &params.path).await?;
            let destination = sandbox.resolve(&params.path, Last::Follow).await?;
            let existing = match &destination.meta {
                None => None,
                Some(meta) if meta.kind == FileKind::File => Some(meta.clone()),
                Some(meta) => {
                    return Err(file_args::not_a_file(&destination.path, meta.kind));
                }
            };
            let (upload_id, part) = match &params.upload_id {
                Some(id) => (
                    id.clone(),
                    part_path(&destination.path, id, context.owner())?,
                ),
                None => {
                    if params.offset != 0 || params.abort {
                        return Err(Error::invalid_input(
                            "a new upload starts at offset 0; give upload_id to continue one",
                        ));
                    }
                    if let Some(meta) = &existing
                        && !params.confirm
                    {
                        return Ok(FsStreamWriteOutput {
                            path: destination.path.clone(),
                            upload_id: None,
                            next_offset: 0,
                            received_sha256: Received::empty().sha256(),
                            done: false,
                            preview: Some(format!(
                                "would replace {} ({} bytes) at finish; call again with confirm: true",
                                destination.path, meta.size
                            )),
                        });
                    }
                    if destination.parent_missing {
                        if !params.create_dirs {
                            return Err(Error::new(
                                ErrorCode::FileNotFound,
                                format!("{}: the parent directory does not exist (create_dirs: true makes it)", destination.path),
                            )
                            .with_path(&destination.path));
                        }
                        make_dirs(&sandbox, parent_of(&destination.path)).await?;
                    }
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    let part = part_path(&destination.path, &id, context.owner())?;
                    sandbox.files().create_new(&part, b"", 0o600).await?;
                    (id, part)
                }
            };

            let slot = context.uploads().slot(host.id.as_str(), &part);
            let mut received = slot.lock().await;
            let verified = verify(&sandbox, &part, received.take()).await;
            let mut progress = match verified {
                Ok(progress) => progress,
                Err(error) => {
                    context.uploads().forget(host.id.as_str(), &part);
                    return Err(error);
                }
            };
            let mut output = FsStreamWriteOutput {
                path: destination.path.clone(),
                upload_id: Some(upload_id.clone()),
                next_offset: progress.bytes,
                received_sha256: String::new(),
                done: false,
                preview: None,
            };
            if params.abort {
                context.uploads().forget(host.id.as_str(), &part);
                sandbox.files().remove_file(&part).await?;
                output.received_sha256 = progress.sha256();
                return Ok(output);
            }
            if !chunk.is_empty() {
                if params.offset != progress.bytes {
                    let error = Error::new(
                        ErrorCode::Conflict,
                        format!(
                            "upload {upload_id} has {} bytes; send the chunk at offset {} (not {})",
                            progress.bytes, progress.bytes, params.offset
                        ),
                    )
                    .with_path(&destination.path);
                    *received = Some(progress);
                    return Err(error);
                }
                // On failure the cache stays empty: the next call re-verifies the file.
                sandbox
                    .files()
                    .write_at(&part, progress.bytes, &chunk)
                    .await?;
                progress.add(&chunk);
            }
            output.next_offset = progress.bytes;
            output.received_sha256 = progress.sha256();
            if !params.finish {
                *received = Some(progress);
                return Ok(output);
            }

            let expected = params
                .sha256
                .as_deref()
                .ok_or_else(|| Error::invalid_input("finish needs sha256 of the whole file"))?
                .to_ascii_lowercase();
            if expected != output.received_sha256 {
                context.uploads().forget(host.id.as_str(), &part);
                let _ = sandbox.files().remove_file(&part).await;
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "the {} bytes received hash to {}, not {expected}; the upload is dropped, start again",
                        progress.bytes, output.received_sha256
                    ),
                )
                .with_path(&destination.path));
            }
            // Resolved again: the destination may have changed during a long upload.
            // A file there now is replaced only with confirm on this call too (it may
            // have appeared since the first, or the upload began without one).
            let destination = sandbox.resolve(&params.path, Last::Follow).await?;
            if destination.meta.is_some() && !params.confirm {
                *received = Some(progress);
                return Err(Error::new(
                    ErrorCode::ConfirmRequired,
                    format!(
                        "{} exists: finish with confirm: true to replace it (the upload is kept)",
                        destination.path
                    ),
                )
                .with_path(&destination.path));
            }
            let previous = match &destination.meta {
                Some(meta) if meta.kind == FileKind::File => Some((meta.mode, meta.uid, meta.gid)),
                Some(meta) => {
                    return Err(Error::invalid_input(format!(
                        "{} became a {:?}",
                        destination.path, meta.kind
                    ))
                    .with_path(&destination.path));
                }
                None => None,
            };
            let mode = match &params.mode {
                Some(text) => parse_mode(text)?,
                None => previous.map_or(0o644, |(mode, _, _)| mode),
            };
            let files = sandbox.files();
            // Synced before the mode is set: `sync` opens for writing, which a
            // read-only mode (0444) would refuse to an ordinary login.
            files.sync(&part).await?;
            files.set_mode(&part, mode).await?;
            let owner = previous.map(|(_, uid, gid)| (uid, gid));
            keep_owner(files.as_ref(), &part, mode, owner).await?;
            files.rename(&part, &destination.path).await?;
            context.uploads().forget(host.id.as_str(), &part);
            context.note(Event::Written, &destination.path);
            output.done = true;
            Ok(output)
        }
    }
}

fn chunk_of(params: &FsStreamWriteParams) -> Result<Vec<u8>> {
    let Some(encoded) = &params.content_base64 else {
        return Ok(Vec::new());
    };
    // Checked before decoding: base64 is 4/3 the size of its bytes.
    if encoded.len() > MAX_CHUNK / 3 * 4 + 4 {
        return Err(Error::invalid_input(format!(
            "a chunk carries at most {MAX_CHUNK} bytes; split it"
        )));
    }
    data_encoding::BASE64
        .decode(encoded.as_bytes())
        .map_err(|error| Error::invalid_input(format!("content_base64 is not base64: {error}")))
}

/// The partial file of upload `id`; the id is checked so it cannot name another path.
/// The partial file of upload `id` of `owner`. The name is a digest of both: another
/// caller's `upload_id` names a file that does not exist, so it can neither append to
/// nor abort an upload it did not start (and this holds across restarts, with no
/// state kept anywhere but the host).
fn part_path(destination: &str, id: &str, owner: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let valid = id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !valid {
        return Err(Error::invalid_input(format!(
            "upload_id {id:?} is not one warden gave"
        )));
    }
    let bound = hex::encode(Sha256::digest(format!("{owner}\0{id}").as_bytes()));
    Ok(format!(
        "{}/{}upload-{}.part",
        parent_of(destination).trim_end_matches('/'),
        hidden_prefix(destination),
        &bound[..32]
    ))
}

/// What the partial file holds: the cached progress when its size still agrees,
/// else the file hashed again.
async fn verify(sandbox: &Sandbox, part: &str, cached: Option<Received>) -> Result<Received> {
    let files = sandbox.files();
    let size = match files.lstat(part).await? {
        Some(meta) if meta.kind == FileKind::File => meta.size,
        _ => {
            return Err(Error::new(
                ErrorCode::FileNotFound,
                format!("no upload in progress at {part} (finished, aborted or never started)"),
            )
            .with_path(part));
        }
    };
    if let Some(cached) = cached
        && cached.bytes == size
    {
        return Ok(cached);
    }
    rehash(files.as_ref(), part, size).await
}

async fn rehash(files: &dyn HostFiles, part: &str, size: u64) -> Result<Received> {
    let mut received = Received::empty();
    file_args::for_each_chunk(files, part, size, |data| received.add(data)).await?;
    Ok(received)
}
