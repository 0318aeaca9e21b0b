//! warden-core: the domain and the engine. Config, inventory and targets, policy, the
//! audit chain, the tool registry, and [`engine::Engine`], the only path to a host.
//!
//! Invariant: no MCP, SSH or CLI crate appears in this crate's dependencies; transports
//! plug in through [`transport::Transport`].

pub mod config;
pub mod error;
pub mod inventory;
pub mod transport;

pub use error::{Error, ErrorCode, Result};
