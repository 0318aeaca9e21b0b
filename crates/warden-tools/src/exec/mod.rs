//! Commands: a target concurrently (`exec`), one host (`run`), or one interactive
//! program kept open across calls (`command`).

pub mod command;
#[allow(clippy::module_inception)] // `exec/exec.rs`: each tool file is named after its tool.
pub mod exec;
pub mod run;
