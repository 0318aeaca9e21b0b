//! `artifacts_list`: this caller's artifacts, the whole output of its cut streams.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::artifacts::ArtifactInfo;
use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct ArtifactsList;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsListParams {
    /// Only this job's (summary.job_id of an exec answer).
    #[serde(default)]
    pub job_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ArtifactsListOutput {
    /// Newest first: job_id, host_id, stream, bytes kept, total_bytes printed.
    pub artifacts: Vec<ArtifactInfo>,
    /// Hours an artifact is kept (limits.artifact_retention_h).
    pub retention_h: u64,
}

impl Tool for ArtifactsList {
    type Params = ArtifactsListParams;
    type Output = ArtifactsListOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "artifacts_list",
        domain: Domain::Automation,
        summary: "List kept output of cut commands",
        description: "The artifacts this caller may read: the whole output of every stream an answer cut at max_output_bytes (truncated: true), per job, host and stream, with bytes kept and printed. Read them with artifacts_get or artifacts_tail. Kept limits.artifact_retention_h hours, for the caller that ran the job only. Errors: INVALID_INPUT (a job_id that is none).",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{}"#,
    };

    fn plan(&self, _params: &ArtifactsListParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: ArtifactsListParams,
        context: RunContext,
    ) -> impl Future<Output = Result<ArtifactsListOutput>> + Send + 'static {
        async move {
            Ok(ArtifactsListOutput {
                artifacts: context.artifacts_list(params.job_id.as_deref())?,
                retention_h: context.config().config.limits.artifact_retention_h,
            })
        }
    }
}
