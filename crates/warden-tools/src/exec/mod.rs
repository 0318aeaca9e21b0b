//! Commands: a target concurrently (`exec`, `exec_sudo` as root), one host (`run`), or
//! one interactive program kept open across calls (`command`); and the jobs `exec` and
//! `run` become when they outlive their wait.

pub mod cancel;
pub mod command;
#[allow(clippy::module_inception)] // `exec/exec.rs`: each tool file is named after its tool.
pub mod exec;
pub mod exec_sudo;
pub mod jobs_list;
pub mod jobs_output;
pub mod jobs_show;
pub mod jobs_wait;
pub mod run;
