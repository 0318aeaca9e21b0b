//! Commands: a target concurrently (`exec`, `exec_sudo` as root) or one host (`run`).

#[allow(clippy::module_inception)] // `exec/exec.rs`: each tool file is named after its tool.
pub mod exec;
pub mod exec_sudo;
pub mod run;
