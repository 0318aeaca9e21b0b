//! `session_summary`: what a session read, wrote, ran and was refused, for a model
//! picking up work (its own or another agent's in the same client).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::Result;
use warden_core::sessions::{Activity, SessionInfo};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct SessionSummary;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionSummaryParams {
    /// From session_open.
    pub session_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionSummaryOutput {
    pub session: SessionInfo,
    pub activity: Activity,
    /// The activity in one paragraph.
    pub summary: String,
}

impl Tool for SessionSummary {
    type Params = SessionSummaryParams;
    type Output = SessionSummaryOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "session_summary",
        domain: Domain::Session,
        summary: "What a session_id did",
        description: "What one of your sessions read, wrote, ran and was refused, with a one-line summary. Errors: SESSION_NOT_FOUND.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"session_id": "SESSION_ID"}"#,
    };

    fn plan(&self, _params: &SessionSummaryParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: SessionSummaryParams,
        context: RunContext,
    ) -> impl Future<Output = Result<SessionSummaryOutput>> + Send + 'static {
        async move {
            let (session, activity) = context
                .sessions()
                .activity(context.client(), &params.session_id)?;
            let summary = format!(
                "Session on {} rooted at {}: {} read, {} written, {} commands run, {} refused{}.",
                session.host_id,
                session.resolved_root,
                activity.read.len(),
                activity.written.len(),
                activity.ran.len(),
                activity.denied.len(),
                if activity.dropped > 0 {
                    format!(" ({} older events not kept)", activity.dropped)
                } else {
                    String::new()
                },
            );
            Ok(SessionSummaryOutput {
                session,
                activity,
                summary,
            })
        }
    }
}
