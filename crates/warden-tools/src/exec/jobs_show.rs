//! `jobs_show`: one of this caller's jobs as it stands.

use schemars::JsonSchema;
use serde::Deserialize;

use warden_core::error::Result;
use warden_core::tool::job::JobView;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct JobsShow;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsShowParams {
    /// From a call that answered with a job, or jobs_list.
    pub job_id: String,
}

impl Tool for JobsShow {
    type Params = JobsShowParams;
    type Output = JobView;

    const INFO: ToolInfo = ToolInfo {
        name: "jobs_show",
        domain: Domain::Exec,
        summary: "Show a job",
        description: "One of your jobs now: state, hosts_done, each host's output so far while it runs (last 2 KiB per stream), the tool's full answer (result) once it ended, and a hint. Errors: JOB_NOT_FOUND.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"job_id": "JOB_ID"}"#,
    };

    fn plan(&self, _params: &JobsShowParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: JobsShowParams,
        context: RunContext,
    ) -> impl Future<Output = Result<JobView>> + Send + 'static {
        async move { context.job(&params.job_id).await }
    }
}
