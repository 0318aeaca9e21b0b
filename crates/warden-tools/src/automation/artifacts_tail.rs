//! `artifacts_tail`: the end of one artifact, by bytes or by lines.

use schemars::JsonSchema;
use serde::Deserialize;

use warden_core::artifacts::StreamName;
use warden_core::error::{Error, Result};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

use crate::automation::slice::ArtifactSlice;

pub struct ArtifactsTail;

/// Bytes returned when neither `bytes` nor `lines` is given.
const DEFAULT_BYTES: u64 = 8192;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsTailParams {
    /// summary.job_id of the answer that was cut.
    pub job_id: String,
    /// The host whose output it is.
    pub host_id: String,
    /// stdout or stderr.
    pub stream: StreamName,
    /// The last this many bytes [8192, at most limits.max_read_bytes].
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Or the last this many lines (within limits.max_read_bytes).
    #[serde(default)]
    pub lines: Option<usize>,
}

impl Tool for ArtifactsTail {
    type Params = ArtifactsTailParams;
    type Output = ArtifactSlice;

    const INFO: ToolInfo = ToolInfo {
        name: "artifacts_tail",
        domain: Domain::Automation,
        summary: "Read the end of kept output",
        description: "The end of an artifact (the whole output of a stream an answer cut): its last bytes, or its last lines; text, or base64 when not text (data_encoding). offset says where it starts, for artifacts_get before it. Errors: JOB_NOT_FOUND (none of yours: expired, or never cut), INVALID_INPUT (bytes and lines together).",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"job_id": "JOB_ID", "host_id": "web-1", "stream": "stdout", "lines": 20}"#,
    };

    fn plan(&self, params: &ArtifactsTailParams, _planning: &PlanContext) -> Result<Plan> {
        if params.bytes.is_some() && params.lines.is_some() {
            return Err(Error::invalid_input("give bytes or lines, not both"));
        }
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: ArtifactsTailParams,
        context: RunContext,
    ) -> impl Future<Output = Result<ArtifactSlice>> + Send + 'static {
        async move {
            let most = context.config().config.limits.max_read_bytes as u64;
            let bytes = match params.lines {
                Some(_) => most,
                None => params.bytes.unwrap_or(DEFAULT_BYTES).min(most),
            };
            let range = context.artifact_tail(
                &params.job_id,
                &params.host_id,
                params.stream,
                bytes,
                params.lines,
            )?;
            Ok(ArtifactSlice::new(range))
        }
    }
}
