//! THE catalogue: every tool warden offers, one file per tool in a folder per domain,
//! one line each in [`TOOLS`].
//!
//! A tool declares its params and output types (their doc comments become the JSON
//! schemas), its effect, a [`Plan`](warden_core::tool::Plan) (the hosts, commands,
//! probes and paths it will touch: the input to policy, audit and previews) and `run`,
//! which gets only a [`RunContext`](warden_core::RunContext). This crate depends on
//! `warden-core` alone and cannot mint a permit, build a transport call or write the
//! audit log: those are private to core, so the choke point is a compiler fact.

// `run` returns `impl Future + 'static` written as `async move` blocks: an `async fn`
// would borrow `&self` and the engine needs futures that own their data.
#![allow(clippy::manual_async_fn)]

mod automation;
mod core;
mod exec;
mod fleet;
mod fs;
mod governance;
mod hosts;
mod session;
mod sys;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use warden_core::tool::{DynTool, Registry};

/// Every tool warden offers, grouped by domain. Adding a tool: one file in its domain
/// folder, one line here.
pub static TOOLS: &[&dyn DynTool] = &[
    // core
    &core::status::Status,
    &core::doctor::Doctor,
    &core::explain::Explain,
    &core::tools_schema::ToolsSchema,
    &core::tools_search::ToolsSearch,
    // hosts
    &hosts::hosts_list::HostsList,
    &hosts::hosts_show::HostsShow,
    &hosts::hosts_groups::HostsGroups,
    // exec
    &exec::exec::Exec,
    &exec::exec_sudo::ExecSudo,
    &exec::run::Run,
    &exec::jobs_list::JobsList,
    &exec::jobs_show::JobsShow,
    &exec::jobs_wait::JobsWait,
    &exec::jobs_output::JobsOutput,
    &exec::cancel::Cancel,
    &exec::command::CommandTool,
    // sys
    &sys::facts::Facts,
    // governance
    &governance::policy_test::PolicyTest,
    &governance::policy_test_batch::PolicyTestBatch,
    &governance::policy_capabilities::PolicyCapabilities,
    &governance::policy_lint::PolicyLint,
    &governance::approval_list::ApprovalList,
    &governance::approval_status::ApprovalStatus,
    &governance::audit_verify::AuditVerify,
    &governance::audit_search::AuditSearch,
    &governance::audit_export::AuditExport,
    // session
    &session::session_open::SessionOpen,
    &session::session_close::SessionClose,
    &session::session_list::SessionList,
    &session::session_summary::SessionSummary,
    // fs
    &fs::fs_read::FsRead,
    &fs::fs_write::FsWrite,
    &fs::fs_list::FsList,
    &fs::fs_stat::FsStat,
    &fs::fs_mkdir::FsMkdir,
    &fs::fs_remove::FsRemove,
    &fs::fs_stream_read::FsStreamRead,
    &fs::fs_stream_write::FsStreamWrite,
    &fs::fs_find::FsFind,
    &fs::fs_grep::FsGrep,
    &fs::fs_tail::FsTail,
    &fs::fs_du::FsDu,
    &fs::fs_archive_create::FsArchiveCreate,
    &fs::fs_archive_extract::FsArchiveExtract,
    &fs::fs_patch::FsPatch,
    &fs::fs_diff::FsDiff,
    &fs::fs_copy::FsCopy,
    &fs::fs_move::FsMove,
    &fs::fs_chmod::FsChmod,
    &fs::fs_chown::FsChown,
    &fs::fs_symlink::FsSymlink,
    &fs::fs_readlink::FsReadlink,
    // fleet
    &fleet::push::Push,
    &fleet::sync::SyncDir,
    // automation
    &automation::artifacts_list::ArtifactsList,
    &automation::artifacts_get::ArtifactsGet,
    &automation::artifacts_tail::ArtifactsTail,
];

/// The catalogue as the engine takes it (built once: it reads every input schema).
pub fn registry() -> &'static Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Arc::new(Registry::new(TOOLS)))
}
