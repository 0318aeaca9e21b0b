//! [`HostFiles`] on SSH hosts: SFTP over a channel of the host's pooled connection.
//!
//! One SFTP [`Session`] is cached per pooled connection (see `Inner::sftp`), opened on
//! first use and reopened transparently when its channel or its connection died.
//!
//! russh-sftp's high-level `SftpSession` hides the raw protocol that two primitives
//! need (`posix-rename@openssh.com` for an atomic replace, and `fsetstat` + `fsync` on
//! the handle just written), so this module drives `RawSftpSession` itself.
//!
//! OpenSSH facts relied on (sftp-server / internal-sftp, checked by tests/sftp.rs):
//! - `SSH_FXP_SYMLINK` takes `(target, link)`: the reverse of the draft's
//!   `(linkpath, targetpath)`.
//! - Protocol version 3 has no "already exists" status: `EEXIST` arrives as
//!   `SSH_FX_FAILURE`, so a failed create is recognised as a conflict by an `lstat`.
//! - `READDIR` attributes come from `lstat`, and `OPEN` of a directory for reading gives
//!   a handle that `fsync@openssh.com` accepts (used to make a rename durable).
//!
//! Failures: a status from the server is classified (`FILE_NOT_FOUND`,
//! `PERMISSION_DENIED`, `CONFLICT`, else `SFTP_FAILED`). A session lost mid-request is
//! retried once on a fresh session for read-only primitives; for a mutating one it is
//! `OUTCOME_UNKNOWN` (it may have happened), as for exec.

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::rawsession::Limits;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, Status, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{DirEntry, FileKind, FileMeta, HostFiles};
use warden_core::sandbox::parent_of;

use crate::Inner;
use crate::connect::Endpoint;

/// Longest wait for one SFTP reply. Long enough for an fsync of a big file on a slow
/// disk; a lost connection fails pending requests at once, this only bounds a stuck
/// server (e.g. one blocked opening a FIFO).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Read/write size every SFTP server must accept (draft-ietf-secsh-filexfer-02 §3).
const SAFE_CHUNK: u64 = 32 * 1024;
/// Largest read/write per request: a reply must fit russh-sftp's 256 KiB packet limit.
const MAX_CHUNK: u64 = 255 * 1024;
/// Write requests one `write_at` keeps in flight.
const WRITES_IN_FLIGHT: usize = 8;

const FSYNC: &str = "fsync@openssh.com";
const POSIX_RENAME: &str = "posix-rename@openssh.com";
const LIMITS: &str = "limits@openssh.com";

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// One SFTP session on one channel of a pooled connection.
pub(crate) struct Session {
    raw: RawSftpSession,
    /// Set when the channel's stream ended or failed, or a request went unanswered:
    /// the session is not handed out again.
    dead: Arc<AtomicBool>,
    fsync: bool,
    posix_rename: bool,
    read_chunk: u32,
    write_chunk: usize,
}

impl Session {
    /// Starts the `sftp` subsystem on `channel` and negotiates the protocol; bounded
    /// by `limit` (the connect timeout).
    pub(crate) async fn start(
        channel: Channel<Msg>,
        endpoint: &Endpoint,
        limit: Duration,
    ) -> Result<Session> {
        match tokio::time::timeout(limit, Session::start_within(channel, endpoint)).await {
            Ok(result) => result,
            Err(_) => Err(endpoint.conn_failed(format!(
                "the SFTP subsystem did not start within {} ms",
                limit.as_millis()
            ))),
        }
    }

    async fn start_within(mut channel: Channel<Msg>, endpoint: &Endpoint) -> Result<Session> {
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|error| {
                endpoint.conn_failed(format!("cannot request the sftp subsystem: {error}"))
            })?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => {
                    return Err(Error::new(
                        ErrorCode::SftpFailed,
                        format!(
                            "{}: the host refused the sftp subsystem",
                            endpoint.describe()
                        ),
                    )
                    .with_host(&endpoint.host_id)
                    .with_hint(
                        "Enable SFTP on the host: `Subsystem sftp internal-sftp` (or the \
                         sftp-server path) in its sshd_config.",
                    ));
                }
                Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                    return Err(endpoint
                        .conn_failed("the channel closed before the sftp subsystem started"));
                }
                Some(_) => {}
            }
        }
        let dead = Arc::new(AtomicBool::new(false));
        let stream = Watched {
            inner: channel.into_stream(),
            dead: Arc::clone(&dead),
        };
        let config = russh_sftp::client::Config {
            request_timeout_secs: REQUEST_TIMEOUT.as_secs(),
            ..russh_sftp::client::Config::default()
        };
        let mut raw = RawSftpSession::new_with_config(stream, config);
        let failed = |error: SftpError| {
            Error::new(
                ErrorCode::SftpFailed,
                format!(
                    "{}: the SFTP handshake failed: {error}",
                    endpoint.describe()
                ),
            )
            .with_host(&endpoint.host_id)
        };
        let version = raw.init().await.map_err(failed)?;
        let has = |name: &str| version.extensions.get(name).is_some_and(|v| v == "1");
        let mut limits = Limits::default();
        if has(LIMITS) {
            limits = Limits::from(raw.limits().await.map_err(failed)?);
            raw.set_limits(limits);
        }
        let read_chunk = limits.read_len.unwrap_or(SAFE_CHUNK).clamp(1, MAX_CHUNK);
        let mut write_chunk = limits.write_len.unwrap_or(SAFE_CHUNK).clamp(1, MAX_CHUNK);
        if let Some(packet) = limits.packet_len {
            // Room for the WRITE header and handle inside the packet limit.
            write_chunk = write_chunk.min(packet.saturating_sub(1024).max(1024));
        }
        Ok(Session {
            raw,
            dead,
            fsync: has(FSYNC),
            posix_rename: has(POSIX_RENAME),
            read_chunk: u32::try_from(read_chunk).unwrap_or(32 * 1024),
            write_chunk: usize::try_from(write_chunk).unwrap_or(32 * 1024),
        })
    }

    pub(crate) fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }

    fn poison(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// `error` from creating `path`, as a conflict when something is there now
    /// (OpenSSH reports `EEXIST` as a bare `SSH_FX_FAILURE`).
    async fn create_failed(&self, files: &SshFiles, path: &str, error: SftpError) -> Fail {
        let failure = matches!(
            &error,
            SftpError::Status(status) if status.status_code == StatusCode::Failure
        );
        if failure && self.raw.lstat(path).await.is_ok() {
            return Fail::Done(files.error(ErrorCode::Conflict, path, "already exists"));
        }
        Fail::Sftp(error)
    }

    /// Reads from an open handle: checks it is a regular file, then reads up to
    /// `length` bytes from `offset`, stopping at the size `fstat` reported (a file that
    /// grows meanwhile is read as it was then) or, for files that report size 0 (like
    /// `/proc`), at EOF. The first read travels with the `fstat`: one round trip less.
    async fn read_open(
        &self,
        files: &SshFiles,
        path: &str,
        handle: &str,
        offset: u64,
        length: u64,
    ) -> OpResult<Vec<u8>> {
        let end = offset.saturating_add(length);
        let want = |at: u64| {
            u32::try_from(end - at).map_or(self.read_chunk, |left| left.min(self.read_chunk))
        };
        let (attrs, first) = tokio::join!(
            self.raw.fstat(handle),
            self.raw.read(handle, offset, want(offset))
        );
        let attrs = attrs?.attrs;
        if meta_of(&attrs).kind != FileKind::File {
            return Err(Fail::Done(files.error(
                ErrorCode::InvalidInput,
                path,
                "not a regular file",
            )));
        }
        let size = attrs.size.unwrap_or(0);
        let end = if size == 0 { end } else { end.min(size) };
        let expected = end.saturating_sub(offset);
        let mut data = Vec::with_capacity(usize::try_from(expected.min(MAX_PREALLOC)).unwrap_or(0));
        let mut at = offset;
        let mut reply = first;
        if length == 0 {
            return Ok(data);
        }
        loop {
            match reply {
                Ok(mut chunk) => {
                    if chunk.data.is_empty() {
                        break;
                    }
                    chunk.data.truncate(want(at) as usize);
                    at += chunk.data.len() as u64;
                    data.append(&mut chunk.data);
                }
                Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => break,
                Err(error) => return Err(error.into()),
            }
            if at >= end {
                break;
            }
            reply = self.raw.read(handle, at, want(at)).await;
        }
        Ok(data)
    }

    /// Writes `data` to a freshly created handle, sets `mode` exactly (the server's
    /// umask narrowed it at creation) and fsyncs.
    async fn write_durably(&self, handle: &str, data: &[u8], mode: u32) -> OpResult<()> {
        let mut at = 0u64;
        for chunk in data.chunks(self.write_chunk) {
            self.raw.write(handle, at, chunk.to_vec()).await?;
            at += chunk.len() as u64;
        }
        self.raw.fsetstat(handle, with_mode(mode)).await?;
        self.raw.fsync(handle).await?;
        Ok(())
    }

    /// Opens an existing file for writing (no create, no truncate) and checks it is a
    /// regular file. SFTP cannot refuse a final symlink at open: callers pass paths the
    /// sandbox resolved to a non-link.
    async fn open_regular_for_write(&self, files: &SshFiles, path: &str) -> OpResult<String> {
        let handle = self
            .raw
            .open(path, OpenFlags::WRITE, FileAttributes::empty())
            .await?
            .handle;
        match self.raw.fstat(handle.as_str()).await {
            Ok(attrs) if meta_of(&attrs.attrs).kind == FileKind::File => Ok(handle),
            Ok(_) => {
                let _ = self.raw.close(handle).await;
                Err(Fail::Done(files.error(
                    ErrorCode::InvalidInput,
                    path,
                    "not a regular file",
                )))
            }
            Err(error) => {
                let _ = self.raw.close(handle).await;
                Err(error.into())
            }
        }
    }

    /// fsyncs a directory (after a rename in it) through a read-only handle.
    async fn sync_dir(&self, path: &str) -> std::result::Result<(), SftpError> {
        let handle = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await?
            .handle;
        let synced = self.raw.fsync(handle.as_str()).await;
        let closed = self.raw.close(handle).await;
        synced.and(closed).map(|_| ())
    }
}

/// Preallocation cap for reads: the size the server reports is only a hint.
const MAX_PREALLOC: u64 = 16 * 1024 * 1024;

/// How an operation failed: a raw SFTP error still to classify, or a finished error.
enum Fail {
    Sftp(SftpError),
    Done(Error),
}

impl From<SftpError> for Fail {
    fn from(error: SftpError) -> Fail {
        Fail::Sftp(error)
    }
}

type OpResult<T> = std::result::Result<T, Fail>;

/// Whether a primitive changes the host: decides what a lost session means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Safe to retry once on a fresh session.
    ReadOnly,
    /// Never retried: a lost session leaves the outcome unknown.
    Mutating,
}

/// The file primitives of one SSH host. Each call takes the host's cached SFTP session
/// (reconnecting or reopening it as needed), so a handle outlives connection changes.
pub(crate) struct SshFiles {
    inner: Arc<Inner>,
    endpoint: Endpoint,
}

impl SshFiles {
    pub(crate) fn new(inner: Arc<Inner>, endpoint: Endpoint) -> SshFiles {
        SshFiles { inner, endpoint }
    }

    fn error(&self, code: ErrorCode, path: &str, what: impl Display) -> Error {
        Error::new(
            code,
            format!("{path}: {what} ({})", self.endpoint.describe()),
        )
        .with_path(path)
        .with_host(&self.endpoint.host_id)
    }

    fn status_error(&self, path: &str, status: &Status) -> Error {
        let code = match status.status_code {
            StatusCode::NoSuchFile => ErrorCode::FileNotFound,
            StatusCode::PermissionDenied => ErrorCode::PermissionDenied,
            _ => ErrorCode::SftpFailed,
        };
        if status.error_message.is_empty() {
            self.error(code, path, status.status_code)
        } else {
            self.error(code, path, &status.error_message)
        }
    }

    /// Runs `op` on the host's SFTP session and classifies its failure. `path` names
    /// the error.
    async fn call<T, F, Fut>(&self, effect: Effect, op: &str, path: &str, run: F) -> Result<T>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = OpResult<T>>,
    {
        let mut retried = false;
        loop {
            let (connection, session) = self
                .inner
                .sftp(&self.endpoint)
                .await
                .map_err(|error| error.with_path(path))?;
            let result = run(Arc::clone(&session)).await;
            connection.touch();
            let error = match result {
                Ok(value) => return Ok(value),
                Err(Fail::Done(error)) => return Err(error),
                Err(Fail::Sftp(error)) => error,
            };
            match error {
                SftpError::Status(status) => return Err(self.status_error(path, &status)),
                // Checked locally against the server's limits: nothing was sent.
                SftpError::Limited(reason) => {
                    return Err(self.error(
                        ErrorCode::SftpFailed,
                        path,
                        format!("beyond the SFTP server's limits: {reason}"),
                    ));
                }
                SftpError::Timeout => {
                    session.poison();
                    let what = format!(
                        "no SFTP answer to {op} within {} s",
                        REQUEST_TIMEOUT.as_secs()
                    );
                    return Err(match effect {
                        Effect::ReadOnly => self.error(ErrorCode::SshConnFailed, path, what),
                        Effect::Mutating => self.outcome_unknown(path, what),
                    });
                }
                // The stream ended or broke (connection lost, channel closed, garbled
                // packet): this session is done either way.
                other => {
                    session.poison();
                    if effect == Effect::ReadOnly && !retried {
                        tracing::debug!(target = %self.endpoint.describe(), %op, %path, error = %other, "SFTP session lost; retrying once on a new one");
                        retried = true;
                        continue;
                    }
                    let what = if connection.is_alive() {
                        format!("the SFTP session failed during {op}: {other}")
                    } else {
                        format!("the connection was lost during {op}: {other}")
                    };
                    return Err(match effect {
                        Effect::ReadOnly => self.error(ErrorCode::SshConnFailed, path, what),
                        Effect::Mutating => self.outcome_unknown(path, what),
                    });
                }
            }
        }
    }

    fn outcome_unknown(&self, path: &str, what: String) -> Error {
        self.error(
            ErrorCode::OutcomeUnknown,
            path,
            format!("{what}; it may or may not have taken effect"),
        )
    }
}

#[async_trait]
impl HostFiles for SshFiles {
    async fn lstat(&self, path: &str) -> Result<Option<FileMeta>> {
        self.call(Effect::ReadOnly, "lstat", path, |session| async move {
            match session.raw.lstat(path).await {
                Ok(attrs) => Ok(Some(meta_of(&attrs.attrs))),
                Err(SftpError::Status(status)) if status.status_code == StatusCode::NoSuchFile => {
                    Ok(None)
                }
                Err(error) => Err(error.into()),
            }
        })
        .await
    }

    async fn read_link(&self, path: &str) -> Result<String> {
        self.call(Effect::ReadOnly, "readlink", path, |session| async move {
            let name = session.raw.readlink(path).await?;
            match name.files.into_iter().next() {
                Some(file) => Ok(file.filename),
                None => Err(Fail::Done(self.error(
                    ErrorCode::SftpFailed,
                    path,
                    "the server answered readlink without a target",
                ))),
            }
        })
        .await
    }

    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.call(Effect::ReadOnly, "read", path, |session| async move {
            let handle = session
                .raw
                .open(path, OpenFlags::READ, FileAttributes::empty())
                .await?
                .handle;
            let data = session.read_open(self, path, &handle, offset, length).await;
            // Closed in the background: a failed close of a file only read loses
            // nothing, and the answer need not wait one more round trip for it.
            let closing = Arc::clone(&session);
            tokio::spawn(async move {
                let _ = closing.raw.close(handle).await;
            });
            data
        })
        .await
    }

    async fn create_new(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        self.call(Effect::Mutating, "create", path, |session| async move {
            if !session.fsync {
                return Err(Fail::Done(self.error(
                    ErrorCode::SftpFailed,
                    path,
                    format!(
                        "the host's SFTP server lacks {FSYNC}, so a write cannot be made durable"
                    ),
                )));
            }
            let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
            let handle = match session.raw.open(path, flags, with_mode(mode)).await {
                Ok(handle) => handle.handle,
                Err(error) => return Err(session.create_failed(self, path, error).await),
            };
            let written = session.write_durably(&handle, data, mode).await;
            let closed = session.raw.close(handle).await.map_err(Fail::from);
            let result = written.and(closed.map(|_| ()));
            if let Err(Fail::Sftp(SftpError::Status(_))) = &result {
                // The session works and the file is ours (EXCLUDE): do not leave a
                // partial file behind to turn a retry into a conflict.
                let _ = session.raw.remove(path).await;
            }
            result
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.call(Effect::Mutating, "rename", to, |session| async move {
            if session.posix_rename {
                let request = ssh_strings(&[from, to]);
                match session.raw.extended(POSIX_RENAME, request).await? {
                    Packet::Status(status) if status.status_code == StatusCode::Ok => {}
                    Packet::Status(status) => return Err(SftpError::Status(status).into()),
                    _ => return Err(SftpError::UnexpectedPacket.into()),
                }
            } else {
                // Plain SSH_FXP_RENAME never replaces silently: OpenSSH refuses an
                // existing target, other servers rename(2) atomically.
                session.raw.rename(from, to).await?;
            }
            if session.fsync {
                let parent = parent_of(to);
                if let Err(error) = session.sync_dir(parent).await {
                    // The rename itself happened; reporting failure would mislead.
                    tracing::warn!(target = %self.endpoint.describe(), directory = %parent, %error, "could not fsync the directory after a rename");
                }
            }
            Ok(())
        })
        .await
    }

    async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.call(Effect::ReadOnly, "readdir", path, |session| async move {
            let handle = session.raw.opendir(path).await?.handle;
            let mut entries = Vec::new();
            let listed = loop {
                match session.raw.readdir(handle.as_str()).await {
                    Ok(name) => entries.extend(
                        name.files
                            .into_iter()
                            .filter(|file| file.filename != "." && file.filename != "..")
                            .map(|file| DirEntry {
                                meta: meta_of(&file.attrs),
                                name: file.filename,
                            }),
                    ),
                    Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => {
                        break Ok(());
                    }
                    Err(error) => break Err(error),
                }
            };
            let _ = session.raw.close(handle).await;
            listed?;
            Ok(entries)
        })
        .await
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        self.call(Effect::Mutating, "mkdir", path, |session| async move {
            match session.raw.mkdir(path, with_mode(mode)).await {
                Ok(_) => Ok(()),
                Err(error) => Err(session.create_failed(self, path, error).await),
            }
        })
        .await
    }

    async fn remove_file(&self, path: &str) -> Result<()> {
        self.call(Effect::Mutating, "remove", path, |session| async move {
            session.raw.remove(path).await?;
            Ok(())
        })
        .await
    }

    async fn remove_dir(&self, path: &str) -> Result<()> {
        self.call(Effect::Mutating, "rmdir", path, |session| async move {
            session.raw.rmdir(path).await?;
            Ok(())
        })
        .await
    }

    async fn symlink(&self, target: &str, link_path: &str) -> Result<()> {
        self.call(
            Effect::Mutating,
            "symlink",
            link_path,
            |session| async move {
                // OpenSSH reads SSH_FXP_SYMLINK as (target, link), the reverse of the draft;
                // russh-sftp sends its first argument first.
                match session.raw.symlink(target, link_path).await {
                    Ok(_) => Ok(()),
                    Err(error) => Err(session.create_failed(self, link_path, error).await),
                }
            },
        )
        .await
    }

    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        self.call(Effect::Mutating, "chmod", path, |session| async move {
            session.raw.setstat(path, with_mode(mode)).await?;
            Ok(())
        })
        .await
    }

    async fn set_owner(&self, path: &str, uid: u32, gid: u32) -> Result<()> {
        self.call(Effect::Mutating, "chown", path, |session| async move {
            let attrs = FileAttributes {
                uid: Some(uid),
                gid: Some(gid),
                ..FileAttributes::empty()
            };
            session.raw.setstat(path, attrs).await?;
            Ok(())
        })
        .await
    }

    async fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.call(Effect::Mutating, "write", path, |session| async move {
            let handle = session.open_regular_for_write(self, path).await?;
            // Several writes in flight: on a long link a few round trips, not one per
            // chunk, bound the call; a bounded number keeps memory flat (each holds
            // a copy of its chunk until answered).
            let step = session.write_chunk;
            let writes = (0..data.len()).step_by(step).map(|start| {
                let chunk = data[start..data.len().min(start + step)].to_vec();
                session
                    .raw
                    .write(handle.as_str(), offset + start as u64, chunk)
            });
            let written = futures::stream::iter(writes)
                .buffer_unordered(WRITES_IN_FLIGHT)
                .try_for_each(|_| async { Ok(()) })
                .await;
            let closed = session.raw.close(handle).await;
            written?;
            closed?;
            Ok(())
        })
        .await
    }

    async fn truncate(&self, path: &str, length: u64) -> Result<()> {
        self.call(Effect::Mutating, "truncate", path, |session| async move {
            let handle = session.open_regular_for_write(self, path).await?;
            let attrs = FileAttributes {
                size: Some(length),
                ..FileAttributes::empty()
            };
            let cut = session.raw.fsetstat(handle.as_str(), attrs).await;
            let closed = session.raw.close(handle).await;
            cut?;
            closed?;
            Ok(())
        })
        .await
    }

    async fn sync(&self, path: &str) -> Result<()> {
        self.call(Effect::Mutating, "fsync", path, |session| async move {
            if !session.fsync {
                return Err(Fail::Done(self.error(
                    ErrorCode::SftpFailed,
                    path,
                    format!("the host's SFTP server lacks {FSYNC}"),
                )));
            }
            let handle = session.open_regular_for_write(self, path).await?;
            let synced = session.raw.fsync(handle.as_str()).await;
            let closed = session.raw.close(handle).await;
            synced?;
            closed?;
            Ok(())
        })
        .await
    }
}

/// Attributes carrying only permission bits.
fn with_mode(mode: u32) -> FileAttributes {
    FileAttributes {
        permissions: Some(mode & 0o7777),
        ..FileAttributes::empty()
    }
}

fn meta_of(attrs: &FileAttributes) -> FileMeta {
    let mode = attrs.permissions.unwrap_or(0);
    let kind = match mode & S_IFMT {
        S_IFREG => FileKind::File,
        S_IFDIR => FileKind::Dir,
        S_IFLNK => FileKind::Symlink,
        // FIFO, socket, devices, and a server that sent no type at all.
        _ => FileKind::Special,
    };
    FileMeta {
        kind,
        size: attrs.size.unwrap_or(0),
        mode: mode & 0o7777,
        uid: attrs.uid.unwrap_or(0),
        gid: attrs.gid.unwrap_or(0),
        mtime: u64::from(attrs.mtime.unwrap_or(0)),
    }
}

/// SSH wire strings (`uint32` length, bytes), the payload of an extended request.
fn ssh_strings(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The channel's stream, noting when it ended or failed: russh-sftp does not say
/// whether its session still works, and a dead one must not be handed out again.
struct Watched<S> {
    inner: S,
    dead: Arc<AtomicBool>,
}

impl<S> Watched<S> {
    fn note<T>(&self, result: &Poll<io::Result<T>>) {
        if matches!(result, Poll::Ready(Err(_))) {
            self.dead.store(true, Ordering::SeqCst);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            // End of stream: the channel closed.
            self.dead.store(true, Ordering::SeqCst);
        }
        self.note(&result);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&result);
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.dead.store(true, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_type_comes_from_the_mode_bits() {
        let attrs = |mode: u32| FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        assert_eq!(meta_of(&attrs(0o100_644)).kind, FileKind::File);
        assert_eq!(meta_of(&attrs(0o040_755)).kind, FileKind::Dir);
        assert_eq!(meta_of(&attrs(0o120_777)).kind, FileKind::Symlink);
        for special in [0o010_644, 0o020_600, 0o060_600, 0o140_755, 0] {
            assert_eq!(
                meta_of(&attrs(special)).kind,
                FileKind::Special,
                "{special:o}"
            );
        }
        assert_eq!(meta_of(&attrs(0o104_755)).mode, 0o4755);
    }

    #[test]
    fn extended_payload_is_ssh_strings() {
        assert_eq!(
            ssh_strings(&["/a", "/bc"]),
            b"\0\0\0\x02/a\0\0\0\x03/bc".to_vec()
        );
    }
}
