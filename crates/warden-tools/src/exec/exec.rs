//! `exec`: run one command on every host of a target, concurrently.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;

use warden_core::error::{Error, Result};
use warden_core::files::FileKind;
use warden_core::inventory::Host;
use warden_core::sandbox::Last;
use warden_core::sessions::Event;
use warden_core::tool::{
    CommandInput, Domain, Effect, FleetResult, HostResult, Plan, RolloutParams, Tool, ToolInfo,
};
use warden_core::transport::{Command, ExecRequest};
use warden_core::{PlanContext, RunContext};

pub struct Exec;

/// Default per-host time limit when `timeout_ms` is not given.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// Options shared by `exec` and `run`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CommandOptions {
    /// POSIX sh command line (or give argv).
    #[serde(default)]
    pub command: Option<String>,
    /// Program and arguments, no shell.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Kill after ms [60000].
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text for stdin.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Working directory.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Show hosts, command, how policy reads it and per-host verdicts; run nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Per-stream output cap (bytes).
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
    /// Run on this file session's host, in its cwd.
    #[serde(default)]
    pub session_id: Option<String>,
}

impl CommandOptions {
    pub fn command(&self) -> Result<Command> {
        match (&self.command, &self.argv) {
            (Some(command), None) if !command.trim().is_empty() => {
                Ok(Command::Shell(command.clone()))
            }
            (None, Some(argv)) if !argv.is_empty() && !argv[0].is_empty() => {
                Ok(Command::Argv(argv.clone()))
            }
            (Some(_), Some(_)) => Err(Error::invalid_input(
                "give either command or argv, not both",
            )),
            _ => Err(Error::invalid_input(
                "command (a non-empty string) or argv (a non-empty list) is required",
            )),
        }
    }

    /// The hosts a call names: those of `named` (a target or host id, resolved by
    /// `resolve`), or none when it works in a session (the engine then plans the
    /// session's host after checking the session is the caller's).
    pub fn hosts(
        &self,
        named: Option<&str>,
        what: &str,
        resolve: impl FnOnce(&str) -> Result<Vec<Arc<Host>>>,
    ) -> Result<Vec<Arc<Host>>> {
        match (named, &self.session_id) {
            (Some(named), None) => resolve(named),
            (None, Some(_)) => Ok(Vec::new()),
            _ => Err(Error::invalid_input(format!(
                "give {what} or session_id (one of them)"
            ))),
        }
    }

    /// The request for one call: in a session, the working directory is the session's
    /// cwd, or `working_directory` resolved inside the session's root.
    pub async fn request_in(&self, context: &RunContext) -> Result<ExecRequest> {
        let mut request = self.request(context.config().config.limits.max_output_bytes)?;
        if let Some(session) = context.session() {
            let directory = match &self.working_directory {
                Some(path) => {
                    let host = context.inventory().require(session.host.as_str())?;
                    let sandbox = context.sandbox(&host, path).await?;
                    let resolved = sandbox.resolve(path, Last::Follow).await?;
                    if resolved.meta.as_ref().map(|meta| meta.kind) != Some(FileKind::Dir) {
                        return Err(Error::invalid_input(format!(
                            "working_directory {path:?} is not a directory in the session"
                        ))
                        .with_path(&resolved.path));
                    }
                    resolved.path
                }
                None => session.cwd.clone(),
            };
            request.working_directory = Some(directory);
            context.note(Event::Ran, &request.command.to_shell());
        }
        Ok(request)
    }

    /// The plan of `exec` and `run`: the caller's command on `hosts`; in a session,
    /// its `working_directory` is a path the engine resolves inside the root.
    pub fn plan(&self, hosts: Vec<Arc<Host>>, command: Command) -> Plan {
        let plan = Plan::command(hosts, command, Effect::Destructive)
            .dry_run(self.dry_run)
            .in_session(self.session_id.clone())
            .with_input(CommandInput {
                env: self.env.keys().cloned().collect(),
                stdin: self.stdin.clone(),
                working_directory: self.working_directory.clone(),
            });
        match (&self.session_id, &self.working_directory) {
            (Some(_), Some(directory)) => plan.with_path(directory, Last::Follow),
            _ => plan,
        }
    }

    /// How long the command may run on each host.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }

    pub fn request(&self, max_output_bytes: usize) -> Result<ExecRequest> {
        for name in self.env.keys() {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::invalid_input(format!(
                    "env name {name:?} is not a valid variable name"
                )));
            }
        }
        if self.timeout_ms == Some(0) {
            return Err(Error::invalid_input("timeout_ms must be at least 1"));
        }
        Ok(ExecRequest {
            command: self.command()?,
            env: self.env.clone(),
            stdin: self.stdin.as_ref().map(|text| text.clone().into_bytes()),
            working_directory: self.working_directory.clone(),
            timeout: self.timeout(),
            // Callers may lower the configured bound, never raise it.
            max_output_bytes: self
                .max_output_bytes
                .unwrap_or(max_output_bytes)
                .min(max_output_bytes),
            hide_command: false,
            spool: None,
            spill: None,
            secret_stdin: None,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecParams {
    /// host:ID, host:GLOB, group:G, tag:K=V, all; comma-joined (or session_id).
    #[serde(default)]
    pub target: Option<String>,
    #[serde(flatten)]
    pub options: CommandOptions,
    #[serde(flatten)]
    pub rollout: RolloutParams,
    /// Fold identical outputs into same_as.
    #[serde(default = "yes")]
    pub fold: bool,
}

fn yes() -> bool {
    true
}

impl Tool for Exec {
    type Params = ExecParams;
    type Output = FleetResult;

    const INFO: ToolInfo = ToolInfo {
        name: "exec",
        domain: Domain::Exec,
        summary: "Run command on target",
        description: "Run a command on every host of a target, concurrently, over SSH: `command` (sh) or `argv`. Per host: stdout, stderr (base64 when not text: *_encoding says so), exit_code (non-zero is a result), duration; empty streams are left out. Output past max_output_bytes: truncated: true, its head and tail around a marker naming the artifact that keeps all of it (artifacts_get); identical outputs fold into same_as. A destructive command (rm, kill, systemctl stop, > file, …) answers with a preview and plan_token; run it with confirm: true and that plan_token. Rolling changes: batch_size, batch_wait, subset, fail_fast, min_success_rate, rerun with last_job_id; hosts of batches a stop skipped answer not_run, rollout.stopped says why. Errors: TARGET_EMPTY, HOST_NOT_FOUND, POLICY_DENIED, LOCAL_DISABLED; per host: SSH_*, HOST_KEY_*, CMD_TIMEOUT.",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"target": "group:web", "command": "uptime"}"#,
    };

    const JOBS: bool = true;

    fn deadline(params: &ExecParams) -> Option<std::time::Duration> {
        Some(params.options.timeout())
    }

    fn plan(&self, params: &ExecParams, planning: &PlanContext) -> Result<Plan> {
        let command = params.options.command()?;
        let hosts = params
            .options
            .hosts(params.target.as_deref(), "target", |target| {
                planning.inventory().resolve(target)
            })?;
        // The same target and command draw the same subset (unless subset_seed says).
        let draw = format!(
            "{}\n{}",
            params.target.as_deref().unwrap_or_default(),
            command.to_shell()
        );
        let (hosts, rollout) = params
            .rollout
            .plan(hosts, &draw, false, planning.previous_job())?;
        Ok(params.options.plan(hosts, command).with_rollout(rollout))
    }

    fn run(
        &self,
        params: ExecParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FleetResult>> + Send + 'static {
        async move {
            let started = Instant::now();
            let request = Arc::new(params.options.request_in(&context).await?);
            let rolled = context
                .rollout(
                    move |context, host| {
                        let request = Arc::clone(&request);
                        async move { run_on_host(&context, &host, &request).await }
                    },
                    |host, error| HostResult::from_error(host.id.as_str(), &error, 0),
                )
                .await;
            Ok(FleetResult::rolled(
                rolled,
                context.job_id(),
                started,
                params.fold,
            ))
        }
    }
}

/// One host's run as a [`HostResult`]; connection failures become its `error`.
pub async fn run_on_host(context: &RunContext, host: &Host, request: &ExecRequest) -> HostResult {
    let started = Instant::now();
    match context.exec(host, request).await {
        Ok(output) => {
            HostResult::from_output(host.id.as_str(), &output, &request.command.to_shell())
        }
        Err(error) => HostResult::from_error(
            host.id.as_str(),
            &error,
            started.elapsed().as_millis() as u64,
        ),
    }
}
