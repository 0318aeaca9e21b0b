//! The registry contract: what a tool is ([`Tool`], [`ToolInfo`], [`Plan`]) and the
//! [`Registry`] the engine is built with. No tool lives here: the catalogue is the
//! `warden-tools` crate, which cannot mint a permit, build a transport or write the
//! audit log, because those stay private to this crate.

pub mod job;
mod plan;
pub mod preview;
pub mod result;
pub mod rollout;
pub mod schema;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::{PlanContext, RunContext};
use crate::error::{Error, Result};

pub use result::{FleetResult, HostResult, StreamEncoding, Summary, encode_bytes, encode_stream};
pub use rollout::{Rolled, Rollout, RolloutHost, RolloutParams, RolloutReport};

/// What a call may change, which sets its MCP annotations and audit durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    ReadOnly,
    /// Changes state on hosts; safe to repeat is not promised.
    Mutating,
    /// May destroy data (arbitrary commands count: warden cannot know).
    Destructive,
}

/// Static facts about a tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolInfo {
    pub name: &'static str,
    /// The folder of the catalogue it lives in; a `<domain>_` name prefix must match.
    pub domain: Domain,
    /// A few words for the compact `tools/list`.
    pub summary: &'static str,
    /// For the model: what it does, constraints, error codes it may return.
    pub description: &'static str,
    pub effect: Effect,
    pub idempotent: bool,
    /// Reaches hosts (an open world) rather than warden's own state.
    pub open_world: bool,
    /// Arguments of a typical call (JSON), on host `web-1` (group `web`) and paths under
    /// `/srv/app`: shown by `tools_schema`, and run by the registry tests under deny-all
    /// and allow-all policies.
    pub example: &'static str,
}

/// The domains of the catalogue, as `tools_search`, the server instructions and the
/// docs group tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Core,
    Hosts,
    Exec,
    Sys,
    Governance,
    Session,
    Fs,
    Fleet,
    /// What outlives a call: artifacts (playbooks later).
    Automation,
}

impl Domain {
    pub const ALL: [Domain; 9] = [
        Domain::Core,
        Domain::Hosts,
        Domain::Exec,
        Domain::Sys,
        Domain::Governance,
        Domain::Session,
        Domain::Fs,
        Domain::Fleet,
        Domain::Automation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Domain::Core => "core",
            Domain::Hosts => "hosts",
            Domain::Exec => "exec",
            Domain::Sys => "sys",
            Domain::Governance => "governance",
            Domain::Session => "session",
            Domain::Fs => "fs",
            Domain::Fleet => "fleet",
            Domain::Automation => "automation",
        }
    }
}

pub use plan::{CommandInput, ContinuePlan, InteractivePlan, Plan, PlannedPath, Probe};
pub use preview::Preview;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A tool written against typed params and output.
pub trait Tool: Send + Sync + 'static {
    type Params: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + 'static;

    const INFO: ToolInfo;

    /// Whether its work runs as a job: the call answers within `wait_ms` (the
    /// engine's control) and what is not done by then continues in the background.
    const JOBS: bool = false;

    fn plan(&self, params: &Self::Params, planning: &PlanContext) -> Result<Plan>;

    /// How long its work may run on a host (a job's deadline), when the tool bounds it.
    fn deadline(_params: &Self::Params) -> Option<std::time::Duration> {
        None
    }

    fn run(
        &self,
        params: Self::Params,
        context: RunContext,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'static;
}

/// A validated call, ready to run once the engine has checked and audited its plan.
pub struct Prepared {
    pub plan: Plan,
    /// The tool's bound on its work (see [`Tool::deadline`]).
    pub deadline: Option<std::time::Duration>,
    pub run: Box<dyn FnOnce(RunContext) -> BoxFuture<Result<Value>> + Send>,
    pub controls: Controls,
}

/// The arguments the engine reads for every tool: `dry_run` and `approval_id` (any
/// tool), `confirm` and `plan_token` (tools that change things). A tool that takes `confirm` or `dry_run`
/// itself sees them too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    pub confirm: bool,
    pub dry_run: bool,
    pub plan_token: Option<String>,
    /// The approval a human gave this call (after `APPROVAL_PENDING`).
    pub approval_id: Option<String>,
    /// A job tool's wait before it answers with the running job (`wait_ms`).
    pub wait: Option<std::time::Duration>,
    /// The arguments without the controls: what a plan token's digest covers.
    pub args: Value,
}

/// Splits the engine's controls off `args`, leaving those the tool declares itself.
fn take_controls(args: &mut Value, own: &[String], effect: Effect, jobs: bool) -> Result<Controls> {
    let Some(map) = args.as_object_mut() else {
        return Ok(Controls::default());
    };
    let flag = |map: &serde_json::Map<String, Value>, name: &str| match map.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(other) => Err(Error::invalid_arguments(format!(
            "{name} must be true or false, not {other}"
        ))),
    };
    let mut controls = Controls {
        confirm: flag(map, "confirm")?,
        dry_run: flag(map, "dry_run")?,
        plan_token: match map.get("plan_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) => Some(token.clone()),
            Some(other) => {
                return Err(Error::invalid_arguments(format!(
                    "plan_token must be the string a preview gave, not {other}"
                )));
            }
        },
        approval_id: None,
        wait: None,
        args: Value::Null,
    };
    if jobs {
        controls.wait = match map.remove("wait_ms") {
            None | Some(Value::Null) => None,
            Some(Value::Number(ms)) if ms.as_u64().is_some_and(|ms| ms <= MAX_WAIT_MS) => {
                ms.as_u64().map(std::time::Duration::from_millis)
            }
            Some(other) => {
                return Err(Error::invalid_arguments(format!(
                    "wait_ms must be a whole number of milliseconds from 0 to {MAX_WAIT_MS}, not {other}"
                )));
            }
        };
    }
    // A tool that takes an approval id itself (`approval_status`) keeps it.
    if !own.iter().any(|field| field == "approval_id") {
        controls.approval_id = match map.remove("approval_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id),
            Some(other) => {
                return Err(Error::invalid_arguments(format!(
                    "approval_id must be the string APPROVAL_PENDING gave, not {other}"
                )));
            }
        };
    }
    if effect == Effect::ReadOnly && controls.plan_token.is_some() {
        controls.plan_token = None;
    }
    map.remove("plan_token");
    for name in ["confirm", "dry_run"] {
        if !own.iter().any(|field| field == name) {
            map.remove(name);
        }
    }
    let mut bound = map.clone();
    for name in ["confirm", "dry_run"] {
        bound.remove(name);
    }
    controls.args = Value::Object(bound);
    Ok(controls)
}

/// The longest `wait_ms` a caller may ask for: MCP clients drop calls after about
/// 60 s (Claude Desktop), the CLI waits in rounds of this.
pub const MAX_WAIT_MS: u64 = 600_000;

/// The wait when the caller gives none: below the shortest client cap (PRODUCT.md §12).
pub const DEFAULT_WAIT_MS: u64 = 25_000;

/// Adds the engine's controls to a tool's input schema.
fn with_controls(mut schema: Value, effect: Effect, jobs: bool) -> Value {
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    let Some(properties) = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
    else {
        return schema;
    };
    properties.entry("dry_run").or_insert_with(
        || serde_json::json!({"type": "boolean", "description": "Preview only; run nothing."}),
    );
    properties.entry("approval_id").or_insert_with(
        || serde_json::json!({"type": "string", "description": "After APPROVAL_PENDING: the approval, once a human gave it."}),
    );
    if jobs {
        properties.entry("wait_ms").or_insert_with(
            || serde_json::json!({"type": "integer", "minimum": 0, "description": "Answer after this long [25000]; unfinished work goes on as a job (job_id)."}),
        );
    }
    if effect != Effect::ReadOnly {
        properties.entry("confirm").or_insert_with(
            || serde_json::json!({"type": "boolean", "description": "Run a destructive change (else a preview)."}),
        );
        properties.entry("plan_token").or_insert_with(
            || serde_json::json!({"type": "string", "description": "From a preview: run only if the plan is unchanged."}),
        );
    }
    schema
}

/// The object-safe face of [`Tool`], what the registry holds.
pub trait DynTool: Send + Sync {
    fn info(&self) -> ToolInfo;
    fn input_schema(&self) -> Value;
    /// The argument names the tool's own params declare (without the engine's controls).
    fn own_fields(&self) -> Vec<String>;
    fn output_schema(&self) -> Value;
    /// Whether its work runs as a job (see [`Tool::JOBS`]).
    fn jobs(&self) -> bool;
    fn prepare(&'static self, args: Value, planning: &PlanContext) -> Result<Prepared>;
}

impl<T: Tool> DynTool for T {
    fn info(&self) -> ToolInfo {
        T::INFO
    }

    fn input_schema(&self) -> Value {
        with_controls(
            schema::input_schema_of::<T::Params>(),
            T::INFO.effect,
            T::JOBS,
        )
    }

    fn own_fields(&self) -> Vec<String> {
        schema::input_schema_of::<T::Params>()["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every tool may answer with the engine's [`Preview`] (`dry_run`, or a
    /// destructive command without `confirm`).
    fn output_schema(&self) -> Value {
        if T::JOBS {
            schema::output_schema_of::<preview::JobAnswer<T::Output>>()
        } else {
            schema::output_schema_of::<preview::Answer<T::Output>>()
        }
    }

    fn jobs(&self) -> bool {
        T::JOBS
    }

    fn prepare(&'static self, args: Value, planning: &PlanContext) -> Result<Prepared> {
        // MCP clients send no `arguments` for parameterless calls: read that as `{}`.
        let mut args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        planning
            .registry()
            .reject_unknown_fields(&args, T::INFO.name)?;
        let own = planning.registry().own_fields(T::INFO.name);
        let controls = take_controls(&mut args, own, T::INFO.effect, T::JOBS)?;
        let params: T::Params = serde_json::from_value(args).map_err(|error| {
            Error::invalid_arguments(format!("invalid arguments for {}: {error}", T::INFO.name))
                .with_recovery_tool("tools_schema")
        })?;
        let mut plan = self.plan(&params, planning)?;
        // A tool that declares dry_run previews itself; for the rest the engine does.
        if !own.iter().any(|field| field == "dry_run") {
            plan.dry_run |= controls.dry_run;
        }
        Ok(Prepared {
            plan,
            deadline: T::deadline(&params),
            controls,
            run: Box::new(move |context| {
                let future = self.run(params, context);
                Box::pin(async move {
                    let output = future.await?;
                    serde_json::to_value(output)
                        .map_err(|error| Error::internal(format!("unserializable result: {error}")))
                })
            }),
        })
    }
}

/// The catalogue the engine serves, handed to it at construction: the engine knows
/// the contract, never a tool.
pub struct Registry {
    tools: &'static [&'static dyn DynTool],
    /// Argument names per tool, from the input schemas (generated once: not free).
    known_fields: HashMap<&'static str, Vec<String>>,
    /// The names each tool's own params declare (the rest are the engine's controls).
    own_fields: HashMap<&'static str, Vec<String>>,
}

impl Registry {
    pub fn new(tools: &'static [&'static dyn DynTool]) -> Registry {
        let known_fields = tools
            .iter()
            .map(|tool| {
                let schema = tool.input_schema();
                let names = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|properties| properties.keys().cloned().collect())
                    .unwrap_or_default();
                (tool.info().name, names)
            })
            .collect();
        let own_fields = tools
            .iter()
            .map(|tool| (tool.info().name, tool.own_fields()))
            .collect();
        Registry {
            tools,
            known_fields,
            own_fields,
        }
    }

    fn own_fields(&self, tool: &str) -> &[String] {
        self.own_fields.get(tool).map_or(&[], Vec::as_slice)
    }

    /// Whether `tool`'s own params declare `field`.
    pub fn takes(&self, tool: &str, field: &str) -> bool {
        self.own_fields(tool).iter().any(|own| own == field)
    }

    pub fn tools(&self) -> &'static [&'static dyn DynTool] {
        self.tools
    }

    pub fn find(&self, name: &str) -> Option<&'static dyn DynTool> {
        self.tools
            .iter()
            .copied()
            .find(|tool| tool.info().name == name)
    }

    /// Up to three tool names close to `name`, best first.
    pub fn closest_names(&self, name: &str) -> Vec<String> {
        crate::suggest::closest(name, self.tools.iter().map(|tool| tool.info().name), 0.75)
    }

    /// Unknown argument names are errors, not silently ignored typos. Checked against
    /// the schema's properties (serde's own check cannot be combined with flattened
    /// options).
    fn reject_unknown_fields(&self, args: &Value, tool: &str) -> Result<()> {
        let (Some(args), Some(names)) = (args.as_object(), self.known_fields.get(tool)) else {
            return Ok(());
        };
        if let Some(unknown) = args.keys().find(|key| !names.contains(key)) {
            return Err(Error::invalid_arguments(format!(
                "unknown argument {unknown:?} for {tool}; known: {}",
                names.join(", ")
            ))
            .with_recovery_tool("tools_schema"));
        }
        Ok(())
    }
}

/// Params of tools that take no arguments.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}
