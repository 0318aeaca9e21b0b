//! [`RunContext`]: what a running tool may do, granted by its plan and nothing more.
//! It reaches only the planned hosts, runs only the planned commands and probes, and
//! opens only sandboxes for the planned paths; every transport call carries a permit
//! minted here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::approve::{MAX_STATUS_WAIT, POLL};
use super::grant::{Grant, Grants};
use super::jobs::{JobOutput, OutputRange};
use super::{Engine, ProgressSink};
use crate::artifacts::{ArtifactInfo, ArtifactRange, StreamName};
use crate::config::LoadedConfig;
use crate::error::{Error, Result};
use crate::file_locks::FileLock;
use crate::files::{HostFiles, ReadOnlyFiles};
use crate::inventory::{Host, Inventory};
use crate::policy::{Analysis, Capabilities, CommandOrigin, Decision, Input, rules::Lint};
use crate::sandbox::{Known, Sandbox};
use crate::sessions::{Event, SessionView, Sessions};
use crate::store::{Approval, ApprovalState, JobState};
use crate::tool::job::JobView;
use crate::tool::{CommandInput, Effect, Probe, Registry};
use crate::transport::{Command, ExecOutput, ExecRequest, Permit, Transport, TransportStats};
use crate::uploads::Uploads;

/// What a running tool may do. It can reach only the hosts in its plan, and every
/// transport call carries a permit minted here.
#[derive(Clone)]
pub struct RunContext {
    pub(super) engine: Engine,
    /// The calling client: sessions belong to it.
    pub(super) client: String,
    /// The caller's identity, which selects roles.
    pub(super) identity: String,
    /// Who this caller's approvals belong to (see `approve::owner`).
    pub(super) owner: String,
    pub(super) session: Option<SessionView>,
    pub(super) hosts: Arc<Vec<Arc<Host>>>,
    /// The caller's commands policy allowed: the only ones `exec` runs.
    pub(super) commands: Arc<Vec<Command>>,
    /// The `env` names and `stdin` those commands were checked with.
    pub(super) input: Arc<CommandInput>,
    /// warden's probes policy allowed: the only ones `probe` runs.
    pub(super) probes: Arc<Vec<Probe>>,
    /// The engine's decision on every planned path (see `grant`).
    pub(super) grants: Arc<Grants>,
    /// The interactive command step the plan names (see `commands`).
    pub(super) interactive: Arc<Option<crate::tool::InteractivePlan>>,
    pub(super) effect: Effect,
    /// Per host: entries this call's sandboxes have seen to be real (see `sandbox`).
    pub(super) known: Arc<std::sync::Mutex<std::collections::HashMap<String, Known>>>,
    pub(super) job_id: String,
    pub(super) cancel: CancellationToken,
    pub(super) progress: Option<ProgressSink>,
    /// The job this call's work is (job tools): its commands run spooled.
    pub(super) job: Option<Arc<super::jobs::LiveJob>>,
    /// How the planned hosts run (see `rollout.rs`).
    pub(super) rollout: Option<Arc<crate::tool::Rollout>>,
}

impl RunContext {
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// This caller's approval `id`; while it is pending, waits up to `wait` (at most
    /// [`MAX_STATUS_WAIT`]) for a decision. Reading only: no tool can decide one.
    pub async fn approval_status(&self, id: &str, wait: Duration) -> Result<Approval> {
        let wait = wait.min(MAX_STATUS_WAIT);
        let started = std::time::Instant::now();
        loop {
            let approval = self.engine.caller_approval(&self.owner, id).await?;
            if approval.state != ApprovalState::Pending || started.elapsed() >= wait {
                return Ok(approval);
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.cancel.cancelled() => return Ok(approval),
            }
        }
    }

    /// This caller's job `id` as it stands (`JOB_NOT_FOUND` for anyone else's).
    pub async fn job(&self, id: &str) -> Result<JobView> {
        self.engine.job_view(Some(&self.owner), id).await
    }

    /// Waits up to `wait` for this caller's job `id` to end (the call's cancellation
    /// ends the wait).
    pub async fn wait_job(&self, id: &str, wait: Duration) -> Result<JobView> {
        self.engine
            .wait_job(Some(&self.owner), id, wait, &self.cancel)
            .await
    }

    /// This caller's jobs, newest first.
    pub async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<JobView>> {
        self.engine.list_jobs(Some(&self.owner), state, limit).await
    }

    /// Stops this caller's job `id` (verified on its hosts).
    pub async fn cancel_job(&self, id: &str) -> Result<JobView> {
        self.engine.cancel_job(Some(&self.owner), id).await
    }

    /// Bytes of one host's output (`out` or `err`) of this caller's job `id`.
    pub async fn job_output(
        &self,
        id: &str,
        host_id: &str,
        stream: &str,
        range: OutputRange,
    ) -> Result<JobOutput> {
        self.engine
            .job_output(Some(&self.owner), id, host_id, stream, range)
            .await
    }

    /// This caller's pending approvals, newest first.
    pub async fn approval_list(&self) -> Result<Vec<Approval>> {
        self.engine.expire_approvals().await?;
        self.engine
            .inner
            .approvals
            .store
            .approvals(Some(ApprovalState::Pending), Some(&self.owner))
            .await
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

    /// How policy reads a command, for `policy_test` (which runs nothing).
    pub fn analyze_command(&self, input: Input) -> Analysis {
        self.engine.inner.policy.analyze(input)
    }

    /// Policy's answer for an analysed command on `host` for this caller.
    pub fn evaluate_policy(&self, host: &Host, analysis: &Analysis) -> Decision {
        self.engine
            .inner
            .policy
            .evaluate(host, &self.identity, analysis, CommandOrigin::Caller)
    }

    /// What this caller may do on `host` (`policy_capabilities`).
    pub fn policy_capabilities(&self, host: &Host) -> Capabilities {
        self.engine.inner.policy.capabilities(host, &self.identity)
    }

    /// Warnings about rules that do not mean what they look like (`policy_lint`).
    pub fn policy_lint(&self) -> Vec<Lint> {
        crate::policy::lint(&self.config().config.policy)
    }

    /// The caller's identity (roles are selected by it).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Runs one of the plan's commands on a planned host.
    ///
    /// Invariant: what runs is what policy checked and the audit log recorded.
    pub async fn exec(&self, host: &Host, request: &ExecRequest) -> Result<ExecOutput> {
        let env: Vec<&String> = request.env.keys().collect();
        let planned_env: Vec<&String> = self.input.env.iter().collect();
        let stdin = request.stdin.as_deref();
        if !self.commands.contains(&request.command)
            || env != planned_env
            || stdin != self.input.stdin.as_deref().map(str::as_bytes)
        {
            return Err(Error::internal(format!(
                "the command {:?} with this env and stdin is not in this call's plan",
                request.command.to_shell()
            )));
        }
        // Secret references become values only here, on the way to the host.
        let secrets = &self.engine.inner.secrets;
        let mut resolved = request.clone();
        for value in resolved.env.values_mut() {
            *value = secrets.resolve(value)?;
        }
        if let Some(reference) = resolved.secret_stdin.take() {
            let mut stdin = secrets.resolve_line(&reference)?;
            stdin.extend(resolved.stdin.take().unwrap_or_default());
            resolved.stdin = Some(stdin);
        }
        // A command that carries a secret (or env values) stays out of the host's
        // process list; an ordinary one runs without the extra read.
        resolved.hide_command =
            !resolved.env.is_empty() || secrets.holds_secret(&resolved.command.to_shell());
        if let Some(job) = &self.job {
            resolved.spool = self.engine.spool_for(job, host);
        }
        // A stream cut at max_output_bytes is kept whole, for this caller (`artifacts`).
        resolved.spill = Some(
            self.engine
                .inner
                .artifacts
                .spill(&self.job_id, host.id.as_str()),
        );
        let mut output = self.run_on(host, &resolved).await?;
        let literal = crate::secrets::literal_values(&request.env);
        self.engine
            .keep_output(&self.owner, &literal, &mut output)
            .await;
        Ok(output)
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
            hide_command: false,
            spool: None,
            spill: None,
            secret_stdin: None,
        };
        self.run_on(host, &request).await
    }

    async fn run_on(&self, host: &Host, request: &ExecRequest) -> Result<ExecOutput> {
        let permit = self.permit(host)?;
        let Some(_turn) = self
            .engine
            .inner
            .host_limits
            .turn(host.id.as_str(), &self.cancel)
            .await
        else {
            return Err(Error::new(
                crate::error::ErrorCode::Cancelled,
                format!("cancelled while waiting for a turn on {}", host.id),
            )
            .with_host(host.id.as_str()));
        };
        self.transport(host)
            .exec(&permit, host, request, &self.cancel)
            .await
    }

    /// Invariant: a tool cannot reach a host its plan did not name (and policy did
    /// not check).
    pub(super) fn permit(&self, host: &Host) -> Result<Permit> {
        if !self.hosts.iter().any(|planned| planned.id == host.id) {
            return Err(Error::internal(format!(
                "host {} is not in this call's plan",
                host.id
            )));
        }
        Ok(self.permit_for(host))
    }

    fn permit_for(&self, host: &Host) -> Permit {
        Permit::new(host.id.clone(), self.job_id.clone())
    }

    fn transport(&self, host: &Host) -> &Arc<dyn Transport> {
        self.engine.transport(host)
    }

    /// The calling client (sessions belong to it).
    pub fn client(&self) -> &str {
        &self.client
    }

    /// Who owns what this call leaves for later calls (approvals, uploads): the
    /// caller's identity and client name, stable across restarts of either side.
    pub fn owner(&self) -> &str {
        &self.owner
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

    /// This caller's artifacts (the whole output of its cut streams), of `job_id` or
    /// of every job, newest first. Expired ones are pruned first.
    pub fn artifacts_list(&self, job_id: Option<&str>) -> Result<Vec<ArtifactInfo>> {
        self.engine.inner.artifacts.list(&self.owner, job_id)
    }

    /// `length` bytes from `offset` of one of this caller's artifacts; another
    /// caller's is `JOB_NOT_FOUND`, as if it did not exist.
    pub fn artifact_read(
        &self,
        job_id: &str,
        host_id: &str,
        stream: StreamName,
        offset: u64,
        length: u64,
    ) -> Result<ArtifactRange> {
        self.engine
            .inner
            .artifacts
            .read(&self.owner, job_id, host_id, stream, offset, length)
    }

    /// The last `bytes` bytes (or the last `lines` lines within them) of one of this
    /// caller's artifacts.
    pub fn artifact_tail(
        &self,
        job_id: &str,
        host_id: &str,
        stream: StreamName,
        bytes: u64,
        lines: Option<usize>,
    ) -> Result<ArtifactRange> {
        self.engine
            .inner
            .artifacts
            .tail(&self.owner, job_id, host_id, stream, bytes, lines)
    }

    /// Notes what the call did in its session, for `session_summary`.
    pub fn note(&self, event: Event, what: &str) {
        if let Some(session) = &self.session {
            self.engine.inner.sessions.record(&session.id, event, what);
        }
    }

    /// Waits for exclusive use of a resolved file on `host` among the calls of every
    /// warden process on this state dir: hold it across a read, a precondition check
    /// and the write that depends on them.
    pub async fn file_lock(&self, host: &Host, path: &str) -> Result<FileLock> {
        self.engine
            .inner
            .file_locks
            .lock(host.id.as_str(), path)
            .await
    }

    /// The sandbox of a planned `path` on a planned host: rooted where the engine
    /// resolved it before the `requested` record (the session root, or the
    /// `allowed_roots` entry holding it), confined to the paths granted on that host.
    /// A path the plan did not name is refused.
    pub async fn sandbox(&self, host: &Arc<Host>, path: &str) -> Result<Sandbox> {
        let grant = self.grants.get(host.id.as_str(), path, false)?.clone();
        let files = self.files(host).await?;
        Ok(self.sandbox_over(host, files, grant))
    }

    /// A read-only sandbox on the built-in `local` host for a source the plan reads
    /// there (`Plan::with_local_source`): under local's `allowed_roots`, guarded by its
    /// `deny_paths`. Writes through it are refused, so it needs no `local.allow_write`.
    pub async fn local_source(&self, path: &str) -> Result<Sandbox> {
        let host = self.engine.local_host()?;
        let grant = self.grants.get(host.id.as_str(), path, true)?.clone();
        let permit = self.permit_for(&host);
        let files: Arc<dyn HostFiles> = Arc::new(ReadOnlyFiles(
            self.engine.inner.local.files(&permit, &host).await?,
        ));
        Ok(self.sandbox_over(&host, files, grant))
    }

    /// The resolved directory of a planned session root (`session_open`).
    pub fn session_root(&self, host: &Arc<Host>, root: &str) -> Result<String> {
        let grant = self.grants.get(host.id.as_str(), root, false)?;
        grant.resolved.clone().into_root(root)
    }

    /// The sandbox a grant describes, over `files`, confined to the host's grants.
    fn sandbox_over(&self, host: &Arc<Host>, files: Arc<dyn HostFiles>, grant: Grant) -> Sandbox {
        Sandbox::new(
            files,
            grant.root,
            grant.cwd,
            self.engine.path_guard(host, &self.identity),
            self.known(host),
        )
        .scoped(self.grants.scope(host.id.as_str()))
        .aliased(grant.alias)
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

    /// Runs `work` on every host concurrently, at most `ssh.max_parallel` at once;
    /// results come back in the given order, one per host. A host whose task panicked
    /// gets `on_panic`'s result (an `INTERNAL` error): it never vanishes from the answer.
    pub async fn for_each_host<T, F, Fut>(
        &self,
        hosts: &[Arc<Host>],
        work: F,
        on_panic: impl Fn(&Host, Error) -> T,
    ) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(RunContext, Arc<Host>) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let limit = Arc::new(Semaphore::new(self.config().config.ssh.max_parallel));
        let total = hosts.len();
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        let mut index_of = std::collections::HashMap::new();
        for (index, host) in hosts.iter().enumerate() {
            let limit = Arc::clone(&limit);
            let future = work(self.clone(), Arc::clone(host));
            let progress = self.progress.clone();
            let done = Arc::clone(&done);
            let host_id = host.id.to_string();
            let task = set.spawn(async move {
                let _slot = limit.acquire_owned().await;
                let value = future.await;
                let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if let Some(progress) = progress {
                    progress(finished, total, &host_id);
                }
                value
            });
            index_of.insert(task.id(), index);
        }
        let mut slots: Vec<Option<T>> = (0..total).map(|_| None).collect();
        while let Some(joined) = set.join_next_with_id().await {
            let (id, value) = match joined {
                Ok((id, value)) => (id, Some(value)),
                Err(error) => (error.id(), None),
            };
            if let Some(&index) = index_of.get(&id) {
                slots[index] = value;
            }
        }
        slots
            .into_iter()
            .zip(hosts)
            .map(|(slot, host)| {
                slot.unwrap_or_else(|| {
                    tracing::error!("the task for host {} panicked", host.id);
                    let error = Error::internal(format!(
                        "warden's work on {} stopped unexpectedly (a bug: see the server log); its outcome is unknown",
                        host.id
                    ))
                    .with_host(host.id.as_str());
                    on_panic(host, error)
                })
            })
            .collect()
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
