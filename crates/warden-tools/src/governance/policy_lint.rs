//! `policy_lint`: rules that do not mean what they look like.

use schemars::JsonSchema;
use serde::Serialize;

use warden_core::error::Result;
use warden_core::policy::rules::Lint;
use warden_core::tool::{Domain, Effect, NoParams, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct PolicyLint;

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyLintOutput {
    pub warnings: Vec<Lint>,
}

impl Tool for PolicyLint {
    type Params = NoParams;
    type Output = PolicyLintOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "policy_lint",
        domain: Domain::Governance,
        summary: "Check policy rules",
        description: "Warnings about policy rules that do not mean what they look like: redundant anchors, flag orders a regex misses (rm -rf vs -fr, -r -f), allow rules ending in .* after programs that can run commands. Same as `warden config check`.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: "{}",
    };

    fn plan(&self, _params: &NoParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        _params: NoParams,
        context: RunContext,
    ) -> impl Future<Output = Result<PolicyLintOutput>> + Send + 'static {
        async move {
            Ok(PolicyLintOutput {
                warnings: context.policy_lint(),
            })
        }
    }
}
