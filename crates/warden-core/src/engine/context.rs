//! [`RunContext`]: what a running tool may do, granted by its plan and nothing more.
//! It reaches only the planned hosts, runs only the planned commands and probes, and
//! opens only sandboxes for the planned paths; every transport call carries a permit
//! minted here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Engine, ProgressSink};
use crate::config::LoadedConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::file_locks::FileLock;
use crate::files::{HostFiles, ReadOnlyFiles};
use crate::inventory::{Host, HostKind, Inventory, LOCAL_HOST_ID};
use crate::policy::{Decision, Verdict};
use crate::sandbox::{Known, PathGuard, Sandbox, within};
use crate::sessions::{Event, SessionView, Sessions};
use crate::tool::{Effect, Probe, Registry};
use crate::transport::{Command, ExecOutput, ExecRequest, Permit, Transport, TransportStats};
use crate::uploads::Uploads;

/// What a running tool may do. It can reach only the hosts in its plan, and every
/// transport call carries a permit minted here.
#[derive(Clone)]
pub struct RunContext {
    pub(super) engine: Engine,
    /// The calling client: sessions belong to it.
    pub(super) client: String,
    pub(super) session: Option<SessionView>,
    pub(super) hosts: Arc<Vec<Arc<Host>>>,
    /// The caller's commands policy allowed: the only ones `exec` runs.
    pub(super) commands: Arc<Vec<Command>>,
    /// warden's probes policy allowed: the only ones `probe` runs.
    pub(super) probes: Arc<Vec<Probe>>,
    /// The plan reads sources on `local` (see [`Plan::reads_local`]).
    pub(super) reads_local: bool,
    pub(super) effect: Effect,
    /// Per host: entries this call's sandboxes have seen to be real (see `sandbox`).
    pub(super) known: Arc<std::sync::Mutex<std::collections::HashMap<String, Known>>>,
    pub(super) job_id: String,
    pub(super) cancel: CancellationToken,
    pub(super) progress: Option<ProgressSink>,
}

impl RunContext {
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    pub fn config(&self) -> &LoadedConfig {
        &self.engine.inner.loaded
    }

    pub fn inventory(&self) -> &Inventory {
        &self.engine.inner.inventory
    }

    pub fn registry(&self) -> &Registry {
        &self.engine.inner.registry
    }

    /// The hosts the plan named, in target order.
    pub fn planned_hosts(&self) -> Vec<Arc<Host>> {
        self.hosts.as_ref().clone()
    }

    /// Policy's answer for a command, for `policy_test` (which runs nothing).
    pub fn evaluate_policy(&self, host: &Host, command: &str) -> Decision {
        self.engine
            .inner
            .policy
            .evaluate(host, command, crate::policy::CommandOrigin::Caller)
    }

    /// Runs one of the plan's commands on a planned host.
    ///
    /// Invariant: what runs is what policy checked and the audit log recorded.
    pub async fn exec(&self, host: &Host, request: &ExecRequest) -> Result<ExecOutput> {
        if !self.commands.contains(&request.command) {
            return Err(Error::internal(format!(
                "the command {:?} is not in this call's plan",
                request.command.to_shell()
            )));
        }
        self.run_on(host, request).await
    }

    /// Runs one of the plan's probes on a planned host.
    pub async fn probe(
        &self,
        host: &Host,
        probe: &Probe,
        timeout: Duration,
        max_output_bytes: usize,
    ) -> Result<ExecOutput> {
        if !self.probes.contains(probe) {
            return Err(Error::internal(format!(
                "the probe {:?} is not in this call's plan",
                probe.label
            )));
        }
        let request = ExecRequest {
            command: Command::Shell(probe.script.to_owned()),
            env: Default::default(),
            stdin: None,
            working_directory: None,
            timeout,
            max_output_bytes,
        };
        self.run_on(host, &request).await
    }

    async fn run_on(&self, host: &Host, request: &ExecRequest) -> Result<ExecOutput> {
        let permit = self.permit(host)?;
        self.transport(host)
            .exec(&permit, host, request, &self.cancel)
            .await
    }

    /// Invariant: a tool cannot reach a host its plan did not name (and policy did
    /// not check).
    fn permit(&self, host: &Host) -> Result<Permit> {
        if !self.hosts.iter().any(|planned| planned.id == host.id) {
            return Err(Error::internal(format!(
                "host {} is not in this call's plan",
                host.id
            )));
        }
        Ok(Permit::new(host.id.clone(), self.job_id.clone()))
    }

    fn transport(&self, host: &Host) -> &Arc<dyn Transport> {
        match host.kind {
            HostKind::Ssh => &self.engine.inner.ssh,
            HostKind::Local => &self.engine.inner.local,
        }
    }

    /// The calling client (sessions belong to it).
    pub fn client(&self) -> &str {
        &self.client
    }

    /// The session the call works in, if any (checked by the engine to be the caller's).
    pub fn session(&self) -> Option<&SessionView> {
        self.session.as_ref()
    }

    pub fn sessions(&self) -> &Sessions {
        &self.engine.inner.sessions
    }

    pub fn uploads(&self) -> &Uploads {
        &self.engine.inner.uploads
    }

    /// Notes what the call did in its session, for `session_summary`.
    pub fn note(&self, event: Event, what: &str) {
        if let Some(session) = &self.session {
            self.engine.inner.sessions.record(&session.id, event, what);
        }
    }

    /// Waits for exclusive use of a resolved file on `host` among this server's calls:
    /// hold it across a read, a precondition check and the write that depends on them.
    pub async fn file_lock(&self, host: &Host, path: &str) -> FileLock {
        self.engine
            .inner
            .file_locks
            .lock(host.id.as_str(), path)
            .await
    }

    /// The file sandbox for a planned host: the call's session root, or outside a
    /// session the `allowed_roots` entry that holds `path` (absolute). `deny_paths`
    /// guards every path it resolves.
    pub async fn sandbox(&self, host: &Arc<Host>, path: &str) -> Result<Sandbox> {
        let files = self.files(host).await?;
        let guard = self.path_guard(host);
        if let Some(session) = &self.session {
            return Ok(Sandbox::new(
                files,
                session.root.clone(),
                session.cwd.clone(),
                guard,
                self.known(host),
            ));
        }
        if !path.starts_with('/') {
            return Err(Error::invalid_input(format!(
                "{path:?}: outside a session, give an absolute path (or open a session with session_open)"
            ))
            .with_path(path));
        }
        let root = self.allowed_root_for(host, &files, path).await?;
        Ok(Sandbox::new(
            files,
            root.clone(),
            root,
            guard,
            self.known(host),
        ))
    }

    /// A read-only sandbox on the built-in `local` host for a call whose plan reads
    /// sources there: `path` (absolute) must be under local's `allowed_roots`, and
    /// `deny_paths` guard every path it resolves. Writes through it are refused, so it
    /// needs no `local.allow_write`.
    pub async fn local_source(&self, path: &str) -> Result<Sandbox> {
        if !self.reads_local {
            return Err(Error::internal("this call's plan does not read on local"));
        }
        let host = self.engine.inner.inventory.get(LOCAL_HOST_ID).cloned().ok_or_else(|| {
            Error::new(
                ErrorCode::LocalDisabled,
                "the built-in host `local` is disabled (local.enabled: false), and the source is read there",
            )
            .with_host(LOCAL_HOST_ID)
        })?;
        if !path.starts_with('/') {
            return Err(Error::invalid_input(format!(
                "source {path:?} must be an absolute path on warden's machine"
            ))
            .with_path(path));
        }
        let permit = Permit::new(host.id.clone(), self.job_id.clone());
        let files: Arc<dyn HostFiles> = Arc::new(ReadOnlyFiles(
            self.engine.inner.local.files(&permit, &host).await?,
        ));
        let root = self.allowed_root_for(&host, &files, path).await?;
        Ok(Sandbox::new(
            files,
            root.clone(),
            root,
            self.path_guard(&host),
            self.known(&host),
        ))
    }

    /// Resolves a session root on `host` and checks it against policy.
    pub async fn session_root(&self, host: &Arc<Host>, root: &str) -> Result<String> {
        let files = self.files(host).await?;
        let resolved =
            Sandbox::resolve_root(Arc::clone(&files), root, self.path_guard(host)).await?;
        self.allowed_root_for(host, &files, &resolved).await?;
        Ok(resolved)
    }

    /// The host's file port for this call. A read-only plan gets a view whose every
    /// write answers `PERMISSION_DENIED`: the effect a tool declares is enforced.
    async fn files(&self, host: &Host) -> Result<Arc<dyn HostFiles>> {
        let permit = self.permit(host)?;
        let files = self.transport(host).files(&permit, host).await?;
        if self.effect == Effect::ReadOnly {
            return Ok(Arc::new(ReadOnlyFiles(files)));
        }
        Ok(files)
    }

    /// What this call has learnt of `host`'s file system (see `sandbox::Known`),
    /// shared by all its sandboxes there.
    fn known(&self, host: &Host) -> Known {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(known.entry(host.id.to_string()).or_default())
    }

    fn path_guard(&self, host: &Arc<Host>) -> PathGuard {
        let engine = self.engine.clone();
        let host = Arc::clone(host);
        Arc::new(move |path: &str| {
            let decision = engine.inner.policy.evaluate_path(&host, path);
            if decision.decision == Verdict::Denied {
                return Err(Error::new(
                    ErrorCode::PolicyDenied,
                    format!("denied on {}: {}", host.id, decision.reason),
                )
                .with_host(host.id.as_str())
                .with_path(path)
                .with_recovery_tool("policy_test"));
            }
            Ok(())
        })
    }

    /// The resolved `allowed_roots` entry holding `path`; with policy off, `/`.
    async fn allowed_root_for(
        &self,
        host: &Arc<Host>,
        files: &Arc<dyn HostFiles>,
        path: &str,
    ) -> Result<String> {
        let policy = &self.engine.inner.policy;
        if policy.mode() == crate::config::PolicyMode::Off {
            return Ok("/".into());
        }
        let roots = policy.allowed_roots(host);
        for root in &roots {
            // A root missing on this host allows nothing there.
            let Ok(resolved) =
                Sandbox::resolve_root(Arc::clone(files), root, self.path_guard(host)).await
            else {
                continue;
            };
            if within(&resolved, path) {
                return Ok(resolved);
            }
        }
        let configured = if roots.is_empty() {
            String::from("none are configured")
        } else {
            roots.join(", ")
        };
        Err(Error::new(
            ErrorCode::PathOutsideRoot,
            format!("{path:?} is not under policy.allowed_roots on {} ({configured})", host.id),
        )
        .with_host(host.id.as_str())
        .with_path(path)
        .with_hint("Use a path under an allowed root, or ask the operator to add one to policy.allowed_roots."))
    }

    /// Runs `work` on every host concurrently, at most `ssh.max_parallel` at once;
    /// results come back in the given order.
    pub async fn for_each_host<T, F, Fut>(&self, hosts: &[Arc<Host>], work: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(RunContext, Arc<Host>) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let limit = Arc::new(Semaphore::new(self.config().config.ssh.max_parallel));
        let total = hosts.len();
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for (index, host) in hosts.iter().enumerate() {
            let limit = Arc::clone(&limit);
            let future = work(self.clone(), Arc::clone(host));
            let progress = self.progress.clone();
            let done = Arc::clone(&done);
            let host_id = host.id.to_string();
            set.spawn(async move {
                let _slot = limit.acquire_owned().await;
                let value = future.await;
                let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if let Some(progress) = progress {
                    progress(finished, total, &host_id);
                }
                (index, value)
            });
        }
        let mut slots: Vec<Option<T>> = (0..total).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((index, value)) = joined {
                slots[index] = Some(value);
            }
        }
        slots.into_iter().flatten().collect()
    }

    /// Health of the audit log: the last seq, or why it is unavailable.
    pub fn audit_health(&self) -> std::result::Result<u64, String> {
        match &self.engine.inner.audit {
            Ok(log) => log.health(),
            Err(error) => Err(error.message.clone()),
        }
    }

    pub fn transport_stats(&self) -> TransportStats {
        self.engine.inner.ssh.stats()
    }

    pub fn uptime_ms(&self) -> u64 {
        self.engine.inner.started.elapsed().as_millis() as u64
    }
}
