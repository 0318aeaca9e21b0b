//! warden-core: the domain and the engine. Config, inventory and targets, policy, the
//! audit chain, the tool contract ([`tool`]), and [`engine::Engine`], the only path to
//! a host. The catalogue itself is the `warden-tools` crate, handed to the engine as a
//! [`tool::Registry`].
//!
//! Invariant: no MCP, SSH, SQL or CLI crate appears in this crate's dependencies, nor
//! any tool; transports plug in through [`transport::Transport`]. What tools must not
//! touch (`Permit::new`, the raw file port, the audit log) is private to this crate.

pub mod artifacts;
pub mod audit;
pub mod config;
pub mod engine;
pub mod error;
pub mod file_locks;
pub mod files;
pub mod interactive;
pub mod inventory;
mod local;
mod local_files;
mod local_interactive;
pub mod policy;
pub mod sandbox;
pub mod secrets;
pub mod sessions;
pub mod spool;
pub mod store;
pub mod suggest;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tool;
pub mod transport;
pub mod uploads;

pub use engine::{Caller, ClientId, Engine, PlanContext, ProgressSink, RunContext};
pub use error::{Error, ErrorCode, Result};
pub use local::local_transport;
