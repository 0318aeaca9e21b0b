//! `explain`: what an error code means and what to do about it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::error::{Error, ErrorCode, Result};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct Explain;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainParams {
    /// An error code such as POLICY_DENIED.
    pub error_code: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExplainOutput {
    pub code: String,
    pub meaning: String,
    pub hint: String,
    pub suggested_actions: Vec<String>,
    pub transient: bool,
    pub diagnostics_tools: Vec<String>,
    /// An example call that helps, as JSON.
    pub example: String,
}

impl Tool for Explain {
    type Params = ExplainParams;
    type Output = ExplainOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "explain",
        domain: Domain::Core,
        summary: "Explain error_code",
        description: "Explain an error code: meaning, hint, suggested actions, transient or not, diagnostic tools, an example call.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"error_code": "POLICY_DENIED"}"#,
    };

    fn plan(&self, params: &ExplainParams, _planning: &PlanContext) -> Result<Plan> {
        code_of(&params.error_code)?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: ExplainParams,
        _context: RunContext,
    ) -> impl Future<Output = Result<ExplainOutput>> + Send + 'static {
        async move {
            let explanation = code_of(&params.error_code)?.explain();
            Ok(ExplainOutput {
                code: explanation.code.to_string(),
                meaning: explanation.meaning.to_owned(),
                hint: explanation.hint.to_owned(),
                suggested_actions: explanation
                    .suggested_actions
                    .iter()
                    .map(|action| action.to_string())
                    .collect(),
                transient: explanation.transient,
                diagnostics_tools: explanation
                    .diagnostics_tools
                    .iter()
                    .map(|tool| tool.to_string())
                    .collect(),
                example: explanation.example.to_owned(),
            })
        }
    }
}

fn code_of(text: &str) -> Result<ErrorCode> {
    ErrorCode::parse(text).ok_or_else(|| {
        let known: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        Error::invalid_input(format!(
            "unknown error code {text:?}; known: {}",
            known.join(", ")
        ))
    })
}
