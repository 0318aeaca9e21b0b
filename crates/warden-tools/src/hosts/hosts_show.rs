//! `hosts_show`: everything warden knows about one host.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct HostsShow;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HostsShowParams {
    /// The host id.
    pub host_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostsShowOutput {
    /// id, kind, address, port, user, identity_file, groups, tags, role, proxy_jump.
    pub host: Value,
}

impl Tool for HostsShow {
    type Params = HostsShowParams;
    type Output = HostsShowOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "hosts_show",
        domain: Domain::Hosts,
        summary: "One host's settings",
        description: "One host's settings: address, port, user, identity file, groups, tags, role, proxy jump. Errors: HOST_NOT_FOUND.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"host_id": "web-1"}"#,
    };

    fn plan(&self, params: &HostsShowParams, planning: &PlanContext) -> Result<Plan> {
        planning.inventory().require(&params.host_id)?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: HostsShowParams,
        context: RunContext,
    ) -> impl Future<Output = Result<HostsShowOutput>> + Send + 'static {
        async move {
            let host = context.inventory().require(&params.host_id)?;
            Ok(HostsShowOutput {
                host: serde_json::to_value(host.as_ref()).unwrap_or_default(),
            })
        }
    }
}
