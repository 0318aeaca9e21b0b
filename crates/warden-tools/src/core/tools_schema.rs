//! `tools_schema`: the full input and output schema of a tool (the compact
//! `tools/list` leaves them out to save tokens).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use warden_core::error::{Error, Result};
use warden_core::tool::{Domain, DynTool, Effect, Plan, Registry, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct ToolsSchema;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ToolsSchemaParams {
    /// Tool name.
    pub tool: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ToolsSchemaOutput {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Value,
    /// read_only, mutating or destructive.
    pub effect: Effect,
    /// Arguments of a typical call.
    pub example: Value,
}

impl Tool for ToolsSchema {
    type Params = ToolsSchemaParams;
    type Output = ToolsSchemaOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "tools_schema",
        domain: Domain::Core,
        summary: "Tool's full schema",
        description: "A tool's full description, input and output schema. Errors: INVALID_INPUT.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"tool": "exec"}"#,
    };

    fn plan(&self, params: &ToolsSchemaParams, planning: &PlanContext) -> Result<Plan> {
        lookup(planning.registry(), &params.tool)?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: ToolsSchemaParams,
        context: RunContext,
    ) -> impl Future<Output = Result<ToolsSchemaOutput>> + Send + 'static {
        async move {
            let tool = lookup(context.registry(), &params.tool)?;
            let info = tool.info();
            Ok(ToolsSchemaOutput {
                name: info.name.to_owned(),
                description: info.description.to_owned(),
                input_schema: tool.input_schema(),
                output_schema: tool.output_schema(),
                effect: info.effect,
                example: serde_json::from_str(info.example).unwrap_or(Value::Null),
            })
        }
    }
}

fn lookup(registry: &Registry, name: &str) -> Result<&'static dyn DynTool> {
    registry.find(name).ok_or_else(|| {
        Error::invalid_input(format!("no tool named {name:?}"))
            .with_suggestions(registry.closest_names(name))
            .with_recovery_tool("tools_search")
    })
}
