//! `policy_test`: would this command be allowed, and by which rule? Runs nothing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::{Error, Result};
use warden_core::inventory::Host;
use warden_core::policy::Decision;
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
    /// The shell command to check.
    pub command: String,
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
    pub results: Vec<HostDecision>,
}

impl Tool for PolicyTest {
    type Params = PolicyTestParams;
    type Output = PolicyTestOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "policy_test",
        domain: Domain::Governance,
        summary: "Test command vs policy",
        description: "Would a command be allowed on a host or target, and by which rule? Runs nothing.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"host_id": "web-1", "command": "rm -rf /"}"#,
    };

    fn plan(&self, params: &PolicyTestParams, planning: &PlanContext) -> Result<Plan> {
        hosts_of(params, planning.inventory())?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: PolicyTestParams,
        context: RunContext,
    ) -> impl Future<Output = Result<PolicyTestOutput>> + Send + 'static {
        async move {
            let hosts = hosts_of(&params, context.inventory())?;
            let results: Vec<HostDecision> = hosts
                .iter()
                .map(|host| HostDecision {
                    host_id: host.id.to_string(),
                    decision: context.evaluate_policy(host, &params.command),
                })
                .collect();
            Ok(PolicyTestOutput {
                allowed: results.iter().all(|result| result.decision.allowed),
                results,
            })
        }
    }
}

fn hosts_of(
    params: &PolicyTestParams,
    inventory: &warden_core::inventory::Inventory,
) -> Result<Vec<std::sync::Arc<Host>>> {
    match (&params.host_id, &params.target) {
        (Some(host_id), None) => Ok(vec![inventory.require(host_id)?]),
        (None, Some(target)) => inventory.resolve(target),
        _ => Err(Error::invalid_input(
            "give exactly one of host_id or target",
        )),
    }
}
