//! warden-ssh: [`SshTransport`], warden's [`Transport`] over SSH (russh): a pool of
//! authenticated connections, commands on multiplexed channels, known_hosts checking
//! and `~/.ssh/config` resolution.
//!
//! Module map: `connect` (resolution, handshake, auth, ProxyJump), `known_hosts`
//! (the matcher), `pool` (one connection per host), `exec` (one command on a channel),
//! `interactive` (a command kept open: input, output as it comes, signals), `sftp`
//! (file primitives over one cached SFTP session per connection).
//!
//! Invariants: the host key is verified before authentication; auth and host key
//! failures are never retried; a command whose connection is lost after it was sent is
//! `OUTCOME_UNKNOWN`, never silently rerun; a host that stops answering fails within
//! the deadlines of docs/ssh.md, and its connection is not handed out again.

mod connect;
mod exec;
mod interactive;
mod known_hosts;
mod pool;
mod sftp;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use russh::Channel;
use russh::client::Msg;
use ssh2_config::{ParseRule, SshConfig};
use tokio_util::sync::CancellationToken;
use warden_core::config::{SshSettings, expand_home, home_dir};
use warden_core::error::{Error, Result};
use warden_core::files::HostFiles;
use warden_core::inventory::Host;
use warden_core::transport::{
    CapturedStream, ExecOutput, ExecRequest, ExitStatus, Permit, Transport, TransportStats,
};

use crate::connect::Endpoint;
use crate::pool::{Connection, Pool};

/// Runs commands on SSH hosts. Cheap to share (`Arc` inside); one per server process.
///
/// `proxy_jump` (on the host or from `~/.ssh/config`) is read as a comma-separated list
/// of `[user@]host[:port]` hops. An inventory host id is not resolved here: the engine
/// substitutes the jump host's address, port and user before calling.
#[derive(Clone)]
pub struct SshTransport {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    settings: SshSettings,
    known_hosts: PathBuf,
    /// Parsed once; an unreadable or invalid file fails each exec with its reason
    /// instead of silently connecting somewhere else than `ssh` would.
    ssh_config: std::result::Result<Option<SshConfig>, String>,
    pool: Pool,
    reaper_started: AtomicBool,
    /// SFTP sessions opened so far (each on a new channel).
    sftp_sessions: AtomicU64,
    /// Host keys learned under `accept-new`, until the engine records them.
    learned: std::sync::Mutex<Vec<warden_core::transport::LearnedKey>>,
}

impl SshTransport {
    /// `~` in `known_hosts` and `ssh_config_file` is expanded; the ssh_config file is
    /// read now when `use_ssh_config` is set (a missing file is no error).
    pub fn new(settings: SshSettings) -> SshTransport {
        let known_hosts = expand_home(&settings.known_hosts);
        let ssh_config = load_ssh_config(&settings);
        if let Err(reason) = &ssh_config {
            tracing::warn!(%reason, path = %settings.ssh_config_file.display(), "ssh_config unusable; SSH commands will fail until it is fixed");
        }
        if settings.allow_sha1_rsa {
            tracing::warn!(
                "ssh.allow_sha1_rsa is on: warden accepts SHA-1 ssh-rsa host key signatures and signs with SHA-1 for servers that take nothing else; SHA-1 signatures can be forged"
            );
        }
        SshTransport {
            inner: Arc::new(Inner {
                settings,
                known_hosts,
                ssh_config,
                pool: Pool::default(),
                reaper_started: AtomicBool::new(false),
                sftp_sessions: AtomicU64::new(0),
                learned: std::sync::Mutex::default(),
            }),
        }
    }

    pub fn settings(&self) -> &SshSettings {
        &self.inner.settings
    }

    /// The known_hosts file in use (after `~` expansion).
    pub fn known_hosts_path(&self) -> &Path {
        &self.inner.known_hosts
    }

    /// How many SFTP sessions were opened: one per pooled connection that served file
    /// primitives, plus one for each session that died and was replaced.
    pub fn sftp_sessions_opened(&self) -> u64 {
        self.inner.sftp_sessions.load(Ordering::Relaxed)
    }
}

/// Refuses a permit minted for another host, and the built-in `local` host.
fn check_host(permit: &Permit, host: &Host) -> Result<()> {
    if permit.host() != &host.id {
        return Err(Error::internal(format!(
            "permit for host {} used for host {}",
            permit.host(),
            host.id
        )));
    }
    if host.is_local() {
        return Err(Error::internal(format!(
            "host {} is the built-in local host, not an SSH host",
            host.id
        )));
    }
    Ok(())
}

#[async_trait]
impl Transport for SshTransport {
    async fn exec(
        &self,
        permit: &Permit,
        host: &Host,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        let started = Instant::now();
        check_host(permit, host)?;
        let wrapped = exec::wrap(request)?;
        let endpoint = self.inner.endpoint(host)?;
        self.inner.maintain().await;
        let opened = tokio::select! {
            opened = self.inner.open_channel(&endpoint) => opened?,
            // Nothing ran yet; stop waiting for the connection.
            () = cancel.cancelled() => {
                return Ok(ExecOutput {
                    status: ExitStatus::Cancelled,
                    stdout: CapturedStream::with_limit(request.max_output_bytes),
                    stderr: CapturedStream::with_limit(request.max_output_bytes),
                    duration: started.elapsed(),
                    may_still_run: false,
                });
            }
        };
        let (connection, channel) = opened;
        let output = exec::run(
            &connection,
            &endpoint,
            channel,
            wrapped,
            request,
            cancel,
            started,
        )
        .await;
        connection.touch();
        output
    }

    async fn interactive(
        &self,
        permit: &Permit,
        host: &Host,
        request: &warden_core::interactive::InteractiveRequest,
    ) -> Result<warden_core::interactive::Interactive> {
        check_host(permit, host)?;
        interactive::start(&self.inner, host, request).await
    }

    async fn files(&self, permit: &Permit, host: &Host) -> Result<Arc<dyn HostFiles>> {
        check_host(permit, host)?;
        let endpoint = self.inner.endpoint(host)?;
        self.inner.maintain().await;
        // Open (or check) the session now: connection, auth and subsystem failures
        // surface here rather than on the first primitive.
        let (connection, _session) = self.inner.sftp(&endpoint).await?;
        connection.touch();
        Ok(Arc::new(sftp::SshFiles::new(
            Arc::clone(&self.inner),
            endpoint,
        )))
    }

    fn stats(&self) -> TransportStats {
        self.inner.pool.stats()
    }

    fn learned_host_keys(&self) -> Vec<warden_core::transport::LearnedKey> {
        self.inner
            .learned
            .lock()
            .map(|mut learned| std::mem::take(&mut *learned))
            .unwrap_or_default()
    }

    async fn shutdown(&self) {
        self.inner.pool.shutdown().await;
    }
}

impl Inner {
    fn ssh_config(&self) -> Result<Option<&SshConfig>> {
        match &self.ssh_config {
            Ok(config) => Ok(config.as_ref()),
            Err(reason) => Err(Error::invalid_input(reason.clone()).with_hint(
                "Fix the ssh_config file, or set ssh.use_ssh_config: false in warden.yaml.",
            )),
        }
    }

    fn endpoint(&self, host: &Host) -> Result<Endpoint> {
        Ok(connect::resolve_host(host, self.ssh_config()?))
    }

    /// A session channel on the host's pooled connection. A pooled connection that
    /// turns out dead is replaced once; errors of the fresh connect (auth, host key,
    /// unreachable) are returned as they are, never retried.
    async fn open_channel(&self, endpoint: &Endpoint) -> Result<(Arc<Connection>, Channel<Msg>)> {
        let key = pool_key(endpoint);
        let connection = self.connection(&key, endpoint).await?;
        self.open_channel_on(&key, endpoint, connection).await
    }

    /// [`Inner::open_channel`] on `connection`, the pooled connection for `key`.
    async fn open_channel_on(
        &self,
        key: &str,
        endpoint: &Endpoint,
        connection: Arc<Connection>,
    ) -> Result<(Arc<Connection>, Channel<Msg>)> {
        let first_error = match connection.open_session().await {
            Ok(channel) => return Ok((connection, channel)),
            Err(error) => error,
        };
        if connection.is_alive() && first_error.refused {
            // The server said no (MaxSessions, resource shortage); the connection is fine
            // and other callers use it, so do not tear it down.
            return Err(endpoint.conn_failed(format!(
                "the host refused a new session channel: {}",
                first_error.message
            )));
        }
        tracing::debug!(target = %endpoint.describe(), error = %first_error.message, "pooled connection is dead; reconnecting once");
        self.pool.discard(key, &connection);
        let connection = self.connection(key, endpoint).await?;
        match connection.open_session().await {
            Ok(channel) => Ok((connection, channel)),
            Err(error) if error.refused => {
                Err(endpoint
                    .conn_failed(format!("cannot open a session channel: {}", error.message)))
            }
            Err(error) => {
                Err(endpoint
                    .unresponsive(format!("cannot open a session channel: {}", error.message)))
            }
        }
    }

    /// The SFTP session cached on the host's pooled connection, opened on a new
    /// channel when there is none or it died. Callers on one connection share one
    /// session: the lock is held while it opens.
    pub(crate) async fn sftp(
        &self,
        endpoint: &Endpoint,
    ) -> Result<(Arc<Connection>, Arc<sftp::Session>)> {
        let key = pool_key(endpoint);
        let connection = self.connection(&key, endpoint).await?;
        let mut cached = connection.sftp.lock().await;
        if let Some(session) = cached.as_ref().filter(|session| session.is_alive()) {
            return Ok((Arc::clone(&connection), Arc::clone(session)));
        }
        let (opened_on, channel) = self
            .open_channel_on(&key, endpoint, Arc::clone(&connection))
            .await?;
        let limit = Duration::from_millis(self.settings.connect_timeout_ms);
        let session = Arc::new(sftp::Session::start(channel, endpoint, limit).await?);
        self.sftp_sessions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target = %endpoint.describe(), "SFTP session opened");
        if Arc::ptr_eq(&opened_on, &connection) {
            *cached = Some(Arc::clone(&session));
        } else {
            // The pooled connection was dead and got replaced while opening.
            drop(cached);
            *opened_on.sftp.lock().await = Some(Arc::clone(&session));
        }
        Ok((opened_on, session))
    }

    /// The pooled connection for `key`, connecting (through any jump hosts) if needed.
    async fn connection(&self, key: &str, endpoint: &Endpoint) -> Result<Arc<Connection>> {
        self.pool
            .get(key, || async {
                let via = self.jump_chain(endpoint).await?;
                let connection =
                    connect::connect(&self.settings, &self.known_hosts, endpoint, via).await?;
                self.note_learned(&connection, &endpoint.address, endpoint.port);
                Ok(connection)
            })
            .await
    }

    fn note_learned(&self, connection: &Connection, address: &str, port: u16) {
        if let Some(fingerprint) = &connection.learned
            && let Ok(mut learned) = self.learned.lock()
        {
            learned.push(warden_core::transport::LearnedKey {
                host: format!("{address}:{port}"),
                fingerprint: fingerprint.clone(),
            });
        }
    }

    /// Connections to each jump hop in turn, each pooled under the chain that leads to
    /// it; the last one carries the target's stream.
    async fn jump_chain(&self, target: &Endpoint) -> Result<Option<Arc<Connection>>> {
        let mut via: Option<Arc<Connection>> = None;
        let mut chain = String::from("jump");
        for spec in &target.jumps {
            let hop = connect::resolve_jump(spec, target, self.ssh_config()?)?;
            chain.push_str(&format!(" > {}@{}:{}", hop.user, hop.address, hop.port));
            let previous = via.take();
            let connection = self
                .pool
                .get(&chain, || async {
                    let connection =
                        connect::connect(&self.settings, &self.known_hosts, &hop, previous).await?;
                    self.note_learned(&connection, &hop.address, hop.port);
                    Ok(connection)
                })
                .await?;
            via = Some(connection);
        }
        Ok(via)
    }

    /// Starts the idle reaper once, and sweeps now: idle connections close even when
    /// the runtime is too busy for the reaper's ticks.
    async fn maintain(self: &Arc<Self>) {
        let idle = Duration::from_secs(self.settings.idle_timeout_s);
        if !self.reaper_started.swap(true, Ordering::SeqCst) {
            let inner = Arc::downgrade(self);
            let period = Duration::from_secs((self.settings.idle_timeout_s / 2).clamp(1, 60));
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    // The transport is gone: so is the reaper.
                    let Some(inner) = inner.upgrade() else { break };
                    inner.pool.sweep(idle).await;
                }
            });
        }
        self.pool.sweep(idle).await;
    }
}

/// The pool key of an inventory host's own connection.
fn pool_key(endpoint: &Endpoint) -> String {
    format!("host {}", endpoint.host_id)
}

/// How errors name the ssh_config file: they reach agents, who need no local paths
/// (the path is in the warning logged at start).
const SSH_CONFIG: &str = "the ssh_config file (ssh.ssh_config_file)";

fn load_ssh_config(settings: &SshSettings) -> std::result::Result<Option<SshConfig>, String> {
    if !settings.use_ssh_config {
        return Ok(None);
    }
    let path = expand_home(&settings.ssh_config_file);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(format!("cannot read {SSH_CONFIG}: {error}"));
        }
    };
    // Unsupported fields kept, or UserKnownHostsFile and friends vanish silently
    // (DEPENDENCIES.md); unknown ones tolerated as ssh's own parser would not be.
    SshConfig::default()
        .home_dir(home_dir())
        .parse(
            &mut BufReader::new(file),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map(Some)
        .map_err(|error| format!("cannot parse {SSH_CONFIG}: {error}"))
}
