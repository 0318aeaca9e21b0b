//! Reaching one host: where it is (host config over `~/.ssh/config`), the stream to it
//! (TCP, or `direct-tcpip` through a jump host), the handshake with host key
//! verification, and public key authentication.
//!
//! Errors are classified here, where the cause is known: unreachable or broken
//! handshakes are `SSH_CONN_FAILED`, a refused login `SSH_AUTH_FAILED`, and a key
//! known_hosts does not vouch for `HOST_KEY_UNKNOWN` / `HOST_KEY_MISMATCH`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Preferred, kex};
use ssh2_config::SshConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use warden_core::config::{HostKeyChecking, SshSettings, home_dir};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::inventory::Host;

use crate::known_hosts::{self, Verdict};
use crate::pool::Connection;

/// The SHA-1 RSA signature algorithm (`ssh-rsa`), refused unless `ssh.allow_sha1_rsa`.
const SHA1_RSA: Algorithm = Algorithm::Rsa { hash: None };

/// Everything needed to open one SSH connection, after resolution.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The inventory host this connection serves (named in every error).
    pub host_id: String,
    /// `host web-1` or `jump host bastion for host web-1`.
    pub role: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Explicit keys (host config or ssh_config); empty means agent, then default keys.
    pub identity_files: Vec<PathBuf>,
    /// Jump hosts, outermost first, as `[user@]host[:port]` specs.
    pub jumps: Vec<String>,
}

impl Endpoint {
    /// `host web-1 (root@10.0.0.5:22)`: who and where, never a secret.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}@{}:{})",
            self.role, self.user, self.address, self.port
        )
    }

    pub fn conn_failed(&self, what: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorCode::SshConnFailed,
            format!("{}: {what}", self.describe()),
        )
        .with_host(&self.host_id)
    }

    /// `SSH_CONN_FAILED` for a host that went quiet past a deadline (docs/ssh.md):
    /// transient, and the hint says what waiting cannot fix.
    pub fn unresponsive(&self, what: impl std::fmt::Display) -> Error {
        self.conn_failed(what).with_hint(
            "The host (or a jump host) accepted the connection but stopped answering: it may be frozen, overloaded or behind a stalled link. Retry after a moment; warden dials again. If it persists, check the host's console and load, or ask the operator to raise ssh.connect_timeout_ms for a slow link.",
        )
    }
}

/// Resolves an inventory host. Explicit host fields win over `~/.ssh/config`, which
/// is queried with the host's `address` as the alias (as `ssh ADDRESS` would).
pub(crate) fn resolve_host(host: &Host, ssh_config: Option<&SshConfig>) -> Endpoint {
    let params = ssh_config.map(|config| config.query(&host.address));
    let params = params.as_ref();
    let address = params
        .and_then(|params| params.host_name.as_deref())
        .map(|name| name.replace("%h", &host.address))
        .unwrap_or_else(|| host.address.clone());
    let identity_files = match &host.identity_file {
        Some(path) => vec![path.clone()],
        None => params
            .and_then(|params| params.identity_file.clone())
            .unwrap_or_default(),
    };
    let jumps = match &host.proxy_jump {
        Some(spec) => split_jumps(spec),
        None => params
            .and_then(|params| params.proxy_jump.clone())
            .map(|list| list.iter().flat_map(|spec| split_jumps(spec)).collect())
            .unwrap_or_default(),
    };
    Endpoint {
        host_id: host.id.to_string(),
        role: format!("host {}", host.id),
        address,
        port: host
            .port
            .or_else(|| params.and_then(|params| params.port))
            .unwrap_or(22),
        user: host
            .user
            .clone()
            .or_else(|| params.and_then(|params| params.user.clone()))
            .unwrap_or_else(default_user),
        identity_files,
        jumps,
    }
}

/// Resolves one jump spec `[ssh://][user@]host[:port]`; `host` is looked up in
/// `~/.ssh/config` too (HostName, User, Port, IdentityFile). The jump host's own
/// ProxyJump is not followed: list every hop in the target's ProxyJump instead.
pub(crate) fn resolve_jump(
    spec: &str,
    target: &Endpoint,
    ssh_config: Option<&SshConfig>,
) -> Result<Endpoint> {
    let invalid = || {
        Error::invalid_input(format!(
            "proxy_jump {spec:?} of host {} is not [user@]host[:port]",
            target.host_id
        ))
        .with_host(&target.host_id)
    };
    let rest = spec.strip_prefix("ssh://").unwrap_or(spec);
    let (user, rest) = match rest.rsplit_once('@') {
        Some((user, rest)) => (Some(user.to_owned()), rest),
        None => (None, rest),
    };
    let (alias, port) = split_host_port(rest).ok_or_else(invalid)?;
    if alias.is_empty() || user.as_deref() == Some("") {
        return Err(invalid());
    }
    let params = ssh_config.map(|config| config.query(alias));
    let params = params.as_ref();
    Ok(Endpoint {
        host_id: target.host_id.clone(),
        role: format!("jump host {alias} for host {}", target.host_id),
        address: params
            .and_then(|params| params.host_name.as_deref())
            .map(|name| name.replace("%h", alias))
            .unwrap_or_else(|| alias.to_owned()),
        port: port
            .or_else(|| params.and_then(|params| params.port))
            .unwrap_or(22),
        user: user
            .or_else(|| params.and_then(|params| params.user.clone()))
            .unwrap_or_else(default_user),
        identity_files: params
            .and_then(|params| params.identity_file.clone())
            .unwrap_or_default(),
        jumps: Vec::new(),
    })
}

fn split_jumps(spec: &str) -> Vec<String> {
    spec.split(',')
        .map(str::trim)
        .filter(|hop| !hop.is_empty() && !hop.eq_ignore_ascii_case("none"))
        .map(str::to_owned)
        .collect()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        // A bare IPv6 address without brackets has no port.
        Some(_) => Some((text, None)),
        None => Some((text, None)),
    }
}

/// `$USER`, `$LOGNAME`, then the passwd entry of our uid, as ssh does.
pub(crate) fn default_user() -> String {
    for name in ["USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(name)
            && !user.is_empty()
        {
            return user;
        }
    }
    user_from_passwd().unwrap_or_else(|| String::from("root"))
}

/// Our uid from /proc (no libc: `unsafe` is forbidden) looked up in /etc/passwd.
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// What `check_server_key` decided, kept so a refused handshake can be reported
/// precisely (russh itself only says the key was rejected).
#[derive(Debug, Clone)]
enum KeyOutcome {
    Trusted,
    /// Unknown and trusted on first use (`accept-new`), now in known_hosts.
    Learned {
        fingerprint: String,
    },
    /// `host_key_checking: off`.
    Unchecked,
    Unknown {
        fingerprint: String,
    },
    Changed {
        fingerprint: String,
        line: usize,
    },
    Revoked {
        fingerprint: String,
        line: usize,
    },
    Certificate,
    Unreadable {
        reason: String,
    },
}

impl KeyOutcome {
    fn accepts(&self) -> bool {
        matches!(
            self,
            KeyOutcome::Trusted | KeyOutcome::Learned { .. } | KeyOutcome::Unchecked
        )
    }
}

pub(crate) struct ClientHandler {
    mode: HostKeyChecking,
    known_hosts: PathBuf,
    address: String,
    port: u16,
    describe: String,
    outcome: Arc<Mutex<Option<KeyOutcome>>>,
}

impl ClientHandler {
    fn verify(&self, key: &PublicKeyOrCertificate) -> KeyOutcome {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) if self.mode == HostKeyChecking::Off => {
                return KeyOutcome::Unchecked;
            }
            // Invariant: we never advertise certificate host key algorithms, so a
            // certificate here is unexpected; without a CA policy it is not trusted.
            PublicKeyOrCertificate::Certificate(_) => return KeyOutcome::Certificate,
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if self.mode == HostKeyChecking::Off {
            tracing::warn!(target = %self.describe, %fingerprint, "host_key_checking is off: accepting the host key unverified");
            return KeyOutcome::Unchecked;
        }
        let text = match std::fs::read_to_string(&self.known_hosts) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return KeyOutcome::Unreadable {
                    reason: error.to_string(),
                };
            }
        };
        match known_hosts::check(&text, &self.address, self.port, key) {
            Verdict::Trusted => KeyOutcome::Trusted,
            Verdict::Unknown if self.mode == HostKeyChecking::AcceptNew => {
                match known_hosts::append(&self.known_hosts, &self.address, self.port, key) {
                    Ok(()) => {
                        tracing::info!(target = %self.describe, %fingerprint, known_hosts = %self.known_hosts.display(), "learned new host key")
                    }
                    // Like ssh: the key was acceptable; failing to remember it only means
                    // the question comes again next time.
                    Err(error) => {
                        tracing::warn!(target = %self.describe, %fingerprint, %error, "accepted a new host key but could not record it")
                    }
                }
                KeyOutcome::Learned { fingerprint }
            }
            Verdict::Unknown => KeyOutcome::Unknown { fingerprint },
            Verdict::Changed { line } => KeyOutcome::Changed { fingerprint, line },
            Verdict::Revoked { line } => KeyOutcome::Revoked { fingerprint, line },
        }
    }
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let outcome = self.verify(server_public_key);
        let accepts = outcome.accepts();
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
        Ok(accepts)
    }
}

/// The russh client handle type of every pooled connection.
pub(crate) type SshHandle = Handle<ClientHandler>;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// Opens and authenticates a connection to `endpoint`, directly or through `via`.
/// The whole of it (TCP, handshake, auth) is bounded by `connect_timeout_ms`.
pub(crate) async fn connect(
    settings: &SshSettings,
    known_hosts_path: &Path,
    endpoint: &Endpoint,
    via: Option<Arc<Connection>>,
) -> Result<Connection> {
    let limit = Duration::from_millis(settings.connect_timeout_ms);
    match tokio::time::timeout(
        limit,
        connect_within(settings, known_hosts_path, endpoint, via),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(endpoint.unresponsive(format!(
            "no authenticated SSH session within {} ms (ssh.connect_timeout_ms: TCP connect, handshake and login)",
            settings.connect_timeout_ms
        ))),
    }
}

async fn connect_within(
    settings: &SshSettings,
    known_hosts_path: &Path,
    endpoint: &Endpoint,
    via: Option<Arc<Connection>>,
) -> Result<Connection> {
    let known_text = std::fs::read_to_string(known_hosts_path).unwrap_or_default();
    let known = known_hosts::known_algorithms(&known_text, &endpoint.address, endpoint.port);
    let config = client_config(settings, &known);
    let outcome = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        mode: settings.host_key_checking,
        known_hosts: known_hosts_path.to_path_buf(),
        address: endpoint.address.clone(),
        port: endpoint.port,
        describe: endpoint.describe(),
        outcome: Arc::clone(&outcome),
    };
    let stream: Box<dyn Stream> = match &via {
        None => {
            let stream = tokio::net::TcpStream::connect((endpoint.address.as_str(), endpoint.port))
                .await
                .map_err(|error| endpoint.conn_failed(format!("cannot connect: {error}")))?;
            // Nagle costs ~45 ms per round trip here (DEPENDENCIES.md gotcha 3).
            let _ = stream.set_nodelay(true);
            Box::new(stream)
        }
        Some(jump) => {
            let channel = jump
                .handle
                .channel_open_direct_tcpip(
                    endpoint.address.as_str(),
                    u32::from(endpoint.port),
                    "127.0.0.1",
                    0,
                )
                .await
                .map_err(|error| {
                    endpoint.conn_failed(format!(
                        "{} could not open a tunnel to {}:{}: {error}",
                        jump.describe, endpoint.address, endpoint.port
                    ))
                })?;
            Box::new(channel.into_stream())
        }
    };
    let mut handle = client::connect_stream(config, stream, handler)
        .await
        .map_err(|error| handshake_error(settings, endpoint, known_hosts_path, &outcome, error))?;
    authenticate(&mut handle, endpoint, settings.allow_sha1_rsa).await?;
    let learned = match outcome.lock().ok().and_then(|slot| slot.clone()) {
        Some(KeyOutcome::Learned { fingerprint }) => Some(fingerprint),
        _ => None,
    };
    Ok(Connection::new(
        handle,
        endpoint.describe(),
        via,
        learned,
        Duration::from_millis(settings.connect_timeout_ms),
    ))
}

fn client_config(settings: &SshSettings, known: &[Algorithm]) -> Arc<client::Config> {
    let defaults = Preferred::default();
    // curve25519 first: the hybrid post-quantum kex costs noticeably more CPU per
    // connect on small machines, and warden opens many connections.
    let first = [kex::CURVE25519, kex::CURVE25519_PRE_RFC_8731];
    let mut kex_order: Vec<kex::Name> = first.to_vec();
    kex_order.extend(
        defaults
            .kex
            .iter()
            .filter(|name| !first.contains(name))
            .copied(),
    );
    // Ask first for the key types known_hosts records for this host, as ssh does, so
    // a host with several keys presents one we can verify.
    let mut keys: Vec<Algorithm> = Vec::new();
    for algorithm in known {
        let family: Vec<Algorithm> = if matches!(algorithm, Algorithm::Rsa { .. }) {
            vec![
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
                Algorithm::Rsa { hash: None },
            ]
        } else {
            vec![algorithm.clone()]
        };
        for candidate in family {
            if defaults.key.contains(&candidate) && !keys.contains(&candidate) {
                keys.push(candidate);
            }
        }
    }
    for algorithm in defaults.key.iter() {
        if !keys.contains(algorithm) {
            keys.push(algorithm.clone());
        }
    }
    // `ssh-rsa` is an RSA host key signing with SHA-1; RSA keys still work through
    // rsa-sha2-512/256, which every OpenSSH since 7.2 offers.
    if !settings.allow_sha1_rsa {
        keys.retain(|algorithm| *algorithm != SHA1_RSA);
    }
    Arc::new(client::Config {
        nodelay: true,
        keepalive_interval: (settings.keepalive_interval_s > 0)
            .then(|| Duration::from_secs(settings.keepalive_interval_s)),
        keepalive_max: 3,
        // Idle pooled connections are closed by the pool, not by russh.
        inactivity_timeout: None,
        preferred: Preferred {
            kex: Cow::Owned(kex_order),
            key: Cow::Owned(keys),
            cipher: Cow::Owned(cipher_order(&defaults)),
            ..defaults
        },
        ..client::Config::default()
    })
}

/// AES-256-GCM first where the CPU has AES instructions: ring runs it several times
/// faster than russh's ChaCha20-Poly1305, and file transfers are bound by the cipher.
/// Both are safe; without AES-NI ChaCha stays first (it is the faster one there).
fn cipher_order(defaults: &Preferred) -> Vec<russh::cipher::Name> {
    let mut order: Vec<russh::cipher::Name> = defaults.cipher.to_vec();
    if has_aes_instructions()
        && let Some(index) = order
            .iter()
            .position(|name| *name == russh::cipher::AES_256_GCM)
    {
        let aes = order.remove(index);
        order.insert(0, aes);
    }
    order
}

#[cfg(target_arch = "x86_64")]
fn has_aes_instructions() -> bool {
    std::arch::is_x86_feature_detected!("aes")
}

#[cfg(target_arch = "aarch64")]
fn has_aes_instructions() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn has_aes_instructions() -> bool {
    false
}

/// How errors name the known_hosts file: agents read them, and local paths are not
/// theirs to know (the path is logged at debug level).
const KNOWN_HOSTS: &str = "the known_hosts file (ssh.known_hosts)";

fn handshake_error(
    settings: &SshSettings,
    endpoint: &Endpoint,
    known_hosts_path: &Path,
    outcome: &Mutex<Option<KeyOutcome>>,
    error: russh::Error,
) -> Error {
    let outcome = outcome.lock().ok().and_then(|mut slot| slot.take());
    let target = endpoint.describe();
    let entry = known_hosts::host_name(&endpoint.address, endpoint.port);
    if outcome.is_some() {
        tracing::debug!(target = %target, known_hosts = %known_hosts_path.display(), "host key refused");
    }
    let error = match outcome {
        Some(KeyOutcome::Unknown { fingerprint }) => Error::new(
            ErrorCode::HostKeyUnknown,
            format!("{target}: host key {fingerprint} is not in {KNOWN_HOSTS} (host_key_checking: strict)"),
        )
        .with_hint(format!(
            "Verify the fingerprint with the host's owner, then add it (ssh-keyscan -p {} {} >> KNOWN_HOSTS, the file ssh.known_hosts names) or let the operator set ssh.host_key_checking: accept-new.",
            endpoint.port, endpoint.address
        )),
        Some(KeyOutcome::Changed { fingerprint, line }) => Error::new(
            ErrorCode::HostKeyMismatch,
            format!(
                "{target}: HOST KEY CHANGED: it presented {fingerprint}, but line {line} of {KNOWN_HOSTS} records a different key for {entry}; this may be a man-in-the-middle attack, or the host was reinstalled"
            ),
        )
        .with_hint(format!(
            "Do not retry. Confirm the new key with the host's owner, then remove the old entry (ssh-keygen -R '{entry}' -f KNOWN_HOSTS, the file ssh.known_hosts names)."
        )),
        Some(KeyOutcome::Revoked { fingerprint, line }) => Error::new(
            ErrorCode::HostKeyMismatch,
            format!("{target}: host key {fingerprint} is revoked (@revoked, line {line} of {KNOWN_HOSTS})"),
        ),
        Some(KeyOutcome::Certificate) => Error::new(
            ErrorCode::HostKeyUnknown,
            format!("{target}: the host presented a host certificate; warden verifies plain host keys from {KNOWN_HOSTS} only"),
        ),
        Some(KeyOutcome::Unreadable { reason }) => Error::new(
            ErrorCode::HostKeyUnknown,
            format!("{target}: cannot read {KNOWN_HOSTS} to verify the host key: {reason}"),
        ),
        Some(KeyOutcome::Trusted | KeyOutcome::Learned { .. } | KeyOutcome::Unchecked) | None => {
            return match error {
                russh::Error::NoCommonAlgo {
                    kind: russh::AlgorithmKind::Key,
                    theirs,
                    ..
                } if !settings.allow_sha1_rsa && theirs.iter().any(|name| name == "ssh-rsa") => {
                    sha1_host_key_refused(endpoint, &theirs)
                }
                error => endpoint.conn_failed(format!("SSH handshake failed: {error}")),
            };
        }
    };
    error.with_host(&endpoint.host_id)
}

/// The host signs its host key only with SHA-1 (`ssh-rsa`, or nothing warden takes
/// besides). `SSH_CONN_FAILED`, not `HOST_KEY_*`: no key was presented to verify, so
/// known_hosts is not the remedy; the handshake cannot agree on a safe signature, and
/// the fix is on the host (a modern host key) or an explicit opt-in.
fn sha1_host_key_refused(endpoint: &Endpoint, theirs: &[String]) -> Error {
    endpoint
        .conn_failed(format!(
            "the host offers only host key signatures warden refuses ({}): ssh-rsa signs with SHA-1, which is broken",
            theirs.join(", ")
        ))
        .with_hint(
            "Do not retry. On the host, add an ed25519 host key or allow rsa-sha2-512/rsa-sha2-256 (HostKeyAlgorithms in sshd_config); only if that is impossible, let the operator set ssh.allow_sha1_rsa: true in warden.yaml.",
        )
}

/// Explicit identity files only, when any are configured (predictable, like
/// `IdentitiesOnly`); otherwise each ssh-agent key, then ~/.ssh/id_{ed25519,ecdsa,rsa}.
async fn authenticate(
    handle: &mut SshHandle,
    endpoint: &Endpoint,
    allow_sha1_rsa: bool,
) -> Result<()> {
    let mut attempts = Attempts::default();
    if !endpoint.identity_files.is_empty() {
        let count = endpoint.identity_files.len();
        for (index, path) in endpoint.identity_files.iter().enumerate() {
            // Errors reach agents: they name the file by its place in the config, the
            // path goes to the debug log only.
            let label = if count == 1 {
                String::from("the configured identity file")
            } else {
                format!("configured identity file {} of {count}", index + 1)
            };
            let key = KeyFile { path, label };
            if try_key_file(handle, endpoint, &key, allow_sha1_rsa, &mut attempts).await? {
                return Ok(());
            }
        }
        return Err(attempts.into_error(endpoint));
    }
    if try_agent(handle, endpoint, allow_sha1_rsa, &mut attempts).await? {
        return Ok(());
    }
    let ssh_dir = home_dir().join(".ssh");
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let path = ssh_dir.join(name);
        let key = KeyFile {
            path: &path,
            label: format!("default key ~/.ssh/{name}"),
        };
        if path.exists()
            && try_key_file(handle, endpoint, &key, allow_sha1_rsa, &mut attempts).await?
        {
            return Ok(());
        }
    }
    Err(attempts.into_error(endpoint))
}

/// A private key file and how errors name it.
struct KeyFile<'a> {
    path: &'a Path,
    label: String,
}

/// What was offered, for an auth error that says what to fix.
#[derive(Default)]
struct Attempts {
    refused: Vec<String>,
    problems: Vec<String>,
    /// An RSA key was not offered: the server takes only SHA-1 signatures.
    sha1_only: bool,
}

impl Attempts {
    fn into_error(self, endpoint: &Endpoint) -> Error {
        let mut message = format!("{}: authentication failed", endpoint.describe());
        if self.refused.is_empty() && self.problems.is_empty() {
            message.push_str(
                "; no key to offer (no identity_file, no ssh-agent keys, no ~/.ssh/id_* files)",
            );
        }
        if !self.refused.is_empty() {
            message.push_str(&format!("; the server refused {}", self.refused.join(", ")));
        }
        if !self.problems.is_empty() {
            message.push_str(&format!("; {}", self.problems.join("; ")));
        }
        let hint = if self.sha1_only {
            String::from(
                "Do not retry. Use an ed25519 or ECDSA key, or let the host accept rsa-sha2-512/rsa-sha2-256 (PubkeyAcceptedAlgorithms in sshd_config); only if neither is possible, let the operator set ssh.allow_sha1_rsa: true in warden.yaml.",
            )
        } else {
            format!(
                "Check that user {:?} exists on the host and that its authorized_keys holds the public key of the identity offered.",
                endpoint.user
            )
        };
        Error::new(ErrorCode::SshAuthFailed, message)
            .with_host(&endpoint.host_id)
            .with_hint(hint)
    }

    /// Records an RSA key left unoffered because the server would take only SHA-1.
    fn refuse_sha1(&mut self, label: &str, reason: &str) {
        self.sha1_only = true;
        self.problems.push(format!(
            "{label} is an RSA key and {reason}; warden does not sign with SHA-1 ssh-rsa (ssh.allow_sha1_rsa)"
        ));
    }
}

async fn try_key_file(
    handle: &mut SshHandle,
    endpoint: &Endpoint,
    key_file: &KeyFile<'_>,
    allow_sha1_rsa: bool,
    attempts: &mut Attempts,
) -> Result<bool> {
    tracing::debug!(target = %endpoint.describe(), key = %key_file.label, path = %key_file.path.display(), "offering key file");
    let key = match russh::keys::load_secret_key(key_file.path, None) {
        Ok(key) => Arc::new(key),
        Err(error) => {
            tracing::debug!(path = %key_file.path.display(), %error, "cannot load key file");
            attempts
                .problems
                .push(format!("cannot use {}: {error}", key_file.label));
            return Ok(false);
        }
    };
    let hash = if key.algorithm().is_rsa() {
        match rsa_hash(handle, allow_sha1_rsa).await {
            Ok(hash) => hash,
            Err(reason) => {
                attempts.refuse_sha1(&key_file.label, reason);
                return Ok(false);
            }
        }
    } else {
        None
    };
    let result = handle
        .authenticate_publickey(endpoint.user.clone(), PrivateKeyWithHashAlg::new(key, hash))
        .await;
    auth_result(
        result.map_err(|error| error.to_string()),
        endpoint,
        key_file.label.clone(),
        attempts,
    )
}

async fn try_agent(
    handle: &mut SshHandle,
    endpoint: &Endpoint,
    allow_sha1_rsa: bool,
    attempts: &mut Attempts,
) -> Result<bool> {
    let Some(socket) = std::env::var_os("SSH_AUTH_SOCK").filter(|value| !value.is_empty()) else {
        return Ok(false);
    };
    let mut agent = match AgentClient::connect_uds(&socket).await {
        Ok(agent) => agent,
        Err(error) => {
            attempts
                .problems
                .push(format!("ssh-agent unreachable: {error}"));
            return Ok(false);
        }
    };
    let identities = match agent.request_identities().await {
        Ok(identities) => identities,
        Err(error) => {
            attempts
                .problems
                .push(format!("ssh-agent failed to list keys: {error}"));
            return Ok(false);
        }
    };
    for identity in identities {
        let AgentIdentity::PublicKey { key, comment } = identity else {
            continue;
        };
        let label = agent_label(&key, &comment);
        let hash = if key.algorithm().is_rsa() {
            match rsa_hash(handle, allow_sha1_rsa).await {
                Ok(hash) => hash,
                Err(reason) => {
                    attempts.refuse_sha1(&label, reason);
                    continue;
                }
            }
        } else {
            None
        };
        let result = handle
            .authenticate_publickey_with(endpoint.user.clone(), key, hash, &mut agent)
            .await;
        if auth_result(
            result.map_err(|error| error.to_string()),
            endpoint,
            label,
            attempts,
        )? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn agent_label(key: &PublicKey, comment: &str) -> String {
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    if comment.is_empty() {
        format!("agent key {fingerprint}")
    } else {
        format!("agent key {comment} ({fingerprint})")
    }
}

/// Success, refusal (try the next key), or a broken connection. A connection that
/// breaks after refusals is most likely sshd's MaxAuthTries, so it stays an auth error.
fn auth_result(
    result: std::result::Result<AuthResult, String>,
    endpoint: &Endpoint,
    label: String,
    attempts: &mut Attempts,
) -> Result<bool> {
    match result {
        Ok(AuthResult::Success) => Ok(true),
        Ok(AuthResult::Failure { .. }) => {
            attempts.refused.push(label);
            Ok(false)
        }
        Err(error) if !attempts.refused.is_empty() => {
            attempts.refused.push(label);
            attempts
                .problems
                .push(format!("the server closed the connection ({error})"));
            Err(std::mem::take(attempts).into_error(endpoint))
        }
        Err(error) => {
            Err(endpoint.conn_failed(format!("connection lost during authentication: {error}")))
        }
    }
}

/// The signature hash for an RSA user key, from what the server lists in
/// server-sig-algs.
async fn rsa_hash(
    handle: &SshHandle,
    allow_sha1_rsa: bool,
) -> std::result::Result<Option<HashAlg>, &'static str> {
    rsa_signature(
        handle.best_supported_rsa_hash().await.ok().flatten(),
        allow_sha1_rsa,
    )
}

/// rsa-sha2-512/256 when the server lists them (`Some(Some(_))`). A server that lists
/// only `ssh-rsa` (`Some(None)`), or sends no server-sig-algs at all (`None`: OpenSSH
/// before 7.2), would need SHA-1: `Ok(None)` (legacy `ssh-rsa`) only with
/// `ssh.allow_sha1_rsa`, else why the key is not offered.
fn rsa_signature(
    offered: Option<Option<HashAlg>>,
    allow_sha1_rsa: bool,
) -> std::result::Result<Option<HashAlg>, &'static str> {
    match offered {
        Some(Some(hash)) => Ok(Some(hash)),
        _ if allow_sha1_rsa => Ok(None),
        Some(None) => Err("the server accepts only SHA-1 ssh-rsa signatures"),
        None => Err("the server does not say which RSA signatures it accepts (no server-sig-algs)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_user_keys_sign_with_sha1_only_when_opted_in() {
        for allow in [false, true] {
            assert_eq!(
                rsa_signature(Some(Some(HashAlg::Sha512)), allow),
                Ok(Some(HashAlg::Sha512))
            );
            assert_eq!(
                rsa_signature(Some(Some(HashAlg::Sha256)), allow),
                Ok(Some(HashAlg::Sha256))
            );
        }
        assert_eq!(rsa_signature(Some(None), true), Ok(None), "legacy ssh-rsa");
        assert_eq!(rsa_signature(None, true), Ok(None), "no server-sig-algs");
        assert!(rsa_signature(Some(None), false).is_err_and(|why| why.contains("SHA-1")));
        assert!(rsa_signature(None, false).is_err_and(|why| why.contains("server-sig-algs")));
    }

    #[test]
    fn host_key_algorithms_leave_out_sha1_rsa_unless_opted_in() {
        let known = [SHA1_RSA];
        let mut settings = SshSettings::default();
        let refused = client_config(&settings, &known);
        assert!(!refused.preferred.key.contains(&SHA1_RSA));
        assert!(refused.preferred.key.contains(&Algorithm::Rsa {
            hash: Some(HashAlg::Sha512)
        }));
        settings.allow_sha1_rsa = true;
        assert!(
            client_config(&settings, &known)
                .preferred
                .key
                .contains(&SHA1_RSA)
        );
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("bastion"), Some(("bastion", None)));
        assert_eq!(
            split_host_port("bastion:2222"),
            Some(("bastion", Some(2222)))
        );
        assert_eq!(split_host_port("[::1]:2222"), Some(("::1", Some(2222))));
        assert_eq!(split_host_port("::1"), Some(("::1", None)));
        assert_eq!(split_host_port("bastion:x"), None);
    }

    #[test]
    fn jump_spec_resolves_user_and_port() {
        let target = Endpoint {
            host_id: String::from("web-1"),
            role: String::from("host web-1"),
            address: String::from("10.0.0.5"),
            port: 22,
            user: String::from("root"),
            identity_files: Vec::new(),
            jumps: Vec::new(),
        };
        let jump = resolve_jump("ssh://ops@bastion:2200", &target, None).unwrap();
        assert_eq!(
            (jump.user.as_str(), jump.address.as_str(), jump.port),
            ("ops", "bastion", 2200)
        );
        assert!(jump.describe().contains("for host web-1"));
        assert!(resolve_jump("@bastion", &target, None).is_err());
        assert_eq!(split_jumps("a, b,none"), vec!["a", "b"]);
    }
}
