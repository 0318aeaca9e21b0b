//! `approval_list`: this caller's approvals that wait for a human.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use warden_core::engine::approval_json;
use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, NoParams, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct ApprovalList;

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApprovalListOutput {
    /// Newest first: approval_id, tool, hosts, summary, requested_at, expires_at.
    pub pending: Vec<Map<String, Value>>,
}

impl Tool for ApprovalList {
    type Params = NoParams;
    type Output = ApprovalListOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "approval_list",
        domain: Domain::Governance,
        summary: "List pending approvals",
        description: "This caller's calls that wait for a human decision (`warden approvals` on the operator's side). Wait on one with approval_status.",
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
    ) -> impl Future<Output = Result<ApprovalListOutput>> + Send + 'static {
        async move {
            let pending = context
                .approval_list()
                .await?
                .iter()
                .map(|approval| {
                    let mut shown = approval_json(approval);
                    for key in ["state", "client", "identity", "rule"] {
                        shown.remove(key);
                    }
                    shown
                })
                .collect();
            Ok(ApprovalListOutput { pending })
        }
    }
}
