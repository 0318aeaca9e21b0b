//! The port through which the engine reaches hosts: [`Transport`], and the [`Permit`]
//! without which no transport call can be made.
//!
//! Invariant: a `Permit` can only be minted inside this crate, by the engine, after
//! policy and the durable `requested` audit record. Transports take `&Permit` so a
//! caller that skipped the engine cannot reach a host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::files::HostFiles;
use crate::interactive::{Interactive, InteractiveRequest};
use crate::inventory::{Host, HostId};

/// Proof that the engine authorized one call on one host.
#[derive(Debug)]
pub struct Permit {
    host: HostId,
    job_id: String,
}

impl Permit {
    /// Invariant: only the engine (this crate) mints permits.
    pub(crate) fn new(host: HostId, job_id: String) -> Permit {
        Permit { host, job_id }
    }

    /// For transport tests that exercise a transport without the engine.
    #[cfg(feature = "test-support")]
    pub fn for_tests(host: &Host) -> Permit {
        Permit::new(host.id.clone(), String::from("test"))
    }

    pub fn host(&self) -> &HostId {
        &self.host
    }

    pub fn job_id(&self) -> &str {
        &self.job_id
    }
}

/// What to run: a shell string, or an argv that is quoted so no shell reinterprets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

impl Command {
    /// The command as one POSIX shell string (argv elements single-quoted).
    pub fn to_shell(&self) -> String {
        match self {
            Command::Shell(text) => text.clone(),
            // The program is always quoted when it could read as shell syntax: a
            // quoted `FOO=1` is a program's name, not an assignment, and a quoted `if`
            // is not a keyword.
            Command::Argv(argv) => argv
                .iter()
                .enumerate()
                .map(|(index, arg)| {
                    if index == 0 && (arg.contains('=') || RESERVED_WORDS.contains(&arg.as_str())) {
                        format!("'{}'", arg.replace('\'', r"'\''"))
                    } else {
                        shell_quote(arg)
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Words the shell reads as syntax in command position.
const RESERVED_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until", "do",
    "done", "in", "function", "time", "coproc", "!", "{", "}", "[[", "]]",
];

#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub command: Command,
    pub env: BTreeMap<String, String>,
    pub stdin: Option<Vec<u8>>,
    pub working_directory: Option<String>,
    pub timeout: Duration,
    /// Per stream; bytes beyond are counted, not kept.
    pub max_output_bytes: usize,
    /// Keep the command out of the host's process list (it holds a secret: the engine
    /// decides). Env values are kept out always.
    pub hide_command: bool,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(String),
    /// Stopped by warden after `timeout`.
    TimedOut,
    /// Stopped by warden because the caller cancelled.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: ExitStatus,
    pub stdout: CapturedStream,
    pub stderr: CapturedStream,
    pub duration: Duration,
}

/// One output stream, cut at a limit, with the total size it really had.
#[derive(Debug, Clone, Default)]
pub struct CapturedStream {
    pub bytes: Vec<u8>,
    pub total_bytes: u64,
    limit: usize,
}

impl CapturedStream {
    pub fn with_limit(limit: usize) -> CapturedStream {
        CapturedStream {
            bytes: Vec::new(),
            total_bytes: 0,
            limit,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total_bytes += data.len() as u64;
        let room = self.limit.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }

    pub fn truncated(&self) -> bool {
        self.total_bytes > self.bytes.len() as u64
    }

    /// Text for a JSON result; invalid UTF-8 is replaced, never dropped silently.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Counters a transport reports for `status` and `doctor`.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct TransportStats {
    pub open_connections: usize,
    pub connects: u64,
    pub reused: u64,
}

/// A way to run commands on hosts of one [`crate::inventory::HostKind`].
#[async_trait]
pub trait Transport: Send + Sync {
    /// Runs one command. Timeouts and cancellation stop the remote process and are
    /// reported in [`ExitStatus`]; connection-level failures are errors
    /// (`SSH_CONN_FAILED`, `SSH_AUTH_FAILED`, `HOST_KEY_UNKNOWN`, `HOST_KEY_MISMATCH`).
    async fn exec(
        &self,
        permit: &Permit,
        host: &Host,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput>;

    /// The host's file primitives (SFTP on SSH hosts) over the pooled connection.
    async fn files(&self, permit: &Permit, host: &Host) -> Result<Arc<dyn HostFiles>>;

    /// Starts a command with its input left open (the `command` tool); it runs until
    /// it ends or the engine stops it. A transport without them refuses.
    async fn interactive(
        &self,
        _permit: &Permit,
        host: &Host,
        _request: &InteractiveRequest,
    ) -> Result<Interactive> {
        Err(crate::error::Error::invalid_input(format!(
            "host {} cannot run interactive commands",
            host.id
        ))
        .with_host(host.id.as_str()))
    }

    fn stats(&self) -> TransportStats {
        TransportStats::default()
    }

    /// Host keys learned (under `accept-new`) since the last call, for the audit log.
    fn learned_host_keys(&self) -> Vec<LearnedKey> {
        Vec::new()
    }

    /// Closes every pooled connection (on shutdown).
    async fn shutdown(&self) {}
}

/// A host key trusted on first use and written to known_hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedKey {
    /// `address:port` as known_hosts names it.
    pub host: String,
    /// SHA-256 fingerprint (`SHA256:…`).
    pub fingerprint: String,
}

/// Quotes `text` for a POSIX shell: single quotes, with `'` written as `'\''`.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | '=' | ':' | ',' | '+' | '@')
        })
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_arguments() {
        assert_eq!(shell_quote("plain-word"), "plain-word");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
        let argv = Command::Argv(vec!["echo".into(), "$(id)".into()]);
        assert_eq!(argv.to_shell(), "echo '$(id)'");
    }

    #[test]
    fn captured_stream_counts_beyond_its_limit() {
        let mut stream = CapturedStream::with_limit(4);
        stream.push(b"abc");
        stream.push(b"def");
        assert_eq!(stream.bytes, b"abcd");
        assert_eq!(stream.total_bytes, 6);
        assert!(stream.truncated());
    }
}
