//! `jobs_list`: this caller's jobs, newest first.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::Result;
use warden_core::store::JobState;
use warden_core::tool::job::JobView;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct JobsList;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsListParams {
    /// Only jobs in this state.
    #[serde(default)]
    pub state: Option<JobState>,
    /// At most this many [20, at most 200].
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JobsListOutput {
    /// Newest first, without their answers (jobs_show has them).
    pub jobs: Vec<JobView>,
}

impl Tool for JobsList {
    type Params = JobsListParams;
    type Output = JobsListOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "jobs_list",
        domain: Domain::Exec,
        summary: "List your jobs",
        description: "Your jobs (calls of exec, run, push, sync that outlived wait_ms, and every other run of them), newest first: job_id, state (running, succeeded, failed, cancelled, timed_out, lost, outcome_unknown), tool, summary, hosts, elapsed_ms. Kept 7 days.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"state": "running"}"#,
    };

    fn plan(&self, _params: &JobsListParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: JobsListParams,
        context: RunContext,
    ) -> impl Future<Output = Result<JobsListOutput>> + Send + 'static {
        async move {
            let limit = params.limit.unwrap_or(20).clamp(1, 200);
            let jobs = context.jobs(params.state, limit).await?;
            Ok(JobsListOutput { jobs })
        }
    }
}
