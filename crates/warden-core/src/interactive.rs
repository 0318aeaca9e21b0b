//! The port for interactive commands (the `command` tool): a program started with its
//! input left open, its output read as it comes, signals sent while it runs.
//!
//! A transport answers [`crate::transport::Transport::interactive`] with an
//! [`Interactive`]: a control half the engine writes to and an event stream a pump in
//! the engine reads into the command's output ring. Every control call carries a
//! [`Permit`] the engine minted for the call that makes it, like every other transport
//! call. Tools never see either half: the engine's registry of open commands holds
//! them (`engine/commands.rs`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::Result;
use crate::transport::{Command, ExitStatus, Permit};

/// What to start.
#[derive(Debug, Clone)]
pub struct InteractiveRequest {
    pub command: Command,
    /// Values already resolved (secret references included): a transport keeps them
    /// out of the host's process list.
    pub env: BTreeMap<String, String>,
    pub working_directory: Option<String>,
    /// Run in a pseudo-terminal (output merges stderr into stdout, lines end `\r\n`).
    pub pty: bool,
}

/// The signals a caller may send to its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    Int,
    Term,
    Hup,
    Quit,
    Kill,
}

impl Signal {
    /// The name `kill -NAME` takes.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "INT",
            Signal::Term => "TERM",
            Signal::Hup => "HUP",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
        }
    }

    /// The byte a terminal turns into this signal for its foreground job (`^C`,
    /// `^\`), if there is one.
    pub fn terminal_key(self) -> Option<u8> {
        match self {
            Signal::Int => Some(0x03),
            Signal::Quit => Some(0x1c),
            _ => None,
        }
    }
}

/// What a running command reports, in order: output, then one `Ended`.
#[derive(Debug)]
pub enum InteractiveEvent {
    /// Bytes the program wrote (stdout and stderr as they came).
    Output(Vec<u8>),
    /// The program ended (`Ok`), or the transport lost it and cannot say how (`Err`:
    /// why; the outcome is unknown). Nothing follows.
    Ended(std::result::Result<ExitStatus, String>),
}

/// The half of a running command warden writes to.
#[async_trait]
pub trait InteractiveControl: Send + Sync {
    /// Sends bytes to the program's input.
    async fn write(&self, permit: &Permit, data: &[u8]) -> Result<()>;

    /// Ends the program's input (end of file; with a pty, `^D`).
    async fn close_input(&self, permit: &Permit) -> Result<()>;

    /// Delivers `signal` to the program and everything it started, also when the
    /// login is root (no SSH signal request: OpenSSH ignores those for root).
    async fn signal(&self, permit: &Permit, signal: Signal) -> Result<()>;

    /// Stops the program (TERM, a short grace, KILL, to everything it started) and
    /// lets its channel go. Best effort: failures are logged, the command is
    /// forgotten either way.
    async fn stop(&self, permit: &Permit);
}

/// A started command: its control half and its events.
pub struct Interactive {
    pub control: Box<dyn InteractiveControl>,
    pub events: mpsc::Receiver<InteractiveEvent>,
}

/// Events a transport may queue before the engine's pump reads them.
pub const EVENT_QUEUE: usize = 64;
