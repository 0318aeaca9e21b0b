//! `command`: an interactive program on one host (a shell, a REPL, anything that
//! prompts). A call with `host_id` and `command` starts it and answers its first
//! output with a `command_id`; calls with that id type input, send signals, end input,
//! read more, or close it. The engine keeps the open commands and checks every line
//! sent to a shell like an `exec` (engine/commands.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::engine::{CommandRead, MAX_INPUT, MAX_WAIT};
use warden_core::error::{Error, Result};
use warden_core::interactive::{InteractiveRequest, Signal};
use warden_core::tool::{
    CommandInput, ContinuePlan, Domain, Effect, InteractivePlan, Plan, StreamEncoding, Tool,
    ToolInfo, encode_stream,
};
use warden_core::transport::{CapturedStream, Command, ExitStatus};
use warden_core::{PlanContext, RunContext};

pub struct CommandTool;

/// Seconds without new output before a call answers, when not given.
const DEFAULT_IDLE_S: f64 = 5.0;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommandParams {
    /// Start: the host to run on.
    #[serde(default)]
    pub host_id: Option<String>,
    /// Start: POSIX sh command line (bash, python3 -i, a prompting installer, …).
    #[serde(default)]
    pub command: Option<String>,
    /// Start: run in a pseudo-terminal (prompts, job control, ^C as a key; stderr joins output, lines end \r\n). Not on local.
    #[serde(default)]
    pub pty: bool,
    /// Start: working directory.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Start: environment variables (values may be ${env:NAME} or ${file:PATH} secrets).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Continue: the id a start answered.
    #[serde(default)]
    pub command_id: Option<String>,
    /// Continue: text for the program's input, with C escapes (\n, \t, \x03, \e, \\) unless raw. To a shell: whole lines ending in \n, each checked by policy.
    #[serde(default)]
    pub input: Option<String>,
    /// Continue: send input as written (no escapes).
    #[serde(default)]
    pub raw: bool,
    /// Continue: end the program's input after input (end of file; ^D with a pty).
    #[serde(default)]
    pub eof: bool,
    /// Continue: signal for the program and all it started, after input.
    #[serde(default)]
    pub signal: Option<Signal>,
    /// Continue: stop the program if it runs and forget command_id.
    #[serde(default)]
    pub close: bool,
    /// Answer after this many seconds without new output [5]; 0 answers at once. At most 25 s a call.
    #[serde(default)]
    pub idle_timeout: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommandOutput {
    /// Give it to later calls.
    pub command_id: String,
    pub host_id: String,
    /// What the program wrote since the last call (stdout and stderr as they came).
    pub output: String,
    /// base64 when the output is not text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_encoding: Option<StreamEncoding>,
    /// Still running.
    pub running: bool,
    /// How it exited, once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it (KILL, INT, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    /// Why warden cannot tell how it ended (the connection was lost): it may still run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
    /// Output lost since the last call: more than 1 MiB waited unread (oldest dropped).
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_bytes: u64,
    /// Output still waiting beyond this answer: call again (idle_timeout 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub pending_bytes: u64,
    /// How long the program has run (until now, or until it ended).
    pub duration_ms: u64,
    /// command_id is forgotten (close: true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    pub job_id: String,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl CommandOutput {
    fn new(read: CommandRead, job_id: &str) -> CommandOutput {
        let mut stream = CapturedStream::with_limit(read.output.len());
        stream.push(&read.output);
        let (output, output_encoding) = encode_stream(&stream);
        let running = read.running();
        let (exit_code, exit_signal) = match read.status {
            Some(ExitStatus::Code(code)) => (Some(code), None),
            Some(ExitStatus::Signal(signal)) => (None, Some(signal)),
            Some(ExitStatus::TimedOut | ExitStatus::Cancelled) | None => (None, None),
        };
        CommandOutput {
            command_id: read.command_id,
            host_id: read.host_id,
            output,
            output_encoding,
            running,
            exit_code,
            exit_signal,
            lost: read.lost,
            dropped_bytes: read.dropped_bytes,
            pending_bytes: read.pending_bytes,
            duration_ms: read.duration.as_millis() as u64,
            closed: read.closed,
            job_id: job_id.to_owned(),
        }
    }
}

impl Tool for CommandTool {
    type Params = CommandParams;
    type Output = CommandOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "command",
        domain: Domain::Exec,
        summary: "Interactive command on host_id",
        description: "Run an interactive program (shell, REPL, prompts) on one host. Start: {host_id, command, pty?, working_directory?, env?} answers command_id and the first output. Then {command_id, input?, eof?, signal?: INT|TERM|HUP|QUIT|KILL, close?} types, ends input, signals (root logins too) or stops it. Each call answers after idle_timeout s without new output (default 5; 0 at once; at most 25): output since the last call (base64 when not text: output_encoding), running, exit_code or exit_signal once ended, dropped_bytes if over 1 MiB waited unread, pending_bytes if more waits. input takes C escapes (\\n, \\t, \\x03, \\e, \\\\) unless raw: true. Input to a shell must be whole lines; each is checked by policy like exec (POLICY_DENIED: nothing sent; a destructive line previews unless confirm). An ended command is kept 60 s; close: true forgets it at once. Errors: HOST_NOT_FOUND, POLICY_DENIED, LOCAL_DISABLED, JOB_NOT_FOUND (unknown, forgotten or another caller's id), SESSION_LIMIT, CONFLICT, SSH_*.",
        effect: Effect::Destructive,
        idempotent: false,
        open_world: true,
        example: r#"{"host_id": "web-1", "command": "cat /srv/app/notes.txt", "idle_timeout": 1}"#,
    };

    fn plan(&self, params: &CommandParams, planning: &PlanContext) -> Result<Plan> {
        idle_of(params.idle_timeout)?;
        match (&params.command_id, &params.host_id, &params.command) {
            (Some(id), None, None) => continue_plan(id, params),
            (None, Some(host_id), Some(command)) => start_plan(params, planning, host_id, command),
            _ => Err(Error::invalid_input(
                "give host_id and command to start a command, or command_id to continue one (not both)",
            )),
        }
    }

    fn run(
        &self,
        params: CommandParams,
        context: RunContext,
    ) -> impl Future<Output = Result<CommandOutput>> + Send + 'static {
        async move {
            let idle = idle_of(params.idle_timeout)?;
            let read = match params.command {
                None => context.command_continue(idle).await?,
                Some(command) => {
                    let host = context
                        .planned_hosts()
                        .into_iter()
                        .next()
                        .ok_or_else(|| Error::internal("command without a host"))?;
                    let request = InteractiveRequest {
                        command: Command::Shell(command),
                        env: params.env,
                        working_directory: params.working_directory,
                        pty: params.pty,
                    };
                    context.command_start(&host, &request, idle).await?
                }
            };
            Ok(CommandOutput::new(read, context.job_id()))
        }
    }
}

fn start_plan(
    params: &CommandParams,
    planning: &PlanContext,
    host_id: &str,
    command: &str,
) -> Result<Plan> {
    if params.input.is_some() || params.raw || params.eof || params.signal.is_some() || params.close
    {
        return Err(Error::invalid_input(
            "input, raw, eof, signal and close go with command_id, to a command already started",
        )
        .with_hint("Start it first; its answer gives the command_id."));
    }
    if command.trim().is_empty() {
        return Err(Error::invalid_input("command must not be empty"));
    }
    for name in params.env.keys() {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::invalid_input(format!(
                "env name {name:?} is not a valid variable name"
            )));
        }
    }
    let host = planning.inventory().require(host_id)?;
    if params.pty && host.is_local() {
        return Err(Error::invalid_input(format!(
            "pty: true is not available on {host_id}: warden opens no pseudo-terminal on its own machine"
        ))
        .with_host(host_id)
        .with_hint("Start it without pty (a shell still reads lines, without a prompt), or use an SSH host."));
    }
    Ok(Plan::command(
        vec![host],
        Command::Shell(command.to_owned()),
        Effect::Destructive,
    )
    // A shell started here reads its script from later calls' input, line by line,
    // each checked then: as far as policy sees now, its input is empty.
    .with_input(CommandInput {
        env: params.env.keys().cloned().collect(),
        stdin: Some(String::new()),
        working_directory: params.working_directory.clone(),
    })
    .interactive(InteractivePlan::Start { pty: params.pty }))
}

fn continue_plan(id: &str, params: &CommandParams) -> Result<Plan> {
    if params.pty || params.working_directory.is_some() || !params.env.is_empty() {
        return Err(Error::invalid_input(
            "pty, working_directory and env go with host_id and command, when a command starts",
        ));
    }
    let input = match params.input.as_deref() {
        None | Some("") => None,
        Some(text) if params.raw => Some(text.as_bytes().to_vec()),
        Some(text) => Some(unescape(text)?),
    };
    if let Some(input) = &input
        && input.len() > MAX_INPUT
    {
        return Err(Error::invalid_input(format!(
            "input is {} bytes; one call sends at most {MAX_INPUT}",
            input.len()
        )));
    }
    // Only reading output changes nothing on the host.
    let acts = input.is_some() || params.eof || params.signal.is_some() || params.close;
    let plan = Plan {
        effect: if acts {
            Effect::Destructive
        } else {
            Effect::ReadOnly
        },
        ..Plan::local_state()
    };
    Ok(plan.interactive(InteractivePlan::Continue(ContinuePlan {
        id: id.to_owned(),
        input,
        eof: params.eof,
        signal: params.signal,
        close: params.close,
        unplaced: false,
    })))
}

fn idle_of(seconds: Option<f64>) -> Result<Duration> {
    let seconds = seconds.unwrap_or(DEFAULT_IDLE_S);
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(Error::invalid_input(format!(
            "idle_timeout must be 0 or more seconds, not {seconds}"
        )));
    }
    Ok(Duration::from_secs_f64(seconds.min(MAX_WAIT.as_secs_f64())))
}

/// Decodes C escapes: `\n \r \t \0 \a \b \f \v \e \\ \' \" \?`, `\xHH` (one or two hex
/// digits), `\NNN` (octal, up to three digits) and `\u{…}`-less `\uXXXX` (a character).
fn unescape(text: &str) -> Result<Vec<u8>> {
    let invalid = |what: String| {
        Error::invalid_input(format!("input: {what}"))
            .with_hint("Write a backslash as \\\\, or give raw: true to send the text as written.")
    };
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        let Some(escape) = chars.next() else {
            return Err(invalid(String::from("ends with a lone backslash")));
        };
        let byte = match escape {
            'n' => b'\n',
            'r' => b'\r',
            't' => b'\t',
            '0'..='7' => {
                let mut value = escape.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|next| next.to_digit(8)) {
                        Some(digit) if value * 8 + digit <= 0xff => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        _ => break,
                    }
                }
                value as u8
            }
            'a' => 0x07,
            'b' => 0x08,
            'f' => 0x0c,
            'v' => 0x0b,
            'e' | 'E' => 0x1b,
            '\\' => b'\\',
            '\'' => b'\'',
            '"' => b'"',
            '?' => b'?',
            'x' => {
                let mut value = None;
                for _ in 0..2 {
                    match chars.peek().and_then(|next| next.to_digit(16)) {
                        Some(digit) => {
                            value = Some(value.unwrap_or(0) * 16 + digit);
                            chars.next();
                        }
                        None => break,
                    }
                }
                match value {
                    Some(value) => value as u8,
                    None => return Err(invalid(String::from("\\x needs hex digits"))),
                }
            }
            'u' => {
                let digits: String = (0..4).filter_map(|_| chars.next()).collect();
                let character = u32::from_str_radix(&digits, 16)
                    .ok()
                    .filter(|_| digits.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| invalid(format!("\\u{digits} is not a character")))?;
                let mut buffer = [0u8; 4];
                out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                continue;
            }
            other => return Err(invalid(format!("unknown escape \\{other}"))),
        };
        out.push(byte);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(
            unescape(r"ls -l\n\tx\x03\e[A\\\0\101\x7").unwrap(),
            b"ls -l\n\tx\x03\x1b[A\\\x00A\x07"
        );
        assert_eq!(unescape("é\\u00e9\n").unwrap(), "éé\n".as_bytes());
        for bad in [r"a\q", r"a\", r"\xg", r"\u12"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idle_timeouts_are_bounded() {
        assert_eq!(idle_of(None).unwrap(), Duration::from_secs(5));
        assert_eq!(idle_of(Some(0.0)).unwrap(), Duration::ZERO);
        assert_eq!(idle_of(Some(600.0)).unwrap(), MAX_WAIT);
        assert!(idle_of(Some(-1.0)).is_err());
    }
}
