//! `session_close`: forget a session (nothing on the host changes).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct SessionClose;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionCloseParams {
    /// From session_open.
    pub session_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionCloseOutput {
    pub closed: String,
}

impl Tool for SessionClose {
    type Params = SessionCloseParams;
    type Output = SessionCloseOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "session_close",
        domain: Domain::Session,
        summary: "Close a session_id",
        description: "Close one of your file sessions. Errors: SESSION_NOT_FOUND.",
        effect: Effect::Mutating,
        idempotent: false,
        open_world: false,
        example: r#"{"session_id": "SESSION_ID"}"#,
    };

    fn plan(&self, _params: &SessionCloseParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan {
            effect: Effect::Mutating,
            ..Plan::local_state()
        })
    }

    fn run(
        &self,
        params: SessionCloseParams,
        context: RunContext,
    ) -> impl Future<Output = Result<SessionCloseOutput>> + Send + 'static {
        async move {
            context
                .sessions()
                .close(context.client(), &params.session_id)?;
            Ok(SessionCloseOutput {
                closed: params.session_id,
            })
        }
    }
}
