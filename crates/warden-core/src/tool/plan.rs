//! [`Plan`]: everything a call will touch, decided before anything runs. It is the
//! input to the local gate, policy, the `requested` audit record and dry-run previews,
//! and at run time the grant: [`crate::RunContext`] runs only what the plan names.

use std::sync::Arc;

use serde::Serialize;

use super::Effect;
use super::rollout::Rollout;
use crate::inventory::Host;
use crate::sandbox::Last;
use crate::transport::Command;

/// What a call will touch.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hosts: Vec<Arc<Host>>,
    /// The caller's commands: policy checks each on every host, and only these run.
    pub commands: Vec<Command>,
    /// warden's own scripts (facts, doctor's login check).
    pub probes: Vec<Probe>,
    pub effect: Effect,
    pub dry_run: bool,
    /// A file session the call works in: the engine checks that it belongs to the
    /// caller and puts its host in `hosts` (tools cannot name hosts of other sessions).
    pub session: Option<String>,
    /// The file paths the call works on, as the caller gave them. The engine checks
    /// each against `deny_paths` before any host call, resolves it on every planned
    /// host inside the session root or an `allowed_roots` entry before the `requested`
    /// record (which names them), and at run time opens sandboxes for these alone.
    pub paths: Vec<PlannedPath>,
    /// What the commands get besides their text: policy reads the `env` names and
    /// a `stdin` a shell may take its script from, and only these run.
    pub input: CommandInput,
    /// How the hosts run: in batches, stopping early (`RolloutParams::plan`). `None`:
    /// all at once.
    pub rollout: Option<Rollout>,
    /// A step of an interactive `command`: starting one, or a call to one the caller
    /// holds (the engine then plans its host and, for a shell, the input's lines).
    pub interactive: Option<InteractivePlan>,
}

/// An interactive command's step, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractivePlan {
    /// Starts the plan's one command with its input left open. Its `input.stdin` is
    /// empty: what a shell among it reads later arrives line by line, each call's
    /// lines checked by policy then (see [`ContinuePlan`]).
    Start {
        pty: bool,
    },
    Continue(ContinuePlan),
}

/// One call to an open command, in the order the engine does it: `input`, then
/// `eof`, then `signal`, then `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuePlan {
    /// The `command_id`: the engine finds it among the caller's commands (another
    /// caller's is `JOB_NOT_FOUND`) and makes its host the plan's only host.
    pub id: String,
    /// Bytes for the program's input, escapes already decoded. When the program is a
    /// shell the engine also plans them as a command, so policy, approvals and the
    /// audit record see each line before it is sent.
    pub input: Option<Vec<u8>>,
    pub eof: bool,
    pub signal: Option<crate::interactive::Signal>,
    pub close: bool,
    /// Set by the engine: an earlier line may have changed the shell's directory, so
    /// policy reads this input's relative paths as if from anywhere.
    pub unplaced: bool,
}

/// The `env` names, `stdin` and working directory planned commands run with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandInput {
    pub env: Vec<String>,
    pub stdin: Option<String>,
    pub working_directory: Option<String>,
}

/// One path a call works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPath {
    pub path: String,
    /// Whether a symlink in the last component is followed when it is resolved.
    pub last: Last,
    /// A source read on warden's own machine (`push`, `sync`): resolved on `local`
    /// through a read-only view under local's `allowed_roots` and `deny_paths`, which
    /// needs no `local.allow_write`.
    pub local_source: bool,
}

/// A script warden itself wrote, run to read a host's state. Both fields are
/// `&'static str`, so an agent's text can never become a probe: policy checks the
/// label and the script with deny rules (allow lists written for agents' commands do
/// not apply), both are recorded, and a probe runs on `local` without
/// `local.allow_exec`, as code reviewed with the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The name deny rules can match (`warden-facts`).
    pub label: &'static str,
    pub script: &'static str,
}

impl Plan {
    /// A plan that touches no host (warden's own state only).
    pub fn local_state() -> Plan {
        Plan {
            hosts: Vec::new(),
            commands: Vec::new(),
            probes: Vec::new(),
            effect: Effect::ReadOnly,
            dry_run: false,
            session: None,
            paths: Vec::new(),
            input: CommandInput::default(),
            rollout: None,
            interactive: None,
        }
    }

    /// The commands run with these `env` names, `stdin` and working directory.
    pub fn with_input(self, input: CommandInput) -> Plan {
        Plan { input, ..self }
    }

    /// Works on files on its hosts (the `local` gate is then `allow_write`).
    pub fn files(&self) -> bool {
        self.paths.iter().any(|path| !path.local_source)
    }

    /// Also works on `path` on every planned host.
    pub fn with_path(mut self, path: &str, last: Last) -> Plan {
        self.paths.push(PlannedPath {
            path: path.to_owned(),
            last,
            local_source: false,
        });
        self
    }

    /// Also reads the source `path` on warden's own machine.
    pub fn with_local_source(mut self, path: &str) -> Plan {
        self.paths.push(PlannedPath {
            path: path.to_owned(),
            last: Last::Follow,
            local_source: true,
        });
        self
    }

    /// The caller's `command` on every host of `hosts`.
    pub fn command(hosts: Vec<Arc<Host>>, command: Command, effect: Effect) -> Plan {
        Plan {
            hosts,
            commands: vec![command],
            effect,
            ..Plan::local_state()
        }
    }

    /// warden's `probe` on every host of `hosts` (read-only).
    pub fn probe(hosts: Vec<Arc<Host>>, probe: Probe) -> Plan {
        Plan {
            hosts,
            probes: vec![probe],
            ..Plan::local_state()
        }
    }

    /// The hosts run as `rollout` says.
    pub fn with_rollout(self, rollout: Option<Rollout>) -> Plan {
        Plan { rollout, ..self }
    }

    /// Only a preview: policy decides, nothing runs.
    pub fn dry_run(self, dry_run: bool) -> Plan {
        Plan { dry_run, ..self }
    }

    /// Is a step of an interactive command.
    pub fn interactive(self, step: InteractivePlan) -> Plan {
        Plan {
            interactive: Some(step),
            ..self
        }
    }

    /// Works in the caller's file session `session` (its host joins the plan).
    pub fn in_session(self, session: Option<String>) -> Plan {
        Plan { session, ..self }
    }
}
