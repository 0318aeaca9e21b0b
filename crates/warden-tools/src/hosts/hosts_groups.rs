//! `hosts_groups`: groups with their members, and tag keys with their values, to
//! build target selectors from.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;

use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, NoParams, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct HostsGroups;

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostsGroupsOutput {
    /// group name → host ids.
    pub groups: BTreeMap<String, Vec<String>>,
    /// tag key → values in use.
    pub tags: BTreeMap<String, BTreeSet<String>>,
}

impl Tool for HostsGroups {
    type Params = NoParams;
    type Output = HostsGroupsOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "hosts_groups",
        domain: Domain::Hosts,
        summary: "Groups and tags",
        description: "Groups with their members and tag keys with their values, for targets like group:web or tag:env=prod.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{}"#,
    };

    fn plan(&self, _params: &NoParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        _params: NoParams,
        context: RunContext,
    ) -> impl Future<Output = Result<HostsGroupsOutput>> + Send + 'static {
        async move {
            let (groups, tags) = context.inventory().groups();
            Ok(HostsGroupsOutput { groups, tags })
        }
    }
}
