//! One command over one session channel: the wrapper script (reports the remote PID,
//! reads env values from stdin, changes directory), stdin then EOF, output capture,
//! and stopping the remote process group on timeout or cancellation.
//!
//! Why env and the command over stdin: the command line is in every process list on
//! the host (`ps` shows the shell's argv to all users: a token in a command, an env
//! value) and sshd's env requests pass only `AcceptEnv` names. The wrapper names each
//! variable and its length; the values come first on the channel's stdin, read exactly
//! (`head -c`), and the caller's stdin follows untouched. A command the engine marks
//! `hide_command` (it holds a secret, or the call has env values) comes after them
//! the same way and runs by `eval` in the same shell (no new argv); an ordinary one
//! stays in the script, sparing the host a subshell and a `head` per command
//! (~2 ms here).
//!
//! Why a PID and a second channel: OpenSSH ignores channel signals for root logins and
//! closing a non-PTY channel leaves the command running (DEPENDENCIES.md gotcha 1).
//! sshd starts the command's shell in a new session, so its PID is also its process
//! group id, and `kill -- -PID` over another channel reaches everything it started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, Sig};
use tokio_util::sync::CancellationToken;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::spool::{Spool, StopReason};
use warden_core::transport::{CapturedStream, ExecOutput, ExecRequest, ExitStatus, shell_quote};

use crate::connect::Endpoint;
use crate::pool::Connection;

/// The first line the wrapper prints: `WARDEN-PID:<pid of the remote shell>`.
const PID_MARKER: &[u8] = b"WARDEN-PID:";
/// Output searched for the marker before giving up on it (login noise may precede it).
const HEADER_WINDOW: usize = 4096;
/// How long to wait for the channel to close after the exit status: a background
/// process that keeps stdout open must not turn a finished command into a timeout.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long to keep reading after the kill, for output the dying command still wrote.
const DRAIN: Duration = Duration::from_secs(2);
/// How long a timed-out command may take to report its PID before we give up on it.
const HEADER_WAIT: Duration = Duration::from_secs(5);
/// Bound on the kill once its channel is open: run TERM/sleep/KILL, close. (The open
/// itself has the channel-open deadline, `ssh.connect_timeout_ms`.)
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The remote command line and what goes on stdin before the caller's own input.
pub(crate) struct Wrapped {
    pub(crate) script: String,
    /// The env values, in the order the script reads them.
    pub(crate) preamble: Vec<u8>,
}

/// The remote command line: PID report, env read from stdin, `cd`, then the user's
/// command read from stdin and run by `eval` (its text never joins ours).
pub(crate) fn wrap(request: &ExecRequest) -> Result<Wrapped> {
    let mut script = String::from("printf '%s\\n' \"WARDEN-PID:$$\"");
    let mut preamble = Vec::new();
    for (name, value) in &request.env {
        if !valid_env_name(name) {
            return Err(Error::invalid_input(format!(
                "env name {name:?} is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"
            )));
        }
        // `x` keeps trailing newlines from the command substitution; exit 125 if the
        // host cannot read it (no `head`), rather than run without the variable.
        script.push_str(&format!(
            "; {name}=$(head -c {} && echo x) || exit 125; {name}=${{{name}%x}}; export {name}",
            value.len()
        ));
        preamble.extend_from_slice(value.as_bytes());
    }
    if let Some(directory) = &request.working_directory {
        script.push_str(&format!("; cd -- {} || exit 126", shell_quote(directory)));
    }
    let command = request.command.to_shell();
    if let Some(spooled) = &request.spool {
        // A job's command: the spool launcher runs `$WARDEN_COMMAND` (a shell variable,
        // not exported: the command's children do not inherit it).
        if request.hide_command {
            script.push_str(&format!(
                "; WARDEN_COMMAND=$(head -c {} && echo x) || exit 125; WARDEN_COMMAND=${{WARDEN_COMMAND%x}}",
                command.len()
            ));
            preamble.extend_from_slice(command.as_bytes());
        } else {
            script.push_str(&format!("; WARDEN_COMMAND={}", shell_quote(&command)));
        }
        script.push('\n');
        script.push_str(&spooled.spool.launcher(spooled.prune));
    } else if request.hide_command {
        script.push_str(&format!(
            "; WARDEN_COMMAND=$(head -c {} && echo x) || exit 125; eval \"${{WARDEN_COMMAND%x}}\"",
            command.len()
        ));
        preamble.extend_from_slice(command.as_bytes());
    } else {
        // Nothing secret in it: on its own line, so its text cannot join ours.
        script.push('\n');
        script.push_str(&command);
    }
    Ok(Wrapped { script, preamble })
}

pub(crate) fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

enum End {
    /// The server closed the channel (or the connection went away).
    Closed,
    /// Exit status received, but the channel stayed open past the grace period.
    ExitedOpen,
    TimedOut,
    Cancelled,
}

/// Runs `script` on `channel` and collects the result.
pub(crate) async fn run(
    connection: &Arc<Connection>,
    endpoint: &Endpoint,
    channel: Channel<Msg>,
    wrapped: Wrapped,
    request: &ExecRequest,
    cancel: &CancellationToken,
    started: Instant,
) -> Result<ExecOutput> {
    let (mut read, write) = channel.split();
    write
        .exec(true, wrapped.script.into_bytes())
        .await
        .map_err(|error| endpoint.conn_failed(format!("could not start the command: {error}")))?;
    let mut stdout = request.capture(warden_core::transport::StreamName::Stdout);
    let mut stderr = request.capture(warden_core::transport::StreamName::Stderr);
    let mut header = PidHeader::default();
    let mut status: Option<ExitStatus> = None;
    let mut may_still_run = false;

    // Stdin is written while output is read: a command that echoes a large stdin would
    // otherwise fill both windows and deadlock. EOF always follows (gotcha 2).
    let stdin = async {
        if !wrapped.preamble.is_empty() {
            write.data(wrapped.preamble.as_slice()).await?;
        }
        if let Some(data) = request.stdin.as_deref() {
            write.data(data).await?;
        }
        write.eof().await
    };
    tokio::pin!(stdin);
    let mut stdin_done = false;
    let deadline = tokio::time::Instant::now() + request.timeout;
    let mut wake = deadline;

    let end = loop {
        tokio::select! {
            result = &mut stdin, if !stdin_done => {
                stdin_done = true;
                if let Err(error) = result {
                    // The command may exit without reading; that is its business.
                    tracing::debug!(target = %endpoint.describe(), %error, "stdin not fully sent");
                }
            }
            message = read.wait() => match message {
                Some(ChannelMsg::Data { data }) => header.feed(&data, &mut stdout),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.push(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    status = Some(ExitStatus::Code(i32::try_from(exit_status).unwrap_or(i32::MAX)));
                    wake = deadline.min(tokio::time::Instant::now() + EXIT_GRACE);
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    status = Some(ExitStatus::Signal(signal_name_of(&signal_name)));
                    wake = deadline.min(tokio::time::Instant::now() + EXIT_GRACE);
                }
                Some(ChannelMsg::Failure) if status.is_none() => {
                    let _ = write.close().await;
                    return Err(endpoint.conn_failed("the host refused to run the command (exec request failed)"));
                }
                Some(ChannelMsg::Close) | None => break End::Closed,
                Some(_) => {}
            },
            () = tokio::time::sleep_until(wake) => {
                break if status.is_some() { End::ExitedOpen } else { End::TimedOut };
            }
            () = cancel.cancelled() => break End::Cancelled,
        }
    };

    let status = match end {
        End::Closed => match status {
            Some(status) => status,
            None => {
                let reason = if connection.is_alive() {
                    "the channel closed without an exit status"
                } else {
                    "the connection was lost"
                };
                return Err(Error::new(
                    ErrorCode::OutcomeUnknown,
                    format!(
                        "{}: {reason} while the command ran; it may or may not have completed",
                        endpoint.describe()
                    ),
                )
                .with_host(&endpoint.host_id));
            }
        },
        End::ExitedOpen => {
            let _ = write.close().await;
            status.unwrap_or(ExitStatus::Code(-1))
        }
        End::TimedOut | End::Cancelled => {
            if !header.done {
                // Stopped before the wrapper's first line arrived (a slow login): wait a
                // little for the PID, or the command would run on unkillable.
                await_header(&mut read, &mut header, &mut stdout, &mut stderr).await;
            }
            let reason = if matches!(end, End::TimedOut) {
                StopReason::TimedOut
            } else {
                StopReason::Cancelled
            };
            match &request.spool {
                Some(spooled) => {
                    may_still_run =
                        !stop_spooled(connection, endpoint, &spooled.spool, reason).await;
                }
                None => {
                    if let Err(why) = stop_remote(connection, endpoint, header.pid).await {
                        let _ = write.close().await;
                        return Err(not_stopped(endpoint, &end, request, &why));
                    }
                }
            }
            drain(&mut read, &mut header, &mut stdout, &mut stderr).await;
            let _ = write.close().await;
            if matches!(end, End::TimedOut) {
                ExitStatus::TimedOut
            } else {
                ExitStatus::Cancelled
            }
        }
    };
    header.finish(&mut stdout);
    Ok(ExecOutput {
        status,
        stdout,
        stderr,
        duration: started.elapsed(),
        may_still_run,
    })
}

/// Stops a spooled command by its spool (process group, then every process marked as
/// the job's), over a second channel; true when the host verified nothing is left.
pub(crate) async fn stop_spooled(
    connection: &Connection,
    endpoint: &Endpoint,
    spool: &Spool,
    reason: StopReason,
) -> bool {
    let script = spool.stop_script(reason);
    // Within the channel-open deadline: a host that froze condemns its connection.
    let stopped = tokio::time::timeout(KILL_TIMEOUT, async {
        let mut channel = connection
            .open_session()
            .await
            .map_err(|error| format!("the stop channel did not open: {}", error.message))?;
        let sent = async {
            channel.exec(true, script.into_bytes()).await?;
            channel.eof().await
        };
        sent.await.map_err(|error| error.to_string())?;
        let mut said = Vec::new();
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => said.extend_from_slice(&data),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok::<Vec<u8>, String>(said)
    })
    .await;
    match stopped {
        Ok(Ok(said)) => {
            let said = String::from_utf8_lossy(&said);
            let verified = warden_core::spool::stop_verified(&said);
            if !verified {
                tracing::warn!(target = %endpoint.describe(), spool = spool.key(), "the job's processes survived INT, TERM and KILL");
            }
            verified
        }
        Ok(Err(error)) => {
            tracing::warn!(target = %endpoint.describe(), spool = spool.key(), %error, "could not stop the job");
            false
        }
        Err(_) => {
            tracing::warn!(target = %endpoint.describe(), spool = spool.key(), "stopping the job timed out");
            false
        }
    }
}

/// TERM, a short grace, then KILL to the command's process group, over a second
/// channel. `Err(why)` when the kill was not delivered: the command may run on.
async fn stop_remote(
    connection: &Connection,
    endpoint: &Endpoint,
    pid: Option<u32>,
) -> std::result::Result<(), String> {
    let Some(pid) = pid else {
        // The wrapper's first line never arrived, so there is no group to kill; closing
        // the channel is all that is left.
        tracing::warn!(target = %endpoint.describe(), "no remote PID reported; cannot kill the command");
        return Ok(());
    };
    let script = format!(
        "kill -s TERM -- -{pid} 2>/dev/null; sleep 0.2; kill -s KILL -- -{pid} 2>/dev/null; exit 0"
    );
    // Within the channel-open deadline: a frozen host answers no open, and the
    // connection that did not is dropped from the pool (`Connection::open_session`).
    let mut channel = connection
        .open_session()
        .await
        .map_err(|error| format!("the kill channel did not open: {}", error.message))?;
    let killed = tokio::time::timeout(KILL_TIMEOUT, async {
        channel.exec(true, script.into_bytes()).await?;
        channel.eof().await?;
        while let Some(message) = channel.wait().await {
            if matches!(message, ChannelMsg::Close) {
                break;
            }
        }
        Ok::<(), russh::Error>(())
    })
    .await;
    match killed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("the kill failed: {error}")),
        Err(_) => Err(format!(
            "the kill did not finish within {} s",
            KILL_TIMEOUT.as_secs()
        )),
    }
}

/// The answer when a timed-out or cancelled command could not be stopped: it may
/// still run, so its outcome is unknown (never a `CMD_TIMEOUT` that says it was killed).
fn not_stopped(endpoint: &Endpoint, end: &End, request: &ExecRequest, why: &str) -> Error {
    let what = match end {
        End::Cancelled => String::from("was cancelled"),
        _ => format!("ran past its timeout ({} ms)", request.timeout.as_millis()),
    };
    tracing::warn!(target = %endpoint.describe(), %why, "could not stop the remote command");
    Error::new(
        ErrorCode::OutcomeUnknown,
        format!(
            "{}: the command {what} and warden could not stop it ({why}); it may still be running",
            endpoint.describe()
        ),
    )
    .with_host(&endpoint.host_id)
    .with_hint(
        "The kill did not reach the host (it stopped answering, or refused the kill's channel). Check the host's state (is the command still running? did it finish?) before retrying; a host that stopped answering gets a new connection on the next call.",
    )
}

/// Reads until the PID header is parsed, the channel ends, or [`HEADER_WAIT`] passes.
async fn await_header(
    read: &mut ChannelReadHalf,
    header: &mut PidHeader,
    stdout: &mut CapturedStream,
    stderr: &mut CapturedStream,
) {
    let _ = tokio::time::timeout(HEADER_WAIT, async {
        while !header.done {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => header.feed(&data, stdout),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.push(&data),
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
    })
    .await;
}

/// Keeps what the killed command wrote on its way out, for a short while.
async fn drain(
    read: &mut ChannelReadHalf,
    header: &mut PidHeader,
    stdout: &mut CapturedStream,
    stderr: &mut CapturedStream,
) {
    let _ = tokio::time::timeout(DRAIN, async {
        while let Some(message) = read.wait().await {
            match message {
                ChannelMsg::Data { data } => header.feed(&data, stdout),
                ChannelMsg::ExtendedData { data, ext: 1 } => stderr.push(&data),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await;
}

/// Splits the wrapper's `WARDEN-PID:<n>` line off stdout; it may arrive in pieces.
#[derive(Default)]
struct PidHeader {
    pending: Vec<u8>,
    done: bool,
    pid: Option<u32>,
}

impl PidHeader {
    fn feed(&mut self, data: &[u8], stdout: &mut CapturedStream) {
        if self.done {
            stdout.push(data);
            return;
        }
        self.pending.extend_from_slice(data);
        if let Some(start) = marker_at_line_start(&self.pending)
            && let Some(length) = self.pending[start..].iter().position(|&b| b == b'\n')
        {
            let digits = &self.pending[start + PID_MARKER.len()..start + length];
            self.pid = std::str::from_utf8(digits)
                .ok()
                .and_then(|text| text.trim().parse().ok());
            // Anything before the marker is login-shell noise; keep it, it is output.
            stdout.push(&self.pending[..start]);
            stdout.push(&self.pending[start + length + 1..]);
            self.pending = Vec::new();
            self.done = true;
            return;
        }
        if self.pending.len() > HEADER_WINDOW {
            self.finish(stdout);
        }
    }

    /// No (complete) header: everything held back is output after all.
    fn finish(&mut self, stdout: &mut CapturedStream) {
        if !self.done {
            stdout.push(&self.pending);
            self.pending = Vec::new();
            self.done = true;
        }
    }
}

fn marker_at_line_start(buffer: &[u8]) -> Option<usize> {
    (0..buffer.len()).find(|&index| {
        (index == 0 || buffer[index - 1] == b'\n') && buffer[index..].starts_with(PID_MARKER)
    })
}

/// The name sshd sent, without `SIG` (matching warden-core's local transport).
pub(crate) fn signal_name_of(signal: &Sig) -> String {
    match signal {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name.as_str(),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use warden_core::transport::Command;

    use super::*;

    fn request(command: &str) -> ExecRequest {
        ExecRequest {
            command: Command::Shell(command.to_owned()),
            env: BTreeMap::new(),
            stdin: None,
            working_directory: None,
            timeout: Duration::from_secs(5),
            max_output_bytes: 1024,
            hide_command: false,
            spool: None,
            spill: None,
            secret_stdin: None,
        }
    }

    #[test]
    fn wrapper_reads_env_and_command_from_stdin() {
        let mut request = request("echo \"$A\"");
        request.env.insert("A".into(), "it's secret".into());
        request.hide_command = true;
        request.working_directory = Some("/tmp/x y".into());
        let wrapped = wrap(&request).unwrap();
        assert_eq!(
            wrapped.script,
            "printf '%s\\n' \"WARDEN-PID:$$\"; A=$(head -c 11 && echo x) || exit 125; A=${A%x}; export A; cd -- '/tmp/x y' || exit 126; WARDEN_COMMAND=$(head -c 9 && echo x) || exit 125; eval \"${WARDEN_COMMAND%x}\""
        );
        assert!(!wrapped.script.contains("secret"));
        assert_eq!(wrapped.preamble, b"it's secretecho \"$A\"");
    }

    #[test]
    fn an_ordinary_command_stays_in_the_script() {
        let wrapped = wrap(&request("uptime")).unwrap();
        assert_eq!(wrapped.script, "printf '%s\\n' \"WARDEN-PID:$$\"\nuptime");
        assert!(wrapped.preamble.is_empty());
    }

    #[test]
    fn bad_env_names_are_invalid_input() {
        for name in ["", "1A", "A-B", "A B", "A;rm"] {
            let mut request = request("true");
            request.env.insert(name.into(), "v".into());
            // No Debug on Wrapped: its preamble holds env values.
            let Err(error) = wrap(&request) else {
                panic!("{name:?} accepted");
            };
            assert_eq!(error.code, ErrorCode::InvalidInput, "{name:?}");
        }
    }

    #[test]
    fn header_split_across_chunks_is_stripped() {
        let mut header = PidHeader::default();
        let mut stdout = CapturedStream::with_limit(100);
        for chunk in [&b"WARD"[..], b"EN-PID:4", b"2\nhel", b"lo\n"] {
            header.feed(chunk, &mut stdout);
        }
        header.finish(&mut stdout);
        assert_eq!(header.pid, Some(42));
        assert_eq!(stdout.bytes, b"hello\n");
    }

    #[test]
    fn output_without_header_is_kept() {
        let mut header = PidHeader::default();
        let mut stdout = CapturedStream::with_limit(100);
        header.feed(b"no header here", &mut stdout);
        header.finish(&mut stdout);
        assert_eq!(header.pid, None);
        assert_eq!(stdout.bytes, b"no header here");
    }
}
