//! SshTransport's file primitives (SFTP) against real OpenSSH sshd processes on
//! loopback (warden-testkit): every `HostFiles` method, file kinds seen without
//! following symlinks, error classification, OpenSSH's symlink argument order, and the
//! cached SFTP session (reused, replaced after its channel or connection died).
//!
//! The sshd is local, so fixtures are made and checked with `std::fs` directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{host_for, settings, trusting};
use tokio_util::sync::CancellationToken;
use warden_core::config::HostKeyChecking;
use warden_core::error::{Error, ErrorCode};
use warden_core::files::{FileKind, HostFiles};
use warden_core::inventory::{Host, HostId, HostKind};
use warden_core::transport::{Command, ExecRequest, ExitStatus, Permit, Transport};
use warden_ssh::SshTransport;
use warden_testkit::{Sshd, SshdOptions, non_root_user, require_sshd};

async fn files(transport: &SshTransport, host: &Host) -> Arc<dyn HostFiles> {
    match transport.files(&Permit::for_tests(host), host).await {
        Ok(files) => files,
        Err(error) => panic!("files() failed: {error}"),
    }
}

/// A fresh directory for fixtures, inside the sshd's temp dir (removed with it).
fn fixture_dir(sshd: &Sshd, name: &str, mode: u32) -> PathBuf {
    let dir = sshd.dir().join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The error of `result`, checked to name `path` and the host.
fn error_of<T: std::fmt::Debug>(result: Result<T, Error>, path: &str) -> Error {
    let error = result.expect_err("expected an error");
    assert_eq!(error.path.as_deref(), Some(path), "{error:?}");
    assert_eq!(error.host_id.as_deref(), Some("web-1"), "{error:?}");
    assert!(error.message.contains(path), "{}", error.message);
    error
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Bytes that differ at every offset, so a misplaced chunk shows.
fn pattern(length: usize) -> Vec<u8> {
    (0..length)
        .map(|index| (index % 251) as u8 ^ (index / 251) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_primitive_works() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    let files = files(&transport, &host).await;
    let base = fixture_dir(&sshd, "files", 0o755);

    // create_new: content, the exact mode despite the server's umask (022), durable.
    let a = base.join("a.txt");
    files
        .create_new(&text(&a), b"hello world", 0o666)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), b"hello world");
    assert_eq!(mode_of(&a), 0o666);
    files
        .create_new(&text(&base.join("empty")), b"", 0o600)
        .await
        .unwrap();
    assert_eq!(std::fs::read(base.join("empty")).unwrap(), b"");

    // lstat of a file: every field as the kernel has it.
    let meta = files.lstat(&text(&a)).await.unwrap().unwrap();
    let local = std::fs::symlink_metadata(&a).unwrap();
    assert_eq!(meta.kind, FileKind::File);
    assert_eq!(meta.size, 11);
    assert_eq!(meta.mode, 0o666);
    assert_eq!((meta.uid, meta.gid), (local.uid(), local.gid()));
    assert_eq!(meta.mtime, u64::try_from(local.mtime()).unwrap());
    assert_eq!(
        files.lstat(&text(&base.join("nothing"))).await.unwrap(),
        None
    );

    // read: ranges, past the end, everything.
    assert_eq!(files.read(&text(&a), 6, 5).await.unwrap(), b"world");
    assert_eq!(files.read(&text(&a), 0, 3).await.unwrap(), b"hel");
    assert_eq!(files.read(&text(&a), 6, 100).await.unwrap(), b"world");
    assert_eq!(
        files.read(&text(&a), 0, u64::MAX).await.unwrap(),
        b"hello world"
    );
    assert!(files.read(&text(&a), 50, 10).await.unwrap().is_empty());

    // Several SFTP packets each way.
    let big = pattern(1_300_007);
    let big_path = base.join("big.bin");
    files
        .create_new(&text(&big_path), &big, 0o644)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&big_path).unwrap(), big);
    assert_eq!(
        files.read(&text(&big_path), 0, u64::MAX).await.unwrap(),
        big
    );
    assert_eq!(
        files
            .read(&text(&big_path), 300_001, 700_000)
            .await
            .unwrap(),
        &big[300_001..1_000_001]
    );

    // mkdir, with the mode asked for (narrowed by the umask, as mkdir(2) does).
    let sub = base.join("sub");
    files.mkdir(&text(&sub), 0o750).await.unwrap();
    assert!(std::fs::symlink_metadata(&sub).unwrap().is_dir());
    assert_eq!(mode_of(&sub), 0o750);
    assert_eq!(
        files.lstat(&text(&sub)).await.unwrap().unwrap().kind,
        FileKind::Dir
    );

    // symlink(target, link): OpenSSH's reversed SSH_FXP_SYMLINK order must not leak.
    let link = base.join("link");
    files.symlink("a.txt", &text(&link)).await.unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("a.txt"));
    assert_eq!(files.read_link(&text(&link)).await.unwrap(), "a.txt");
    assert_eq!(
        files.lstat(&text(&link)).await.unwrap().unwrap().kind,
        FileKind::Symlink
    );
    // lstat never follows, not even to a directory or to nothing.
    let dir_link = base.join("dir-link");
    std::os::unix::fs::symlink(&sub, &dir_link).unwrap();
    assert_eq!(
        files.lstat(&text(&dir_link)).await.unwrap().unwrap().kind,
        FileKind::Symlink
    );
    let dangling = base.join("dangling");
    files
        .symlink("/nonexistent/target", &text(&dangling))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_link(&dangling).unwrap(),
        Path::new("/nonexistent/target")
    );
    assert_eq!(
        files.lstat(&text(&dangling)).await.unwrap().unwrap().kind,
        FileKind::Symlink
    );

    // Special files: FIFO, socket, character device.
    let fifo = base.join("fifo");
    mkfifo(&fifo);
    assert_eq!(
        files.lstat(&text(&fifo)).await.unwrap().unwrap().kind,
        FileKind::Special
    );
    let socket = base.join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    assert_eq!(
        files.lstat(&text(&socket)).await.unwrap().unwrap().kind,
        FileKind::Special
    );
    assert_eq!(
        files.lstat("/dev/null").await.unwrap().unwrap().kind,
        FileKind::Special
    );

    // read_dir: lstat metadata, no "." or "..".
    let mut entries = files.read_dir(&text(&base)).await.unwrap();
    entries.sort_by(|left, right| left.name.cmp(&right.name));
    let listed: Vec<(&str, FileKind)> = entries
        .iter()
        .map(|entry| (entry.name.as_str(), entry.meta.kind))
        .collect();
    assert_eq!(
        listed,
        [
            ("a.txt", FileKind::File),
            ("big.bin", FileKind::File),
            ("dangling", FileKind::Symlink),
            ("dir-link", FileKind::Symlink),
            ("empty", FileKind::File),
            ("fifo", FileKind::Special),
            ("link", FileKind::Symlink),
            ("socket", FileKind::Special),
            ("sub", FileKind::Dir),
        ]
    );
    assert_eq!(entries[0].meta.size, 11);
    assert_eq!(entries[0].meta.mode, 0o666);
    assert!(files.read_dir(&text(&sub)).await.unwrap().is_empty());

    // rename: to a new name, then over an existing file (atomically replaced).
    let b = base.join("b.txt");
    files.rename(&text(&a), &text(&b)).await.unwrap();
    assert!(!a.exists());
    assert_eq!(std::fs::read(&b).unwrap(), b"hello world");
    let c = base.join("c.txt");
    files
        .create_new(&text(&c), b"replacement", 0o644)
        .await
        .unwrap();
    files.rename(&text(&c), &text(&b)).await.unwrap();
    assert!(!c.exists());
    assert_eq!(std::fs::read(&b).unwrap(), b"replacement");
    // A directory moves too.
    let moved = base.join("moved");
    files.rename(&text(&sub), &text(&moved)).await.unwrap();
    assert!(moved.is_dir());

    // set_mode: exactly, including the special bits.
    files.set_mode(&text(&b), 0o600).await.unwrap();
    assert_eq!(mode_of(&b), 0o600);
    files.set_mode(&text(&b), 0o2755).await.unwrap();
    assert_eq!(mode_of(&b), 0o2755);
    assert_eq!(files.lstat(&text(&b)).await.unwrap().unwrap().mode, 0o2755);

    // Files that report size 0 (like /proc's) are read to EOF, not to their size.
    let version = files.read("/proc/version", 0, 4096).await.unwrap();
    assert!(version.starts_with(b"Linux"), "{version:?}");

    // write_at places chunks (many in flight) at an offset without truncating;
    // truncate cuts; sync succeeds; set_owner keeps the owner it is given.
    let chunks = base.join("chunks.bin");
    files.create_new(&text(&chunks), b"", 0o644).await.unwrap();
    let data = pattern(1024 * 1024 + 7);
    files
        .write_at(&text(&chunks), 0, &data[..600_000])
        .await
        .unwrap();
    files
        .write_at(&text(&chunks), 600_000, &data[600_000..])
        .await
        .unwrap();
    files.sync(&text(&chunks)).await.unwrap();
    assert_eq!(std::fs::read(&chunks).unwrap(), data);
    files.truncate(&text(&chunks), 10).await.unwrap();
    assert_eq!(std::fs::read(&chunks).unwrap(), &data[..10]);
    let metadata = std::fs::metadata(&chunks).unwrap();
    files
        .set_owner(&text(&chunks), metadata.uid(), metadata.gid())
        .await
        .unwrap();
    // A directory cannot be opened for writing (sftp-server answers a failure).
    error_of(files.write_at(&text(&base), 0, b"x").await, &text(&base));

    // remove_file removes the link, not its target; remove_dir an empty directory.
    files.remove_file(&text(&link)).await.unwrap();
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(b.exists());
    files.remove_file(&text(&b)).await.unwrap();
    assert!(!b.exists());
    files.remove_dir(&text(&moved)).await.unwrap();
    assert!(!moved.exists());
    assert_eq!(files.lstat(&text(&moved)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_and_name_path_and_host() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    let files = files(&transport, &host).await;
    let base = fixture_dir(&sshd, "errors", 0o755);
    let existing = base.join("existing");
    std::fs::write(&existing, b"keep me").unwrap();
    let missing = text(&base.join("missing"));

    let error = error_of(files.read(&missing, 0, 10).await, &missing);
    assert_eq!(error.code, ErrorCode::FileNotFound, "{error}");
    for (result, code) in [
        (
            files.read_link(&missing).await.map(|_| ()),
            ErrorCode::FileNotFound,
        ),
        (
            files.read_dir(&missing).await.map(|_| ()),
            ErrorCode::FileNotFound,
        ),
        (files.remove_file(&missing).await, ErrorCode::FileNotFound),
        (files.remove_dir(&missing).await, ErrorCode::FileNotFound),
        (
            files.set_mode(&missing, 0o644).await,
            ErrorCode::FileNotFound,
        ),
    ] {
        assert_eq!(error_of(result, &missing).code, code);
    }
    let nested = text(&base.join("no-dir/file"));
    assert_eq!(
        error_of(files.create_new(&nested, b"x", 0o644).await, &nested).code,
        ErrorCode::FileNotFound
    );

    // An existing path: Conflict, and the file is untouched.
    let existing_text = text(&existing);
    let error = error_of(
        files
            .create_new(&existing_text, b"overwritten?", 0o644)
            .await,
        &existing_text,
    );
    assert_eq!(error.code, ErrorCode::Conflict, "{error}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert_eq!(
        error_of(files.mkdir(&existing_text, 0o755).await, &existing_text).code,
        ErrorCode::Conflict
    );
    assert_eq!(
        error_of(
            files.symlink("elsewhere", &existing_text).await,
            &existing_text
        )
        .code,
        ErrorCode::Conflict
    );
    // Even a dangling symlink is "something there" for an exclusive create.
    let dangling = base.join("dangling");
    std::os::unix::fs::symlink("/nonexistent/target", &dangling).unwrap();
    assert_eq!(
        error_of(
            files.create_new(&text(&dangling), b"x", 0o644).await,
            &text(&dangling)
        )
        .code,
        ErrorCode::Conflict
    );
    assert!(!Path::new("/nonexistent/target").exists());

    // Not a regular file: refused before any byte is read.
    let base_text = text(&base);
    assert_eq!(
        error_of(files.read(&base_text, 0, 10).await, &base_text).code,
        ErrorCode::InvalidInput
    );
    // Other failures are SFTP_FAILED: a non-empty directory.
    assert_eq!(
        error_of(files.remove_dir(&base_text).await, &base_text).code,
        ErrorCode::SftpFailed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_denied_as_ordinary_user() {
    require_sshd();
    // Never a skip: as root the testkit creates the user.
    let user = non_root_user().expect(
        "no user wardentest: run the tests as root once (they create it), or `useradd -m wardentest`",
    );
    let sshd = Sshd::start(SshdOptions::default().user(user.clone())).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    let files = files(&transport, &host).await;
    // Owned by root (the test), readable by all, writable by nobody else.
    let base = fixture_dir(&sshd, "locked", 0o755);
    let secret = base.join("secret");
    std::fs::write(&secret, b"root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    let secret_text = text(&secret);
    assert_eq!(
        error_of(files.read(&secret_text, 0, 10).await, &secret_text).code,
        ErrorCode::PermissionDenied
    );
    let new = text(&base.join("new"));
    assert_eq!(
        error_of(files.create_new(&new, b"x", 0o644).await, &new).code,
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        error_of(files.remove_file(&secret_text).await, &secret_text).code,
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        error_of(files.set_mode(&secret_text, 0o644).await, &secret_text).code,
        ErrorCode::PermissionDenied
    );
    // lstat needs only search permission on the directory.
    assert_eq!(
        files.lstat(&secret_text).await.unwrap().unwrap().mode,
        0o600
    );

    // Where the user may write, files are theirs.
    let open = fixture_dir(&sshd, "open", 0o777);
    let mine = open.join("mine");
    files.create_new(&text(&mine), b"ok", 0o640).await.unwrap();
    let uid = std::fs::metadata(&mine).unwrap().uid();
    assert_ne!(uid, 0);
    assert_eq!(files.lstat(&text(&mine)).await.unwrap().unwrap().uid, uid);
    assert_eq!(mode_of(&mine), 0o640);
}

/// The pid of the session process serving `sshd`'s SFTP channel (`internal-sftp`).
fn sftp_process(sshd: &Sshd) -> u32 {
    let pid_file = std::fs::read_to_string(sshd.dir().join("sshd.pid")).unwrap();
    let daemon: u32 = pid_file.trim().parse().unwrap();
    let mut parents = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        parents.insert(pid, ppid);
    }
    let descends = |mut pid: u32| {
        while let Some(&parent) = parents.get(&pid) {
            if parent == daemon {
                return true;
            }
            if parent <= 1 {
                return false;
            }
            pid = parent;
        }
        false
    };
    let found: Vec<u32> = parents
        .keys()
        .copied()
        .filter(|&pid| descends(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("internal-sftp"))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "sftp processes under sshd {daemon}: {found:?}"
    );
    found[0]
}

fn kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_is_reused_and_replaced_when_it_dies() {
    require_sshd();
    let mut sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    let base = fixture_dir(&sshd, "reuse", 0o755);
    let path = text(&base.join("file"));

    // Many calls, two handles, and an exec: one connection, one SFTP session.
    let files = files(&transport, &host).await;
    files.create_new(&path, b"one", 0o644).await.unwrap();
    for _ in 0..5 {
        assert_eq!(files.read(&path, 0, 100).await.unwrap(), b"one");
        assert!(files.lstat(&path).await.unwrap().is_some());
    }
    let again = self::files(&transport, &host).await;
    assert_eq!(again.read(&path, 0, 100).await.unwrap(), b"one");
    let output = transport
        .exec(
            &Permit::for_tests(&host),
            &host,
            &ExecRequest {
                command: Command::Shell(format!("cat {path}")),
                env: BTreeMap::new(),
                stdin: None,
                working_directory: None,
                timeout: Duration::from_secs(30),
                max_output_bytes: 1000,
                hide_command: false,
                spool: None,
                spill: None,
                secret_stdin: None,
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(output.status, ExitStatus::Code(0));
    assert_eq!(output.stdout.text(), "one");
    assert_eq!(transport.sftp_sessions_opened(), 1);
    assert_eq!(transport.stats().connects, 1);

    // The SFTP channel dies, the connection lives: a new session on the same one.
    kill(sftp_process(&sshd));
    assert_eq!(files.read(&path, 0, 100).await.unwrap(), b"one");
    assert_eq!(transport.sftp_sessions_opened(), 2);
    assert_eq!(transport.stats().connects, 1);

    // Concurrent calls share the session.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let files = Arc::clone(&files);
        let path = path.clone();
        tasks.spawn(async move { files.read(&path, 0, 100).await.unwrap() });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap(), b"one");
    }
    assert_eq!(transport.sftp_sessions_opened(), 2);

    // The connection dies (sshd restarted): the same handle reconnects transparently,
    // for reads and for writes.
    sshd.restart().unwrap();
    assert_eq!(files.read(&path, 0, 100).await.unwrap(), b"one");
    let second = text(&base.join("second"));
    files.create_new(&second, b"two", 0o644).await.unwrap();
    assert_eq!(std::fs::read(base.join("second")).unwrap(), b"two");
    assert_eq!(transport.stats().connects, 2);
    assert_eq!(transport.sftp_sessions_opened(), 3);

    // Shutdown closes the connection; the handle reconnects once more if used.
    transport.shutdown().await;
    assert_eq!(transport.stats().open_connections, 0);
    assert!(files.lstat(&second).await.unwrap().is_some());
    assert_eq!(transport.sftp_sessions_opened(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_host_is_conn_failed() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let transport = SshTransport::new(settings(
        &std::env::temp_dir().join("warden-none-known"),
        HostKeyChecking::Strict,
    ));
    let host = Host {
        id: HostId::new("gone"),
        kind: HostKind::Ssh,
        address: String::from("127.0.0.1"),
        port: Some(port),
        user: Some(String::from("root")),
        identity_file: None,
        groups: Vec::new(),
        tags: BTreeMap::new(),
        role: None,
        proxy_jump: None,
    };
    let error = transport
        .files(&Permit::for_tests(&host), &host)
        .await
        .err()
        .expect("files() on a closed port succeeded");
    assert_eq!(error.code, ErrorCode::SshConnFailed);
    assert_eq!(error.host_id.as_deref(), Some("gone"));
    assert_eq!(transport.sftp_sessions_opened(), 0);
}
