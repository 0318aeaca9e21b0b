//! `run`: one command on one host, one shot; connection failures are errors.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::exec::exec::CommandOptions;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::tool::{Domain, Effect, HostResult, Plan, Tool, ToolInfo, encode_stream};
use warden_core::transport::{CapturedStream, ExitStatus};
use warden_core::{PlanContext, RunContext};

pub struct Run;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunParams {
    /// A host id (or session_id).
    #[serde(default)]
    pub host_id: Option<String>,
    #[serde(flatten)]
    pub options: CommandOptions,
}

#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct RunOutput {
    #[serde(flatten)]
    pub result: HostResult,
    pub job_id: String,
}

impl Tool for Run {
    type Params = RunParams;
    type Output = RunOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "run",
        domain: Domain::Exec,
        summary: "Run command on host_id",
        description: "Run a command on one host: stdout, stderr (base64 when not text: *_encoding says so), exit_code (non-zero is a result), duration. Options as in exec. Errors: HOST_NOT_FOUND, POLICY_DENIED, LOCAL_DISABLED, SSH_*, HOST_KEY_*, CMD_TIMEOUT, CANCELLED.",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "argv": ["df", "-h", "/"]}"#,
    };

    const JOBS: bool = true;

    fn deadline(params: &RunParams) -> Option<std::time::Duration> {
        Some(params.options.timeout())
    }

    fn plan(&self, params: &RunParams, planning: &PlanContext) -> Result<Plan> {
        let command = params.options.command()?;
        let hosts = params
            .options
            .hosts(params.host_id.as_deref(), "host_id", |host_id| {
                Ok(vec![planning.inventory().require(host_id)?])
            })?;
        Ok(params.options.plan(hosts, command))
    }

    fn run(
        &self,
        params: RunParams,
        context: RunContext,
    ) -> impl Future<Output = Result<RunOutput>> + Send + 'static {
        async move {
            let request = params.options.request_in(&context).await?;
            let host = context
                .planned_hosts()
                .into_iter()
                .next()
                .ok_or_else(|| Error::internal("run without a host"))?;
            // One host, one shot: connection failures, timeouts and cancellation are
            // the call's error.
            let output = context.exec(&host, &request).await?;
            let stopped = match output.status {
                ExitStatus::TimedOut => Some((ErrorCode::CmdTimeout, "timed out")),
                ExitStatus::Cancelled => Some((ErrorCode::Cancelled, "was cancelled")),
                _ => None,
            };
            if let Some((code, what)) = stopped {
                return Err(Error::new(
                    code,
                    format!(
                        "the command {what} after {} ms; warden killed its process group. Output before that: {}",
                        output.duration.as_millis(),
                        output_tail(&output.stdout)
                    ),
                )
                .with_host(host.id.as_str()));
            }
            let result =
                HostResult::from_output(host.id.as_str(), &output, &request.command.to_shell());
            Ok(RunOutput {
                result,
                job_id: context.job_id().to_owned(),
            })
        }
    }
}

/// The end of what a stopped command printed, for its error message.
fn output_tail(stdout: &CapturedStream) -> String {
    match encode_stream(stdout) {
        (text, None) => {
            let skip = text.chars().count().saturating_sub(500);
            format!("{:?}", text.chars().skip(skip).collect::<String>())
        }
        (_, Some(_)) => format!("{} bytes, not text", stdout.total_bytes),
    }
}
