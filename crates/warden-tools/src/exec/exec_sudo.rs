//! `exec_sudo`: one command through sudo on every host of a target, concurrently.
//!
//! The planned command is the sudo invocation itself, so policy reads through `sudo`
//! (and `sh -c`) to the command it runs: a deny rule on the inner command still
//! denies, and an allow rule must name the privileged invocation (`policy/wrappers.rs`).
//!
//! - No password: `sudo -n -- CMD` (the host's NOPASSWD rules; a password prompt would
//!   hang, `-n` makes it an error instead).
//! - `password`: a secret reference only (`${env:NAME}`, `${file:PATH}` as the operator
//!   allows them); a literal is refused. `sudo -k -S -p '' -- CMD` reads it from the
//!   first line of stdin, which the engine writes ahead of the caller's `stdin` on the
//!   way to the host: never in an argv, the log or an answer. `-k` ignores cached
//!   credentials, so sudo always reads that line rather than leave it to the command.
//! - `env`: passed through with `--preserve-env=NAMES`; sudoers must allow it (root
//!   may; others need `SETENV`), else sudo refuses.
//! - A shell `command` runs as `sh -c COMMAND` under sudo; `argv` as it is.

use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::Deserialize;

use warden_core::error::{Error, ErrorCode, Result};
use warden_core::inventory::Host;
use warden_core::secrets::is_reference;
use warden_core::tool::{Domain, Effect, FleetResult, HostResult, Plan, Tool, ToolInfo};
use warden_core::transport::{Command, ExecRequest};
use warden_core::{PlanContext, RunContext};

use crate::exec::exec::{CommandOptions, run_on_host};

pub struct ExecSudo;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecSudoParams {
    /// host:ID, host:GLOB, group:G, tag:K=V, all; comma-joined (or session_id).
    #[serde(default)]
    pub target: Option<String>,
    #[serde(flatten)]
    pub options: CommandOptions,
    /// The login user's sudo password as a secret reference, "${env:NAME}" or
    /// "${file:PATH}" (never the password itself). Without it: NOPASSWD rules only.
    #[serde(default)]
    pub password: Option<String>,
    /// Fold identical outputs into same_as.
    #[serde(default = "yes")]
    pub fold: bool,
}

fn yes() -> bool {
    true
}

impl ExecSudoParams {
    /// The sudo invocation of the caller's command: what policy checks and what runs.
    fn command(&self) -> Result<Command> {
        if let Some(password) = &self.password
            && !is_reference(password)
        {
            return Err(Error::invalid_input(
                "password must be a secret reference, not the password itself",
            )
            .with_hint(
                "Give \"${env:NAME}\" or \"${file:/path}\" naming where warden reads it (the operator allows them in secrets.env / secrets.files of warden.yaml), or leave password out for NOPASSWD rules.",
            ));
        }
        let mut argv: Vec<String> = vec!["sudo".into()];
        if self.password.is_some() {
            argv.extend(["-k", "-S", "-p", ""].map(String::from));
        } else {
            argv.push("-n".into());
        }
        if !self.options.env.is_empty() {
            let names: Vec<&str> = self.options.env.keys().map(String::as_str).collect();
            argv.push(format!("--preserve-env={}", names.join(",")));
        }
        argv.push("--".into());
        match self.options.command()? {
            Command::Shell(text) => argv.extend(["sh".into(), "-c".into(), text]),
            Command::Argv(inner) => argv.extend(inner),
        }
        Ok(Command::Argv(argv))
    }
}

impl Tool for ExecSudo {
    type Params = ExecSudoParams;
    type Output = FleetResult;

    const INFO: ToolInfo = ToolInfo {
        name: "exec_sudo",
        domain: Domain::Exec,
        summary: "Run command as root via sudo",
        description: "As exec, through sudo on every host of a target: `command` (run by sh -c) or `argv`. Without password: sudo -n (the host's NOPASSWD rules). password: a secret reference (\"${env:NAME}\" or \"${file:PATH}\" the operator allows), never the password: sudo -S reads it from stdin, it is in no argv, log or answer. Policy checks the command under sudo (deny rules on it hold). Per host errors: PERMISSION_DENIED (a password is needed, was wrong, or sudoers refuses), SSH_*, CMD_TIMEOUT. Errors: INVALID_INPUT (a literal password), POLICY_DENIED, TARGET_EMPTY.",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"target": "group:web", "argv": ["id", "-u"]}"#,
    };

    fn plan(&self, params: &ExecSudoParams, planning: &PlanContext) -> Result<Plan> {
        let command = params.command()?;
        let hosts = params
            .options
            .hosts(params.target.as_deref(), "target", |target| {
                planning.inventory().resolve(target)
            })?;
        Ok(params.options.plan(hosts, command))
    }

    fn run(
        &self,
        params: ExecSudoParams,
        context: RunContext,
    ) -> impl Future<Output = Result<FleetResult>> + Send + 'static {
        async move {
            let started = Instant::now();
            let mut request = params.options.request_in(&context).await?;
            request.command = params.command()?;
            request.secret_stdin = params.password.clone();
            let request = Arc::new(request);
            let hosts = context.planned_hosts();
            let results = context
                .for_each_host(
                    &hosts,
                    move |context, host| {
                        let request = Arc::clone(&request);
                        async move { sudo_on_host(&context, &host, &request).await }
                    },
                    |host, error| HostResult::from_error(host.id.as_str(), &error, 0),
                )
                .await;
            Ok(FleetResult::new(
                results,
                context.job_id(),
                started,
                params.fold,
            ))
        }
    }
}

/// One host's run; sudo's own refusals become the host's `PERMISSION_DENIED`.
async fn sudo_on_host(context: &RunContext, host: &Host, request: &ExecRequest) -> HostResult {
    let mut result = run_on_host(context, host, request).await;
    if result.exit_code == Some(1)
        && let Some(error) = sudo_refusal(result.stderr.as_deref().unwrap_or_default(), host)
    {
        result.ok = false;
        result.error = Some(error.to_json()["error"].clone());
    }
    result
}

/// What sudo's messages on stderr (each `sudo: …`) say went wrong, if it refused.
fn sudo_refusal(stderr: &str, host: &Host) -> Option<Error> {
    let said = |words: &[&str]| {
        stderr
            .lines()
            .any(|line| line.starts_with("sudo: ") && words.iter().any(|word| line.contains(word)))
    };
    let (message, hint) = if said(&["a password is required"]) {
        (
            "sudo needs a password on this host (no NOPASSWD rule covers the command)",
            "Give password: \"${env:NAME}\" or \"${file:/path}\" (a secret the operator allows), or ask the operator for a NOPASSWD sudoers rule.",
        )
    } else if said(&["incorrect password", "no password was provided"]) {
        (
            "sudo refused the password",
            "The secret the password reference names is not this login user's password on the host: ask the operator to check it.",
        )
    } else if said(&[
        "not in the sudoers file",
        "is not allowed to",
        "may not run sudo",
    ]) {
        (
            "the login user may not run this command with sudo",
            "Ask the operator for a sudoers rule, or use a host entry whose user has one.",
        )
    } else {
        return None;
    };
    Some(
        Error::new(
            ErrorCode::PermissionDenied,
            format!("{message} on {}", host.id),
        )
        .with_host(host.id.as_str())
        .with_hint(hint),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(args: serde_json::Value) -> ExecSudoParams {
        serde_json::from_value(args).unwrap()
    }

    #[test]
    fn the_planned_command_is_the_sudo_invocation() {
        let plain = params(serde_json::json!({"target": "all", "command": "id -u"}));
        assert_eq!(
            plain.command().unwrap().to_shell(),
            "sudo -n -- sh -c 'id -u'"
        );
        let with = params(serde_json::json!({
            "target": "all",
            "argv": ["systemctl", "restart", "nginx"],
            "password": "${env:SUDO_PW}",
            "env": {"A": "1"},
        }));
        assert_eq!(
            with.command().unwrap().to_shell(),
            "sudo -k -S -p '' --preserve-env=A -- systemctl restart nginx"
        );
    }

    #[test]
    fn a_literal_password_is_refused_with_a_hint() {
        let literal =
            params(serde_json::json!({"target": "all", "command": "id", "password": "hunter22"}));
        let error = literal.command().unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidInput);
        assert!(!error.message.contains("hunter22"), "{error:?}");
        assert!(error.hint.unwrap().contains("${env:NAME}"));
    }
}
