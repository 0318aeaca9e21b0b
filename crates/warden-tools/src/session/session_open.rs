//! `session_open`: a root on one host that every later path is confined to.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::fs::file_args::FileScope;
use warden_core::error::Result;
use warden_core::sandbox::Last;
use warden_core::sessions::SessionInfo;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct SessionOpen;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionOpenParams {
    /// The host id.
    pub host_id: String,
    /// Absolute directory on the host, under policy.allowed_roots.
    pub root: String,
}

impl Tool for SessionOpen {
    type Params = SessionOpenParams;
    type Output = SessionInfo;

    const INFO: ToolInfo = ToolInfo {
        name: "session_open",
        domain: Domain::Session,
        summary: "Open file session at root",
        description: "Open a file session on host_id confined to root (under policy.allowed_roots); file tools then take session_id and relative paths. Errors: PATH_OUTSIDE_ROOT, FILE_NOT_FOUND, SESSION_LIMIT.",
        effect: Effect::ReadOnly,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "root": "/srv/app"}"#,
    };

    fn plan(&self, params: &SessionOpenParams, planning: &PlanContext) -> Result<Plan> {
        let scope = FileScope {
            session_id: None,
            host_id: Some(params.host_id.clone()),
        };
        scope.plan(planning, Effect::ReadOnly, &[(&params.root, Last::Follow)])
    }

    fn run(
        &self,
        params: SessionOpenParams,
        context: RunContext,
    ) -> impl Future<Output = Result<SessionInfo>> + Send + 'static {
        async move {
            let host = context.inventory().require(&params.host_id)?;
            let root = context.session_root(&host, &params.root)?;
            context
                .sessions()
                .open(context.client(), host.id.clone(), root)
        }
    }
}
