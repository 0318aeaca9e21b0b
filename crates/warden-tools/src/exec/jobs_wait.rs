//! `jobs_wait`: waits server-side for one of this caller's jobs to end, so an agent
//! does not poll in a tight loop.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::Result;
use warden_core::store::JobState;
use warden_core::tool::job::JobView;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct JobsWait;

/// The longest a `jobs_wait` call waits: below the shortest client cap (60 s).
const MAX_WAIT: Duration = Duration::from_secs(25);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsWaitParams {
    /// From a call that answered with a job, or jobs_list.
    pub job_id: String,
    /// Wait this long for the end [25000, at most 25000].
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JobsWaitOutput {
    #[serde(flatten)]
    pub job: JobView,
    /// Still running: when to call jobs_wait again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl Tool for JobsWait {
    type Params = JobsWaitParams;
    type Output = JobsWaitOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "jobs_wait",
        domain: Domain::Exec,
        summary: "Wait for a job to end",
        description: "Waits up to wait_ms (default and most 25 s) for one of your jobs to end, then shows it as jobs_show does; still running: retry_after_ms 0 says call again at once. Errors: JOB_NOT_FOUND.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"job_id": "JOB_ID", "wait_ms": 1000}"#,
    };

    fn plan(&self, _params: &JobsWaitParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: JobsWaitParams,
        context: RunContext,
    ) -> impl Future<Output = Result<JobsWaitOutput>> + Send + 'static {
        async move {
            let wait = params
                .wait_ms
                .map_or(MAX_WAIT, Duration::from_millis)
                .min(MAX_WAIT);
            let job = context.wait_job(&params.job_id, wait).await?;
            let retry_after_ms = (job.state == JobState::Running).then_some(0);
            Ok(JobsWaitOutput {
                job,
                retry_after_ms,
            })
        }
    }
}
