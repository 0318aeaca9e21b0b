//! `doctor`: checks the setup (config, audit log, known_hosts, keys, ssh-agent) and,
//! given a target, whether each host can be reached and logged into.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::config::{HostKeyChecking, expand_home};
use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Probe, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct Doctor;

/// The login check: connect, authenticate, open a channel, run nothing.
const LOGIN_PROBE: Probe = Probe {
    label: "warden-doctor",
    script: "true",
};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DoctorParams {
    /// Also try to log into these hosts (a target selector).
    #[serde(default)]
    pub target: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DoctorOutput {
    /// Every check passed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Tool for Doctor {
    type Params = DoctorParams;
    type Output = DoctorOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "doctor",
        domain: Domain::Core,
        summary: "Check setup, host logins",
        description: "Check config, audit log, known_hosts, identity files, ssh-agent; with a target, log into each host and name the failure (SSH_*, HOST_KEY_*).",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: true,
        example: r#"{"target": "group:web"}"#,
    };

    fn plan(&self, params: &DoctorParams, planning: &PlanContext) -> Result<Plan> {
        let Some(target) = &params.target else {
            return Ok(Plan::local_state());
        };
        Ok(Plan::probe(
            planning.inventory().resolve(target)?,
            LOGIN_PROBE,
        ))
    }

    fn run(
        &self,
        _params: DoctorParams,
        context: RunContext,
    ) -> impl Future<Output = Result<DoctorOutput>> + Send + 'static {
        async move {
            let mut checks = setup_checks(&context);
            let hosts = context.planned_hosts();
            let probes = context
                .for_each_host(
                    &hosts,
                    move |context, host| async move {
                        let started = Instant::now();
                        let outcome = context
                            .probe(&host, &LOGIN_PROBE, Duration::from_secs(15), 4096)
                            .await;
                        let (ok, detail) = match outcome {
                            Ok(_) => (
                                true,
                                format!(
                                    "logged in and ran a command in {} ms",
                                    started.elapsed().as_millis()
                                ),
                            ),
                            Err(error) => (false, format!("{}: {}", error.code, error.message)),
                        };
                        Check {
                            name: format!("host {}", host.id),
                            ok,
                            detail,
                        }
                    },
                    |host, error| Check {
                        name: format!("host {}", host.id),
                        ok: false,
                        detail: format!("{}: {}", error.code, error.message),
                    },
                )
                .await;
            checks.extend(probes);
            Ok(DoctorOutput {
                ok: checks.iter().all(|check| check.ok),
                checks,
            })
        }
    }
}

fn setup_checks(context: &RunContext) -> Vec<Check> {
    let loaded = context.config();
    let config = &loaded.config;
    let mut checks = vec![Check {
        name: "config".into(),
        ok: true,
        detail: match &loaded.source {
            Some(path) => format!("{} ({} hosts)", path.display(), config.hosts.len()),
            None => "no config file: zero-config defaults (only the read-only local host)".into(),
        },
    }];
    checks.push(match context.audit_health() {
        Ok(records) => Check {
            name: "audit".into(),
            ok: true,
            detail: format!(
                "{} writable, {records} records",
                loaded.audit_dir().display()
            ),
        },
        Err(reason) => Check {
            name: "audit".into(),
            ok: false,
            detail: format!("UNAVAILABLE (mutating tools refuse to run): {reason}"),
        },
    });
    let known_hosts = expand_home(&config.ssh.known_hosts);
    let needs_known_hosts =
        !config.hosts.is_empty() && config.ssh.host_key_checking == HostKeyChecking::Strict;
    checks.push(Check {
        name: "known_hosts".into(),
        ok: known_hosts.is_file() || !needs_known_hosts,
        detail: format!(
            "{} ({}), host_key_checking: {}",
            known_hosts.display(),
            if known_hosts.is_file() {
                "present"
            } else {
                "missing"
            },
            serde_json::to_value(config.ssh.host_key_checking)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
    });
    let agent = std::env::var_os("SSH_AUTH_SOCK").map(std::path::PathBuf::from);
    checks.push(Check {
        name: "ssh-agent".into(),
        ok: true,
        detail: match agent {
            Some(path) if path.exists() => format!("SSH_AUTH_SOCK={}", path.display()),
            Some(path) => format!("SSH_AUTH_SOCK={} does not exist", path.display()),
            None => "no SSH_AUTH_SOCK: only identity files will be offered".into(),
        },
    });
    for host in context.inventory().hosts() {
        if let Some(identity) = &host.identity_file {
            checks.push(Check {
                name: format!("identity_file of {}", host.id),
                ok: identity.is_file(),
                detail: identity.display().to_string(),
            });
        }
    }
    checks
}
