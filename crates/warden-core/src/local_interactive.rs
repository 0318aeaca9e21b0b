//! Interactive commands on the built-in `local` host (and wherever the local transport
//! stands in for a host, as in the catalogue's tests): a child process of warden in
//! its own process group, input on a pipe, stdout and stderr read as they come.
//!
//! No pseudo-terminal here: opening one takes `unsafe` (or a new dependency), and this
//! workspace forbids the first. `pty: true` on `local` is refused up front by the
//! `command` tool; this transport refuses it too, should another caller ask.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command as ProcessCommand};
use tokio::sync::{Mutex, mpsc};

use crate::error::{Error, ErrorCode, Result};
use crate::interactive::{
    EVENT_QUEUE, Interactive, InteractiveControl, InteractiveEvent, InteractiveRequest, Signal,
};
use crate::inventory::Host;
use crate::local::{exit_status, kill_group};
use crate::transport::{Command, Permit};

/// How long output may keep coming after the program exited: a background process
/// holding stdout must not keep a finished command running.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// A program that does not read its input for this long fails the write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn start(host: &Host, request: &InteractiveRequest) -> Result<Interactive> {
    if request.pty {
        return Err(Error::invalid_input(format!(
            "pty: true is not available on {}: warden opens no pseudo-terminal on its own machine",
            host.id
        ))
        .with_host(host.id.as_str())
        .with_hint(
            "Start it without pty (a shell then reads lines without a prompt), or on an SSH host.",
        ));
    }
    let mut command = match &request.command {
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
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(directory) = &request.working_directory {
        command.current_dir(directory);
    }
    let mut child = command.spawn().map_err(|error| {
        Error::invalid_input(format!("cannot start the command on {}: {error}", host.id))
            .with_host(host.id.as_str())
    })?;
    let group = child
        .id()
        .ok_or_else(|| Error::internal("a child that just started has no pid"))?;
    let stdin = child.stdin.take();
    let (sender, events) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(pump(child, group, sender));
    Ok(Interactive {
        control: Box::new(LocalControl {
            stdin: Mutex::new(stdin),
            group,
        }),
        events,
    })
}

/// Forwards the child's output, then how it ended. If the engine stops listening, the
/// child's group is killed: nothing runs on that nobody can reach.
async fn pump(mut child: Child, group: u32, sender: mpsc::Sender<InteractiveEvent>) {
    let stdout = forward(child.stdout.take(), sender.clone());
    let stderr = forward(child.stderr.take(), sender.clone());
    let streams = async { tokio::join!(stdout, stderr) };
    tokio::pin!(streams);
    let waited = tokio::select! {
        (out, err) = &mut streams => {
            if !(out && err) {
                kill_group(group).await;
            }
            child.wait().await
        }
        waited = child.wait() => {
            let _ = tokio::time::timeout(EXIT_GRACE, &mut streams).await;
            waited
        }
    };
    let ended = waited
        .map(exit_status)
        .map_err(|error| format!("waiting for a local command failed: {error}"));
    let _ = sender.send(InteractiveEvent::Ended(ended)).await;
}

/// Sends what `stream` yields until its end; false when nobody listens any more.
async fn forward(
    stream: Option<impl AsyncRead + Unpin>,
    sender: mpsc::Sender<InteractiveEvent>,
) -> bool {
    let Some(mut stream) = stream else {
        return true;
    };
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return true,
            Ok(read) => {
                let chunk = buffer[..read].to_vec();
                if sender.send(InteractiveEvent::Output(chunk)).await.is_err() {
                    return false;
                }
            }
        }
    }
}

struct LocalControl {
    /// `None` once the input is closed.
    stdin: Mutex<Option<ChildStdin>>,
    /// The child's process group (its own pid): signals reach all it started.
    group: u32,
}

#[async_trait]
impl InteractiveControl for LocalControl {
    async fn write(&self, _permit: &Permit, data: &[u8]) -> Result<()> {
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(Error::invalid_input(
                "the command's input is closed (eof was sent)",
            ));
        };
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            pipe.write_all(data).await?;
            pipe.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::invalid_input(format!(
                "the program does not take input any more: {error}"
            ))),
            Err(_) => Err(Error::new(
                ErrorCode::CmdTimeout,
                format!(
                    "the program read none of its input for {} s",
                    WRITE_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    async fn close_input(&self, _permit: &Permit) -> Result<()> {
        self.stdin.lock().await.take();
        Ok(())
    }

    async fn signal(&self, _permit: &Permit, signal: Signal) -> Result<()> {
        ProcessCommand::new("kill")
            .args([
                &format!("-{}", signal.name()),
                "--",
                &format!("-{}", self.group),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|error| Error::internal(format!("cannot run kill: {error}")))?;
        // kill's status is not checked: a group that already ended is no error (the
        // command's end says how it went).
        Ok(())
    }

    async fn stop(&self, _permit: &Permit) {
        self.stdin.lock().await.take();
        kill_group(self.group).await;
    }
}
