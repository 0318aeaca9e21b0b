//! THE registry: one file per tool, one line each in [`TOOLS`].
//!
//! A tool declares its params and output types (their doc comments become the JSON
//! schemas), its [`Effect`], a [`Plan`] (hosts and commands it will touch: the input to
//! policy, audit and dry-run previews) and `run`, which gets only a [`RunContext`].
//! The MCP list, `warden call`, `tools_schema` and `tools_search` all read this table.

// `run` returns `impl Future + 'static` written as `async move` blocks: an `async fn`
// would borrow `&self` and the engine needs futures that own their data.
#![allow(clippy::manual_async_fn)]

mod archive;
mod audit_verify;
mod doctor;
mod exec;
mod explain;
mod facts;
mod file_args;
mod fs_archive_create;
mod fs_archive_extract;
mod fs_chmod;
mod fs_chown;
mod fs_copy;
mod fs_diff;
mod fs_du;
mod fs_find;
mod fs_grep;
mod fs_list;
mod fs_mkdir;
mod fs_move;
mod fs_patch;
mod fs_read;
mod fs_readlink;
mod fs_remove;
mod fs_stat;
mod fs_stream_read;
mod fs_stream_write;
mod fs_symlink;
mod fs_tail;
mod fs_write;
mod hosts_groups;
mod hosts_list;
mod hosts_show;
mod lines;
mod policy_test;
mod push;
mod results;
mod run;
mod schema;
mod session_close;
mod session_list;
mod session_open;
mod session_summary;
mod status;
mod sync;
mod tools_schema;
mod tools_search;
mod transfer;
mod walk;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::{Engine, RunContext};
use crate::error::{Error, Result};
use crate::inventory::Host;
use crate::policy::CommandOrigin;

pub use results::{FleetResult, HostResult, Summary};

/// Every tool warden offers. Adding a tool: one file in this directory, one line here.
pub static TOOLS: &[&dyn DynTool] = &[
    &status::Status,
    &doctor::Doctor,
    &explain::Explain,
    &tools_schema::ToolsSchema,
    &tools_search::ToolsSearch,
    &hosts_list::HostsList,
    &hosts_show::HostsShow,
    &hosts_groups::HostsGroups,
    &exec::Exec,
    &run::Run,
    &facts::Facts,
    &policy_test::PolicyTest,
    &audit_verify::AuditVerify,
    &session_open::SessionOpen,
    &session_close::SessionClose,
    &session_list::SessionList,
    &session_summary::SessionSummary,
    &fs_read::FsRead,
    &fs_write::FsWrite,
    &fs_list::FsList,
    &fs_stat::FsStat,
    &fs_mkdir::FsMkdir,
    &fs_remove::FsRemove,
    &fs_stream_read::FsStreamRead,
    &fs_stream_write::FsStreamWrite,
    &fs_find::FsFind,
    &fs_grep::FsGrep,
    &fs_tail::FsTail,
    &fs_du::FsDu,
    &push::Push,
    &sync::SyncDir,
    &fs_archive_create::FsArchiveCreate,
    &fs_archive_extract::FsArchiveExtract,
    &fs_patch::FsPatch,
    &fs_diff::FsDiff,
    &fs_copy::FsCopy,
    &fs_move::FsMove,
    &fs_chmod::FsChmod,
    &fs_chown::FsChown,
    &fs_symlink::FsSymlink,
    &fs_readlink::FsReadlink,
];

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
    /// A few words for the compact `tools/list`.
    pub summary: &'static str,
    /// For the model: what it does, constraints, error codes it may return.
    pub description: &'static str,
    pub effect: Effect,
    pub idempotent: bool,
    /// Reaches hosts (an open world) rather than warden's own state.
    pub open_world: bool,
}

/// What a call will touch, decided before anything runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hosts: Vec<Arc<Host>>,
    /// Commands to be checked by policy on every host in `hosts`.
    pub commands: Vec<String>,
    pub origin: CommandOrigin,
    pub effect: Effect,
    pub dry_run: bool,
    /// A file session the call works in: the engine checks that it belongs to the
    /// caller and puts its host in `hosts` (tools cannot name hosts of other sessions).
    pub session: Option<String>,
    /// Works on files (the `local` gate is `allow_write`) rather than commands
    /// (`allow_exec`).
    pub files: bool,
    /// Also reads sources on the built-in `local` host (`push`, `sync`): the engine
    /// grants a read-only view there under local's `allowed_roots` and `deny_paths`,
    /// which needs no `local.allow_write`.
    pub reads_local: bool,
}

impl Plan {
    /// A plan that touches no host (warden's own state only).
    pub fn local_state() -> Plan {
        Plan {
            hosts: Vec::new(),
            commands: Vec::new(),
            origin: CommandOrigin::Caller,
            effect: Effect::ReadOnly,
            dry_run: false,
            session: None,
            files: false,
            reads_local: false,
        }
    }
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A tool written against typed params and output.
pub trait Tool: Send + Sync + 'static {
    type Params: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + 'static;

    const INFO: ToolInfo;

    fn plan(&self, params: &Self::Params, engine: &Engine) -> Result<Plan>;

    fn run(
        &self,
        params: Self::Params,
        context: RunContext,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'static;
}

/// A validated call, ready to run once the engine has checked and audited its plan.
pub struct Prepared {
    pub plan: Plan,
    pub run: Box<dyn FnOnce(RunContext) -> BoxFuture<Result<Value>> + Send>,
}

/// The object-safe face of [`Tool`], what the registry holds.
pub trait DynTool: Send + Sync {
    fn info(&self) -> ToolInfo;
    fn input_schema(&self) -> Value;
    fn output_schema(&self) -> Value;
    fn prepare(&'static self, args: Value, engine: &Engine) -> Result<Prepared>;
}

impl<T: Tool> DynTool for T {
    fn info(&self) -> ToolInfo {
        T::INFO
    }

    fn input_schema(&self) -> Value {
        schema::input_schema_of::<T::Params>()
    }

    fn output_schema(&self) -> Value {
        schema::output_schema_of::<T::Output>()
    }

    fn prepare(&'static self, args: Value, engine: &Engine) -> Result<Prepared> {
        // MCP clients send no `arguments` for parameterless calls: read that as `{}`.
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        reject_unknown_fields(&args, T::INFO.name)?;
        let params: T::Params = serde_json::from_value(args).map_err(|error| {
            Error::invalid_arguments(format!("invalid arguments for {}: {error}", T::INFO.name))
                .with_recovery_tool("tools_schema")
        })?;
        let plan = self.plan(&params, engine)?;
        Ok(Prepared {
            plan,
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

/// Unknown argument names are errors, not silently ignored typos. Checked against the
/// schema's properties (serde's own check cannot be combined with flattened options),
/// collected once per tool: schemas are generated, not free.
fn reject_unknown_fields(args: &Value, tool: &str) -> Result<()> {
    static KNOWN: OnceLock<HashMap<&'static str, Vec<String>>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        TOOLS
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
            .collect()
    });
    let (Some(args), Some(names)) = (args.as_object(), known.get(tool)) else {
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

pub fn find(name: &str) -> Option<&'static dyn DynTool> {
    TOOLS.iter().copied().find(|tool| tool.info().name == name)
}

pub fn closest_names(name: &str) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = TOOLS
        .iter()
        .map(|tool| {
            (
                strsim::jaro_winkler(name, tool.info().name),
                tool.info().name,
            )
        })
        .filter(|(score, _)| *score > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(3)
        .map(|(_, name)| name.to_owned())
        .collect()
}

/// Params of tools that take no arguments.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[cfg(test)]
mod archive_tests;
#[cfg(test)]
mod file_edit_tests;
#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod file_walk_tests;
#[cfg(test)]
mod fleet_file_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tree_safety_tests;
