//! `policy_capabilities`: what this caller may do on one host, in brief.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::Result;
use warden_core::policy::Capabilities;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct PolicyCapabilities;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyCapabilitiesParams {
    /// The host to ask about.
    pub host_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyCapabilitiesOutput {
    pub host_id: String,
    /// The caller identity roles were selected by.
    pub identity: String,
    #[serde(flatten)]
    pub capabilities: Capabilities,
    /// Which commands need confirm: true (a preview first).
    pub confirm: &'static str,
}

impl Tool for PolicyCapabilities {
    type Params = PolicyCapabilitiesParams;
    type Output = PolicyCapabilitiesOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "policy_capabilities",
        domain: Domain::Governance,
        summary: "What may I do on host",
        description: "What this caller may do on a host: policy mode, allow and deny rules that apply (global and roles), denied paths, allowed roots, whether uncheckable commands run, which need confirm. Runs nothing.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"host_id": "web-1"}"#,
    };

    fn plan(&self, params: &PolicyCapabilitiesParams, planning: &PlanContext) -> Result<Plan> {
        planning.inventory().require(&params.host_id)?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: PolicyCapabilitiesParams,
        context: RunContext,
    ) -> impl Future<Output = Result<PolicyCapabilitiesOutput>> + Send + 'static {
        async move {
            let host = context.inventory().require(&params.host_id)?;
            Ok(PolicyCapabilitiesOutput {
                host_id: params.host_id,
                identity: context.identity().to_owned(),
                capabilities: context.policy_capabilities(&host),
                confirm: "destructive commands (rm, dd, kill, systemctl stop/restart, package removal, > file, …) and replacing files answer with a preview and plan_token first",
            })
        }
    }
}
