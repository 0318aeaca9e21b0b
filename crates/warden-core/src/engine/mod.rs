//! [`Engine::invoke`]: the one path from a tool call to a host.
//!
//! validate → resolve targets (plan) → local gate → policy → durable `requested` audit
//! record → run (transport calls with engine-minted permits) → durable outcome record →
//! answer. MCP, the CLI and tests all come through here; tools see only the
//! [`RunContext`] the engine hands them.

mod approve;
mod commands;
mod context;
mod drain;
mod grant;
mod jobs;
mod limit;
mod rollout;
#[cfg(test)]
mod tests;
mod tokens;

pub use approve::{MAX_STATUS_WAIT, approval_json};
pub use commands::{CommandRead, MAX_INPUT, MAX_WAIT};
pub use context::RunContext;
pub use grant::PathRecord;
pub use jobs::{JobOutput, MAX_OUTPUT_READ, OutputRange};

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, AuditEntry, AuditLog, AuditSink, CallDecision, Durability, Phase};
use crate::config::LoadedConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::file_locks::FileLocks;
use crate::inventory::{Host, HostKind, Inventory};
use crate::local::LocalTransport;
use crate::policy::{Analysis, Class, CommandOrigin, Decision, Input, Policy, Verdict};
use crate::sessions::{Event, SessionLimits, SessionView, Sessions};
use crate::tool::preview::{CommandPreview, HostVerdict, PreviewSummary, ProbePreview};
use crate::tool::{Controls, Effect, Plan, Prepared, Preview, Registry};
use crate::transport::{Command, Transport};
use crate::uploads::Uploads;
use serde_json::json;

/// Who is calling: one connection of an MCP client (or the CLI), its display name,
/// and, over HTTP later, an authenticated identity.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The connection: sessions, uploads and rate limits belong to it.
    pub id: ClientId,
    /// What the client calls itself (`clientInfo.name`): shown, never trusted.
    pub client: String,
    pub identity: String,
}

impl Caller {
    /// A caller known by its name alone (the CLI, tests): calls with one name share
    /// sessions and limits.
    pub fn new(client: impl Into<String>) -> Caller {
        let client = client.into();
        Caller {
            id: ClientId::new(format!("name:{client}")),
            client,
            identity: whoami(),
        }
    }

    /// One connection (an MCP session over stdio): a fresh id, whatever the client
    /// calls itself, so two clients with one name never share a session.
    pub fn connection(client: impl Into<String>) -> Caller {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Caller {
            id: ClientId::new(format!("conn_{}", &id[..12])),
            client: client.into(),
            identity: whoami(),
        }
    }

    /// The same connection, now that the client has said its name.
    pub fn named(&self, client: impl Into<String>) -> Caller {
        Caller {
            client: client.into(),
            ..self.clone()
        }
    }
}

/// The caller identity of one connection, distinct from the name a client gives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn new(id: impl Into<String>) -> ClientId {
        ClientId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identity roles are matched to over stdio: `WARDEN_IDENTITY` as the operator set
/// it in the client's server entry, else the OS user warden runs as.
fn whoami() -> String {
    std::env::var("WARDEN_IDENTITY")
        .ok()
        .filter(|identity| !identity.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| String::from("unknown"))
}

/// What a tool's `plan` may look at: the config, the inventory and the catalogue. Plans
/// are pure: nothing here reaches a host, the audit log or policy.
pub struct PlanContext<'a> {
    loaded: &'a LoadedConfig,
    inventory: &'a Inventory,
    registry: &'a Registry,
    /// The caller's job a call names in `last_job_id` (read by the engine first).
    previous: Option<&'a crate::store::Job>,
}

impl PlanContext<'_> {
    /// The caller's job named by the call's `last_job_id`, finished (`rerun`).
    pub fn previous_job(&self) -> Option<&crate::store::Job> {
        self.previous
    }

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

/// Reports a host finishing during a fan-out: (hosts done, hosts total, what happened:
/// the host id; in a rollout, `web-3 (batch 2/10)`, or the pause between batches).
pub type ProgressSink = Arc<dyn Fn(usize, usize, &str) + Send + Sync>;

#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    loaded: LoadedConfig,
    inventory: Inventory,
    policy: Policy,
    /// `Err` keeps the reason the log could not be opened: mutating calls then fail
    /// closed with `AUDIT_UNAVAILABLE`, read-only ones still answer (doctor says why).
    audit: std::result::Result<Arc<dyn AuditSink>, Error>,
    ssh: Arc<dyn Transport>,
    local: Arc<dyn Transport>,
    registry: Arc<Registry>,
    limits: limit::CallerLimits,
    /// Per host: (resolved, configured) spellings of allowed roots that are symlinks,
    /// so `deny_paths` written under either name hold (see `grant::path_decision`).
    root_aliases: std::sync::Mutex<std::collections::HashMap<String, Vec<(String, String)>>>,
    sessions: Sessions,
    uploads: Uploads,
    tokens: tokens::PlanTokens,
    /// Serializes read-check-write sequences on one file (see `file_locks`).
    file_locks: FileLocks,
    drain: drain::Drain,
    /// Commands at once per host (`limits.max_per_host`).
    host_limits: limit::HostLimits,
    approvals: approve::Approvals,
    /// Interactive commands open in this process (`command`).
    commands: commands::Commands,
    /// Resolves secret references and masks what leaves the engine.
    pub(crate) secrets: crate::secrets::Masker,
    /// The whole output of cut streams (`artifacts`).
    pub(crate) artifacts: crate::artifacts::Artifacts,
    /// The jobs this process runs.
    jobs: jobs::Jobs,
    started: Instant,
}

impl Engine {
    /// `ssh` reaches the inventory's SSH hosts; `registry` is the catalogue to serve;
    /// `store` keeps what outlives the process (approvals).
    pub fn new(
        loaded: LoadedConfig,
        ssh: Arc<dyn Transport>,
        registry: Arc<Registry>,
        store: Arc<dyn crate::store::Store>,
    ) -> Result<Engine> {
        let inventory = Inventory::from_config(&loaded.config);
        let loaded_limits = loaded.config.limits.clone();
        let policy = Policy::new(&loaded.config.policy, &inventory)?.protect(
            own_files(&loaded),
            Some(crate::config::home_dir().display().to_string()),
            std::env::current_dir()
                .ok()
                .map(|cwd| cwd.display().to_string()),
        );
        if policy.allows_opaque() {
            tracing::warn!(
                "policy.allow_opaque is on: commands warden cannot check run whenever no rule denies them outright"
            );
        }
        if policy.mode() == crate::config::PolicyMode::Off {
            tracing::warn!("policy.mode is off: no command or path rule is enforced");
        }
        let audit = AuditLog::open(&loaded.audit_dir(), &loaded.audit_key_path())
            .map(|log| Arc::new(log) as Arc<dyn AuditSink>);
        let approvals = approve::Approvals::new(&loaded.config.approval, &inventory, store)?;
        let secrets = crate::secrets::Masker::new(&loaded.config.secrets)?;
        let file_locks = FileLocks::new(loaded.state_dir.join("locks"));
        let artifacts = crate::artifacts::Artifacts::new(
            &loaded.state_dir,
            loaded.config.limits.artifact_retention_h,
        );
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
                limits: limit::CallerLimits::new(&loaded_limits),
                root_aliases: Default::default(),
                sessions,
                uploads: Uploads::default(),
                tokens: Default::default(),
                file_locks,
                drain: drain::Drain::default(),
                host_limits: limit::HostLimits::new(loaded_limits.max_per_host),
                approvals,
                commands: commands::Commands::new(&loaded_limits),
                secrets,
                jobs: jobs::Jobs::default(),
                artifacts,
                local: Arc::new(LocalTransport),
                started: Instant::now(),
            }),
        })
    }

    pub fn config(&self) -> &LoadedConfig {
        &self.inner.loaded
    }

    /// Makes every audit record written so far durable and the signed head current.
    pub fn flush_audit(&self) {
        if let Ok(log) = &self.inner.audit {
            log.flush();
        }
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
            previous: None,
        }
    }

    /// Runs one tool call through the whole pipeline, one step each:
    /// limits → validate → plan → session → local gate → policy → paths → audit `requested` →
    /// run (or preview) → audit `completed` → answer. Every step that refuses the call
    /// records why before the answer.
    ///
    /// Invariant: everything that leaves here is masked (resolved secrets, the call's
    /// `env` values, secret patterns and token shapes).
    pub async fn invoke(
        &self,
        caller: &Caller,
        tool_name: &str,
        args: Value,
        cancel: CancellationToken,
        progress: Option<ProgressSink>,
    ) -> Result<Value> {
        let mut env_values = crate::secrets::literal_env_values(&args);
        // A call to an open command is masked like the call that started it.
        env_values.extend(
            self.inner
                .commands
                .env_values(&approve::owner(caller), &args),
        );
        let masker = &self.inner.secrets;
        match self
            .run_pipeline(caller, tool_name, args, cancel, progress, &env_values)
            .await
        {
            Ok(mut value) => {
                masker.mask(&mut value, &env_values);
                Ok(value)
            }
            Err(mut error) => {
                masker.mask_error(&mut error, &env_values);
                Err(error)
            }
        }
    }

    async fn run_pipeline(
        &self,
        caller: &Caller,
        tool_name: &str,
        args: Value,
        cancel: CancellationToken,
        progress: Option<ProgressSink>,
        env_values: &[String],
    ) -> Result<Value> {
        let mut call = Call::new(caller, tool_name, &args, env_values.to_vec());
        if self.inner.drain.is_draining() {
            let error = Error::new(ErrorCode::Cancelled, "warden is shutting down")
                .with_hint("start the server again (or let the client restart it) and retry");
            return Err(self.refuse(call, error).await);
        }
        // Counted until the answer, so a drain waits for it; cancelled by the client
        // or when a drain's grace runs out.
        let (cancel, _in_flight) = self.inner.drain.enter(cancel);
        // Limits first: a flood of bad calls is a flood too.
        let _slot = match self.inner.limits.admit(&caller.id).await {
            Ok(slot) => slot,
            Err(error) => return Err(self.refuse(call, error).await),
        };
        if let Err(error) = self.inner.secrets.check_references(&args) {
            return Err(self.refuse(call, error).await);
        }
        // A rerun plans from the caller's earlier job: read it before planning.
        let previous = match self.previous_job_of(caller, tool_name, &args).await {
            Ok(previous) => previous,
            Err(error) => return Err(self.refuse(call, error).await),
        };
        let prepared = match self.validate(tool_name, args, previous.as_ref()) {
            Ok(prepared) => prepared,
            Err(error) => return Err(self.refuse(call, error).await),
        };
        let mut plan = prepared.plan;
        let controls = prepared.controls;
        call.effect = plan.effect;
        call.session = plan.session.clone();
        let session = match self.enter_session(caller, &mut plan) {
            Ok(session) => session,
            Err(error) => return Err(self.refuse(call, error).await),
        };
        if let Err(error) = self.enter_command(caller, &mut plan) {
            return Err(self.refuse(call, error).await);
        }
        call.record.hosts = plan.hosts.iter().map(|host| host.id.to_string()).collect();
        call.record.commands = plan.commands.iter().map(Command::to_shell).collect();
        call.record.probes = plan.probes.clone();
        if let Err(error) = self.check_local(&plan) {
            call.record.decision = CallDecision::Denied;
            return Err(self.refuse(call, error).await);
        }
        let analyses = self.analyze(&plan, session.as_ref());
        let class = analyses.iter().map(|analysis| analysis.class).max();
        call.record.class = class;
        call.record.opaque = analyses
            .iter()
            .flat_map(|analysis| analysis.opaque.iter().cloned())
            .collect();
        call.record.allow_opaque = self.inner.policy.allows_opaque();
        let decisions = self.check_policy(&plan, &analyses, &caller.identity);
        // A dry run shows every host's verdict instead of stopping at the first denial.
        if !plan.dry_run
            && let Some((host, decision)) = decisions
                .iter()
                .find(|(_, decision)| decision.decision == Verdict::Denied)
        {
            call.record.rule = decision.rule.clone();
            return Err(self.deny(call, policy_error(host, decision)).await);
        }
        let grants = match self
            .grant_paths(
                &plan,
                session.as_ref(),
                &call.record.job_id,
                &caller.identity,
            )
            .await
        {
            Ok(grants) => grants,
            Err(error) if error.code == ErrorCode::InvalidInput => {
                return Err(self.refuse(call, error).await);
            }
            Err(error) => return Err(self.deny(call, error).await),
        };
        call.record.paths = grants.records();
        let digest = self.digest(tool_name, &controls, &plan, &grants);
        if controls.confirm
            && controls.plan_token.is_none()
            && plan.effect != Effect::ReadOnly
            && self.inner.loaded.config.policy.require_plan_token
        {
            let error = Error::new(
                ErrorCode::ConfirmRequired,
                "policy.require_plan_token is on: confirm: true needs the plan_token of a preview",
            )
            .with_hint("Call again without confirm to get a preview and its plan_token, then confirm with both.");
            return Err(self.refuse(call, error).await);
        }
        if let Some(token) = &controls.plan_token
            && let Err(error) = self.inner.tokens.redeem(&caller.id, token, &digest)
        {
            return Err(self.refuse(call, error).await);
        }
        let warned = grants.warned
            || decisions
                .iter()
                .any(|(_, decision)| decision.decision == Verdict::Warned);
        call.record.decision = if warned {
            CallDecision::Warned
        } else {
            CallDecision::Allowed
        };
        let asking = approve::Asking {
            tool: tool_name,
            caller,
            hosts: &plan.hosts,
            analyses: &analyses,
            // File tools' resolved paths, and the paths commands name (as written:
            // commands resolve them on the host when they run).
            paths: call
                .record
                .paths
                .iter()
                .map(|path| path.resolved.clone().unwrap_or_else(|| path.path.clone()))
                .chain(analyses.iter().flat_map(|analysis| {
                    analysis
                        .paths
                        .iter()
                        .map(|used| used.path.clone())
                        .chain(analysis.patterns.iter().map(|pattern| pattern.path.clone()))
                }))
                .collect(),
        };
        let approval_rule = self.inner.approvals.rule_for(&asking);
        // A file tool decides itself whether a call without confirm previews or acts;
        // one that needs approval is previewed first (the confirmed call asks).
        if approval_rule.is_some()
            && plan.commands.is_empty()
            && plan.effect == Effect::Destructive
            && !controls.confirm
        {
            plan.dry_run = true;
        }
        // A destructive command runs only when confirmed; else it is shown.
        let confirm_required = !plan.commands.is_empty()
            && class == Some(Class::Destructive)
            && !controls.confirm
            && !plan.dry_run;
        // Previews change nothing: a human approves what acts.
        if let Some(rule) = approval_rule
            && !plan.dry_run
            && !confirm_required
        {
            let gate = approve::Request {
                asking,
                rule,
                digest: &digest,
                approval_id: controls.approval_id.as_deref(),
                shown: self.approval_request(&controls.args, &call),
                summary: approval_summary(
                    tool_name,
                    &call.record,
                    &self.inner.secrets,
                    &call.env_values,
                ),
                cancel: &cancel,
            };
            match self.approval_gate(gate).await {
                Ok(id) => {
                    call.record.decision = CallDecision::Approved;
                    call.record.approval_id = Some(id);
                }
                Err(error) => {
                    call.record.decision = if error.code == ErrorCode::ApprovalPending {
                        CallDecision::Pending
                    } else {
                        CallDecision::Denied
                    };
                    call.record.approval_id = error
                        .approval_id
                        .as_deref()
                        .map(|token| crate::store::public_id(token).to_owned());
                    return Err(self.refuse(call, error).await);
                }
            }
        }
        call.record.phase = Phase::Requested;
        // Invariant: the requested record is durable before any side effect.
        self.write(&call).await?;

        let job_id = call.record.job_id.clone();
        let jobs = self
            .inner
            .registry
            .find(tool_name)
            .is_some_and(|tool| tool.jobs());
        if jobs && !plan.dry_run && !confirm_required {
            let owner = approve::owner(caller);
            let summary = approval_summary(
                tool_name,
                &call.record,
                &self.inner.secrets,
                &call.env_values,
            );
            let job = match self
                .begin_job(jobs::JobStart {
                    job_id: &job_id,
                    owner: &owner,
                    tool: tool_name,
                    summary,
                    hosts: &plan.hosts,
                    spooled: !plan.commands.is_empty(),
                    deadline: prepared.deadline,
                    env_values: call.env_values.clone(),
                })
                .await
            {
                Ok(job) => job,
                Err(error) => return self.complete(call, &plan, false, Err(error)).await,
            };
            let mut context = self.context(caller, &plan, session, grants, job_id, cancel.clone());
            // The job's own: a client's cancellation ends its wait, not its work.
            context.cancel = job.cancel.clone();
            context.progress = Some(self.job_progress(&job, progress.clone()));
            context.job = Some(Arc::clone(&job));
            let wait = controls
                .wait
                .unwrap_or(Duration::from_millis(crate::tool::DEFAULT_WAIT_MS));
            let engine = self.clone();
            let run = prepared.run;
            let background = Arc::clone(&job);
            let env_values = call.env_values.clone();
            let task = tokio::spawn(async move {
                let mut result = run(context).await;
                if let Err(error) = &result {
                    engine.note_denial(&call, error);
                }
                engine.record_learned_keys(&call.record.job_id).await;
                result = engine.complete(call, &plan, false, result).await;
                match &mut result {
                    Ok(value) => engine.inner.secrets.mask(value, &env_values),
                    Err(error) => engine.inner.secrets.mask_error(error, &env_values),
                }
                engine.finish_job(&background, &result).await;
                result
            });
            return self.await_job(&job, task, wait, &cancel, progress).await;
        }
        let result = if plan.dry_run || confirm_required {
            let token = (plan.effect != Effect::ReadOnly)
                .then(|| self.inner.tokens.mint(&caller.id, &digest));
            preview(
                tool_name, &plan, &analyses, &decisions, &grants, &job_id, token,
            )
        } else {
            let mut context = self.context(caller, &plan, session, grants, job_id, cancel);
            context.progress = progress;
            let mut result = (prepared.run)(context).await;
            // A tool's own preview (a file it would replace) gets a token to confirm it.
            if let Ok(Value::Object(answer)) = &mut result
                && answer
                    .get("preview")
                    .is_some_and(|preview| !preview.is_null())
                && plan.effect != Effect::ReadOnly
            {
                let token = self.inner.tokens.mint(&caller.id, &digest);
                answer.insert("plan_token".into(), Value::String(token));
            }
            result
        };
        if let Err(error) = &result {
            self.note_denial(&call, error);
        }
        self.record_learned_keys(&call.record.job_id).await;
        self.complete(call, &plan, confirm_required, result).await
    }

    /// The handle a call's tool runs with: exactly what its plan grants.
    fn context(
        &self,
        caller: &Caller,
        plan: &Plan,
        session: Option<SessionView>,
        grants: grant::Grants,
        job_id: String,
        cancel: CancellationToken,
    ) -> RunContext {
        RunContext {
            engine: self.clone(),
            client: caller.id.as_str().to_owned(),
            identity: caller.identity.clone(),
            owner: approve::owner(caller),
            session,
            hosts: Arc::new(plan.hosts.clone()),
            commands: Arc::new(plan.commands.clone()),
            input: Arc::new(plan.input.clone()),
            probes: Arc::new(plan.probes.clone()),
            grants: Arc::new(grants),
            interactive: Arc::new(plan.interactive.clone()),
            effect: plan.effect,
            known: Arc::default(),
            job_id,
            cancel,
            progress: None,
            job: None,
            rollout: plan.rollout.clone().map(Arc::new),
        }
    }

    /// How policy reads each planned command (host-independent, once per call).
    /// In a session, a command runs in the session's cwd (or a `working_directory`
    /// below it): its relative paths are read there.
    fn analyze(&self, plan: &Plan, session: Option<&SessionView>) -> Vec<Analysis> {
        let directory = match (session, &plan.input.working_directory) {
            (Some(session), Some(directory)) if !directory.starts_with('/') => {
                Some(format!("{}/{directory}", session.cwd.trim_end_matches('/')))
            }
            (Some(session), None) => Some(session.cwd.clone()),
            (_, directory) => directory.clone(),
        };
        // A line sent to a shell after one that changed its directory.
        let unplaced = matches!(
            &plan.interactive,
            Some(crate::tool::InteractivePlan::Continue(step)) if step.unplaced
        );
        plan.commands
            .iter()
            .map(|command| {
                let (shell, argv) = match command {
                    Command::Shell(text) => (Some(text.as_str()), None),
                    Command::Argv(argv) => (None, Some(argv.as_slice())),
                };
                let input = Input {
                    shell,
                    argv,
                    env: &plan.input.env,
                    stdin: plan.input.stdin.as_deref(),
                    working_directory: directory.as_deref(),
                };
                if unplaced {
                    self.inner.policy.analyze_unplaced(input)
                } else {
                    self.inner.policy.analyze(input)
                }
            })
            .collect()
    }

    /// The digest a plan token binds: tool, arguments, hosts, commands and what they
    /// get, every path with what it held on each host, and the policy version.
    fn digest(
        &self,
        tool: &str,
        controls: &Controls,
        plan: &Plan,
        grants: &grant::Grants,
    ) -> String {
        use sha2::{Digest, Sha256};
        let bound = serde_json::json!({
            "tool": tool,
            "args": controls.args,
            "hosts": plan.hosts.iter().map(|host| host.id.as_str()).collect::<Vec<_>>(),
            "commands": plan.commands,
            "env": plan.input.env,
            "stdin": plan.input.stdin,
            "working_directory": plan.input.working_directory,
            "session": plan.session,
            "paths": grants.fingerprint(),
            "policy": self.inner.policy.version(),
        });
        hex::encode(Sha256::digest(bound.to_string().as_bytes()))
    }

    /// Finds the tool and checks the arguments against its schema; the tool plans.
    fn validate(
        &self,
        tool_name: &str,
        args: Value,
        previous: Option<&crate::store::Job>,
    ) -> Result<Prepared> {
        let tool = self.inner.registry.find(tool_name).ok_or_else(|| {
            Error::invalid_arguments(format!("unknown tool {tool_name:?}"))
                .with_suggestions(self.inner.registry.closest_names(tool_name))
                .with_recovery_tool("tools_search")
        })?;
        let planning = PlanContext {
            previous,
            ..self.planning()
        };
        tool.prepare(args, &planning)
    }

    /// Records a refusal before policy (`rejected`, or `denied` by the local gate) as
    /// one completed record, and returns the error.
    async fn refuse(&self, mut call: Call, error: Error) -> Error {
        self.note_denial(&call, &error);
        call.record.outcome = Some("rejected".into());
        call.record.error_code = Some(error.code.to_string());
        call.record.reason = Some(error.message.clone());
        match self.write(&call).await {
            Ok(()) => error,
            Err(audit_error) => audit_error,
        }
    }

    /// Records a policy or path denial as a `requested` and a `completed` record (what
    /// was asked, and that it was refused), and returns the error.
    async fn deny(&self, mut call: Call, error: Error) -> Error {
        call.record.decision = CallDecision::Denied;
        call.record.reason = Some(error.message.clone());
        call.record.phase = Phase::Requested;
        if let Err(audit_error) = self.write(&call).await {
            return audit_error;
        }
        call.record.phase = Phase::Completed;
        self.refuse(call, error).await
    }

    /// Writes the outcome record and answers.
    async fn complete(
        &self,
        mut call: Call,
        plan: &Plan,
        previewed: bool,
        result: Result<Value>,
    ) -> Result<Value> {
        call.record.phase = Phase::Completed;
        call.record.duration_ms = Some(call.started.elapsed().as_millis() as u64);
        match &result {
            Ok(value) => {
                let failed = value.pointer("/summary/ok") == Some(&Value::Bool(false));
                let outcome = if plan.dry_run {
                    "dry_run"
                } else if previewed {
                    "preview"
                } else if failed {
                    "failed"
                } else {
                    "ok"
                };
                call.record.outcome = Some(outcome.into());
            }
            Err(error) => {
                call.record.outcome = Some("error".into());
                call.record.error_code = Some(error.code.to_string());
                call.record.reason = Some(error.message.clone());
            }
        }
        // Invariant: the outcome record is durable before the answer.
        self.write(&call).await?;
        result
    }

    /// A refusal inside a session shows in its `session_summary`.
    fn note_denial(&self, call: &Call, error: &Error) {
        if let Some(session) = &call.session
            && matches!(
                error.code,
                ErrorCode::PolicyDenied | ErrorCode::PathOutsideRoot
            )
        {
            let what = format!("{}: {}", call.record.tool, error.message);
            self.inner.sessions.record(session, Event::Denied, &what);
        }
    }

    /// Host keys the transport trusted on first use (`accept-new`) during this call,
    /// one audit event each: which key warden now trusts is the operator's to review.
    pub(super) async fn record_learned_keys(&self, job_id: &str) {
        for key in self.inner.ssh.learned_host_keys() {
            tracing::info!(host = %key.host, fingerprint = %key.fingerprint, "trusted a new host key (accept-new)");
            let event = json!({
                "event": "host_key_learned",
                "host": key.host,
                "fingerprint": key.fingerprint,
                "job_id": job_id,
            });
            if let Err(error) = self.audit_event(event).await {
                tracing::error!("cannot record a learned host key: {error}");
            }
        }
    }

    /// What the operator is shown to decide on: the call's arguments (see
    /// [`shown_args`]), commands, paths and class, masked like an answer.
    fn approval_request(&self, args: &Value, call: &Call) -> Value {
        let record = &call.record;
        let mut shown = serde_json::json!({
            "args": shown_args(args),
            "commands": record.commands,
            "paths": record.paths,
            "class": record.class,
            "opaque": record.opaque,
        });
        self.inner.secrets.mask(&mut shown, &call.env_values);
        shown
    }

    /// Appends one record; a mutating call's record is durable when this returns.
    async fn write(&self, call: &Call) -> Result<()> {
        let effect = call.effect;
        // Secrets in what the caller wrote (a token in a command, a reason quoting
        // it) are masked in the record too.
        let mut record = call.record.clone();
        let masker = &self.inner.secrets;
        let also = &call.env_values;
        masker.mask(&mut record.args, also);
        for text in record
            .commands
            .iter_mut()
            .chain(record.reason.as_mut())
            .chain(record.opaque.iter_mut())
        {
            *text = masker.mask_text(text, also).into_owned();
        }
        let record = &record;
        let durability = if effect == Effect::ReadOnly {
            Durability::Group
        } else {
            Durability::Sync
        };
        let written = match &self.inner.audit {
            Ok(log) => match log.append(record, durability) {
                Ok(receipt) => receipt.durable().await.map(|_| ()),
                Err(error) => Err(error),
            },
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
        let session = self.inner.sessions.get(caller.id.as_str(), id)?;
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
        if plan.files() && plan.effect != Effect::ReadOnly && !local.allow_write {
            return Err(Error::new(
                ErrorCode::LocalDisabled,
                "the built-in host `local` is read-only: file writes on it are off",
            )
            .with_host("local")
            .with_hint("Use a remote host, or ask the operator to set local.allow_write: true (or WARDEN_UNSAFE_LOCAL=1)."));
        }
        Ok(())
    }

    /// Policy's decision for every planned command and probe on every planned host,
    /// for the caller's identity. A probe is checked under its label and as its script.
    fn check_policy(
        &self,
        plan: &Plan,
        analyses: &[Analysis],
        identity: &str,
    ) -> Vec<(Arc<Host>, Decision)> {
        let policy = &self.inner.policy;
        let probes: Vec<Analysis> = plan
            .probes
            .iter()
            .flat_map(|probe| [probe.label, probe.script])
            .map(|text| policy.analyze(Input::shell(text)))
            .collect();
        let mut decisions = Vec::new();
        for host in &plan.hosts {
            for analysis in analyses {
                let decision = policy.evaluate(host, identity, analysis, CommandOrigin::Caller);
                decisions.push((Arc::clone(host), decision));
            }
            for analysis in &probes {
                let decision =
                    policy.evaluate(host, identity, analysis, CommandOrigin::BuiltinProbe);
                decisions.push((Arc::clone(host), decision));
            }
        }
        decisions
    }

    fn transport(&self, host: &Host) -> &Arc<dyn Transport> {
        match host.kind {
            HostKind::Ssh => &self.inner.ssh,
            HostKind::Local => &self.inner.local,
        }
    }

    /// Shuts transports down and flushes the audit log.
    /// SIGTERM/SIGINT: takes no new calls, lets those in flight finish for `grace`,
    /// then cancels the rest and waits (bounded) for their outcome records.
    pub async fn drain(&self, grace: Duration) {
        self.inner.drain.run(grace).await;
    }

    pub async fn shutdown(&self) {
        self.leave_jobs();
        self.stop_commands().await;
        self.inner.ssh.shutdown().await;
        if let Ok(log) = &self.inner.audit {
            log.flush();
        }
    }
}

/// One tool call as it moves through the pipeline: its audit record, filled in step
/// by step, and the effect that sets the record's durability.
struct Call {
    record: AuditEntry,
    /// The call's literal `env` values: masked in its records like secrets.
    env_values: Vec<String>,
    effect: Effect,
    /// The file session the call works in, once the plan names it.
    session: Option<String>,
    started: Instant,
}

impl Call {
    fn new(caller: &Caller, tool_name: &str, args: &Value, env_values: Vec<String>) -> Call {
        Call {
            env_values,
            record: AuditEntry {
                client: caller.client.clone(),
                client_id: caller.id.as_str().to_owned(),
                identity: caller.identity.clone(),
                tool: tool_name.to_owned(),
                args: audit::mask_secrets(args),
                hosts: Vec::new(),
                commands: Vec::new(),
                probes: Vec::new(),
                paths: Vec::new(),
                class: None,
                opaque: Vec::new(),
                allow_opaque: false,
                decision: CallDecision::Rejected,
                rule: None,
                reason: None,
                phase: Phase::Completed,
                outcome: None,
                error_code: None,
                duration_ms: None,
                job_id: new_job_id(),
                approval_id: None,
            },
            // Until the tool is known, a refusal is recorded like a read.
            effect: Effect::ReadOnly,
            session: None,
            started: Instant::now(),
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

fn preview(
    tool: &str,
    plan: &Plan,
    analyses: &[Analysis],
    decisions: &[(Arc<Host>, Decision)],
    grants: &grant::Grants,
    job_id: &str,
    plan_token: Option<String>,
) -> Result<Value> {
    let ok = decisions
        .iter()
        .all(|(_, decision)| decision.decision != Verdict::Denied);
    let next = match (&plan_token, plan.dry_run, ok) {
        (_, _, false) => "policy denies it on some hosts (see policy); nothing ran",
        (Some(_), false, true) => {
            "destructive: nothing ran; call again with confirm: true and this plan_token to run exactly this"
        }
        (Some(_), true, true) => {
            "dry run: nothing ran; call again without dry_run, with confirm: true and this plan_token to run exactly this"
        }
        (None, _, true) => "dry run: nothing ran",
    };
    let preview = Preview {
        dry_run: plan.dry_run,
        preview: format!("{next} ({} on {} hosts)", tool, plan.hosts.len()),
        tool: tool.to_owned(),
        hosts: plan.hosts.iter().map(|host| host.id.to_string()).collect(),
        commands: plan
            .commands
            .iter()
            .zip(analyses)
            .map(|(command, analysis)| CommandPreview {
                command: command.to_shell(),
                analysis: analysis.clone(),
            })
            .collect(),
        probes: plan
            .probes
            .iter()
            .map(|probe| ProbePreview {
                label: probe.label.to_owned(),
                script: probe.script.to_owned(),
            })
            .collect(),
        paths: grants.records(),
        policy: decisions
            .iter()
            .map(|(host, decision)| HostVerdict {
                host_id: host.id.to_string(),
                decision: decision.decision.clone(),
                rule: decision.rule.clone(),
                reason: decision.reason.clone(),
                hint: decision.hint.clone(),
            })
            .collect(),
        rollout: plan
            .rollout
            .as_ref()
            .map(|rollout| rollout.planned(&plan.hosts)),
        plan_token,
        summary: PreviewSummary {
            ok,
            job_id: job_id.to_owned(),
        },
    };
    serde_json::to_value(preview)
        .map_err(|error| Error::internal(format!("unserializable preview: {error}")))
}

/// warden's own files, as configured and as resolved: no tool may touch them.
fn own_files(loaded: &LoadedConfig) -> Vec<String> {
    let mut paths = vec![loaded.state_dir.clone(), loaded.audit_dir()];
    paths.extend(loaded.source.clone());
    let mut spellings = Vec::new();
    for path in paths {
        let absolute = if path.is_absolute() {
            path.clone()
        } else {
            std::env::current_dir().unwrap_or_default().join(&path)
        };
        spellings.push(absolute.display().to_string());
        if let Ok(resolved) = std::fs::canonicalize(&absolute) {
            spellings.push(resolved.display().to_string());
        }
    }
    spellings.sort();
    spellings.dedup();
    spellings
}

/// One line for the operator's list: the tool and what it touches (masked).
fn approval_summary(
    tool: &str,
    record: &AuditEntry,
    masker: &crate::secrets::Masker,
    env_values: &[String],
) -> String {
    let what = record
        .commands
        .first()
        .cloned()
        .or_else(|| record.paths.first().map(|path| path.path.clone()))
        .unwrap_or_default();
    let more = match record.commands.len() {
        0 | 1 => String::new(),
        count => format!(" (+{} more)", count - 1),
    };
    let text = format!("{tool} on {}: {what}{more}", record.hosts.join(","));
    let text = masker.mask_text(&text, env_values).into_owned();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Longest argument string the operator is shown whole (the rest: its size and hash).
const SHOWN_ARG: usize = 16 * 1024;

/// The arguments as the operator sees them to decide: everything, stdin and file
/// content included (the human approves what runs), but `env` values hidden (secret
/// references shown by name) and very long strings cut with their size and hash.
fn shown_args(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let shown = if key == "env" {
                        audit::mask_secrets(&serde_json::json!({ "env": item }))["env"].clone()
                    } else {
                        shown_args(item)
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shown_args).collect()),
        Value::String(text) if text.len() > SHOWN_ARG => {
            use sha2::{Digest, Sha256};
            let cut = (0..=SHOWN_ARG)
                .rev()
                .find(|index| text.is_char_boundary(*index))
                .unwrap_or(0);
            Value::String(format!(
                "{}… ({} bytes in all, sha256 {})",
                &text[..cut],
                text.len(),
                hex::encode(Sha256::digest(text.as_bytes()))
            ))
        }
        other => other.clone(),
    }
}

fn new_job_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("job_{}", &id[..12])
}
