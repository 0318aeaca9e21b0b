//! `fs_archive_extract`: unpacks a tar.gz or zip into `dest`, safe against hostile
//! archives. The archive is read twice, a chunk at a time: first every entry is
//! checked and nothing is written (absolute names, `..` climbing out, names landing
//! outside the root, symlinks pointing out or written through, hardlinks, devices and
//! FIFOs refuse the whole archive; caps on entries and content stop zip bombs); then
//! entries are written, each path resolved again on the host, each file through a temp
//! beside it. Overwriting existing files needs `confirm: true` (else a preview).
//! Decompression itself is bounded: tar entries are read raw, so a GNU long name or pax
//! record is refused on its declared size before it is read, and the decompressed tar
//! stream stops past `max_unpacked_bytes` plus room for headers; zip entries are read
//! only up to the size they declare.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::archive::{self, Bridge, Caps, Format, HostReader, HostWriter};
use crate::fs::file_args::{self, FileScope};
use crate::fs::fs_write::{keep_owner, make_dirs, symlink_atomic};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{FileKind, HostFiles};
use warden_core::sandbox::temp_beside;
use warden_core::sandbox::{Last, MAX_PATH_BYTES, Resolved, Sandbox, parent_of};
use warden_core::sessions::Event;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct FsArchiveExtract;

/// Overwritten paths named in the output; the count covers the rest.
const SHOWN_OVERWRITTEN: usize = 50;

/// Largest GNU long name or link, or pax record entry, read: real ones hold a path or a
/// few records, and the tar crate would otherwise read any size whole into memory.
const MAX_TAR_EXTENSION_BYTES: u64 = 64 << 10;

/// Decompressed tar bytes allowed per entry beyond its content: its header, padding and
/// a long name or pax record of usual length.
const TAR_BYTES_PER_ENTRY: u64 = 4096;

/// And per archive: the end-of-archive zero blocks and record padding.
const TAR_SLACK_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FsArchiveExtractParams {
    #[serde(flatten)]
    pub scope: FileScope,
    /// Archive to unpack (tar.gz or zip).
    pub path: String,
    /// Directory to unpack into (made if missing).
    pub dest: String,
    /// Required to overwrite existing files; without it, a preview.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FsArchiveExtractOutput {
    pub dest: String,
    pub format: Format,
    /// Extracted (false: a preview, nothing changed).
    pub extracted: bool,
    /// Entries written (or that would be).
    pub entries: usize,
    pub files: usize,
    pub dirs: usize,
    pub links: usize,
    /// Bytes of file content.
    pub bytes: u64,
    /// Existing files replaced (or that would be), the first ones.
    pub overwritten: Vec<String>,
    pub overwritten_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

impl Tool for FsArchiveExtract {
    type Params = FsArchiveExtractParams;
    type Output = FsArchiveExtractOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "fs_archive_extract",
        domain: Domain::Fs,
        summary: "Unpack archive path into dest",
        description: "Unpack a tar.gz or zip into dest. Every entry is checked before anything is written: one landing or linking outside the root, a hardlink or a device refuses the whole archive. Overwriting files needs confirm: true, else a preview. Errors: PATH_OUTSIDE_ROOT, INVALID_INPUT, POLICY_DENIED, FILE_NOT_FOUND, CONFLICT, LOCAL_DISABLED.",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "path": "/srv/app/bundle.tar.gz", "dest": "/srv/app/unpacked"}"#,
    };

    fn plan(&self, params: &FsArchiveExtractParams, planning: &PlanContext) -> Result<Plan> {
        params.scope.plan(
            planning,
            Effect::Destructive,
            &[(&params.path, Last::Follow), (&params.dest, Last::Follow)],
        )
    }

    fn run(
        &self,
        params: FsArchiveExtractParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FsArchiveExtractOutput>> + Send + 'static {
        async move {
            let caps = Caps::of(&context);
            let (host, source) = file_args::open(&context, &params.path).await?;
            let (archive_path, meta) =
                file_args::existing(&source, &params.path, Last::Follow).await?;
            let archive_path = archive_path.path;
            if meta.kind != FileKind::File {
                return Err(Error::invalid_input(format!(
                    "{archive_path} is a {:?}, not an archive file",
                    meta.kind
                ))
                .with_path(&archive_path));
            }
            if meta.size > caps.archive_bytes {
                return Err(Error::invalid_input(format!(
                    "{archive_path} is {} bytes, over limits.max_archive_bytes ({})",
                    meta.size, caps.archive_bytes
                ))
                .with_path(&archive_path));
            }
            let head = source.files().read(&archive_path, 0, 4).await?;
            let format = Format::sniff(&head).ok_or_else(|| {
                Error::invalid_input(format!("{archive_path} is neither a tar.gz nor a zip"))
                    .with_path(&archive_path)
            })?;
            context.note(Event::Read, &archive_path);

            // Outside a session, dest may lie under another allowed root than the archive.
            let sandbox = context.sandbox(&host, &params.dest).await?;
            let dest = sandbox.resolve(&params.dest, Last::Follow).await?;
            if let Some(meta) = &dest.meta
                && meta.kind != FileKind::Dir
            {
                return Err(Error::invalid_input(format!(
                    "{} is a {:?}, not a directory",
                    dest.path, meta.kind
                ))
                .with_path(&dest.path));
            }
            let archive = Archive {
                files: Arc::clone(source.files()),
                path: archive_path,
                size: meta.size,
                format,
                caps,
            };

            let items = archive.list().await?;
            let overwritten = preflight(&sandbox, &dest.path, &items).await?;

            let mut output = FsArchiveExtractOutput {
                dest: dest.path.clone(),
                format,
                extracted: false,
                entries: items.len(),
                files: count(&items, |kind| matches!(kind, ItemKind::File)),
                dirs: count(&items, |kind| matches!(kind, ItemKind::Dir)),
                links: count(&items, |kind| matches!(kind, ItemKind::Symlink(_))),
                bytes: items.iter().map(|item| item.size).sum(),
                overwritten_count: overwritten.len(),
                overwritten: overwritten.into_iter().take(SHOWN_OVERWRITTEN).collect(),
                preview: None,
            };
            if output.overwritten_count > 0 && !params.confirm {
                output.preview = Some(format!(
                    "would overwrite {} existing files in {}; call again with confirm: true",
                    output.overwritten_count, dest.path
                ));
                return Ok(output);
            }
            if dest.meta.is_none() {
                make_dirs(&sandbox, &dest.path).await?;
            }
            let unpacking = Unpacking {
                sandbox: sandbox.clone(),
                dest: dest.path.clone(),
                items,
                next: 0,
                made_dirs: Vec::new(),
            };
            archive::on_codec_thread(move |bridge| unpacking.run(&bridge, &archive)).await?;
            context.note(Event::Written, &dest.path);
            output.extracted = true;
            Ok(output)
        }
    }
}

fn count(items: &[Item], which: impl Fn(&ItemKind) -> bool) -> usize {
    items.iter().filter(|item| which(&item.kind)).count()
}

/// One archive entry, as both passes see it.
#[derive(Debug, Clone, PartialEq)]
struct Item {
    /// Relative to dest, normalized: no leading `/`, no `.` or `..` parts.
    name: String,
    kind: ItemKind,
    /// Content bytes (files).
    size: u64,
    /// Permission bits, without setuid/setgid/sticky.
    mode: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum ItemKind {
    File,
    Dir,
    Symlink(String),
}

/// The archive on the host.
#[derive(Clone)]
struct Archive {
    files: Arc<dyn HostFiles>,
    path: String,
    size: u64,
    format: Format,
    caps: Caps,
}

impl Archive {
    /// The first pass: every entry checked, its content skipped.
    async fn list(&self) -> Result<Vec<Item>> {
        let archive = self.clone();
        archive::on_codec_thread(move |bridge| {
            let mut items = Vec::new();
            archive.each_entry(&bridge, |item, _| {
                items.push(item);
                Ok(())
            })?;
            Ok(items)
        })
        .await
    }

    /// Decodes every entry, checks its kind, name and the caps, and hands it to
    /// `visit` with its content.
    fn each_entry(
        &self,
        bridge: &Bridge,
        mut visit: impl FnMut(Item, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let reader = HostReader::new(
            bridge.clone(),
            Arc::clone(&self.files),
            self.path.clone(),
            self.size,
        );
        let (mut entries, mut content_bytes) = (0usize, 0u64);
        let mut admit = |item: &Item| {
            entries += 1;
            content_bytes += item.size;
            if entries > self.caps.entries {
                return Err(self.refused(format!(
                    "it holds more than {} entries (limits.max_archive_entries)",
                    self.caps.entries
                )));
            }
            if content_bytes > self.caps.unpacked_bytes {
                return Err(self.refused(format!(
                    "it unpacks to more than {} bytes (limits.max_unpacked_bytes)",
                    self.caps.unpacked_bytes
                )));
            }
            Ok(())
        };
        let broken = |error: io::Error| {
            archive::from_io(error, |message| {
                self.refused(format!("it is not a valid archive: {message}"))
            })
        };
        match self.format {
            Format::TarGz => {
                let limit = self
                    .caps
                    .unpacked_bytes
                    .saturating_add((self.caps.entries as u64).saturating_mul(TAR_BYTES_PER_ENTRY))
                    .saturating_add(TAR_SLACK_BYTES);
                let decompressed = archive::ExpansionCap::new(
                    flate2::read::GzDecoder::new(reader),
                    limit,
                    self.refused(
                        "it expands beyond limits.max_unpacked_bytes (counting tar headers)".into(),
                    ),
                );
                let mut tar = tar::Archive::new(decompressed);
                // Raw entries: the tar crate would read a long name or pax record whole,
                // whatever size its header declares; here the header is seen first.
                let mut pending = TarExtensions::default();
                for entry in tar.entries().map_err(broken)?.raw(true) {
                    let mut entry = entry.map_err(broken)?;
                    if self.absorb_extension(&mut entry, &mut pending)? {
                        continue;
                    }
                    let extensions = std::mem::take(&mut pending);
                    let Some(item) = self.tar_item(&entry, &extensions)? else {
                        continue;
                    };
                    admit(&item)?;
                    visit(item, &mut entry)?;
                }
                if pending != TarExtensions::default() {
                    return Err(self.refused(
                        "it ends with a long name or pax record that describes no entry".into(),
                    ));
                }
            }
            Format::Zip => {
                let mut zip =
                    zip::ZipArchive::new(reader).map_err(|error| broken(archive::zip_io(error)))?;
                if zip.has_duplicate_names() {
                    return Err(self.refused("it names one entry twice".into()));
                }
                for index in 0..zip.len() {
                    let mut file = zip
                        .by_index(index)
                        .map_err(|error| broken(archive::zip_io(error)))?;
                    let Some(item) = self.zip_item(&mut file).map_err(broken)? else {
                        continue;
                    };
                    admit(&item)?;
                    visit(item, &mut file)?;
                }
            }
        }
        Ok(())
    }

    fn refused(&self, why: String) -> Error {
        Error::invalid_input(format!("{} is refused: {why}", self.path)).with_path(&self.path)
    }

    /// Takes in a GNU long name or link, or a pax record, that describes the next entry
    /// (true); false for any other entry. Their size is checked before they are read.
    fn absorb_extension<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        pending: &mut TarExtensions,
    ) -> Result<bool> {
        use tar::EntryType;
        let kind = entry.header().entry_type();
        if !matches!(
            kind,
            EntryType::GNULongName
                | EntryType::GNULongLink
                | EntryType::XHeader
                | EntryType::XGlobalHeader
        ) {
            return Ok(false);
        }
        let size = entry.header().entry_size().map_err(|error| {
            self.refused(format!("a {kind:?} entry has a broken size: {error}"))
        })?;
        if size > MAX_TAR_EXTENSION_BYTES {
            return Err(self.refused(format!(
                "a {kind:?} entry declares {size} bytes; long names and pax records over {MAX_TAR_EXTENSION_BYTES} bytes are not read"
            )));
        }
        let slot = match kind {
            EntryType::GNULongName => &mut pending.long_name,
            EntryType::GNULongLink => &mut pending.long_link,
            EntryType::XHeader => &mut pending.pax,
            // Global pax records are not applied: the crate skips their (small) content.
            _ => return Ok(true),
        };
        if slot.is_some() {
            return Err(self.refused(format!("two {kind:?} entries describe one entry")));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(|error| {
            archive::from_io(error, |message| {
                self.refused(format!("it is not a valid archive: {message}"))
            })
        })?;
        *slot = Some(bytes);
        Ok(true)
    }

    /// `None` for what is not extracted by itself (the top `./`).
    fn tar_item<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        extensions: &TarExtensions,
    ) -> Result<Option<Item>> {
        use tar::EntryType;
        let header = entry.header();
        let pax = extensions.pax_records().map_err(|why| self.refused(why))?;
        let pax_value = |key: &[u8]| {
            pax.iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| *value)
        };
        // As the tar crate reads them: a GNU long name first, then pax, then the header.
        let path = match (&extensions.long_name, pax_value(b"path")) {
            (Some(long), _) => std::borrow::Cow::Borrowed(without_nul(long)),
            (None, Some(value)) => std::borrow::Cow::Borrowed(value),
            (None, None) => header.path_bytes(),
        };
        let raw = utf8(&path)?;
        let declared = header
            .entry_size()
            .map_err(|error| self.refused(format!("entry {raw:?} has a broken size: {error}")))?;
        // Raw entries are framed by their header's size: a pax size saying otherwise
        // would make two readers see two archives.
        if let Some(size) = pax_value(b"size")
            && std::str::from_utf8(size)
                .ok()
                .and_then(|size| size.parse().ok())
                != Some(declared)
        {
            return Err(self.refused(format!(
                "entry {raw:?} declares {declared} bytes in its header but {:?} in its pax record",
                String::from_utf8_lossy(size)
            )));
        }
        let kind = match header.entry_type() {
            EntryType::Regular | EntryType::Continuous => ItemKind::File,
            EntryType::Directory => ItemKind::Dir,
            EntryType::Symlink => {
                let target = match (&extensions.long_link, pax_value(b"linkpath")) {
                    (Some(long), _) => without_nul(long).to_vec(),
                    (None, Some(value)) => value.to_vec(),
                    (None, None) => header.link_name_bytes().unwrap_or_default().into_owned(),
                };
                ItemKind::Symlink(utf8(&target)?)
            }
            EntryType::Link => return Err(unsupported(&raw, "a hardlink")),
            EntryType::Char | EntryType::Block => return Err(unsupported(&raw, "a device")),
            EntryType::Fifo => return Err(unsupported(&raw, "a FIFO")),
            other => return Err(unsupported(&raw, &format!("of tar type {other:?}"))),
        };
        let mode = header
            .mode()
            .map_err(|error| self.refused(format!("entry {raw:?} has a broken mode: {error}")))?;
        let size = if kind == ItemKind::File { declared } else { 0 };
        item(&raw, kind, size, mode)
    }

    fn zip_item<R: Read>(&self, file: &mut zip::read::ZipFile<'_, R>) -> io::Result<Option<Item>> {
        let raw = utf8(file.name_raw()).map_err(archive::to_io)?;
        let mode = file.unix_mode();
        let kind = match mode.map(|mode| mode & 0o170_000) {
            Some(0o120_000) => {
                // A zip symlink's content is its target.
                let mut target = Vec::new();
                file.by_ref()
                    .take(MAX_PATH_BYTES as u64 + 1)
                    .read_to_end(&mut target)?;
                if target.len() > MAX_PATH_BYTES {
                    return Err(archive::to_io(unsupported(
                        &raw,
                        "a symlink with a huge target",
                    )));
                }
                ItemKind::Symlink(utf8(&target).map_err(archive::to_io)?)
            }
            Some(0o040_000) => ItemKind::Dir,
            Some(0o100_000) => ItemKind::File,
            // No Unix type recorded (a DOS-made zip): a trailing slash marks directories.
            Some(0) | None if file.is_dir() => ItemKind::Dir,
            Some(0) | None => ItemKind::File,
            Some(_) => {
                return Err(archive::to_io(unsupported(
                    &raw,
                    "a device, FIFO or socket",
                )));
            }
        };
        let default_mode = if kind == ItemKind::Dir { 0o755 } else { 0o644 };
        let size = if kind == ItemKind::File {
            file.size()
        } else {
            0
        };
        item(&raw, kind, size, mode.unwrap_or(default_mode)).map_err(archive::to_io)
    }
}

/// A pax record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// GNU long names and links and pax records read before the entry they describe.
#[derive(Debug, Default, PartialEq)]
struct TarExtensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl TarExtensions {
    /// The pax records as (key, value); a malformed one refuses the archive.
    fn pax_records(&self) -> std::result::Result<Vec<PaxRecord<'_>>, String> {
        let Some(pax) = &self.pax else {
            return Ok(Vec::new());
        };
        tar::PaxExtensions::new(pax)
            .map(|record| {
                record
                    .map(|record| (record.key_bytes(), record.value_bytes()))
                    .map_err(|error| format!("it holds a malformed pax record: {error}"))
            })
            .collect()
    }
}

/// A GNU long name or link ends with a NUL.
fn without_nul(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(&[0]).unwrap_or(bytes)
}

fn utf8(raw: &[u8]) -> Result<String> {
    String::from_utf8(raw.to_vec()).map_err(|_| {
        Error::invalid_input(format!(
            "archive entry {:?} is not UTF-8",
            String::from_utf8_lossy(raw)
        ))
    })
}

fn unsupported(name: &str, what: &str) -> Error {
    Error::invalid_input(format!(
        "archive entry {name:?} is {what}: such entries are not extracted, so the archive is refused"
    ))
}

/// Builds an [`Item`], normalizing its name; `None` for the archive's top (`./`).
fn item(raw: &str, kind: ItemKind, size: u64, mode: u32) -> Result<Option<Item>> {
    if raw.starts_with('/') {
        return Err(entry_outside(raw, "it is absolute"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(entry_outside(raw, "it climbs out of dest with .."));
                }
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(Item {
        name: parts.join("/"),
        kind,
        size,
        mode: mode & 0o777,
    }))
}

fn entry_outside(name: &str, why: &str) -> Error {
    let shown: String = name.chars().take(200).collect();
    Error::new(
        ErrorCode::PathOutsideRoot,
        format!("archive entry {shown:?} is refused: {why}; nothing was extracted"),
    )
    .with_path(shown)
}

/// Checks every entry against the host before anything is written; the existing files
/// that would be overwritten.
async fn preflight(sandbox: &Sandbox, dest: &str, items: &[Item]) -> Result<Vec<String>> {
    let mut kinds: HashMap<&str, &ItemKind> = HashMap::new();
    for item in items {
        if let Some(earlier) = kinds.insert(&item.name, &item.kind)
            && (*earlier != ItemKind::Dir || item.kind != ItemKind::Dir)
        {
            return Err(Error::invalid_input(format!(
                "archive entry {:?} appears twice; nothing was extracted",
                item.name
            )));
        }
    }
    let links: HashSet<&str> = items
        .iter()
        .filter(|item| matches!(item.kind, ItemKind::Symlink(_)))
        .map(|item| item.name.as_str())
        .collect();
    let mut overwritten = Vec::new();
    for item in items {
        // Writing below one of the archive's own symlinks would follow it: refused
        // whatever it points to. Below one of its files cannot work either.
        for (index, _) in item.name.match_indices('/') {
            let ancestor = &item.name[..index];
            match kinds.get(ancestor) {
                Some(ItemKind::Symlink(_)) => {
                    return Err(entry_outside(
                        &item.name,
                        &format!("it would be written through the archive's symlink {ancestor:?}"),
                    ));
                }
                Some(ItemKind::File) => {
                    return Err(Error::invalid_input(format!(
                        "archive entry {:?} lies below the archive's file {ancestor:?}",
                        item.name
                    )));
                }
                _ => {}
            }
        }
        let resolved = resolve_entry(sandbox, dest, item).await?;
        if resolved.meta.is_some() && item.kind != ItemKind::Dir {
            overwritten.push(resolved.path);
        }
        if let ItemKind::Symlink(target) = &item.kind {
            check_link(sandbox, dest, &item.name, target, &links).await?;
        }
    }
    Ok(overwritten)
}

/// Where an entry lands, resolved on the host inside the root (a directory entry may
/// be an existing directory or a symlink to one inside the root; other entries replace
/// what is there, never following a symlink in their last component).
async fn resolve_entry(sandbox: &Sandbox, dest: &str, item: &Item) -> Result<Resolved> {
    let path = format!("{}/{}", dest.trim_end_matches('/'), item.name);
    let last = if item.kind == ItemKind::Dir {
        Last::Follow
    } else {
        Last::NoFollow
    };
    let resolved = sandbox.resolve(&path, last).await?;
    // A link inside `dest` may lead elsewhere in the root, outside what the call
    // planned: refused here, before anything is written.
    sandbox.check_scope(&resolved.path)?;
    match (&resolved.meta, &item.kind) {
        (Some(meta), ItemKind::Dir) if meta.kind != FileKind::Dir => {
            Err(Error::invalid_input(format!(
                "archive entry {:?} is a directory but {} is a {:?}",
                item.name, resolved.path, meta.kind
            ))
            .with_path(&resolved.path))
        }
        (Some(meta), _) if meta.kind == FileKind::Dir && item.kind != ItemKind::Dir => {
            Err(Error::invalid_input(format!(
                "archive entry {:?} would replace the directory {}",
                item.name, resolved.path
            ))
            .with_path(&resolved.path))
        }
        _ => Ok(resolved),
    }
}

/// A symlink entry may point only inside the root, and not through another symlink
/// of the same archive (which does not exist yet, so the host cannot follow it now).
async fn check_link(
    sandbox: &Sandbox,
    dest: &str,
    name: &str,
    target: &str,
    links: &HashSet<&str>,
) -> Result<()> {
    if target.is_empty() {
        return Err(Error::invalid_input(format!(
            "archive symlink {name:?} has an empty target"
        )));
    }
    let dest = dest.trim_end_matches('/');
    let base = if target.starts_with('/') {
        String::new()
    } else {
        format!(
            "{dest}/{}",
            parent_of(&format!("/{name}")).trim_start_matches('/')
        )
    };
    let absolute = format!("{}/{target}", base.trim_end_matches('/'));
    let mut walked: Vec<&str> = Vec::new();
    let parts: Vec<&str> = absolute.split('/').collect();
    for (index, part) in parts.iter().enumerate() {
        match *part {
            "" | "." => {}
            ".." => {
                walked.pop();
            }
            _ => {
                walked.push(part);
                let more = parts[index + 1..]
                    .iter()
                    .any(|rest| !matches!(*rest, "" | "."));
                let so_far = format!("/{}", walked.join("/"));
                let inside_dest = so_far
                    .strip_prefix(dest)
                    .and_then(|rest| rest.strip_prefix('/'));
                if more && inside_dest.is_some_and(|relative| links.contains(relative)) {
                    return Err(entry_outside(
                        name,
                        &format!(
                            "its target {target:?} goes through the archive's own symlink {so_far:?}"
                        ),
                    ));
                }
            }
        }
    }
    // The entry's directory may not exist yet: extraction makes it, as a directory.
    sandbox
        .resolve_link(&base, target)
        .await
        .map_err(|error| match error.code {
            ErrorCode::PathOutsideRoot => entry_outside(
                name,
                &format!("it is a symlink to {target:?}, outside the root"),
            ),
            _ => error,
        })?;
    Ok(())
}

/// The writing pass: entries in archive order, each re-resolved on the host.
struct Unpacking {
    sandbox: Sandbox,
    dest: String,
    /// What the checking pass saw: the archive must not have changed since.
    items: Vec<Item>,
    next: usize,
    /// Directories made for directory entries, with their modes (set at the end, so a
    /// read-only directory does not stop its own content).
    made_dirs: Vec<(String, u32)>,
}

impl Unpacking {
    fn run(mut self, bridge: &Bridge, archive: &Archive) -> Result<()> {
        archive.each_entry(bridge, |item, content| {
            if self.items.get(self.next) != Some(&item) {
                return Err(changed(&archive.path));
            }
            self.next += 1;
            match &item.kind {
                ItemKind::Dir => bridge.block_on(self.make_dir(&item)),
                ItemKind::Symlink(target) => bridge.block_on(self.make_link(&item, target)),
                ItemKind::File => self.write_file(bridge, &item, content),
            }
        })?;
        if self.next != self.items.len() {
            return Err(changed(&archive.path));
        }
        for (path, mode) in self.made_dirs.iter().rev() {
            bridge.block_on(self.sandbox.files().set_mode(path, *mode))?;
        }
        Ok(())
    }

    async fn make_dir(&mut self, item: &Item) -> Result<()> {
        let resolved = resolve_entry(&self.sandbox, &self.dest, item).await?;
        if resolved.meta.is_some() {
            return Ok(());
        }
        if resolved.parent_missing {
            make_dirs(&self.sandbox, resolved.parent()).await?;
        }
        self.sandbox.files().mkdir(&resolved.path, 0o700).await?;
        self.made_dirs.push((resolved.path, item.mode));
        Ok(())
    }

    /// Resolves where a file or link goes, making missing parents.
    async fn place(&self, item: &Item) -> Result<String> {
        let resolved = resolve_entry(&self.sandbox, &self.dest, item).await?;
        if resolved.parent_missing {
            make_dirs(&self.sandbox, resolved.parent()).await?;
        }
        Ok(resolved.path)
    }

    async fn make_link(&self, item: &Item, target: &str) -> Result<()> {
        // Checked again now that earlier entries exist on the host.
        let no_links = HashSet::new();
        check_link(&self.sandbox, &self.dest, &item.name, target, &no_links).await?;
        let path = self.place(item).await?;
        symlink_atomic(self.sandbox.files().as_ref(), target, &path).await
    }

    fn write_file(&self, bridge: &Bridge, item: &Item, content: &mut dyn Read) -> Result<()> {
        let files = Arc::clone(self.sandbox.files());
        let (path, temp) = bridge.block_on(async {
            let path = self.place(item).await?;
            let temp = temp_beside(&path);
            // Owner-writable while chunks go in; the archive's mode comes before the rename.
            files.create_new(&temp, &[], 0o600).await?;
            Ok((path, temp))
        })?;
        let written = (|| {
            let mut out = HostWriter::new(bridge.clone(), Arc::clone(&files), temp.clone(), false);
            // One byte past the declared size tells a lying entry from an honest one.
            let copied = io::copy(&mut content.take(item.size + 1), &mut out).map_err(|error| {
                archive::from_io(error, |message| {
                    Error::invalid_input(format!(
                        "archive entry {:?} cannot be read: {message}",
                        item.name
                    ))
                })
            })?;
            if copied != item.size {
                return Err(Error::invalid_input(format!(
                    "archive entry {:?} holds {} bytes, not the {} it declares",
                    item.name,
                    if copied > item.size { "more" } else { "fewer" },
                    item.size
                )));
            }
            out.finish()?;
            bridge.block_on(async {
                files.sync(&temp).await?;
                files.set_mode(&temp, item.mode).await?;
                // An overwritten file keeps its owner (see `keep_owner`).
                let owner = match files.lstat(&path).await? {
                    Some(meta) if meta.kind == FileKind::File => Some((meta.uid, meta.gid)),
                    _ => None,
                };
                keep_owner(files.as_ref(), &temp, item.mode, owner).await?;
                files.rename(&temp, &path).await
            })
        })();
        if written.is_err() {
            bridge.cleanup(files.remove_file(&temp));
        }
        written
    }
}

fn changed(archive: &str) -> Error {
    Error::new(
        ErrorCode::Conflict,
        format!("{archive} changed while it was being extracted"),
    )
    .with_path(archive)
}

#[cfg(test)]
mod tests {
    //! The writing pass alone, after the host changed in a way the check could not see:
    //! every write resolves its path again, so it still cannot leave the root.

    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_symlink_planted_after_the_check_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap().display().to_string();
        let (root, outside) = (format!("{base}/root"), format!("{base}/outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "a/x", &b"pwned"[..])
            .unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        std::fs::write(format!("{root}/arc.tar.gz"), &bytes).unwrap();

        let files = warden_core::testing::local_files();
        let sandbox =
            warden_core::testing::sandbox(Arc::clone(&files), &root, Arc::new(|_: &str| Ok(())));
        let archive = Archive {
            files,
            path: format!("{root}/arc.tar.gz"),
            size: bytes.len() as u64,
            format: Format::TarGz,
            caps: Caps {
                archive_bytes: 1 << 20,
                entries: 10,
                unpacked_bytes: 1 << 20,
            },
        };
        let items = archive.list().await.unwrap();
        assert!(preflight(&sandbox, &root, &items).await.unwrap().is_empty());

        std::os::unix::fs::symlink(&outside, format!("{root}/a")).unwrap();
        let unpacking = Unpacking {
            sandbox,
            dest: root.clone(),
            items,
            next: 0,
            made_dirs: Vec::new(),
        };
        let error = archive::on_codec_thread(move |bridge| unpacking.run(&bridge, &archive))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::PathOutsideRoot, "{error}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
