//! `policy_test`: would this command be allowed, how does policy read it, and which
//! rule decided? Runs nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::{Error, Result};
use warden_core::inventory::{Host, Inventory};
use warden_core::policy::{Analysis, Decision, Input};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct PolicyTest;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyTestParams {
    /// One host id (or give target).
    #[serde(default)]
    pub host_id: Option<String>,
    /// A target selector (or give host_id).
    #[serde(default)]
    pub target: Option<String>,
    /// The shell command to check (or give argv).
    #[serde(default)]
    pub command: Option<String>,
    /// Program and arguments, no shell.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Environment the command would get (names are checked).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text for stdin (read when a shell takes its script from there).
    #[serde(default)]
    pub stdin: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostDecision {
    pub host_id: String,
    #[serde(flatten)]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub decision: Decision,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyTestOutput {
    /// Allowed on every host.
    pub allowed: bool,
    /// How policy reads the command: simple commands (argv, wrappers looked through,
    /// class), what it cannot see, paths, env names.
    pub analysis: Analysis,
    pub results: Vec<HostDecision>,
    /// Said when only deny rules apply: they stop what they name, not arbitrary code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Tool for PolicyTest {
    type Params = PolicyTestParams;
    type Output = PolicyTestOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "policy_test",
        domain: Domain::Governance,
        summary: "Test command vs policy",
        description: "Would a command be allowed on a host or target, how policy reads it (simple commands, wrappers looked through, classes read_only/mutating/destructive, what it cannot see), and which rule decided? Runs nothing.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"host_id": "web-1", "command": "rm -rf /"}"#,
    };

    fn plan(&self, params: &PolicyTestParams, planning: &PlanContext) -> Result<Plan> {
        hosts_of(
            params.host_id.as_deref(),
            params.target.as_deref(),
            planning.inventory(),
        )?;
        input_of(params)?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: PolicyTestParams,
        context: RunContext,
    ) -> impl Future<Output = Result<PolicyTestOutput>> + Send + 'static {
        async move {
            let hosts = hosts_of(
                params.host_id.as_deref(),
                params.target.as_deref(),
                context.inventory(),
            )?;
            let env: Vec<String> = params.env.keys().cloned().collect();
            let (shell, argv) = input_of(&params)?;
            let analysis = context.analyze_command(Input {
                shell,
                argv,
                env: &env,
                stdin: params.stdin.as_deref(),
                working_directory: None,
            });
            Ok(check(&context, &hosts, analysis))
        }
    }
}

/// Policy's decision on every host for one analysed command.
pub fn check(context: &RunContext, hosts: &[Arc<Host>], analysis: Analysis) -> PolicyTestOutput {
    let results: Vec<HostDecision> = hosts
        .iter()
        .map(|host| HostDecision {
            host_id: host.id.to_string(),
            decision: context.evaluate_policy(host, &analysis),
        })
        .collect();
    let advisory = hosts
        .iter()
        .any(|host| context.policy_capabilities(host).advisory);
    PolicyTestOutput {
        allowed: results.iter().all(|result| result.decision.allowed),
        analysis,
        results,
        note: advisory.then(|| {
            "only deny rules apply here: they stop the commands they name, not arbitrary code (an allow list does)".to_owned()
        }),
    }
}

fn input_of(params: &PolicyTestParams) -> Result<(Option<&str>, Option<&[String]>)> {
    match (&params.command, &params.argv) {
        (Some(command), None) => Ok((Some(command.as_str()), None)),
        (None, Some(argv)) if !argv.is_empty() => Ok((None, Some(argv.as_slice()))),
        _ => Err(Error::invalid_input("give command or argv (one of them)")),
    }
}

/// The hosts of `host_id` or `target` (exactly one).
pub fn hosts_of(
    host_id: Option<&str>,
    target: Option<&str>,
    inventory: &Inventory,
) -> Result<Vec<Arc<Host>>> {
    match (host_id, target) {
        (Some(host_id), None) => Ok(vec![inventory.require(host_id)?]),
        (None, Some(target)) => inventory.resolve(target),
        _ => Err(Error::invalid_input(
            "give exactly one of host_id or target",
        )),
    }
}
