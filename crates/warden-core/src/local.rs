//! The transport of the built-in `local` host: commands run as child processes of
//! warden, each in its own process group so a timeout or cancellation kills the whole
//! tree, and `kill_on_drop` so no child outlives the server — except a job's spooled
//! command, which is meant to (see [`crate::spool`]).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command as ProcessCommand;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::files::HostFiles;
use crate::interactive::{Interactive, InteractiveRequest};
use crate::inventory::Host;
use crate::local_files::LocalFiles;
use crate::spool::{Spool, StopReason};
use crate::transport::{
    CapturedStream, Command, ExecOutput, ExecRequest, ExitStatus, Permit, StreamName, Transport,
};

pub(crate) struct LocalTransport;

/// The `local` host's transport, for a composition root or a test that wants local
/// processes and files to stand in for a remote host. Harmless to hand out: every
/// call on it needs a [`crate::transport::Permit`], which only the engine mints.
pub fn local_transport() -> Arc<dyn Transport> {
    Arc::new(LocalTransport)
}

#[async_trait]
impl Transport for LocalTransport {
    async fn files(&self, _permit: &Permit, _host: &Host) -> Result<Arc<dyn HostFiles>> {
        Ok(Arc::new(LocalFiles))
    }

    async fn interactive(
        &self,
        _permit: &Permit,
        host: &Host,
        request: &InteractiveRequest,
    ) -> Result<Interactive> {
        crate::local_interactive::start(host, request).await
    }

    async fn exec(
        &self,
        _permit: &Permit,
        host: &Host,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        let started = Instant::now();
        let mut command = match &request.command {
            // The launcher reads the command from a shell variable; the environment
            // copy is dropped first so the command's children do not inherit it.
            _ if request.spool.is_some() => {
                let spooled = request
                    .spool
                    .as_ref()
                    .map(|spooled| spooled.spool.launcher(spooled.prune))
                    .unwrap_or_default();
                let mut command = ProcessCommand::new("/bin/sh");
                command
                    .arg("-c")
                    .arg(format!("c=$WARDEN_COMMAND; unset WARDEN_COMMAND; WARDEN_COMMAND=$c; unset c\n{spooled}"))
                    .env("WARDEN_COMMAND", request.command.to_shell());
                command
            }
            Command::Shell(text) => {
                let mut command = ProcessCommand::new("/bin/sh");
                command.arg("-c").arg(text);
                command
            }
            Command::Argv(argv) => {
                let mut command = ProcessCommand::new(&argv[0]);
                command.args(&argv[1..]);
                command
            }
        };
        command
            .envs(&request.env)
            .stdin(if request.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(request.spool.is_none());
        if let Some(directory) = &request.working_directory {
            command.current_dir(directory);
        }
        let mut child = command.spawn().map_err(|error| {
            Error::invalid_input(format!("cannot start the command on local: {error}"))
                .with_host(host.id.as_str())
        })?;
        let process_group = child.id();
        if let (Some(mut stdin), Some(data)) = (child.stdin.take(), request.stdin.clone()) {
            // A command that never reads its stdin must not block us: write in the
            // background and let a broken pipe end quietly.
            tokio::spawn(async move {
                let _ = stdin.write_all(&data).await;
            });
        }
        let stdout = collect(child.stdout.take(), request.capture(StreamName::Stdout));
        let stderr = collect(child.stderr.take(), request.capture(StreamName::Stderr));
        let readers = async { tokio::join!(stdout, stderr) };
        let finished = async {
            let (stdout, stderr) = readers.await;
            (child.wait().await, stdout, stderr)
        };
        let status = tokio::select! {
            (waited, stdout, stderr) = finished => {
                let status = match waited {
                    Ok(status) => exit_status(status),
                    Err(error) => return Err(Error::internal(format!("waiting for local command: {error}"))),
                };
                return Ok(ExecOutput { status, stdout, stderr, duration: started.elapsed(), may_still_run: false });
            }
            () = tokio::time::sleep(request.timeout) => ExitStatus::TimedOut,
            () = cancel.cancelled() => ExitStatus::Cancelled,
        };
        let mut may_still_run = false;
        if let Some(spooled) = &request.spool {
            let reason = if status == ExitStatus::TimedOut {
                StopReason::TimedOut
            } else {
                StopReason::Cancelled
            };
            may_still_run = !stop_spooled(&spooled.spool, reason).await;
        } else if let Some(group) = process_group {
            kill_group(group).await;
        }
        Ok(ExecOutput {
            status,
            stdout: CapturedStream::with_limit(0),
            stderr: CapturedStream::with_limit(0),
            duration: started.elapsed(),
            may_still_run,
        })
    }
}

async fn collect(
    stream: Option<impl AsyncRead + Unpin>,
    mut captured: CapturedStream,
) -> CapturedStream {
    let Some(mut stream) = stream else {
        return captured;
    };
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        captured.push(&buffer[..read]);
    }
    captured
}

pub(crate) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(signal_name(signal)),
        (None, None) => ExitStatus::Code(-1),
    }
}

pub fn signal_name(signal: i32) -> String {
    match signal {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        6 => "ABRT",
        9 => "KILL",
        11 => "SEGV",
        13 => "PIPE",
        15 => "TERM",
        _ => return format!("SIG{signal}"),
    }
    .to_owned()
}

/// Runs a spool's stop script; true when it verified nothing is left.
async fn stop_spooled(spool: &Spool, reason: StopReason) -> bool {
    let said = ProcessCommand::new("/bin/sh")
        .arg("-c")
        .arg(spool.stop_script(reason))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    said.is_ok_and(|said| crate::spool::stop_verified(&String::from_utf8_lossy(&said.stdout)))
}

/// TERM, a short grace period, then KILL, to the whole process group. `kill(1)` keeps
/// this crate free of unsafe code.
pub(crate) async fn kill_group(group: u32) {
    for (signal, pause) in [("-TERM", 200), ("-KILL", 0)] {
        let _ = ProcessCommand::new("kill")
            .args([signal, "--", &format!("-{group}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
}
