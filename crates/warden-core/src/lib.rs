//! warden-core: the domain and the engine. Config, inventory and targets, policy, the
//! audit chain, the tool registry, and [`engine::Engine`], the only path to a host.
//!
//! Invariant: no MCP, SSH or CLI crate appears in this crate's dependencies; transports
//! plug in through [`transport::Transport`].

pub mod audit;
pub mod config;
pub mod engine;
pub mod error;
pub mod file_locks;
pub mod files;
pub mod inventory;
mod local;
mod local_files;
pub mod policy;
pub mod sandbox;
pub mod sessions;
pub mod suggest;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tool;
pub mod transport;
pub mod uploads;

pub use engine::{Caller, ClientId, Engine, PlanContext, ProgressSink, RunContext};
pub use error::{Error, ErrorCode, Result};
pub use local::local_transport;
