//! The engine's registry of open interactive commands (the `command` tool), the plan
//! step that makes a call to one of them checkable, and the narrow [`RunContext`]
//! methods the tool runs with.
//!
//! - **Ownership.** A command belongs to its caller's owner (identity and client name,
//!   like approvals and uploads): another owner's `command_id` is `JOB_NOT_FOUND`, the
//!   same answer as an id that never existed.
//! - **Planning a call** (`Engine::enter_command`, next to `enter_session`): a tool's
//!   plan is pure and cannot know the command, so it names the id; the engine finds it
//!   among the caller's, makes its host the plan's only host and, when its program is
//!   a shell (as policy's analysis sees the start command: a shell reading its input),
//!   plans the call's input as a command. Policy, approvals, previews and the
//!   `requested` record then treat each line as they treat `exec`: a denied line is
//!   never sent. After a line that changes directory, later lines are read as from
//!   an unknown directory.
//! - **Output**: one ring of [`RING_BYTES`] per command, stdout and stderr as they
//!   came, masked as it enters (a secret cut between two chunks is held back until its
//!   rest arrives); beyond the ring the oldest bytes are dropped and counted. A call
//!   answers at most `limits.max_output_bytes` of it and says how much waits.
//! - **Bounded waits**: a call returns once the program ended, after `idle` without
//!   new output, or after [`MAX_WAIT`], whichever comes first.
//! - **Lifetime**: at most `limits.max_commands_per_client` per owner; an ended command
//!   is kept [`GRACE`] so its exit can be read; one no call touched for
//!   `limits.command_idle_s` is stopped and forgotten by the reaper (an audit event
//!   says so); `close: true` stops and forgets one at once; shutdown stops them all.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{Caller, Engine, EngineInner, RunContext, approve};
use crate::config::Limits;
use crate::error::{Error, ErrorCode, Result};
use crate::interactive::{InteractiveControl, InteractiveEvent, InteractiveRequest};
use crate::inventory::Host;
use crate::policy::{Analysis, Input};
use crate::tool::{CommandInput, InteractivePlan, Plan};
use crate::transport::{Command, ExitStatus, Permit};

/// Output kept per command while nobody reads it.
const RING_BYTES: usize = 1 << 20;
/// The longest a call waits for output, whatever its `idle_timeout` (clients drop
/// calls after about 60 s; PRODUCT.md §12).
pub const MAX_WAIT: Duration = Duration::from_secs(25);
/// How long an ended command stays readable.
const GRACE: Duration = Duration::from_secs(60);
/// The most input one call may send.
pub const MAX_INPUT: usize = 64 * 1024;
/// How long `close` waits for a stopped program to end.
const STOP_WAIT: Duration = Duration::from_secs(3);
/// Held-back output (a possible secret's start) passes on after this long quiet.
const CARRY_FLUSH: Duration = Duration::from_millis(150);
/// Bytes a terminal turns into job control, sent alone to a shell with a pty: `^C`,
/// `^D`, `^Z`, `^\`.
const TERMINAL_KEYS: &[u8] = &[0x03, 0x04, 0x1a, 0x1c];

/// One answer about a command: what it printed since the last call and where it is.
#[derive(Debug, Clone)]
pub struct CommandRead {
    pub command_id: String,
    pub host_id: String,
    pub output: Vec<u8>,
    /// Bytes lost since the last call because more than the ring (1 MiB) waited unread.
    pub dropped_bytes: u64,
    /// Bytes still waiting beyond this answer's share.
    pub pending_bytes: u64,
    /// How it ended; `None` while it runs or when it was lost.
    pub status: Option<ExitStatus>,
    /// Why warden cannot tell how it ended (the connection was lost).
    pub lost: Option<String>,
    /// How long it has run (until now, or until it ended).
    pub duration: Duration,
    /// The id is forgotten: later calls with it are `JOB_NOT_FOUND`.
    pub closed: bool,
}

impl CommandRead {
    pub fn running(&self) -> bool {
        self.status.is_none() && self.lost.is_none()
    }
}

/// Every open command of this process.
pub(crate) struct Commands {
    state: Mutex<Registry>,
    per_owner: usize,
    idle: Duration,
    reaper_started: AtomicBool,
}

#[derive(Default)]
struct Registry {
    open: HashMap<String, Arc<Open>>,
    /// Starts in progress per owner: counted against the limit before they exist.
    starting: HashMap<String, usize>,
}

/// One open command.
struct Open {
    id: String,
    owner: String,
    host: Arc<Host>,
    /// The program is a shell reading its input: every line is checked by policy.
    shell: bool,
    pty: bool,
    working_directory: Option<String>,
    /// The start call's literal `env` values: masked in every later call too.
    env_values: Vec<String>,
    /// The start call's job id, for the permits of the reaper's stop.
    job_id: String,
    control: Box<dyn InteractiveControl>,
    started: Instant,
    state: Mutex<State>,
    /// Bumped on every output and on the end, to wake a waiting call.
    changed: watch::Sender<u64>,
    /// One call at a time per command.
    busy: tokio::sync::Mutex<()>,
}

struct State {
    ring: VecDeque<u8>,
    dropped: u64,
    /// Bytes that ever arrived (a waiting call sees new output by it).
    received: u64,
    ended: Option<(std::result::Result<ExitStatus, String>, Instant)>,
    last_used: Instant,
    /// An earlier line may have changed the shell's directory.
    unplaced: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Open {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn push(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut state = self.state();
        state.received += bytes.len() as u64;
        state.ring.extend(bytes);
        let over = state.ring.len().saturating_sub(RING_BYTES);
        if over > 0 {
            state.ring.drain(..over);
            state.dropped += over as u64;
        }
        drop(state);
        self.changed.send_modify(|count| *count += 1);
    }

    fn end(&self, how: std::result::Result<ExitStatus, String>) {
        self.state().ended.get_or_insert((how, Instant::now()));
        self.changed.send_modify(|count| *count += 1);
    }

    fn running(&self) -> bool {
        self.state().ended.is_none()
    }

    /// Takes up to `max` bytes of output and says where the command is.
    fn read(&self, max: usize) -> CommandRead {
        let mut state = self.state();
        let take = char_boundary(&state.ring, max, state.ended.is_some());
        let output: Vec<u8> = state.ring.drain(..take).collect();
        let (status, lost, duration) = match &state.ended {
            Some((Ok(status), at)) => (Some(status.clone()), None, *at - self.started),
            Some((Err(why), at)) => (None, Some(why.clone()), *at - self.started),
            None => (None, None, self.started.elapsed()),
        };
        CommandRead {
            command_id: self.id.clone(),
            host_id: self.host.id.to_string(),
            output,
            dropped_bytes: std::mem::take(&mut state.dropped),
            pending_bytes: state.ring.len() as u64,
            status,
            lost,
            duration,
            closed: false,
        }
    }

    /// Waits until the program ended, `max` bytes wait, `idle` passed without new
    /// output, or [`MAX_WAIT`] passed. A cancelled wait leaves the output in the ring.
    async fn wait(
        &self,
        idle: Duration,
        max: usize,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<()> {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        let mut seen = self.state().received;
        let mut quiet_since = tokio::time::Instant::now();
        loop {
            {
                let state = self.state();
                if state.ended.is_some() || state.ring.len() >= max {
                    return Ok(());
                }
                if state.received != seen {
                    seen = state.received;
                    quiet_since = tokio::time::Instant::now();
                }
            }
            let wake = deadline.min(quiet_since + idle);
            if tokio::time::Instant::now() >= wake {
                return Ok(());
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
                () = cancel.cancelled() => {
                    return Err(Error::new(
                        ErrorCode::Cancelled,
                        format!("the wait for {} was cancelled; it keeps running and its output is kept", self.id),
                    )
                    .with_hint("Call command again with this command_id to read it."));
                }
            }
        }
    }
}

/// How much of `ring` (at most `max` bytes) one answer takes without cutting a UTF-8
/// character: a cut one would turn the whole answer into base64. The rest of a
/// character still arriving waits for the next answer, unless the program ended
/// (`ended`: nothing more comes) or nothing else could be taken.
fn char_boundary(ring: &VecDeque<u8>, max: usize, ended: bool) -> usize {
    let take = ring.len().min(max);
    if ended && take == ring.len() {
        return take;
    }
    // The last character that starts before `take`: a lead byte within 4 bytes back.
    let start = (take.saturating_sub(4)..take)
        .rev()
        .find(|&at| ring[at] & 0xc0 != 0x80);
    let Some(start) = start else {
        return take;
    };
    let width = match ring[start] {
        byte if byte >= 0xf0 => 4,
        byte if byte >= 0xe0 => 3,
        byte if byte >= 0xc0 => 2,
        _ => 1,
    };
    if start + width > take && start > 0 {
        start
    } else {
        take
    }
}

impl Commands {
    pub(crate) fn new(limits: &Limits) -> Commands {
        Commands {
            state: Mutex::default(),
            per_owner: limits.max_commands_per_client,
            idle: Duration::from_secs(limits.command_idle_s),
            reaper_started: AtomicBool::new(false),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.state)
    }

    /// `owner`'s command `id`; another owner's is not found, like an unknown one.
    fn get(&self, owner: &str, id: &str) -> Result<Arc<Open>> {
        self.registry()
            .open
            .get(id)
            .filter(|open| open.owner == owner)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::JobNotFound,
                    format!("no command {id:?} of this caller (it may have ended more than {} s ago, or been stopped when unused)", GRACE.as_secs()),
                )
                .with_hint("Start it again with command {host_id, command}.")
            })
    }

    /// Counts a start against `owner`'s limit until [`Commands::insert`] or
    /// [`Commands::unreserve`].
    fn reserve(&self, owner: &str) -> Result<()> {
        let mut registry = self.registry();
        let held = registry
            .open
            .values()
            .filter(|open| open.owner == owner)
            .count()
            + registry.starting.get(owner).copied().unwrap_or(0);
        if held >= self.per_owner {
            return Err(Error::new(
                ErrorCode::SessionLimit,
                format!("this caller already holds {held} interactive commands (limits.max_commands_per_client)"),
            )
            .with_hint("Close one with command {command_id, close: true}; an ended one is forgotten 60 s after it ended."));
        }
        *registry.starting.entry(owner.to_owned()).or_default() += 1;
        Ok(())
    }

    fn unreserve(&self, owner: &str) {
        let mut registry = self.registry();
        if let Some(count) = registry.starting.get_mut(owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.starting.remove(owner);
            }
        }
    }

    fn insert(&self, open: Arc<Open>) {
        let owner = open.owner.clone();
        self.registry().open.insert(open.id.clone(), open);
        self.unreserve(&owner);
    }

    fn remove(&self, id: &str) {
        self.registry().open.remove(id);
    }

    /// The literal `env` values of the command a call's arguments name (its
    /// `command_id`), for masking that call like the start call.
    pub(crate) fn env_values(&self, owner: &str, args: &serde_json::Value) -> Vec<String> {
        args.get("command_id")
            .and_then(serde_json::Value::as_str)
            .and_then(|id| self.get(owner, id).ok())
            .map(|open| open.env_values.clone())
            .unwrap_or_default()
    }

    /// Forgets ended commands past their grace; returns the running ones unused for
    /// the idle limit (taken out of the registry, to be stopped).
    fn sweep(&self) -> Vec<Arc<Open>> {
        let mut registry = self.registry();
        let mut idle = Vec::new();
        registry.open.retain(|_, open| {
            // A call in progress keeps its command.
            if open.busy.try_lock().is_err() {
                return true;
            }
            let state = open.state();
            match &state.ended {
                Some((_, at)) => at.elapsed() < GRACE,
                None if state.last_used.elapsed() >= self.idle => {
                    idle.push(Arc::clone(open));
                    false
                }
                None => true,
            }
        });
        idle
    }

    fn all(&self) -> Vec<Arc<Open>> {
        self.registry().open.drain().map(|(_, open)| open).collect()
    }
}

impl Engine {
    /// The plan step of a call to an open command: the command must be the caller's;
    /// its host becomes the plan's only host and, when its program is a shell, the
    /// input becomes the plan's command (with an empty `stdin`: a shell started in it
    /// reads later lines, which are checked then).
    pub(super) fn enter_command(&self, caller: &Caller, plan: &mut Plan) -> Result<()> {
        let Some(InteractivePlan::Continue(step)) = &mut plan.interactive else {
            return Ok(());
        };
        let open = self.inner.commands.get(&approve::owner(caller), &step.id)?;
        plan.hosts = vec![Arc::clone(&open.host)];
        if let (true, Some(input)) = (open.shell, &step.input) {
            let text = shell_lines(input, open.pty)?;
            if self.names_history(&text) {
                return Err(Error::invalid_input(
                    "fc re-runs the shell's history, which warden cannot check",
                )
                .with_hint("Write the command out in full."));
            }
            step.unplaced = open.state().unplaced;
            plan.commands = vec![Command::Shell(text)];
            plan.input = CommandInput {
                env: Vec::new(),
                stdin: Some(String::new()),
                working_directory: open.working_directory.clone(),
            };
        }
        Ok(())
    }

    fn names_history(&self, text: &str) -> bool {
        self.inner
            .policy
            .analyze(Input::shell(text))
            .commands
            .iter()
            .any(|command| program_is(&command.argv, &["fc"]))
    }

    /// Starts the reaper once (it needs a runtime, which `Engine::new` may lack).
    fn start_reaper(&self) {
        let commands = &self.inner.commands;
        if commands.reaper_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let period = (commands.idle / 4).clamp(Duration::from_millis(500), Duration::from_secs(30));
        let engine = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                ticks.tick().await;
                // The engine is gone: so is its reaper.
                let Some(inner) = engine.upgrade() else { break };
                Engine { inner }.reap().await;
            }
        });
    }

    /// Stops and forgets the commands no call used for `limits.command_idle_s`, and
    /// forgets ended ones past their grace.
    async fn reap(&self) {
        for open in self.inner.commands.sweep() {
            tracing::info!(command = %open.id, host = %open.host.id, "stopping an unused interactive command");
            open.control
                .stop(&Permit::new(open.host.id.clone(), open.job_id.clone()))
                .await;
            let event = json!({
                "event": "command_stopped",
                "command_id": open.id,
                "host": open.host.id.to_string(),
                "job_id": open.job_id,
                "reason": format!("unused for {} s (limits.command_idle_s)", self.inner.commands.idle.as_secs()),
            });
            if let Err(error) = self.audit_event(event).await {
                tracing::error!("cannot record a stopped command: {error}");
            }
        }
    }

    /// Stops every open command (on shutdown): none outlives the server.
    pub(super) async fn stop_commands(&self) {
        for open in self.inner.commands.all() {
            if open.running() {
                open.control
                    .stop(&Permit::new(open.host.id.clone(), open.job_id.clone()))
                    .await;
            }
        }
    }
}

/// The text of a shell's input, which policy reads as a command: whole lines of text,
/// nothing a terminal or line editor would turn into something else, and nothing that
/// re-runs history. Alone, one job-control key (`^C`, `^D`, `^Z`, `^\`) passes for a
/// shell with a pty (it runs nothing).
fn shell_lines(input: &[u8], pty: bool) -> Result<String> {
    let hint = "Send whole command lines ending in \\n; for ^C and other keys use signal (or, with a pty, send the key alone).";
    if pty && input.len() == 1 && TERMINAL_KEYS.contains(&input[0]) {
        return Ok(String::new());
    }
    let text = std::str::from_utf8(input).map_err(|_| {
        Error::invalid_input("input to a shell must be text (UTF-8): policy reads each line")
            .with_hint(hint)
    })?;
    let Some(lines) = text.strip_suffix('\n') else {
        return Err(Error::invalid_input(
            "input to a shell must end with \\n: policy checks whole lines, and a partial one would join the next unchecked",
        )
        .with_hint(hint));
    };
    // With a pty, tab completes and control keys edit the line; without, bash reads
    // them literally, but they have no business in a command either.
    if let Some(bad) = text
        .chars()
        .find(|c| (c.is_control() && *c != '\n' && (*c != '\t' || pty)) || *c == '\u{7f}')
    {
        return Err(Error::invalid_input(format!(
            "input to a shell holds the control character {:?}, which a terminal or line editor may turn into another command",
            bad
        ))
        .with_hint(hint));
    }
    // Interactive shells expand history: `!!`, `!$`, `!-2`, `!cmd`, `^old^new`.
    let history = text.lines().any(|line| line.starts_with('^'))
        || text
            .char_indices()
            .filter(|(_, c)| *c == '!')
            .any(|(at, _)| {
                text[at + 1..]
                    .chars()
                    .next()
                    .is_some_and(|next| !(next.is_whitespace() || next == '=' || next == '('))
            });
    if history {
        return Err(Error::invalid_input(
            "input to a shell uses history expansion (`!…`, `^…^`), which warden cannot check",
        )
        .with_hint("Write the command out in full; `! cmd` and `!=` (with a space or `=` after `!`) are fine."));
    }
    Ok(lines.to_owned())
}

/// Whether `argv` runs one of `names` (by basename).
fn program_is(argv: &[String], names: &[&str]) -> bool {
    argv.first()
        .map(|program| program.rsplit('/').next().unwrap_or(program))
        .is_some_and(|program| names.contains(&program))
}

/// Whether a command moves its shell to another directory for the lines after it.
fn changes_directory(analysis: &Analysis) -> bool {
    !analysis.opaque.is_empty()
        || analysis
            .commands
            .iter()
            .any(|command| program_is(&command.argv, &["cd", "pushd", "popd"]))
}

/// Reads the transport's events into the command's ring, masking as they come.
async fn pump(
    engine: Weak<EngineInner>,
    open: Arc<Open>,
    mut events: mpsc::Receiver<InteractiveEvent>,
) {
    let mut carry = Vec::new();
    loop {
        let event = if carry.is_empty() {
            events.recv().await
        } else {
            match tokio::time::timeout(CARRY_FLUSH, events.recv()).await {
                Ok(event) => event,
                Err(_) => {
                    // Quiet: what was held back was no secret's start after all.
                    open.push(&std::mem::take(&mut carry));
                    continue;
                }
            }
        };
        match event {
            Some(InteractiveEvent::Output(bytes)) => {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let ready = engine
                    .secrets
                    .mask_stream(&mut carry, &bytes, &open.env_values);
                open.push(&ready);
            }
            Some(InteractiveEvent::Ended(how)) => {
                open.push(&std::mem::take(&mut carry));
                open.end(how);
                return;
            }
            None => {
                open.push(&std::mem::take(&mut carry));
                open.end(Err(String::from(
                    "the transport stopped reporting on the command; it may or may not still run",
                )));
                return;
            }
        }
    }
}

impl RunContext {
    /// Starts the plan's interactive command on its planned host, then answers like
    /// [`RunContext::command_continue`] (output after `idle` quiet, at most
    /// [`MAX_WAIT`]).
    ///
    /// Invariant: what starts is what policy checked and the audit log recorded.
    pub async fn command_start(
        &self,
        host: &Arc<Host>,
        request: &InteractiveRequest,
        idle: Duration,
    ) -> Result<CommandRead> {
        let env: Vec<&String> = request.env.keys().collect();
        let planned_env: Vec<&String> = self.input.env.iter().collect();
        if self.interactive.as_ref() != &Some(InteractivePlan::Start { pty: request.pty })
            || !self.commands.contains(&request.command)
            || env != planned_env
            || request.working_directory != self.input.working_directory
        {
            return Err(Error::internal(format!(
                "the interactive command {:?} is not in this call's plan",
                request.command.to_shell()
            )));
        }
        let permit = self.permit(host)?;
        let engine = &self.engine;
        let commands = &engine.inner.commands;
        engine.start_reaper();
        engine.reap().await;
        commands.reserve(&self.owner)?;
        let started = self.open_command(host, &permit, request).await;
        let open = match started {
            Ok(open) => open,
            Err(error) => {
                commands.unreserve(&self.owner);
                return Err(error);
            }
        };
        commands.insert(Arc::clone(&open));
        let _busy = open.busy.lock().await;
        self.answer(&open, idle).await
    }

    /// Starts the transport's side and the pump; the command, not yet registered.
    async fn open_command(
        &self,
        host: &Arc<Host>,
        permit: &Permit,
        request: &InteractiveRequest,
    ) -> Result<Arc<Open>> {
        let engine = &self.engine;
        let (shell, argv) = match &request.command {
            Command::Shell(text) => (Some(text.as_str()), None),
            Command::Argv(argv) => (None, Some(argv.as_slice())),
        };
        let analysis = engine.inner.policy.analyze(Input {
            shell,
            argv,
            env: &self.input.env,
            stdin: Some(""),
            working_directory: request.working_directory.as_deref(),
        });
        // Secret references become values only here, on the way to the host.
        let secrets = &engine.inner.secrets;
        let mut resolved = request.clone();
        for value in resolved.env.values_mut() {
            *value = secrets.resolve(value)?;
        }
        let env_values = request
            .env
            .values()
            .filter(|value| !crate::secrets::is_reference(value))
            .cloned()
            .collect();
        let interactive = {
            let Some(_turn) = engine
                .inner
                .host_limits
                .turn(host.id.as_str(), &self.cancel)
                .await
            else {
                return Err(Error::new(
                    ErrorCode::Cancelled,
                    format!("cancelled while waiting for a turn on {}", host.id),
                )
                .with_host(host.id.as_str()));
            };
            engine
                .transport(host)
                .interactive(permit, host, &resolved)
                .await?
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let open = Arc::new(Open {
            id: format!("cmd_{}", &id[..12]),
            owner: self.owner.clone(),
            host: Arc::clone(host),
            shell: analysis.shell_reads_input,
            pty: request.pty,
            working_directory: request.working_directory.clone(),
            env_values,
            job_id: self.job_id.clone(),
            control: interactive.control,
            started: Instant::now(),
            state: Mutex::new(State {
                ring: VecDeque::new(),
                dropped: 0,
                received: 0,
                ended: None,
                last_used: Instant::now(),
                unplaced: changes_directory(&analysis),
            }),
            changed: watch::channel(0).0,
            busy: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(pump(
            Arc::downgrade(&engine.inner),
            Arc::clone(&open),
            interactive.events,
        ));
        Ok(open)
    }

    /// One call to the caller's open command, as planned: its input, then end of
    /// input, then a signal, then `close`; then its output since the last call,
    /// after `idle` without new output (at most [`MAX_WAIT`]), or at once when it
    /// ended. One call at a time per command (`CONFLICT` otherwise).
    pub async fn command_continue(&self, idle: Duration) -> Result<CommandRead> {
        let Some(InteractivePlan::Continue(step)) = self.interactive.as_ref() else {
            return Err(Error::internal(
                "a call to an interactive command is not in this call's plan",
            ));
        };
        let engine = &self.engine;
        engine.start_reaper();
        let open = engine.inner.commands.get(&self.owner, &step.id)?;
        let permit = self.permit(&open.host)?;
        let Ok(_busy) = open.busy.try_lock() else {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!("another call is waiting on {}", step.id),
            )
            .with_hint("Wait for that call's answer (at most 25 s), then call again."));
        };
        open.state().last_used = Instant::now();
        if let Some(input) = &step.input {
            let planned = match (open.shell, self.commands.first()) {
                (true, Some(Command::Shell(text))) => shell_lines(input, open.pty)? == *text,
                (false, None) => true,
                _ => false,
            };
            if !planned {
                return Err(Error::internal(format!(
                    "the input for {} is not in this call's plan",
                    step.id
                )));
            }
            if !open.running() {
                return Err(Error::invalid_input(format!(
                    "{} has ended: its input went nowhere",
                    step.id
                ))
                .with_hint("Read its exit (call without input), or start it again."));
            }
            open.control.write(&permit, input).await?;
            if let (true, Some(Command::Shell(text))) = (open.shell, self.commands.first())
                && changes_directory(&engine.inner.policy.analyze(Input::shell(text)))
            {
                open.state().unplaced = true;
            }
        }
        if step.eof && open.running() {
            open.control.close_input(&permit).await?;
        }
        if let Some(signal) = step.signal
            && open.running()
        {
            open.control.signal(&permit, signal).await?;
        }
        if step.close {
            if open.running() {
                open.control.stop(&permit).await;
                let _ =
                    tokio::time::timeout(STOP_WAIT, open.wait(MAX_WAIT, usize::MAX, &self.cancel))
                        .await;
            }
            engine.inner.commands.remove(&open.id);
            let mut read = open.read(self.answer_bytes());
            read.closed = true;
            return Ok(read);
        }
        self.answer(&open, idle).await
    }

    async fn answer(&self, open: &Open, idle: Duration) -> Result<CommandRead> {
        let max = self.answer_bytes();
        open.wait(idle, max, &self.cancel).await?;
        let read = open.read(max);
        open.state().last_used = Instant::now();
        Ok(read)
    }

    fn answer_bytes(&self) -> usize {
        self.config().config.limits.max_output_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_never_cuts_a_character() {
        let ring: VecDeque<u8> = "abé".bytes().collect();
        // `é` is two bytes: cut after its first, the answer stops before it.
        assert_eq!(char_boundary(&ring, 3, false), 2);
        assert_eq!(char_boundary(&ring, 4, false), 4);
        // Its second byte has not arrived: it waits, unless the program ended.
        let partial: VecDeque<u8> = b"ab\xc3".iter().copied().collect();
        assert_eq!(char_boundary(&partial, 10, false), 2);
        assert_eq!(char_boundary(&partial, 10, true), 3);
        // Nothing else to take: the bytes go (as base64) rather than stall.
        let lone: VecDeque<u8> = b"\xe2\x82".iter().copied().collect();
        assert_eq!(char_boundary(&lone, 10, false), 2);
    }

    #[test]
    fn a_shell_is_a_start_command_whose_shell_reads_the_input() {
        let reads = |command: &str| {
            let input = Input {
                stdin: Some(""),
                ..Input::shell(command)
            };
            crate::policy::analysis::analyze(input, &|_| None).shell_reads_input
        };
        for shell in [
            "bash",
            "sh",
            "/bin/dash",
            "bash -i",
            "sudo -u app bash",
            "env X=1 zsh",
            "sh -s",
        ] {
            assert!(reads(shell), "{shell}");
        }
        for other in [
            "cat",
            "python3",
            "bash -c 'read x'",
            "bash script.sh",
            "top",
        ] {
            assert!(!reads(other), "{other}");
        }
    }

    #[test]
    fn shell_input_must_read_to_policy_as_the_shell_reads_it() {
        assert_eq!(
            shell_lines(b"ls -l\necho hi\n", false).unwrap(),
            "ls -l\necho hi"
        );
        assert_eq!(
            shell_lines(b"printf 'a\tb'\n", false).unwrap(),
            "printf 'a\tb'"
        );
        assert_eq!(
            shell_lines(b"[ ! -f x ] && [ a != b ]\n", true).unwrap(),
            "[ ! -f x ] && [ a != b ]"
        );
        assert_eq!(shell_lines(b"\x03", true).unwrap(), "");
        for (bad, pty) in [
            (&b"ls"[..], false),
            (b"\x03", false),
            (b"printf 'a\tb'\n", true),
            (b"tocuh\x7f\x7f\x7fuch x\n", false),
            (b"ls\r\n", true),
            (b"echo \x1b[A\n", true),
            (b"!!\n", false),
            (b"echo !$\n", false),
            (b"^echo^touch\n", false),
            (b"\xff\n", false),
        ] {
            assert!(shell_lines(bad, pty).is_err(), "{bad:?} (pty: {pty})");
        }
    }
}
