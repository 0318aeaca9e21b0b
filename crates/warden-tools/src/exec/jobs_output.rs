//! `jobs_output`: bytes of one host's output of this caller's job, by offset or from
//! the end, read from the job's spool on the host (kept there 24 h).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::engine::{MAX_OUTPUT_READ, OutputRange};
use warden_core::error::{Error, Result};
use warden_core::tool::{Domain, Effect, Plan, StreamEncoding, Tool, ToolInfo, encode_stream};
use warden_core::{PlanContext, RunContext};

pub struct JobsOutput;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    #[default]
    Stdout,
    Stderr,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsOutputParams {
    /// From a call that answered with a job, or jobs_list.
    pub job_id: String,
    /// One of the job's hosts.
    pub host_id: String,
    /// stdout or stderr [stdout].
    #[serde(default)]
    pub stream: Stream,
    /// Start at this byte [0].
    #[serde(default)]
    pub offset: Option<u64>,
    /// Bytes to read [65536, at most 1048576].
    #[serde(default)]
    pub length: Option<u64>,
    /// Read the last this many bytes instead of from offset.
    #[serde(default)]
    pub tail: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JobsOutputData {
    pub job_id: String,
    pub host_id: String,
    /// Where `data` starts.
    pub offset: u64,
    /// The bytes read (base64 when not text: encoding says so).
    pub data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<StreamEncoding>,
    /// Bytes in `data`.
    pub length: u64,
    /// The stream's size so far.
    pub total_bytes: u64,
    /// `data` reaches the end of what was written so far.
    pub eof: bool,
}

impl Tool for JobsOutput {
    type Params = JobsOutputParams;
    type Output = JobsOutputData;

    const INFO: ToolInfo = ToolInfo {
        name: "jobs_output",
        domain: Domain::Exec,
        summary: "Read a job's output",
        description: "Bytes of one host's stdout or stderr of your exec/run job, while it runs or after (kept on the host 24 h): from offset (length, default 64 KiB) or the last `tail` bytes; total_bytes and eof say what is left. Errors: JOB_NOT_FOUND, FILE_NOT_FOUND (spool pruned), SSH_*.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"job_id": "JOB_ID", "host_id": "web-1", "tail": 4096}"#,
    };

    fn plan(&self, _params: &JobsOutputParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: JobsOutputParams,
        context: RunContext,
    ) -> impl Future<Output = Result<JobsOutputData>> + Send + 'static {
        async move {
            let range = match (params.tail, params.offset) {
                (Some(_), Some(_)) => {
                    return Err(Error::invalid_input("give tail or offset, not both"));
                }
                (Some(tail), None) => OutputRange::Tail(tail.min(MAX_OUTPUT_READ)),
                (None, offset) => OutputRange::At {
                    offset: offset.unwrap_or(0),
                    length: params.length.unwrap_or(64 * 1024),
                },
            };
            let stream = match params.stream {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
            };
            let read = context
                .job_output(&params.job_id, &params.host_id, stream, range)
                .await?;
            let length = read.stream.bytes.len() as u64;
            let (data, encoding) = encode_stream(&read.stream);
            Ok(JobsOutputData {
                job_id: params.job_id,
                host_id: params.host_id,
                offset: read.offset,
                data,
                encoding,
                length,
                total_bytes: read.total_bytes,
                eof: read.offset + length >= read.total_bytes,
            })
        }
    }
}
