//! `status`: what this warden serves and how it is doing.

use schemars::JsonSchema;
use serde::Serialize;

use warden_core::config::PolicyMode;
use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, NoParams, Plan, Tool, ToolInfo};
use warden_core::transport::TransportStats;
use warden_core::{PlanContext, RunContext};

pub struct Status;

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusOutput {
    pub version: String,
    /// The config file in use; null means zero-config defaults.
    pub config: Option<String>,
    pub state_dir: String,
    pub hosts: usize,
    pub local_exec: bool,
    pub policy_mode: PolicyMode,
    pub tools: usize,
    /// Records in the audit log, or why it is unavailable.
    pub audit: String,
    pub connections: TransportStats,
    pub uptime_ms: u64,
}

impl Tool for Status {
    type Params = NoParams;
    type Output = StatusOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "status",
        domain: Domain::Core,
        summary: "Server health",
        description: "warden's version, config file, host count, policy mode, audit health, pooled connections. Touches no host.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{}"#,
    };

    fn plan(&self, _params: &NoParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        _params: NoParams,
        context: RunContext,
    ) -> impl Future<Output = Result<StatusOutput>> + Send + 'static {
        async move {
            let loaded = context.config();
            Ok(StatusOutput {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                config: loaded
                    .source
                    .as_ref()
                    .map(|path| path.display().to_string()),
                state_dir: loaded.state_dir.display().to_string(),
                hosts: context
                    .inventory()
                    .hosts()
                    .iter()
                    .filter(|host| !host.is_local())
                    .count(),
                local_exec: loaded.config.local.allow_exec,
                policy_mode: loaded.config.policy.mode,
                tools: context.registry().tools().len(),
                audit: match context.audit_health() {
                    Ok(records) => format!("ok: {records} records"),
                    Err(reason) => format!("UNAVAILABLE: {reason}"),
                },
                connections: context.transport_stats(),
                uptime_ms: context.uptime_ms(),
            })
        }
    }
}
