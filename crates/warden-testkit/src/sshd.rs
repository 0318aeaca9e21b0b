//! One OpenSSH `sshd` on 127.0.0.1: its keys and config in a temp dir, start, stop,
//! restart (optionally with a new host key), freezing and thawing it, and killing it
//! with every process it forked.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's openssh-server installs the daemon; sshd refuses relative paths.
pub const SSHD_PATH: &str = "/usr/sbin/sshd";

const LOOPBACK: &str = "127.0.0.1";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;
const NON_ROOT_USER: &str = "wardentest";

/// Key algorithms for generated client and host keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyType {
    #[default]
    Ed25519,
    Ecdsa,
    Rsa,
}

impl KeyType {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Ed25519 => &["-t", "ed25519"],
            KeyType::Ecdsa => &["-t", "ecdsa", "-b", "256"],
            KeyType::Rsa => &["-t", "rsa", "-b", "2048"],
        }
    }
}

/// How to start an [`Sshd`]. `Default` logs in as the current user with a fresh
/// ed25519 client key.
#[derive(Debug, Clone, Default)]
pub struct SshdOptions {
    /// The login user tests should use (the daemon accepts the client key for any user).
    pub user: Option<String>,
    pub client_key_type: KeyType,
    /// Reuse this private key (with `<path>.pub` beside it) instead of generating one;
    /// [`crate::Fleet`] shares one key across its hosts this way.
    pub client_key: Option<PathBuf>,
    /// The daemon's only host key.
    pub host_key_type: KeyType,
    /// sshd_config lines appended to the generated ones (`HostKeyAlgorithms ssh-rsa`).
    pub extra_config: String,
}

impl SshdOptions {
    pub fn user(mut self, user: impl Into<String>) -> SshdOptions {
        self.user = Some(user.into());
        self
    }

    pub fn client_key_type(mut self, key_type: KeyType) -> SshdOptions {
        self.client_key_type = key_type;
        self
    }

    pub fn client_key(mut self, path: impl Into<PathBuf>) -> SshdOptions {
        self.client_key = Some(path.into());
        self
    }

    pub fn host_key_type(mut self, key_type: KeyType) -> SshdOptions {
        self.host_key_type = key_type;
        self
    }

    /// Appends `lines` to the daemon's sshd_config.
    pub fn extra_config(mut self, lines: impl Into<String>) -> SshdOptions {
        self.extra_config = lines.into();
        self
    }
}

/// A running sshd. Dropping it kills the daemon and its sessions and removes its dir.
#[derive(Debug)]
pub struct Sshd {
    dir: PathBuf,
    port: u16,
    user: String,
    client_key: PathBuf,
    host_key_type: KeyType,
    extra_config: String,
    child: Option<Child>,
}

impl Sshd {
    /// Generates keys, writes the config and starts sshd on a free loopback port, then
    /// waits until it sends its SSH banner.
    pub fn start(options: SshdOptions) -> io::Result<Sshd> {
        require_sshd();
        ensure_privsep_dir()?;
        let dir = unique_dir("sshd")?;
        let user = match options.user {
            Some(user) => user,
            None => current_user()?,
        };
        // Built before anything can fail so that `Drop` cleans the dir on every error.
        let mut sshd = Sshd {
            client_key: dir.join("client_key"),
            dir,
            port: 0,
            user,
            host_key_type: options.host_key_type,
            extra_config: options.extra_config,
            child: None,
        };
        generate_key(&sshd.host_key_path(), sshd.host_key_type)?;
        match options.client_key {
            Some(path) => sshd.client_key = path,
            None => generate_key(&sshd.client_key, options.client_key_type)?,
        }
        let authorized = fs::read_to_string(public_path(&sshd.client_key))?;
        let authorized_path = sshd.dir.join("authorized_keys");
        fs::write(&authorized_path, authorized)?;
        // sshd reads this file as the login user, who may not be root.
        fs::set_permissions(&authorized_path, fs::Permissions::from_mode(0o644))?;
        fs::set_permissions(&sshd.dir, fs::Permissions::from_mode(0o755))?;

        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match sshd.spawn(port) {
                Ok(()) => return Ok(sshd),
                // Another process may have taken the port between probe and bind.
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("sshd did not start")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `127.0.0.1`.
    pub fn address(&self) -> &'static str {
        LOOPBACK
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The private key that `authorized_keys` accepts.
    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }

    /// `ssh-ed25519 AAAA…` (no comment; `ssh-rsa AAAA…` for an RSA host key).
    pub fn host_public_key(&self) -> String {
        let text = fs::read_to_string(public_path(&self.host_key_path())).unwrap_or_default();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A known_hosts line: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`.
    pub fn host_key_line(&self) -> String {
        format!("[{LOOPBACK}]:{} {}", self.port, self.host_public_key())
    }

    /// Writes a known_hosts file that trusts exactly this host.
    pub fn write_known_hosts(&self, path: &Path) -> io::Result<()> {
        fs::write(path, format!("{}\n", self.host_key_line()))
    }

    /// What sshd wrote to stderr (errors only, `LogLevel ERROR`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGTERM to the daemon and everything it forked (connections and sessions).
    pub fn stop(&mut self) {
        self.kill_tree("TERM");
    }

    /// SIGKILL to the daemon and everything it forked: the host "dies" and its open
    /// connections drop without a goodbye.
    pub fn kill(&mut self) {
        self.kill_tree("KILL");
    }

    /// SIGSTOP to the daemon and everything it forked: the host "freezes" (a hung
    /// machine, a paused VM). The kernel still completes TCP handshakes on the port and
    /// acknowledges what clients send, so connections stay up and hear nothing.
    pub fn freeze(&self) {
        let targets = self.tree();
        signal(&targets, "STOP");
    }

    /// SIGCONT to what [`Sshd::freeze`] stopped (a frozen tree forks nothing new).
    pub fn thaw(&self) {
        let targets = self.tree();
        signal(&targets, "CONT");
    }

    /// Kills the daemon and starts it again on the same port with the same host key.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.respawn()
    }

    /// Kills the daemon, generates a new host key and starts again on the same port,
    /// as a reinstalled (or impersonated) host would look.
    pub fn restart_with_new_host_key(&mut self) -> io::Result<()> {
        self.kill();
        generate_key(&self.host_key_path(), self.host_key_type)?;
        self.respawn()
    }

    fn respawn(&mut self) -> io::Result<()> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match self.spawn(self.port) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    last_error = Some(error);
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("sshd did not restart")))
    }

    /// `WARDEN_TESTKIT_SSHD=<dir name>`: set in every session this sshd starts.
    fn env_tag(&self) -> String {
        let name = self
            .dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("WARDEN_TESTKIT_SSHD={name}")
    }

    fn host_key_path(&self) -> PathBuf {
        self.dir.join("host_key")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    fn write_config(&self) -> io::Result<()> {
        let config = format!(
            "Port {port}\n\
             ListenAddress {LOOPBACK}\n\
             HostKey {host_key}\n\
             PidFile {pid_file}\n\
             AuthorizedKeysFile {authorized}\n\
             StrictModes no\n\
             UsePAM no\n\
             UseDNS no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin yes\n\
             Subsystem sftp internal-sftp\n\
             MaxStartups 200:30:400\n\
             MaxSessions 256\n\
             SetEnv SHLVL=1 {env_tag}\n\
             LogLevel ERROR\n\
             AcceptEnv LANG\n\
             {extra}\n",
            extra = self.extra_config,
            port = self.port,
            env_tag = self.env_tag(),
            host_key = self.host_key_path().display(),
            pid_file = self.dir.join("sshd.pid").display(),
            authorized = self.dir.join("authorized_keys").display(),
        );
        fs::write(self.config_path(), config)
    }

    fn spawn(&mut self, port: u16) -> io::Result<()> {
        self.port = port;
        self.write_config()?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(SSHD_PATH)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own group, so one `kill -- -PGID` reaches the listener's helpers.
            .process_group(0)
            .spawn()?;
        self.child = Some(child);
        let ready = self.wait_ready();
        if ready.is_err() {
            self.kill();
        }
        ready
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(io::Error::other("sshd is not running"));
            };
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "sshd exited ({status}) before listening on port {}: {}",
                    self.port,
                    self.log()
                )));
            }
            // The banner proves someone listens; the child still running proves it is ours.
            if sends_banner(self.port) && matches!(child.try_wait(), Ok(None)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "sshd did not send a banner on port {} within {READY_TIMEOUT:?}: {}",
                        self.port,
                        self.log()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's group and every process it forked, as `kill` arguments.
    fn tree(&self) -> Vec<String> {
        let mut targets: Vec<String> = Vec::new();
        let mut pids: Vec<u32> = Vec::new();
        if let Some(child) = &self.child {
            let pid = child.id();
            // sshd puts each connection in a new session (setsid), so the process group
            // alone misses them: collect the tree before anything dies and is reparented.
            targets.push(format!("-{pid}"));
            pids.push(pid);
            pids.extend(descendants(pid));
        }
        // Sessions whose connection already closed were orphaned out of the tree; the
        // environment sshd gave them (SetEnv) still names this fixture.
        pids.extend(processes_with_env(&self.env_tag()));
        pids.sort_unstable();
        pids.dedup();
        targets.extend(pids.iter().map(u32::to_string));
        targets
    }

    fn kill_tree(&mut self, signal_name: &str) {
        let targets = self.tree();
        let mut child = self.child.take();
        signal(&targets, signal_name);
        if signal_name != "KILL" {
            // A frozen tree holds a TERM pending until it runs again.
            signal(&targets, "CONT");
        }
        if let Some(child) = child.as_mut() {
            let _ = child.wait();
        }
        if signal_name != "KILL" {
            // Sessions that ignore TERM still must not outlive the fixture.
            let leftovers: Vec<String> = targets
                .into_iter()
                .filter(|target| !target.starts_with('-'))
                .filter(|pid| Path::new("/proc").join(pid).exists())
                .collect();
            signal(&leftovers, "KILL");
        }
    }
}

/// `kill -s SIGNAL -- TARGETS…`; nothing to do for no targets.
fn signal(targets: &[String], signal: &str) {
    if targets.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-s")
        .arg(signal)
        .arg("--")
        .args(targets)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs `ssh-keygen -q -N ''` for `path` (and `path.pub`), replacing existing files.
pub fn generate_key(path: &Path, key_type: KeyType) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(public_path(path));
    let output = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-N")
        .arg("")
        .arg("-C")
        .arg("warden-testkit")
        .args(key_type.keygen_args())
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "ssh-keygen failed for {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// The ordinary (non-root) login user for tests: `wardentest`, created with
/// `useradd` when missing and we are root. `None` when it cannot exist here.
///
/// Root sessions hide bugs (OpenSSH ignores channel signals for root), so tests run
/// as this user too.
pub fn non_root_user() -> Option<String> {
    static USER: OnceLock<Option<String>> = OnceLock::new();
    USER.get_or_init(|| {
        let root = current_uid() == Some(0);
        if !user_exists(NON_ROOT_USER) {
            if !root {
                return None;
            }
            // Several test binaries may race here; useradd then fails on its lock or on
            // "already exists", and the next check sees the user.
            for _ in 0..10 {
                let _ = Command::new("useradd")
                    .args(["-m", "-s", "/bin/bash", "-p", "*", NON_ROOT_USER])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if user_exists(NON_ROOT_USER) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if !user_exists(NON_ROOT_USER) {
            return None;
        }
        if root {
            unlock_account(NON_ROOT_USER);
        }
        Some(String::from(NON_ROOT_USER))
    })
    .clone()
}

/// Makes sure `/usr/sbin/sshd` exists: as root it is installed through apt (once, under
/// a lock shared by the test binaries), so the README's test command works on a fresh
/// machine; without root the tests stop here with the one line to run. Never a skip:
/// a test that needs sshd and does not get it fails.
pub fn require_sshd() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    require(&INSTALLED, SSHD_PATH, "openssh-server");
}

/// tmux drives `warden approvals watch` in a real terminal; installed like sshd.
pub fn require_tmux() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    require(&INSTALLED, "/usr/bin/tmux", "tmux");
}

/// `exec_sudo` runs sudo on the test hosts (this machine); installed like sshd.
pub fn require_sudo() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    require(&INSTALLED, "/usr/bin/sudo", "sudo");
}

/// Installs `package` through apt (as root) unless `program` exists; panics with the
/// one line to run otherwise.
fn require(installed: &OnceLock<Result<(), String>>, program: &str, package: &str) {
    let outcome = installed.get_or_init(|| {
        if Path::new(program).exists() {
            return Ok(());
        }
        if current_uid() != Some(0) {
            return Err(format!(
                "{program} is missing; run: sudo apt-get install -y {package}"
            ));
        }
        // `flock` (util-linux) serializes test binaries that start at the same time.
        let script = format!(
            "test -x {program} || {{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package}; }}"
        );
        let output = Command::new("flock")
            .args(["/tmp/warden-testkit-apt.lock", "sh", "-c", &script])
            .output()
            .map_err(|error| format!("cannot run apt-get to install {package}: {error}"))?;
        if !output.status.success() || !Path::new(program).exists() {
            return Err(format!(
                "installing {package} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    });
    if let Err(message) = outcome {
        panic!("{message}");
    }
}

/// `useradd` without a password leaves `!` in /etc/shadow, and sshd without PAM refuses
/// locked accounts even for key logins; `*` means "no password" but not locked.
fn unlock_account(name: &str) {
    let shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
    let locked = shadow
        .lines()
        .any(|line| line.starts_with(&format!("{name}:!")));
    if locked {
        let _ = Command::new("usermod")
            .args(["-p", "*", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn current_uid() -> Option<u32> {
    let output = Command::new("id").arg("-u").output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn current_user() -> io::Result<String> {
    let output = Command::new("id").arg("-un").output()?;
    let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if name.is_empty() {
        return Err(io::Error::other("cannot tell the current user (id -un)"));
    }
    Ok(name)
}

/// `/run/sshd` is sshd's privilege-separation chroot; it refuses to start without it.
fn ensure_privsep_dir() -> io::Result<()> {
    let dir = Path::new("/run/sshd");
    if !dir.is_dir() {
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

pub(crate) fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// A fresh dir under the system temp dir, unique across threads and processes.
pub(crate) fn unique_dir(kind: &str) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "warden-testkit-{kind}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn sends_banner(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buffer = [0u8; 64];
    let mut read = 0;
    while read < 4 {
        match stream.read(&mut buffer[read..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    buffer.starts_with(b"SSH-")
}

/// Processes whose environment holds `entry` (`NAME=value`) exactly.
fn processes_with_env(entry: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for process in entries.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = fs::read(process.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|&byte| byte == 0)
            .any(|item| item == entry.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

/// Every process below `root`, from /proc (no libc: `unsafe` is forbidden here).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(mut file) = File::open(entry.path().join("stat")) else {
                continue;
            };
            let mut stat = String::new();
            if file.read_to_string(&mut stat).is_err() {
                continue;
            }
            // `pid (comm) state ppid …`; comm may contain spaces and parens.
            let Some(after) = stat.rfind(')').map(|index| &stat[index + 1..]) else {
                continue;
            };
            if let Some(ppid) = after
                .split_whitespace()
                .nth(1)
                .and_then(|field| field.parse::<u32>().ok())
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if let Some(kids) = children.get(&pid) {
            for &kid in kids {
                found.push(kid);
                queue.push(kid);
            }
        }
    }
    found
}
