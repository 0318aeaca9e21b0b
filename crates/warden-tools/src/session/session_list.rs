//! `session_list`: the caller's own open sessions.

use schemars::JsonSchema;
use serde::Serialize;

use warden_core::error::Result;
use warden_core::sessions::SessionInfo;
use warden_core::tool::{Domain, Effect, NoParams, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct SessionList;

#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionListOutput {
    pub sessions: Vec<SessionInfo>,
}

impl Tool for SessionList {
    type Params = NoParams;
    type Output = SessionListOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "session_list",
        domain: Domain::Session,
        summary: "Your open sessions",
        description: "List the file sessions this client holds: id, host, root, cwd, seconds until expiry.",
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
    ) -> impl Future<Output = Result<SessionListOutput>> + Send + 'static {
        async move {
            Ok(SessionListOutput {
                sessions: context.sessions().list(context.client()),
            })
        }
    }
}
