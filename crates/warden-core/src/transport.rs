//! The port through which the engine reaches hosts: [`Transport`], and the [`Permit`]
//! without which no transport call can be made.
//!
//! Invariant: a `Permit` can only be minted inside this crate, by the engine, after
//! policy and the durable `requested` audit record. Transports take `&Permit` so a
//! caller that skipped the engine cannot reach a host.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::artifacts::SpillWriter;
pub use crate::artifacts::{Spill, StreamName};
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
    /// Run it spooled on the host (a job's command, see [`crate::spool`]): it outlives
    /// the channel, and a timeout or cancel stops it through its spool.
    pub spool: Option<Spooled>,
    /// Where a stream that passes `max_output_bytes` is kept whole (set by the engine;
    /// transports pass it on through [`ExecRequest::capture`]).
    pub spill: Option<Spill>,
    /// A secret reference (`${env:…}`, `${file:…}`) whose value and a newline the
    /// engine writes to stdin ahead of `stdin` (`sudo -S` reads its password there).
    /// Resolved in the engine on the way to the host; transports never see it set.
    pub secret_stdin: Option<String>,
}

/// A job's command: its spool, and whether this is the first spooled command of this
/// process on the host (which prunes spools past their retention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub spool: crate::spool::Spool,
    pub prune: bool,
}

impl ExecRequest {
    /// The capture of one of this request's streams: its limit, and its spill.
    pub fn capture(&self, stream: StreamName) -> CapturedStream {
        CapturedStream {
            limit: self.max_output_bytes,
            spill: self.spill.as_ref().map(|spill| spill.writer(stream)),
            stream: Some(stream),
            ..CapturedStream::default()
        }
    }
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

#[derive(Debug)]
pub struct ExecOutput {
    pub status: ExitStatus,
    pub stdout: CapturedStream,
    pub stderr: CapturedStream,
    pub duration: Duration,
    /// Stopped (timeout, cancel) but the host could not confirm that nothing of it is
    /// left: it may still be running.
    pub may_still_run: bool,
}

/// One output stream as the answer keeps it: all of it while it fits in its limit;
/// past it, the first half of the limit (`bytes`) and the last half (the tail, a ring),
/// with the total size it really had. A stream built from a request with a spill
/// writes everything to it once it passes the limit (see [`crate::artifacts`]).
#[derive(Debug, Default)]
pub struct CapturedStream {
    /// The head: all of the stream while it fits; once cut, its first bytes.
    pub bytes: Vec<u8>,
    /// Once cut: the stream's last bytes, oldest first.
    tail: VecDeque<u8>,
    pub total_bytes: u64,
    limit: usize,
    cut: bool,
    spill: Option<SpillWriter>,
    stream: Option<StreamName>,
    /// The job whose artifact holds the whole stream (set by the engine once kept).
    artifact: Option<String>,
}

impl CapturedStream {
    /// A stream that keeps at most `limit` bytes and spills nowhere.
    pub fn with_limit(limit: usize) -> CapturedStream {
        CapturedStream {
            limit,
            ..CapturedStream::default()
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total_bytes += data.len() as u64;
        if !self.cut && self.bytes.len() + data.len() <= self.limit {
            self.bytes.extend_from_slice(data);
            return;
        }
        if let Some(spill) = &mut self.spill {
            if !self.cut {
                // Passing the cap: what was held so far goes first.
                spill.write(&self.bytes);
            }
            spill.write(data);
        }
        let mut data = data;
        if !self.cut {
            self.cut = true;
            let head = self.limit - self.limit / 2;
            if self.bytes.len() > head {
                let rest = self.bytes.split_off(head);
                self.keep_tail(&rest);
            } else {
                let take = (head - self.bytes.len()).min(data.len());
                self.bytes.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
        }
        self.keep_tail(data);
    }

    fn keep_tail(&mut self, data: &[u8]) {
        let room = self.limit / 2;
        if data.len() >= room {
            self.tail.clear();
            self.tail.extend(&data[data.len() - room..]);
        } else {
            self.tail.extend(data);
            let excess = self.tail.len().saturating_sub(room);
            self.tail.drain(..excess);
        }
    }

    /// Bytes were left out between the head and the tail.
    pub fn truncated(&self) -> bool {
        self.cut
    }

    /// The last bytes kept after the cut (empty when nothing was cut).
    pub fn tail(&self) -> Vec<u8> {
        self.tail.iter().copied().collect()
    }

    /// How many bytes the answer leaves out.
    pub fn cut_bytes(&self) -> u64 {
        if self.cut {
            self.total_bytes.saturating_sub(self.limit as u64)
        } else {
            0
        }
    }

    /// What stands between the head and the tail of a cut stream: how much is left
    /// out and, once it is kept, the call that reads all of it. It names no host, so
    /// hosts whose kept output is the same still fold into `same_as`.
    pub fn marker(&self) -> Option<String> {
        if !self.cut {
            return None;
        }
        let cut = self.cut_bytes();
        Some(match (&self.artifact, self.stream) {
            (Some(job_id), Some(stream)) => format!(
                "\n…[{cut} bytes cut; all of it: artifacts_get job_id={job_id} stream={} and this host_id]…\n",
                stream.as_str()
            ),
            _ => format!("\n…[{cut} bytes cut]…\n"),
        })
    }

    /// Text for people and parsers: head, marker, tail; invalid UTF-8 is replaced,
    /// never dropped silently.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if let Some(marker) = self.marker() {
            text.push_str(&marker);
            text.push_str(&String::from_utf8_lossy(&self.tail()));
        }
        text
    }

    /// Gives the spill back to the engine, which masks it into an artifact.
    pub(crate) fn take_spill(&mut self) -> Option<SpillWriter> {
        self.spill.take()
    }

    /// The whole stream is now `job_id`'s artifact.
    pub(crate) fn kept_as(&mut self, job_id: &str) {
        self.artifact = Some(job_id.to_owned());
    }

    /// Replaces the head and the tail by what `mask` makes of them (a secret the cut
    /// split, masked on both sides).
    pub(crate) fn mask_seam(&mut self, mask: impl FnOnce(&[u8], &[u8]) -> (Vec<u8>, Vec<u8>)) {
        let tail = self.tail();
        let (head, tail) = mask(&self.bytes, &tail);
        self.bytes = head;
        self.tail = tail.into();
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
    fn captured_stream_keeps_head_and_tail_and_counts_the_rest() {
        let mut stream = CapturedStream::with_limit(4);
        stream.push(b"abc");
        assert!(!stream.truncated());
        stream.push(b"def");
        assert_eq!(stream.bytes, b"ab");
        assert_eq!(stream.tail(), b"ef");
        assert_eq!(stream.total_bytes, 6);
        assert!(stream.truncated());
        assert_eq!(stream.cut_bytes(), 2);
        for chunk in [&b"g"[..], b"hijklmnop", b"q"] {
            stream.push(chunk);
        }
        assert_eq!(
            (stream.bytes.as_slice(), stream.tail()),
            (&b"ab"[..], b"pq".to_vec())
        );
        assert_eq!(stream.text(), "ab\n…[13 bytes cut]…\npq");
        // One big chunk past the limit at once; an odd limit gives the head the extra.
        let mut stream = CapturedStream::with_limit(5);
        stream.push(b"0123456789");
        assert_eq!(
            (stream.bytes.as_slice(), stream.tail()),
            (&b"012"[..], b"89".to_vec())
        );
        // Exactly the limit is not cut.
        let mut stream = CapturedStream::with_limit(3);
        stream.push(b"abc");
        assert!(!stream.truncated());
        assert_eq!(stream.marker(), None);
    }
}
