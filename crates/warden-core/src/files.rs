//! The file port: the few primitive operations a host's file system must offer
//! ([`HostFiles`]), SFTP on SSH hosts and `std::fs` on `local`. Primitives never
//! follow a symlink in the last component and never decide confinement: the sandbox
//! (`crate::sandbox`) resolves every path component by component on top of them.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};

/// What an entry is, as `lstat` sees it (a symlink is never followed).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// FIFO, socket, character or block device: never opened for reading.
    Special,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: u64,
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub meta: FileMeta,
}

/// Primitive file operations on one host. Paths are absolute and already resolved by
/// the sandbox; errors are classified (`FILE_NOT_FOUND`, `PERMISSION_DENIED`,
/// `SFTP_FAILED`).
#[async_trait]
pub trait HostFiles: Send + Sync {
    /// `Ok(None)` when nothing is at `path`.
    async fn lstat(&self, path: &str) -> Result<Option<FileMeta>>;

    async fn read_link(&self, path: &str) -> Result<String>;

    /// Up to `length` bytes from `offset` of a regular file (the caller checked the
    /// kind with `lstat`).
    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>>;

    /// Creates `path`, which must not exist, with `data` and `mode`, and makes it
    /// durable (fsync) before returning.
    async fn create_new(&self, path: &str, data: &[u8], mode: u32) -> Result<()>;

    /// Atomically replaces `to` with `from` (POSIX rename, also over an existing file).
    async fn rename(&self, from: &str, to: &str) -> Result<()>;

    async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>>;

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()>;

    async fn remove_file(&self, path: &str) -> Result<()>;

    /// Removes an empty directory.
    async fn remove_dir(&self, path: &str) -> Result<()>;

    async fn symlink(&self, target: &str, link_path: &str) -> Result<()>;

    async fn set_mode(&self, path: &str, mode: u32) -> Result<()>;

    /// Changes owner and group of `path` (a symlink there is not followed on `local`;
    /// callers resolve the path to a non-link first).
    async fn set_owner(&self, path: &str, uid: u32, gid: u32) -> Result<()>;

    /// Writes `data` at `offset` into an existing regular file (no create, no
    /// truncate, no sync): the building block of chunked copies and stream uploads.
    async fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> Result<()>;

    /// Cuts (or extends with zeros) a regular file to `length` bytes.
    async fn truncate(&self, path: &str, length: u64) -> Result<()>;

    /// Makes a file's content durable (fsync).
    async fn sync(&self, path: &str) -> Result<()>;
}

/// Maps an I/O error to the contract's codes, naming the path.
pub fn io_error(path: &str, error: &std::io::Error) -> Error {
    use std::io::ErrorKind;
    let code = match error.kind() {
        ErrorKind::NotFound => ErrorCode::FileNotFound,
        ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
        ErrorKind::AlreadyExists => ErrorCode::Conflict,
        // A path through a regular file, a name over the host's limit.
        ErrorKind::NotADirectory | ErrorKind::InvalidFilename => ErrorCode::InvalidInput,
        _ => ErrorCode::SftpFailed,
    };
    Error::new(code, format!("{path}: {error}")).with_path(path)
}

/// A read-only view of a host's file system: every mutating primitive answers
/// `PERMISSION_DENIED`. The engine hands it out where a call may only read (the
/// sources of `push` and `sync` on `local`), so that holds by construction.
pub struct ReadOnlyFiles(pub std::sync::Arc<dyn HostFiles>);

impl ReadOnlyFiles {
    fn refuse(path: &str) -> Error {
        Error::new(
            ErrorCode::PermissionDenied,
            format!("{path}: this call may only read here"),
        )
        .with_path(path)
    }
}

#[async_trait]
impl HostFiles for ReadOnlyFiles {
    async fn lstat(&self, path: &str) -> Result<Option<FileMeta>> {
        self.0.lstat(path).await
    }

    async fn read_link(&self, path: &str) -> Result<String> {
        self.0.read_link(path).await
    }

    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.0.read(path, offset, length).await
    }

    async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.0.read_dir(path).await
    }

    async fn create_new(&self, path: &str, _data: &[u8], _mode: u32) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn rename(&self, _from: &str, to: &str) -> Result<()> {
        Err(ReadOnlyFiles::refuse(to))
    }

    async fn mkdir(&self, path: &str, _mode: u32) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn remove_file(&self, path: &str) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn remove_dir(&self, path: &str) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn symlink(&self, _target: &str, link_path: &str) -> Result<()> {
        Err(ReadOnlyFiles::refuse(link_path))
    }

    async fn set_mode(&self, path: &str, _mode: u32) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn set_owner(&self, path: &str, _uid: u32, _gid: u32) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn write_at(&self, path: &str, _offset: u64, _data: &[u8]) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn truncate(&self, path: &str, _length: u64) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }

    async fn sync(&self, path: &str) -> Result<()> {
        Err(ReadOnlyFiles::refuse(path))
    }
}
