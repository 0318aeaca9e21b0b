//! Interactive commands over SSH (the `command` tool): one session channel per
//! command, optionally with a pseudo-terminal, kept open while the program runs.
//!
//! The wrapper script reports the remote PID first, then reads the env values and the
//! command from the channel (so neither is in the host's process list, as in
//! `exec.rs`), then runs the command by `eval`. With a pty the terminal would echo
//! those bytes and cook them (`^C`, CR/LF), so the wrapper puts it in raw mode without
//! echo before it reports the PID, and warden sends them only after the PID line
//! arrived; the wrapper then restores the terminal for the command.
//!
//! Signals never use SSH signal requests: OpenSSH ignores them for root logins
//! (DEPENDENCIES.md gotcha 1). sshd starts the command in a new session whose id is
//! the reported PID; a signal goes over a second channel to every process of that
//! session (read from `/proc`, else the process group), so it also reaches jobs an
//! interactive shell moved to groups of their own. With a pty, `INT` and `QUIT` are
//! the terminal's keys instead (`^C`, `^\`): the kernel gives them to the foreground
//! job, as a terminal would, and an interactive shell survives them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::interactive::{
    EVENT_QUEUE, Interactive, InteractiveControl, InteractiveEvent, InteractiveRequest, Signal,
};
use warden_core::inventory::Host;
use warden_core::transport::{ExitStatus, Permit, shell_quote};

use crate::Inner;
use crate::connect::Endpoint;
use crate::exec::{signal_name_of, valid_env_name};
use crate::pool::Connection;

/// The wrapper's first line: `WARDEN-PID:<pid of the remote shell>`.
const PID_MARKER: &[u8] = b"WARDEN-PID:";
/// Output searched for the marker before giving up (login noise may precede it).
const HEADER_WINDOW: usize = 4096;
/// How long the host may take to confirm the pty and the command and report the PID.
const START_WAIT: Duration = Duration::from_secs(10);
/// How long to wait for the channel to close after the exit status: a background
/// process holding the channel open must not keep an ended command running.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// A program that takes none of its input for this long fails the write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a signal's second channel: open, run, close.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);
/// `TERM=dumb`: programs print no colours or cursor moves for a reader that is a model.
const TERMINAL: &str = "dumb";
const COLUMNS: u32 = 160;
const ROWS: u32 = 48;

/// Opens a channel on `host`'s pooled connection and starts `request` on it.
pub(crate) async fn start(
    inner: &Arc<Inner>,
    host: &Host,
    request: &InteractiveRequest,
) -> Result<Interactive> {
    let wrapped = wrap(request)?;
    let endpoint = inner.endpoint(host)?;
    inner.maintain().await;
    let (connection, channel) = inner.open_channel(&endpoint).await?;
    let (mut read, write) = channel.split();
    let started = tokio::time::timeout(START_WAIT, async {
        // Output that comes before a reply (none expected) is not lost.
        let mut early = Vec::new();
        if request.pty {
            write
                .request_pty(true, TERMINAL, COLUMNS, ROWS, 0, 0, &[])
                .await
                .map_err(|error| endpoint.conn_failed(format!("cannot ask for a pty: {error}")))?;
            confirmed(&mut read, &endpoint, "a pseudo-terminal", &mut early).await?;
        }
        write
            .exec(true, wrapped.script.into_bytes())
            .await
            .map_err(|error| {
                endpoint.conn_failed(format!("could not start the command: {error}"))
            })?;
        confirmed(&mut read, &endpoint, "the command", &mut early).await?;
        header(&mut read, &endpoint, early).await
    })
    .await;
    let (pid, early) = match started {
        Ok(Ok(header)) => header,
        Ok(Err(error)) => {
            let _ = write.close().await;
            return Err(error);
        }
        Err(_) => {
            let _ = write.close().await;
            return Err(endpoint.conn_failed(format!(
                "the command did not start within {} s",
                START_WAIT.as_secs()
            )));
        }
    };
    let control = SshControl {
        write,
        connection: Arc::clone(&connection),
        endpoint,
        pid,
        pty: request.pty,
    };
    if let Err(error) = control.write.data(wrapped.preamble.as_slice()).await {
        // The wrapper waits for what never came: nothing of the command ran.
        let _ = control.kill_session("KILL").await;
        let _ = control.write.close().await;
        return Err(control
            .endpoint
            .conn_failed(format!("could not send the command: {error}")));
    }
    let (sender, events) = mpsc::channel(EVENT_QUEUE);
    if !early.is_empty() {
        let _ = sender.send(InteractiveEvent::Output(early)).await;
    }
    tokio::spawn(pump(read, sender, connection, control.endpoint.clone()));
    Ok(Interactive {
        control: Box::new(control),
        events,
    })
}

/// The remote command line and what goes on the channel once the PID arrived.
struct Wrapped {
    script: String,
    /// The env values, then the command, in the order the script reads them.
    preamble: Vec<u8>,
}

fn wrap(request: &InteractiveRequest) -> Result<Wrapped> {
    // `stty` fails without a terminal (no pty): `saved` stays empty and nothing changes.
    let mut script = String::from(
        "saved=$(stty -g 2>/dev/null) && stty raw -echo 2>/dev/null; printf '%s\\n' \"WARDEN-PID:$$\"",
    );
    let mut preamble = Vec::new();
    for (name, value) in &request.env {
        if !valid_env_name(name) {
            return Err(Error::invalid_input(format!(
                "env name {name:?} is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"
            )));
        }
        script.push_str(&format!(
            "; {name}=$(head -c {} && echo x) || exit 125; {name}=${{{name}%x}}; export {name}",
            value.len()
        ));
        preamble.extend_from_slice(value.as_bytes());
    }
    let command = request.command.to_shell();
    script.push_str(&format!(
        "; WARDEN_COMMAND=$(head -c {} && echo x) || exit 125; [ -z \"$saved\" ] || stty \"$saved\"",
        command.len()
    ));
    preamble.extend_from_slice(command.as_bytes());
    if let Some(directory) = &request.working_directory {
        script.push_str(&format!("; cd -- {} || exit 126", shell_quote(directory)));
    }
    script.push_str("; eval \"${WARDEN_COMMAND%x}\"");
    Ok(Wrapped { script, preamble })
}

/// Waits for the host's answer to a request sent with `want_reply`; output meanwhile
/// goes to `early`.
async fn confirmed(
    read: &mut ChannelReadHalf,
    endpoint: &Endpoint,
    what: &str,
    early: &mut Vec<u8>,
) -> Result<()> {
    loop {
        match read.wait().await {
            Some(ChannelMsg::Success) => return Ok(()),
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                early.extend_from_slice(&data);
            }
            Some(ChannelMsg::Failure) => {
                return Err(endpoint.conn_failed(format!("the host refused {what}")));
            }
            Some(ChannelMsg::Close) | None => {
                return Err(
                    endpoint.conn_failed(format!("the channel closed while asking for {what}"))
                );
            }
            Some(_) => {}
        }
    }
}

/// Reads until the wrapper's PID line; what came around it is output.
async fn header(
    read: &mut ChannelReadHalf,
    endpoint: &Endpoint,
    mut seen: Vec<u8>,
) -> Result<(u32, Vec<u8>)> {
    if let Some(found) = split_header(&seen) {
        return Ok(found);
    }
    loop {
        match read.wait().await {
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                seen.extend_from_slice(&data);
                if let Some((pid, rest)) = split_header(&seen) {
                    return Ok((pid, rest));
                }
                if seen.len() > HEADER_WINDOW {
                    break;
                }
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    // Without its PID the command could not be signalled or stopped: refuse it.
    Err(Error::new(
        ErrorCode::SshConnFailed,
        format!(
            "{}: the host did not report the command's PID; it was not started: {}",
            endpoint.describe(),
            String::from_utf8_lossy(&seen[..seen.len().min(300)])
        ),
    )
    .with_host(&endpoint.host_id))
}

/// The PID on a `WARDEN-PID:` line at a line start, and the bytes around that line.
fn split_header(seen: &[u8]) -> Option<(u32, Vec<u8>)> {
    let start = (0..seen.len()).find(|&index| {
        (index == 0 || seen[index - 1] == b'\n') && seen[index..].starts_with(PID_MARKER)
    })?;
    let length = seen[start..].iter().position(|&byte| byte == b'\n')?;
    let digits = &seen[start + PID_MARKER.len()..start + length];
    let pid = std::str::from_utf8(digits).ok()?.trim().parse().ok()?;
    let mut rest = seen[..start].to_vec();
    rest.extend_from_slice(&seen[start + length + 1..]);
    Some((pid, rest))
}

/// Forwards output (stdout and stderr as they came) and then how the command ended.
async fn pump(
    mut read: ChannelReadHalf,
    sender: mpsc::Sender<InteractiveEvent>,
    connection: Arc<Connection>,
    endpoint: Endpoint,
) {
    let mut status: Option<ExitStatus> = None;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let message = match deadline {
            None => read.wait().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, read.wait()).await {
                Ok(message) => message,
                Err(_) => break,
            },
        };
        match message {
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                connection.touch();
                if sender
                    .send(InteractiveEvent::Output(data.to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                status = Some(ExitStatus::Code(
                    i32::try_from(exit_status).unwrap_or(i32::MAX),
                ));
                deadline = Some(tokio::time::Instant::now() + EXIT_GRACE);
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                status = Some(ExitStatus::Signal(signal_name_of(&signal_name)));
                deadline = Some(tokio::time::Instant::now() + EXIT_GRACE);
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    let ended = status.ok_or_else(|| {
        let reason = if connection.is_alive() {
            "the channel closed without an exit status"
        } else {
            "the connection was lost"
        };
        format!(
            "{}: {reason}; the command may or may not still run",
            endpoint.describe()
        )
    });
    let _ = sender.send(InteractiveEvent::Ended(ended)).await;
}

struct SshControl {
    write: ChannelWriteHalf<Msg>,
    /// Kept for the second channel signals take (and so the pool keeps it open).
    connection: Arc<Connection>,
    endpoint: Endpoint,
    /// The remote wrapper's PID: the id of the session it leads.
    pid: u32,
    pty: bool,
}

impl SshControl {
    fn check(&self, permit: &Permit) -> Result<()> {
        if permit.host().as_str() != self.endpoint.host_id {
            return Err(Error::internal(format!(
                "permit for host {} used for a command on {}",
                permit.host(),
                self.endpoint.host_id
            )));
        }
        Ok(())
    }

    async fn send(&self, data: &[u8]) -> Result<()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.write.data(data)).await {
            Ok(Ok(())) => {
                self.connection.touch();
                Ok(())
            }
            Ok(Err(error)) => Err(self
                .endpoint
                .conn_failed(format!("could not send input: {error}"))),
            Err(_) => Err(Error::new(
                ErrorCode::CmdTimeout,
                format!(
                    "{}: the program took none of its input for {} s",
                    self.endpoint.describe(),
                    WRITE_TIMEOUT.as_secs()
                ),
            )
            .with_host(&self.endpoint.host_id)),
        }
    }

    /// `kill -SIGNAL` to every process of the command's session, over a second
    /// channel. A process that moved to a session of its own (`setsid`) is out of reach.
    async fn kill_session(&self, signal: &str) -> Result<()> {
        let pid = self.pid;
        let script = format!(
            "for d in /proc/[0-9]*; do {{ read -r s < \"$d/stat\"; }} 2>/dev/null || continue; \
             s=${{s##*) }}; set -- $s; [ \"$4\" = {pid} ] && kill -{signal} \"${{d#/proc/}}\" 2>/dev/null; done; \
             kill -s {signal} -- -{pid} 2>/dev/null; exit 0"
        );
        let sent = tokio::time::timeout(SIGNAL_TIMEOUT, async {
            let mut channel = self.connection.handle.channel_open_session().await?;
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
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self
                .endpoint
                .conn_failed(format!("could not send {signal} to the command: {error}"))),
            Err(_) => Err(self.endpoint.conn_failed(format!(
                "sending {signal} to the command took more than {} s",
                SIGNAL_TIMEOUT.as_secs()
            ))),
        }
    }
}

#[async_trait]
impl InteractiveControl for SshControl {
    async fn write(&self, permit: &Permit, data: &[u8]) -> Result<()> {
        self.check(permit)?;
        self.send(data).await
    }

    async fn close_input(&self, permit: &Permit) -> Result<()> {
        self.check(permit)?;
        if self.pty {
            // A terminal has no end of file, only the key that means it.
            return self.send(&[0x04]).await;
        }
        self.write.eof().await.map_err(|error| {
            self.endpoint
                .conn_failed(format!("could not end input: {error}"))
        })
    }

    async fn signal(&self, permit: &Permit, signal: Signal) -> Result<()> {
        self.check(permit)?;
        match (self.pty, signal.terminal_key()) {
            (true, Some(key)) => self.send(&[key]).await,
            _ => self.kill_session(signal.name()).await,
        }
    }

    async fn stop(&self, permit: &Permit) {
        if let Err(error) = self.check(permit) {
            tracing::error!("{error}");
            return;
        }
        for (signal, pause) in [
            ("TERM", Duration::from_millis(200)),
            ("KILL", Duration::ZERO),
        ] {
            if let Err(error) = self.kill_session(signal).await {
                tracing::warn!(target = %self.endpoint.describe(), pid = self.pid, %error, "could not stop an interactive command");
            }
            tokio::time::sleep(pause).await;
        }
        let _ = self.write.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use warden_core::transport::Command;

    use super::*;

    #[test]
    fn the_wrapper_reads_env_and_command_after_the_pid_and_restores_the_terminal() {
        let mut env = BTreeMap::new();
        env.insert(String::from("TOKEN"), String::from("it's secret"));
        let wrapped = wrap(&InteractiveRequest {
            command: Command::Shell(String::from("bash")),
            env,
            working_directory: Some(String::from("/tmp/x y")),
            pty: true,
        })
        .unwrap();
        assert_eq!(
            wrapped.script,
            "saved=$(stty -g 2>/dev/null) && stty raw -echo 2>/dev/null; printf '%s\\n' \"WARDEN-PID:$$\"; TOKEN=$(head -c 11 && echo x) || exit 125; TOKEN=${TOKEN%x}; export TOKEN; WARDEN_COMMAND=$(head -c 4 && echo x) || exit 125; [ -z \"$saved\" ] || stty \"$saved\"; cd -- '/tmp/x y' || exit 126; eval \"${WARDEN_COMMAND%x}\""
        );
        assert!(!wrapped.script.contains("secret") && !wrapped.script.contains("bash"));
        assert_eq!(wrapped.preamble, b"it's secretbash");
    }

    #[test]
    fn the_pid_line_is_found_after_noise_and_taken_out() {
        assert_eq!(
            split_header(b"motd\nWARDEN-PID:42\r\nhello"),
            Some((42, b"motd\nhello".to_vec()))
        );
        assert_eq!(split_header(b"WARDEN-PID:4"), None, "not yet whole");
        assert_eq!(
            split_header(b"xWARDEN-PID:4\n"),
            None,
            "not at a line start"
        );
    }
}
