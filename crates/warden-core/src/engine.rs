//! [`Engine::invoke`]: the one path from a tool call to a host.
//!
//! validate → resolve targets (plan) → local gate → policy → durable `requested` audit
//! record → run (transport calls with engine-minted permits) → durable outcome record →
//! answer. MCP, the CLI and tests all come through here; tools see only the
//! [`RunContext`] the engine hands them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, AuditEntry, AuditLog, Durability, Phase};
use crate::config::LoadedConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::file_locks::{FileLock, FileLocks};
use crate::files::{HostFiles, ReadOnlyFiles};
use crate::inventory::{Host, HostKind, Inventory, LOCAL_HOST_ID};
use crate::local::LocalTransport;
use crate::policy::{CommandOrigin, Decision, Policy, Verdict};
use crate::sandbox::{Known, PathGuard, Sandbox, within};
use crate::sessions::{Event, SessionLimits, SessionView, Sessions};
use crate::tool::{Effect, Plan, Probe, Registry};
use crate::transport::{Command, ExecOutput, ExecRequest, Permit, Transport, TransportStats};
use crate::uploads::Uploads;

/// Who is calling: the MCP client (or `cli`) and, over HTTP later, an identity.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client: String,
    pub identity: String,
}

impl Caller {
    pub fn new(client: impl Into<String>) -> Caller {
        Caller {
            client: client.into(),
            identity: whoami(),
        }
    }
}

fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| String::from("unknown"))
}

/// What a tool's `plan` may look at: the config, the inventory and the catalogue. Plans
/// are pure: nothing here reaches a host, the audit log or policy.
pub struct PlanContext<'a> {
    loaded: &'a LoadedConfig,
    inventory: &'a Inventory,
    registry: &'a Registry,
}

impl PlanContext<'_> {
    pub fn config(&self) -> &LoadedConfig {
        self.loaded
    }

    pub fn inventory(&self) -> &Inventory {
        self.inventory
    }

    pub fn registry(&self) -> &Registry {
        self.registry
    }
}

/// Reports a host finishing during a fan-out: (hosts done, hosts total, host id).
pub type ProgressSink = Arc<dyn Fn(usize, usize, &str) + Send + Sync>;

#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    loaded: LoadedConfig,
    inventory: Inventory,
    policy: Policy,
    /// `Err` keeps the reason the log could not be opened: mutating calls then fail
    /// closed with `AUDIT_UNAVAILABLE`, read-only ones still answer (doctor says why).
    audit: std::result::Result<AuditLog, Error>,
    ssh: Arc<dyn Transport>,
    local: Arc<dyn Transport>,
    registry: Arc<Registry>,
    sessions: Sessions,
    uploads: Uploads,
    /// Serializes read-check-write sequences on one file (see `file_locks`).
    file_locks: FileLocks,
    started: Instant,
}

impl Engine {
    /// `ssh` reaches the inventory's SSH hosts; `registry` is the catalogue to serve.
    pub fn new(
        loaded: LoadedConfig,
        ssh: Arc<dyn Transport>,
        registry: Arc<Registry>,
    ) -> Result<Engine> {
        let inventory = Inventory::from_config(&loaded.config);
        let policy = Policy::new(&loaded.config.policy, &inventory)?;
        let audit = AuditLog::open(&loaded.audit_dir());
        let limits = &loaded.config.limits;
        let sessions = Sessions::new(SessionLimits {
            idle: Duration::from_secs(limits.session_idle_s),
            max_lifetime: Duration::from_secs(limits.session_max_s),
            per_client: limits.max_sessions_per_client,
        });
        if let Err(error) = &audit {
            tracing::error!("{error}; mutating tools will answer AUDIT_UNAVAILABLE");
        }
        Ok(Engine {
            inner: Arc::new(EngineInner {
                loaded,
                inventory,
                policy,
                audit,
                ssh,
                registry,
                sessions,
                uploads: Uploads::default(),
                file_locks: FileLocks::default(),
                local: Arc::new(LocalTransport),
                started: Instant::now(),
            }),
        })
    }

    pub fn config(&self) -> &LoadedConfig {
        &self.inner.loaded
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inner.inventory
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    fn planning(&self) -> PlanContext<'_> {
        PlanContext {
            loaded: &self.inner.loaded,
            inventory: &self.inner.inventory,
            registry: &self.inner.registry,
        }
    }

    /// Runs one tool call through the whole pipeline.
    pub async fn invoke(
        &self,
        caller: &Caller,
        tool_name: &str,
        args: Value,
        cancel: CancellationToken,
        progress: Option<ProgressSink>,
    ) -> Result<Value> {
        let tool = self.inner.registry.find(tool_name).ok_or_else(|| {
            Error::invalid_arguments(format!("unknown tool {tool_name:?}"))
                .with_suggestions(self.inner.registry.closest_names(tool_name))
                .with_recovery_tool("tools_search")
        })?;
        let job_id = new_job_id();
        let started = Instant::now();
        let masked_args = audit::mask_secrets(&args);
        let mut record = AuditEntry {
            client: caller.client.clone(),
            identity: caller.identity.clone(),
            tool: tool_name.to_owned(),
            args: masked_args,
            hosts: Vec::new(),
            decision: String::from("rejected"),
            phase: Phase::Completed,
            outcome: None,
            error_code: None,
            duration_ms: None,
            job_id: job_id.clone(),
        };
        let info = tool.info();
        let prepared = match tool.prepare(args, &self.planning()) {
            Ok(prepared) => prepared,
            Err(error) => return Err(self.reject(record, error, info.effect)),
        };
        let mut plan = prepared.plan.clone();
        let session = match self.enter_session(caller, &mut plan) {
            Ok(session) => session,
            Err(error) => return Err(self.reject(record, error, info.effect)),
        };
        record.hosts = plan.hosts.iter().map(|host| host.id.to_string()).collect();

        if let Err(error) = self.check_local(&plan) {
            record.decision = "denied".into();
            return Err(self.reject(record, error, plan.effect));
        }
        let decisions = self.check_policy(&plan);
        if let Some((host, decision)) = decisions
            .iter()
            .find(|(_, decision)| decision.decision == Verdict::Denied)
        {
            record.decision = "denied".into();
            record.phase = Phase::Requested;
            self.write(&record, plan.effect)?;
            let error = policy_error(host, decision);
            record.phase = Phase::Completed;
            return Err(self.reject(record, error, plan.effect));
        }
        let warned = decisions
            .iter()
            .any(|(_, decision)| decision.decision == Verdict::Warned);
        record.decision = if warned { "warned" } else { "allowed" }.into();
        record.phase = Phase::Requested;
        // Invariant: the requested record is durable before any side effect.
        self.write(&record, plan.effect)?;

        let result = if plan.dry_run {
            Ok(dry_run_preview(tool_name, &plan, &decisions, &job_id))
        } else {
            let context = RunContext {
                engine: self.clone(),
                client: caller.client.clone(),
                session,
                hosts: Arc::new(plan.hosts.clone()),
                commands: Arc::new(plan.commands.clone()),
                probes: Arc::new(plan.probes.clone()),
                reads_local: plan.reads_local,
                effect: plan.effect,
                known: Arc::default(),
                job_id: job_id.clone(),
                cancel,
                progress,
            };
            (prepared.run)(context).await
        };

        if let (Some(session), Err(error)) = (&plan.session, &result)
            && matches!(
                error.code,
                ErrorCode::PolicyDenied | ErrorCode::PathOutsideRoot
            )
        {
            let what = format!("{tool_name}: {}", error.message);
            self.inner.sessions.record(session, Event::Denied, &what);
        }
        record.phase = Phase::Completed;
        record.duration_ms = Some(started.elapsed().as_millis() as u64);
        match &result {
            Ok(value) => {
                let failed = value.pointer("/summary/ok") == Some(&Value::Bool(false));
                record.outcome = Some(
                    if plan.dry_run {
                        "dry_run"
                    } else if failed {
                        "failed"
                    } else {
                        "ok"
                    }
                    .into(),
                );
            }
            Err(error) => {
                record.outcome = Some("error".into());
                record.error_code = Some(error.code.to_string());
            }
        }
        // Invariant: the outcome record is durable before the answer.
        self.write(&record, plan.effect)?;
        result
    }

    /// Audits a call that never reached a host and returns its error.
    fn reject(&self, mut record: AuditEntry, error: Error, effect: Effect) -> Error {
        record.outcome = Some("rejected".into());
        record.error_code = Some(error.code.to_string());
        match self.write(&record, effect) {
            Ok(()) => error,
            Err(audit_error) => audit_error,
        }
    }

    fn write(&self, record: &AuditEntry, effect: Effect) -> Result<()> {
        let durability = if effect == Effect::ReadOnly {
            Durability::Group
        } else {
            Durability::Sync
        };
        let written = match &self.inner.audit {
            Ok(log) => log.append(record, durability).map(|_| ()),
            Err(error) => Err(error.clone()),
        };
        match written {
            Ok(()) => Ok(()),
            // Read-only calls still answer so `doctor` and `status` can explain why.
            Err(error) if effect == Effect::ReadOnly => {
                tracing::warn!("audit record for {} not written: {error}", record.tool);
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// A call in a file session: the session must be the caller's; its host becomes
    /// the plan's only host.
    fn enter_session(&self, caller: &Caller, plan: &mut Plan) -> Result<Option<SessionView>> {
        let Some(id) = &plan.session else {
            return Ok(None);
        };
        let session = self.inner.sessions.get(&caller.client, id)?;
        plan.hosts = vec![self.inner.inventory.require(session.host.as_str())?];
        Ok(Some(session))
    }

    /// The built-in `local` host runs the caller's commands only with
    /// `local.allow_exec` and writes files only with `local.allow_write`. Decided on
    /// what the plan names, not on the effect a tool declares: a probe (warden's own
    /// static script) needs neither.
    fn check_local(&self, plan: &Plan) -> Result<()> {
        if !plan.hosts.iter().any(|host| host.is_local()) {
            return Ok(());
        }
        let local = &self.inner.loaded.config.local;
        if !plan.commands.is_empty() && !local.allow_exec {
            return Err(Error::new(
                ErrorCode::LocalDisabled,
                "the built-in host `local` is read-only: exec on it is off",
            )
            .with_host("local")
            .with_hint("Use a remote host, or ask the operator to set local.allow_exec: true (or WARDEN_UNSAFE_LOCAL=1)."));
        }
        if plan.files && plan.effect != Effect::ReadOnly && !local.allow_write {
            return Err(Error::new(
                ErrorCode::LocalDisabled,
                "the built-in host `local` is read-only: file writes on it are off",
            )
            .with_host("local")
            .with_hint("Use a remote host, or ask the operator to set local.allow_write: true (or WARDEN_UNSAFE_LOCAL=1)."));
        }
        Ok(())
    }

    /// Policy's decision for every planned command and probe on every planned host. A
    /// probe is checked under its label and as its script.
    fn check_policy(&self, plan: &Plan) -> Vec<(Arc<Host>, Decision)> {
        let policy = &self.inner.policy;
        let mut decisions = Vec::new();
        for host in &plan.hosts {
            for command in &plan.commands {
                let decision = policy.evaluate(host, &command.to_shell(), CommandOrigin::Caller);
                decisions.push((Arc::clone(host), decision));
            }
            for probe in &plan.probes {
                for text in [probe.label, probe.script] {
                    let decision = policy.evaluate(host, text, CommandOrigin::BuiltinProbe);
                    decisions.push((Arc::clone(host), decision));
                }
            }
        }
        decisions
    }

    /// Shuts transports down and flushes the audit log.
    pub async fn shutdown(&self) {
        self.inner.ssh.shutdown().await;
        if let Ok(log) = &self.inner.audit {
            log.flush();
        }
    }
}

fn policy_error(host: &Host, decision: &Decision) -> Error {
    let rule = decision
        .rule
        .as_ref()
        .map(|rule| {
            format!(
                " (rule {rule:?} in {})",
                decision.source.as_deref().unwrap_or("policy")
            )
        })
        .unwrap_or_default();
    Error::new(
        ErrorCode::PolicyDenied,
        format!("denied on {}: {}{rule}", host.id, decision.reason),
    )
    .with_host(host.id.as_str())
    .with_command(decision.simple_commands.join("; "))
    .with_recovery_tool("policy_test")
}

fn dry_run_preview(
    tool: &str,
    plan: &Plan,
    decisions: &[(Arc<Host>, Decision)],
    job_id: &str,
) -> Value {
    json!({
        "dry_run": true,
        "tool": tool,
        "hosts": plan.hosts.iter().map(|host| host.id.to_string()).collect::<Vec<_>>(),
        "commands": plan.commands.iter().map(Command::to_shell).collect::<Vec<_>>(),
        "probes": plan.probes,
        "policy": decisions.iter().map(|(host, decision)| json!({
            "host_id": host.id.to_string(),
            "decision": decision.decision,
            "rule": decision.rule,
            "reason": decision.reason,
        })).collect::<Vec<_>>(),
        "summary": {"ok": true, "job_id": job_id},
    })
}

fn new_job_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("job_{}", &id[..12])
}

/// What a running tool may do. It can reach only the hosts in its plan, and every
/// transport call carries a permit minted here.
#[derive(Clone)]
pub struct RunContext {
    engine: Engine,
    /// The calling client: sessions belong to it.
    client: String,
    session: Option<SessionView>,
    hosts: Arc<Vec<Arc<Host>>>,
    /// The caller's commands policy allowed: the only ones `exec` runs.
    commands: Arc<Vec<Command>>,
    /// warden's probes policy allowed: the only ones `probe` runs.
    probes: Arc<Vec<Probe>>,
    /// The plan reads sources on `local` (see [`Plan::reads_local`]).
    reads_local: bool,
    effect: Effect,
    /// Per host: entries this call's sandboxes have seen to be real (see `sandbox`).
    known: Arc<std::sync::Mutex<std::collections::HashMap<String, Known>>>,
    job_id: String,
    cancel: CancellationToken,
    progress: Option<ProgressSink>,
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
