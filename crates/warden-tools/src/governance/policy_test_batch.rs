//! `policy_test_batch`: `policy_test` for up to 50 commands in one call.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::governance::policy_test::hosts_of;
use warden_core::error::{Error, Result};
use warden_core::policy::{Class, Input, Verdict};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct PolicyTestBatch;

/// Most commands one call checks.
const MAX_COMMANDS: usize = 50;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyTestBatchParams {
    /// One host id (or give target).
    #[serde(default)]
    pub host_id: Option<String>,
    /// A target selector (or give host_id).
    #[serde(default)]
    pub target: Option<String>,
    /// Shell commands to check (at most 50).
    pub commands: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchVerdict {
    pub command: String,
    /// Allowed on every host.
    pub allowed: bool,
    pub class: Class,
    /// Hosts where it would be denied (or warned), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedOn>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RefusedOn {
    pub host_id: String,
    pub decision: Verdict,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyTestBatchOutput {
    pub allowed_count: usize,
    pub results: Vec<BatchVerdict>,
}

impl Tool for PolicyTestBatch {
    type Params = PolicyTestBatchParams;
    type Output = PolicyTestBatchOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "policy_test_batch",
        domain: Domain::Governance,
        summary: "Test many commands vs policy",
        description: "policy_test for up to 50 shell commands at once: per command allowed, class, and the hosts that would refuse it with why. Runs nothing.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"host_id": "web-1", "commands": ["uptime", "rm -rf /srv/app"]}"#,
    };

    fn plan(&self, params: &PolicyTestBatchParams, planning: &PlanContext) -> Result<Plan> {
        hosts_of(
            params.host_id.as_deref(),
            params.target.as_deref(),
            planning.inventory(),
        )?;
        if params.commands.is_empty() || params.commands.len() > MAX_COMMANDS {
            return Err(Error::invalid_input(format!(
                "commands takes 1 to {MAX_COMMANDS} commands, not {}",
                params.commands.len()
            )));
        }
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: PolicyTestBatchParams,
        context: RunContext,
    ) -> impl Future<Output = Result<PolicyTestBatchOutput>> + Send + 'static {
        async move {
            let hosts = hosts_of(
                params.host_id.as_deref(),
                params.target.as_deref(),
                context.inventory(),
            )?;
            let results: Vec<BatchVerdict> = params
                .commands
                .into_iter()
                .map(|command| {
                    let analysis = context.analyze_command(Input::shell(&command));
                    let refused: Vec<RefusedOn> = hosts
                        .iter()
                        .filter_map(|host| {
                            let decision = context.evaluate_policy(host, &analysis);
                            (decision.decision != Verdict::Allowed).then(|| RefusedOn {
                                host_id: host.id.to_string(),
                                decision: decision.decision,
                                reason: decision.reason,
                                rule: decision.rule,
                            })
                        })
                        .collect();
                    BatchVerdict {
                        allowed: refused
                            .iter()
                            .all(|refusal| refusal.decision != Verdict::Denied),
                        class: analysis.class,
                        command,
                        refused,
                    }
                })
                .collect();
            Ok(PolicyTestBatchOutput {
                allowed_count: results.iter().filter(|result| result.allowed).count(),
                results,
            })
        }
    }
}
