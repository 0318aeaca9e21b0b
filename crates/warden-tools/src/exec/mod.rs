//! Commands: a target concurrently (`exec`, `exec_sudo` as root) or one host (`run`),
//! and the jobs they become when they outlive their wait.

pub mod cancel;
#[allow(clippy::module_inception)] // `exec/exec.rs`: each tool file is named after its tool.
pub mod exec;
pub mod exec_sudo;
pub mod jobs_list;
pub mod jobs_output;
pub mod jobs_show;
pub mod jobs_wait;
pub mod run;
