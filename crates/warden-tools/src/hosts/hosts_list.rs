//! `hosts_list`: the inventory, optionally narrowed by a target.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct HostsList;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HostsListParams {
    /// Optional selector to narrow the list.
    #[serde(default)]
    pub target: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostSummary {
    pub id: String,
    pub address: String,
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostsListOutput {
    pub hosts: Vec<HostSummary>,
    pub count: usize,
}

impl Tool for HostsList {
    type Params = HostsListParams;
    type Output = HostsListOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "hosts_list",
        domain: Domain::Hosts,
        summary: "List hosts",
        description: "List hosts (id, address, groups, tags), optionally narrowed by a target. `local` is this machine.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"target": "all"}"#,
    };

    fn plan(&self, params: &HostsListParams, planning: &PlanContext) -> Result<Plan> {
        if let Some(target) = &params.target {
            planning.inventory().resolve(target)?;
        }
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: HostsListParams,
        context: RunContext,
    ) -> impl Future<Output = Result<HostsListOutput>> + Send + 'static {
        async move {
            let hosts = match &params.target {
                Some(target) => context.inventory().resolve(target)?,
                None => context.inventory().hosts().to_vec(),
            };
            let hosts: Vec<HostSummary> = hosts
                .iter()
                .map(|host| HostSummary {
                    id: host.id.to_string(),
                    address: match host.port {
                        Some(port) => format!("{}:{port}", host.address),
                        None => host.address.clone(),
                    },
                    groups: host.groups.clone(),
                    tags: host.tags.clone(),
                })
                .collect();
            Ok(HostsListOutput {
                count: hosts.len(),
                hosts,
            })
        }
    }
}
