//! What `fs_archive_create` and `fs_archive_extract` share: the formats, the caps,
//! and the bridge between the synchronous tar/zip codecs and a host's async file
//! primitives.
//!
//! The codecs run on a blocking thread. Their reads and writes of host files go through
//! [`Bridge::block_on`] one chunk at a time, so neither an archive nor a file in it is
//! ever held whole in memory, on `local` as over SFTP.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use warden_core::RunContext;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::HostFiles;

/// Bytes moved per host read or write.
pub const CHUNK: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Format {
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "zip")]
    Zip,
}

impl Format {
    /// From an archive's name: `.tar.gz`, `.tgz` or `.zip`.
    pub fn from_name(path: &str) -> Option<Format> {
        let name = path.to_ascii_lowercase();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Format::TarGz)
        } else if name.ends_with(".zip") {
            Some(Format::Zip)
        } else {
            None
        }
    }

    /// From an archive's first bytes (gzip or zip magic), whatever its name.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        match head {
            [0x1f, 0x8b, ..] => Some(Format::TarGz),
            // A local file header, or the end record of an empty archive.
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(Format::Zip),
            _ => None,
        }
    }
}

/// `limits` that bound one archive.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub archive_bytes: u64,
    pub entries: usize,
    pub unpacked_bytes: u64,
}

impl Caps {
    pub fn of(context: &RunContext) -> Caps {
        let limits = &context.config().config.limits;
        Caps {
            archive_bytes: limits.max_archive_bytes,
            entries: limits.max_archive_entries,
            unpacked_bytes: limits.max_unpacked_bytes,
        }
    }
}

/// The async runtime, carried into codec code on a blocking thread, and a flag raised
/// when the call is dropped (the client cancelled) so the thread stops at its next
/// chunk instead of finishing work nobody waits for.
#[derive(Clone)]
pub struct Bridge {
    runtime: Handle,
    cancel: CancellationToken,
}

impl Bridge {
    pub fn block_on<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        if self.cancel.is_cancelled() {
            return Err(Error::new(ErrorCode::Cancelled, "the call was cancelled"));
        }
        self.runtime.block_on(future)
    }

    /// Clean-up that must run even after a cancellation (removing a temp file).
    pub fn cleanup(&self, future: impl Future<Output = Result<()>>) {
        let _ = self.runtime.block_on(future);
    }
}

/// Runs codec `work` on a blocking thread with a [`Bridge`] back to the runtime.
pub async fn on_codec_thread<T: Send + 'static>(
    work: impl FnOnce(Bridge) -> Result<T> + Send + 'static,
) -> Result<T> {
    let cancel = CancellationToken::new();
    let _cancel_when_dropped = cancel.clone().drop_guard();
    let bridge = Bridge {
        runtime: Handle::current(),
        cancel,
    };
    tokio::task::spawn_blocking(move || work(bridge))
        .await
        .map_err(|error| Error::internal(format!("archive task failed: {error}")))?
}

/// Carries a warden error through the codecs' `io::Error`s.
pub fn to_io(error: Error) -> io::Error {
    io::Error::other(error)
}

/// Finds a warden error carried through the codecs' `io::Error`s (tar and zip wrap
/// them in their own); anything else becomes `other(message)`.
pub fn from_io(error: io::Error, other: impl FnOnce(String) -> Error) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = error
        .get_ref()
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    while let Some(current) = cause {
        if let Some(ours) = current.downcast_ref::<Error>() {
            return ours.clone();
        }
        // An io::Error's `source` skips the error it wraps: look inside it instead.
        cause = match current.downcast_ref::<io::Error>() {
            Some(wrapped) => wrapped
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    other(error.to_string())
}

/// Stops a decompressed stream once it yields more than `limit` bytes, failing with
/// `refusal`: whatever a codec reads whole or skips through (tar's long names, pax
/// records, the declared content of directories) still costs decompression, and this
/// bounds it before the per-entry caps can even see the entry.
pub struct ExpansionCap<R> {
    inner: R,
    left: u64,
    refusal: Error,
}

impl<R: Read> ExpansionCap<R> {
    pub fn new(inner: R, limit: u64, refusal: Error) -> ExpansionCap<R> {
        ExpansionCap {
            inner,
            left: limit,
            refusal,
        }
    }
}

impl<R: Read> Read for ExpansionCap<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit tells a stream that ends exactly there from one that goes on.
        let wanted = usize::try_from(self.left.saturating_add(1))
            .map_or(buffer.len(), |allowed| buffer.len().min(allowed));
        let count = self.inner.read(&mut buffer[..wanted])?;
        if count as u64 > self.left {
            return Err(to_io(self.refusal.clone()));
        }
        self.left -= count as u64;
        Ok(count)
    }
}

/// zip's errors as `io::Error`s, unwrapping its I/O variant (ours may be inside).
pub fn zip_io(error: zip::result::ZipError) -> io::Error {
    match error {
        zip::result::ZipError::Io(inner) => inner,
        other => io::Error::other(other),
    }
}

/// A regular file on the host read as `Read + Seek`, through a window of one chunk.
/// It must hold `size` bytes: one that shrank meanwhile is a CONFLICT.
pub struct HostReader {
    bridge: Bridge,
    files: Arc<dyn HostFiles>,
    path: String,
    size: u64,
    position: u64,
    window_start: u64,
    window: Vec<u8>,
}

impl HostReader {
    pub fn new(bridge: Bridge, files: Arc<dyn HostFiles>, path: String, size: u64) -> HostReader {
        HostReader {
            bridge,
            files,
            path,
            size,
            position: 0,
            window_start: 0,
            window: Vec::new(),
        }
    }
}

impl Read for HostReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.size || buffer.is_empty() {
            return Ok(0);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if self.position < self.window_start || self.position >= window_end {
            let length = (self.size - self.position).min(CHUNK as u64);
            let data = self
                .bridge
                .block_on(self.files.read(&self.path, self.position, length))
                .map_err(to_io)?;
            if data.is_empty() {
                return Err(to_io(
                    Error::new(
                        ErrorCode::Conflict,
                        format!("{} shrank while it was being read", self.path),
                    )
                    .with_path(&self.path),
                ));
            }
            self.window_start = self.position;
            self.window = data;
        }
        let offset = (self.position - self.window_start) as usize;
        let count = buffer.len().min(self.window.len() - offset);
        buffer[..count].copy_from_slice(&self.window[offset..offset + count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for HostReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

/// Appends to an existing (empty) file on the host in chunks of [`CHUNK`], hashing
/// what it writes when asked to.
pub struct HostWriter {
    bridge: Bridge,
    files: Arc<dyn HostFiles>,
    path: String,
    offset: u64,
    pending: Vec<u8>,
    hasher: Option<sha2::Sha256>,
}

impl HostWriter {
    pub fn new(
        bridge: Bridge,
        files: Arc<dyn HostFiles>,
        path: String,
        hashed: bool,
    ) -> HostWriter {
        HostWriter {
            bridge,
            files,
            path,
            offset: 0,
            pending: Vec::with_capacity(CHUNK),
            hasher: hashed.then(sha2::Sha256::new),
        }
    }

    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.bridge
            .block_on(self.files.write_at(&self.path, self.offset, &self.pending))?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&self.pending);
        }
        self.offset += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes what is left; the bytes written in all and their sha256 (if hashed).
    pub fn finish(mut self) -> Result<(u64, Option<String>)> {
        self.write_pending()?;
        let sha256 = self.hasher.map(|hasher| hex::encode(hasher.finalize()));
        Ok((self.offset, sha256))
    }
}

impl Write for HostWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let count = data.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&data[..count]);
        if self.pending.len() == CHUNK {
            self.write_pending().map_err(to_io)?;
        }
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks go out when full or at `finish`: a codec's flush must not turn into
        // many tiny remote writes.
        Ok(())
    }
}
