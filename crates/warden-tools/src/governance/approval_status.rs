//! `approval_status`: where one of this caller's approvals stands, waiting server-side
//! while it is pending (so an agent does not poll in a tight loop).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use warden_core::engine::{MAX_STATUS_WAIT, approval_json};
use warden_core::error::Result;
use warden_core::store::ApprovalState;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct ApprovalStatus;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStatusParams {
    /// From APPROVAL_PENDING.
    pub approval_id: String,
    /// Wait this long for a decision while it is pending [20000, at most 25000].
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApprovalStatusOutput {
    /// approval_id, state (pending, approved, denied, expired, used), tool, hosts,
    /// summary, requested_at, expires_at, decided_by, reason.
    pub approval: Map<String, Value>,
    /// What to do now.
    pub next: String,
    /// Pending: when to ask again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl Tool for ApprovalStatus {
    type Params = ApprovalStatusParams;
    type Output = ApprovalStatusOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "approval_status",
        domain: Domain::Governance,
        summary: "Wait for an approval",
        description: "Where an approval from APPROVAL_PENDING stands: waits up to wait_ms (default 20 s) while it is pending, then says what to do. Once approved, repeat the original call unchanged with approval_id. Only a human decides (`warden approvals`), never a tool.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"approval_id": "APPROVAL_ID"}"#,
    };

    fn plan(&self, _params: &ApprovalStatusParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: ApprovalStatusParams,
        context: RunContext,
    ) -> impl Future<Output = Result<ApprovalStatusOutput>> + Send + 'static {
        async move {
            let wait = params
                .wait_ms
                .map_or(Duration::from_secs(20), Duration::from_millis)
                .min(MAX_STATUS_WAIT);
            let approval = context.approval_status(&params.approval_id, wait).await?;
            let id = &approval.id;
            let (next, retry_after_ms) = match approval.state {
                ApprovalState::Pending => (
                    format!("Still waiting for a human (`warden approvals approve {id}`): call approval_status again."),
                    Some(1000),
                ),
                ApprovalState::Approved => (
                    format!("Approved: repeat the original call unchanged with \"approval_id\": \"{id}\" (it runs once)."),
                    None,
                ),
                ApprovalState::Denied => (
                    "Denied: do not retry; ask the operator why.".to_owned(),
                    None,
                ),
                ApprovalState::Expired => (
                    "Expired undecided (deny): make the call again to ask anew once an operator is there.".to_owned(),
                    None,
                ),
                ApprovalState::Used => ("Used: its call ran already.".to_owned(), None),
            };
            Ok(ApprovalStatusOutput {
                approval: approval_json(&approval),
                next,
                retry_after_ms,
            })
        }
    }
}
