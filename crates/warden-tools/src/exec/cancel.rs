//! `cancel`: stops one of this caller's jobs, and says whether that was verified.

use schemars::JsonSchema;
use serde::Deserialize;

use warden_core::error::Result;
use warden_core::tool::job::JobView;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct Cancel;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelParams {
    /// From a call that answered with a job, or jobs_list.
    pub job_id: String,
}

impl Tool for Cancel {
    type Params = CancelParams;
    type Output = JobView;

    const INFO: ToolInfo = ToolInfo {
        name: "cancel",
        domain: Domain::Exec,
        summary: "Stop a running job",
        description: "Stops one of your running jobs: on each host INT, then TERM, then KILL to its whole process group and to every process it started (setsid children too), each checked; answers the job (state cancelled) with may_still_run: true if a host could not confirm nothing is left. A finished job is shown unchanged. Errors: JOB_NOT_FOUND.",
        effect: Effect::Mutating,
        idempotent: true,
        open_world: false,
        example: r#"{"job_id": "JOB_ID"}"#,
    };

    fn plan(&self, _params: &CancelParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan {
            effect: Effect::Mutating,
            ..Plan::local_state()
        })
    }

    fn run(
        &self,
        params: CancelParams,
        context: RunContext,
    ) -> impl Future<Output = Result<JobView>> + Send + 'static {
        async move { context.cancel_job(&params.job_id).await }
    }
}
