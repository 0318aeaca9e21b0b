//! `fs_archive_create`: packs files and directories into a tar.gz or zip at `dest`.
//! Entry names are relative to the root; the walk never descends into symlinks, stores
//! a symlink only if it resolves inside the root, and skips (and reports) what
//! deny_paths refuses. File content streams from the host into the codec and out to a
//! temp file beside `dest` a chunk at a time; the temp is fsynced and renamed over
//! `dest`, which needs `confirm: true` if it exists (else a preview).

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::archive::{self, Bridge, Caps, Format, HostReader, HostWriter};
use crate::fs::file_args::{self, FileScope};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, FileMeta, HostFiles};
use warden_core::sandbox::temp_beside;
use warden_core::sandbox::{Last, Sandbox};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsArchiveCreate;

/// Skipped entries named in the output; the count covers the rest.
const SHOWN_SKIPPED: usize = 50;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsArchiveCreateParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Files or directories to pack.
    pub paths: Vec<String>,
    /// Archive file to write.
    pub dest: String,
    /// "tar.gz" or "zip" [from dest's extension].
    #[serde(default)]
    pub format: Option<Format>,
    /// Required to replace an existing dest; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsArchiveCreateOutput {
    pub dest: String,
    pub format: Format,
    /// Written (false: a preview, nothing changed).
    pub created: bool,
    /// Files, directories and symlinks stored (or that would be).
    pub entries: usize,
    /// Size of the archive written.
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Entries left out and why (the first ones).
    pub skipped: Vec<Skipped>,
    pub skipped_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

impl Tool for FsArchiveCreate {
    type Params = FsArchiveCreateParams;
    type Output = FsArchiveCreateOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_archive_create",
        domain: Domain::Fs,
        summary: "Pack paths into archive dest",
        description: "Pack files and directories into a tar.gz or zip at dest (atomic; names relative to the root; symlinks leaving the root and denied paths are skipped and listed). Replacing dest needs confirm: true, else a preview. Errors: INVALID_INPUT, PATH_OUTSIDE_ROOT, POLICY_DENIED, FILE_NOT_FOUND, CONFLICT, LOCAL_DISABLED.",
        // It may replace dest (with confirm).
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "paths": ["/srv/app/data"], "dest": "/srv/app/data.tar.gz"}"#,
    };

    fn plan(&self, params: &FsArchiveCreateParams, planning: &PlanContext) -> Result<Plan> {
        let effect = if params.confirm {
            Effect::Destructive
        } else {
            Effect::Mutating
        };
        {
            let mut paths: Vec<(&str, Last)> = params
                .paths
                .iter()
                .map(|path| (path.as_str(), Last::NoFollow))
                .collect();
            paths.push((&params.dest, Last::Follow));
            params.scope.plan(planning, effect, &paths)
        }
    }

    fn run(
        &self,
        params: FsArchiveCreateParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsArchiveCreateOutput>> + Send + 'static {
        async move {
            let format = match params.format {
                Some(format) => format,
                None => Format::from_name(&params.dest).ok_or_else(|| {
                    Error::invalid_input(format!(
                        "{}: name it .tar.gz, .tgz or .zip, or give format",
                        params.dest
                    ))
                })?,
            };
            if params.paths.is_empty() {
                return Err(Error::invalid_input("paths is empty: name what to pack"));
            }
            let (host, sandbox) = file_args::open(&context, &params.dest).await?;
            let dest = sandbox.resolve(&params.dest, Last::Follow).await?;
            let previous = match &dest.meta {
                Some(meta) if meta.kind == FileKind::File => Some(meta.clone()),
                Some(meta) => {
                    return Err(Error::invalid_input(format!(
                        "{} is a {:?}, not a file an archive may replace",
                        dest.path, meta.kind
                    ))
                    .with_path(&dest.path));
                }
                None => None,
            };
            if dest.parent_missing {
                return Err(Error::new(
                    ErrorCode::FileNotFound,
                    format!("{}: the parent directory does not exist", dest.path),
                )
                .with_path(&dest.path));
            }
            let caps = Caps::of(&context);
            let mut packing = Packing::new(dest.path.clone(), caps);
            for path in &params.paths {
                // Outside a session, each path may lie under its own allowed root.
                let source = context.sandbox(&host, path).await?;
                let (start, meta) = file_args::existing(&source, path, Last::NoFollow).await?;
                let room = caps.entries.saturating_sub(packing.sources.len());
                for walked in walk(&source, &start.path, meta, room).await? {
                    packing.add(&source, walked).await?;
                }
            }
            let mut output = FsArchiveCreateOutput {
                dest: dest.path.clone(),
                format,
                created: false,
                entries: packing.sources.len(),
                bytes: 0,
                sha256: None,
                skipped_count: packing.skipped.len(),
                skipped: Vec::new(),
                preview: None,
            };
            if let Some(previous) = &previous
                && !params.confirm
            {
                output.preview = Some(format!(
                    "would replace {} ({} bytes) with an archive of {} entries; call again with confirm: true",
                    dest.path, previous.size, output.entries
                ));
                output.skipped = packing.skipped.into_iter().take(SHOWN_SKIPPED).collect();
                return Ok(output);
            }
            let mode = previous.as_ref().map_or(0o644, |meta| meta.mode & 0o777);
            let (bytes, sha256) = write_archive(
                Arc::clone(sandbox.files()),
                &dest.path,
                mode,
                format,
                packing.sources,
            )
            .await?;
            context.note(Event::Written, &dest.path);
            output.created = true;
            output.bytes = bytes;
            output.sha256 = Some(sha256);
            output.skipped = packing.skipped.into_iter().take(SHOWN_SKIPPED).collect();
            Ok(output)
        }
    }
}

/// One entry met by [`walk`].
struct Walked {
    path: String,
    meta: FileMeta,
    /// deny_paths refuses it (a directory is then not entered).
    denied: bool,
}

/// Everything at and below `start`, parents before children and in name order, never
/// descending into symlinks (so never looping). At most `limit` entries, else
/// INVALID_INPUT. Not `walk.rs`'s walker: an archive lists each denied entry in
/// `skipped`, includes `start` itself, and fails on an unreadable directory rather than
/// packing part of a tree.
async fn walk(sandbox: &Sandbox, start: &str, meta: FileMeta, limit: usize) -> Result<Vec<Walked>> {
    let mut found = Vec::new();
    let mut stack = vec![(start.to_owned(), meta)];
    while let Some((path, meta)) = stack.pop() {
        if found.len() == limit {
            return Err(too_many(limit));
        }
        let denied = sandbox.check(&path).is_err();
        if meta.kind == FileKind::Dir && !denied {
            let mut children = sandbox.files().read_dir(&path).await?;
            // Reversed, as the stack hands them back last first.
            children.sort_by(|a, b| b.name.cmp(&a.name));
            let base = path.trim_end_matches('/');
            stack.extend(
                children
                    .into_iter()
                    .map(|child| (format!("{base}/{}", child.name), child.meta)),
            );
        }
        found.push(Walked { path, meta, denied });
    }
    Ok(found)
}

fn too_many(limit: usize) -> Error {
    Error::invalid_input(format!(
        "more than {limit} entries (limits.max_archive_entries)"
    ))
}

/// What goes into the archive.
struct Source {
    /// Absolute on the host.
    path: String,
    /// Relative to the root, without a leading `/`.
    name: String,
    kind: Stored,
    meta: FileMeta,
}

enum Stored {
    File,
    Dir,
    Symlink(String),
}

/// The entries chosen so far and those left out.
struct Packing {
    dest: String,
    caps: Caps,
    sources: Vec<Source>,
    names: HashSet<String>,
    skipped: Vec<Skipped>,
    content_bytes: u64,
}

impl Packing {
    fn new(dest: String, caps: Caps) -> Packing {
        Packing {
            dest,
            caps,
            sources: Vec::new(),
            names: HashSet::new(),
            skipped: Vec::new(),
            content_bytes: 0,
        }
    }

    /// Takes a walked entry in, or notes why it stays out.
    async fn add(&mut self, sandbox: &Sandbox, walked: Walked) -> Result<()> {
        let name = walked
            .path
            .strip_prefix(sandbox.root())
            .unwrap_or(&walked.path)
            .trim_start_matches('/')
            .to_owned();
        if name.is_empty() {
            // The root itself: its content is what was asked for.
            return Ok(());
        }
        let kind = match self.classify(sandbox, &walked, &name).await? {
            Ok(kind) => kind,
            Err(reason) => {
                self.skipped.push(Skipped {
                    path: walked.path,
                    reason,
                });
                return Ok(());
            }
        };
        self.names.insert(name.clone());
        if self.sources.len() == self.caps.entries {
            return Err(too_many(self.caps.entries));
        }
        if let Stored::File = kind {
            self.content_bytes += walked.meta.size;
            if self.content_bytes > self.caps.unpacked_bytes {
                return Err(Error::invalid_input(format!(
                    "more than {} bytes of content (limits.max_unpacked_bytes)",
                    self.caps.unpacked_bytes
                )));
            }
        }
        self.sources.push(Source {
            path: walked.path,
            name,
            kind,
            meta: walked.meta,
        });
        Ok(())
    }

    /// How an entry is stored, or (inner `Err`) why it is skipped.
    async fn classify(
        &self,
        sandbox: &Sandbox,
        walked: &Walked,
        name: &str,
    ) -> Result<std::result::Result<Stored, String>> {
        let path = &walked.path;
        if walked.denied {
            return Ok(Err("denied by policy (deny_paths)".into()));
        }
        if *path == self.dest {
            return Ok(Err("the archive being written".into()));
        }
        if self.names.contains(name) {
            return Ok(Err("already in the archive".into()));
        }
        Ok(match walked.meta.kind {
            FileKind::File => Ok(Stored::File),
            FileKind::Dir => Ok(Stored::Dir),
            FileKind::Special => Err("a FIFO, socket or device".into()),
            // Stored only if it resolves inside the root (a dangling one may).
            FileKind::Symlink => match sandbox.resolve(path, Last::Follow).await {
                Ok(_) => Ok(Stored::Symlink(sandbox.files().read_link(path).await?)),
                Err(error) => Err(error.message),
            },
        })
    }
}

/// Streams the archive into a temp file beside `dest`, then fsyncs and renames it over
/// `dest`; on any failure (a cancelled call included) the temp goes and `dest` is
/// untouched. The archive's size and sha256.
async fn write_archive(
    files: Arc<dyn HostFiles>,
    dest: &str,
    mode: u32,
    format: Format,
    sources: Vec<Source>,
) -> Result<(u64, String)> {
    let (dest, temp) = (dest.to_owned(), temp_beside(dest));
    // Owner-writable while chunks go in; the final mode is set before the rename.
    files.create_new(&temp, &[], 0o600).await?;
    archive::on_codec_thread(move |bridge| {
        let out = HostWriter::new(bridge.clone(), Arc::clone(&files), temp.clone(), true);
        let written = pack(&bridge, &files, out, format, &sources).and_then(|(bytes, sha256)| {
            bridge.block_on(async {
                files.sync(&temp).await?;
                files.set_mode(&temp, mode).await?;
                files.rename(&temp, &dest).await
            })?;
            Ok((bytes, sha256.unwrap_or_default()))
        });
        if written.is_err() {
            bridge.cleanup(files.remove_file(&temp));
        }
        written
    })
    .await
}

/// The codec's side: every source, its content read from the host as it goes.
fn pack(
    bridge: &Bridge,
    files: &Arc<dyn HostFiles>,
    out: HostWriter,
    format: Format,
    sources: &[Source],
) -> Result<(u64, Option<String>)> {
    let content = |source: &Source| {
        HostReader::new(
            bridge.clone(),
            Arc::clone(files),
            source.path.clone(),
            source.meta.size,
        )
    };
    let packed = match format {
        Format::TarGz => pack_tar(out, sources, content),
        Format::Zip => pack_zip(out, sources, content),
    };
    packed
        .map_err(|error| {
            archive::from_io(error, |message| {
                Error::internal(format!("packing the archive failed: {message}"))
            })
        })?
        .finish()
}

fn pack_tar(
    out: HostWriter,
    sources: &[Source],
    content: impl Fn(&Source) -> HostReader,
) -> io::Result<HostWriter> {
    let gzip = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut builder = tar::Builder::new(gzip);
    for source in sources {
        let mut header = tar::Header::new_gnu();
        header.set_mode(source.meta.mode);
        header.set_mtime(source.meta.mtime);
        header.set_uid(u64::from(source.meta.uid));
        header.set_gid(u64::from(source.meta.gid));
        match &source.kind {
            Stored::File => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(source.meta.size);
                builder.append_data(&mut header, &source.name, content(source))?;
            }
            Stored::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, &source.name, io::empty())?;
            }
            Stored::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &source.name, target)?;
            }
        }
    }
    builder.into_inner()?.finish()
}

fn pack_zip(
    out: HostWriter,
    sources: &[Source],
    content: impl Fn(&Source) -> HostReader,
) -> io::Result<HostWriter> {
    // A stream writer (data descriptors): the output is only ever appended to.
    let mut zip = zip::ZipWriter::new_stream(out);
    for source in sources {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(source.meta.mode)
            .last_modified_time(zip_time(source.meta.mtime))
            .large_file(source.meta.size >= u64::from(u32::MAX));
        match &source.kind {
            Stored::File => {
                zip.start_file(source.name.as_str(), options)
                    .map_err(archive::zip_io)?;
                io::copy(&mut content(source), &mut zip)?;
            }
            Stored::Dir => zip
                .add_directory(source.name.as_str(), options)
                .map_err(archive::zip_io)?,
            Stored::Symlink(target) => zip
                .add_symlink(source.name.as_str(), target, options)
                .map_err(archive::zip_io)?,
        }
    }
    Ok(zip.finish().map_err(archive::zip_io)?.into_inner())
}

/// An mtime as zip's DOS date (1980 to 2107; outside that, 1980-01-01).
fn zip_time(mtime: u64) -> zip::DateTime {
    // The audit log's UTC calendar arithmetic, read back as numbers.
    let text = warden_core::audit::rfc3339(UNIX_EPOCH + Duration::from_secs(mtime));
    let number = |range: std::ops::Range<usize>| -> Option<u16> { text.get(range)?.parse().ok() };
    let small = |range| number(range).and_then(|value| u8::try_from(value).ok());
    let parts = (
        number(0..4),
        small(5..7),
        small(8..10),
        small(11..13),
        small(14..16),
        small(17..19),
    );
    match parts {
        (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) => {
            zip::DateTime::from_date_and_time(year, month, day, hour, minute, second)
                .unwrap_or_default()
        }
        _ => zip::DateTime::default(),
    }
}
