//! `artifacts_get`: a range of one artifact, exactly (base64 when not text).

use schemars::JsonSchema;
use serde::Deserialize;

use warden_core::artifacts::StreamName;
use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

use crate::automation::slice::ArtifactSlice;

pub struct ArtifactsGet;

/// Bytes returned when `length` is not given.
const DEFAULT_LENGTH: u64 = 65_536;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsGetParams {
    /// summary.job_id of the answer that was cut.
    pub job_id: String,
    /// The host whose output it is.
    pub host_id: String,
    /// stdout or stderr.
    pub stream: StreamName,
    /// First byte [0].
    #[serde(default)]
    pub offset: u64,
    /// Bytes [65536, at most limits.max_read_bytes].
    #[serde(default)]
    pub length: Option<u64>,
}

impl Tool for ArtifactsGet {
    type Params = ArtifactsGetParams;
    type Output = ArtifactSlice;

    const INFO: ToolInfo = ToolInfo {
        name: "artifacts_get",
        domain: Domain::Automation,
        summary: "Read kept output at offset",
        description: "A range of an artifact (the whole output of a stream an answer cut; the cut marker names job_id and stream): length bytes from offset, exactly, as text or base64 when not text (data_encoding). next_offset says where the next range starts. Secrets are masked, so offsets address the masked output. Errors: JOB_NOT_FOUND (none of yours: expired, or never cut), INVALID_INPUT (offset past the end).",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"job_id": "JOB_ID", "host_id": "web-1", "stream": "stdout", "offset": 0, "length": 4096}"#,
    };

    fn plan(&self, _params: &ArtifactsGetParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: ArtifactsGetParams,
        context: RunContext,
    ) -> impl Future<Output = Result<ArtifactSlice>> + Send + 'static {
        async move {
            let most = context.config().config.limits.max_read_bytes as u64;
            let length = params.length.unwrap_or(DEFAULT_LENGTH).min(most);
            let range = context.artifact_read(
                &params.job_id,
                &params.host_id,
                params.stream,
                params.offset,
                length,
            )?;
            Ok(ArtifactSlice::new(range))
        }
    }
}
