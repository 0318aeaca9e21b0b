//! Jobs: work that outlives its call, its client and its process.
//!
//! A job tool's call (`exec`, `run`, `push`, `sync`) writes its job to the state store
//! after the durable `requested` record and before the first host is reached, then
//! runs in a task of its own; the call answers when the work is done or after
//! `wait_ms` (default 25 s), whichever is first, with the job so far. The job's
//! commands run spooled on their hosts (see [`crate::spool`]), so when warden dies,
//! the next warden process on the state dir finds the job's process gone (its live
//! file is unlocked), takes the job over (one conditional update: exactly one process
//! wins) and reconciles it from the spools: an exit code is `succeeded`/`failed`, a
//! `.stopped` mark is `timed_out`/`cancelled`, a process still running is watched to
//! its deadline, and a process gone without an exit code is `lost`. Nothing is ever
//! started twice: reconciling only reads spools (and stops what passed its deadline).
//!
//! The scripts the engine runs for jobs (status, peek, read, stop) are warden's own
//! text with the spool key as their only variable, run on hosts of a job the caller
//! owns, which policy allowed when the job started.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Engine, ProgressSink};
use crate::error::{Error, ErrorCode, Result};
use crate::inventory::Host;
use crate::spool::{Spool, SpoolStatus, StopReason, status_script};
use crate::store::{Job, JobState, now_ms};
use crate::tool::job::{HostOutput, JobView};
use crate::tool::{FleetResult, HostResult};
use crate::transport::{
    CapturedStream, Command, ExecOutput, ExecRequest, ExitStatus, Permit, Spooled,
};

/// The jobs this process runs, and the hosts where it pruned old spools.
#[derive(Default)]
pub(crate) struct Jobs {
    live: Mutex<HashMap<String, Arc<LiveJob>>>,
    pruned: Mutex<HashSet<String>>,
}

/// A job running in this process.
pub(crate) struct LiveJob {
    pub(crate) id: String,
    hosts: Vec<Arc<Host>>,
    spooled: bool,
    /// `cancel` stops it (the client's own cancellation only ends its wait).
    pub(crate) cancel: CancellationToken,
    finished: watch::Sender<bool>,
    /// The spools its commands started, by host index.
    spools: Mutex<Vec<(usize, Spool)>>,
    /// The call's literal `env` values: its output is masked with them too.
    env_values: Vec<String>,
    pub(crate) hosts_done: AtomicUsize,
    started: Instant,
    /// Its task, aborted when the process stops (the job stays `running` for the next
    /// process to take over; a connection closed by our own shutdown is no outcome).
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// How often a waiting call sends a progress notice (PRODUCT.md §12: every few seconds).
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long a wait answer or a progress tick may spend reading output so far.
const PEEK_WAIT: Duration = Duration::from_secs(3);
/// Bytes of each stream a running job shows per host.
const PEEK_TAIL: usize = 2048;
/// Hosts whose output a running job's answer shows.
const PEEK_HOSTS: usize = 8;
/// How often a reconciled job's spools are checked while its commands run.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long `cancel` waits for the job to end before answering.
const CANCEL_WAIT: Duration = Duration::from_secs(20);
/// How long finished jobs are kept in the store.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// A job whose tool gives no deadline is stopped by a reconciler after this long.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(24 * 3600);
/// The largest read `jobs_output` makes.
pub const MAX_OUTPUT_READ: u64 = 1024 * 1024;

impl LiveJob {
    fn view(&self, job: &Job, output: Vec<HostOutput>) -> JobView {
        let mut view = view_of(job);
        view.hosts_done = Some(self.hosts_done.load(Ordering::Relaxed));
        view.output = output;
        view.elapsed_ms = self.started.elapsed().as_millis() as u64;
        view
    }
}

/// A stored job as the caller sees it (without output so far).
fn view_of(job: &Job) -> JobView {
    let elapsed = job.finished_at.unwrap_or_else(now_ms) - job.created_at;
    let id = &job.id;
    let hint = match job.state {
        JobState::Running => format!(
            "still running: jobs_wait {{\"job_id\": \"{id}\"}} waits for it (up to 25 s a call); jobs_output reads a host's output; cancel stops it"
        ),
        JobState::Succeeded => String::from("done: result holds the answer"),
        JobState::Lost => String::from(
            "a host's process is gone and left no exit code (killed, or the host rebooted): check the host before running it again",
        ),
        JobState::OutcomeUnknown => String::from(
            "warden could not learn how it ended: check the hosts (result says which) before running it again",
        ),
        _ => format!(
            "ended {}: result holds the answer; exec with rerun: \"failure\" and last_job_id \"{id}\" runs it again where it failed",
            job.state.as_str()
        ),
    };
    JobView {
        job_id: job.id.clone(),
        state: job.state,
        tool: job.tool.clone(),
        summary: job.summary.clone(),
        owner: None,
        hosts: job.hosts.len(),
        hosts_done: None,
        output: Vec::new(),
        elapsed_ms: u64::try_from(elapsed).unwrap_or_default(),
        result: job.result.clone(),
        may_still_run: None,
        hint,
    }
}

/// A job's state from its tool's answer: the worst host outcome wins, and a cancel
/// or a timeout is said as such.
pub(crate) fn state_of(result: &Result<Value>) -> JobState {
    let code_state = |code: &str| match code {
        "CANCELLED" => Some(JobState::Cancelled),
        "CMD_TIMEOUT" => Some(JobState::TimedOut),
        "OUTCOME_UNKNOWN" => Some(JobState::OutcomeUnknown),
        _ => None,
    };
    match result {
        Err(error) => code_state(error.code.as_str()).unwrap_or(JobState::Failed),
        Ok(value) => {
            let hosts: Vec<&Value> = match value.get("results").and_then(Value::as_array) {
                Some(results) => results.iter().collect(),
                None => vec![value],
            };
            let mut state = JobState::Succeeded;
            for host in hosts {
                let lost = (host.pointer("/error/lost") == Some(&Value::Bool(true)))
                    .then_some(JobState::Lost);
                let host_state = lost
                    .or_else(|| {
                        host.pointer("/error/code")
                            .and_then(Value::as_str)
                            .and_then(code_state)
                    })
                    .or_else(|| {
                        (host.get("ok") == Some(&Value::Bool(false))).then_some(JobState::Failed)
                    });
                if let Some(host_state) = host_state
                    && rank(host_state) > rank(state)
                {
                    state = host_state;
                }
            }
            if state == JobState::Succeeded
                && value.pointer("/summary/ok") == Some(&Value::Bool(false))
            {
                state = JobState::Failed;
            }
            // A rollout that `cancel` stopped between batches.
            if value.pointer("/rollout/stopped/cause") == Some(&json!("cancelled")) {
                state = JobState::Cancelled;
            }
            state
        }
    }
}

/// Which state a job with hosts in several states is in.
fn rank(state: JobState) -> u8 {
    match state {
        JobState::Succeeded => 0,
        JobState::Failed => 1,
        JobState::TimedOut => 2,
        JobState::Lost => 3,
        JobState::OutcomeUnknown => 4,
        JobState::Cancelled => 5,
        JobState::Running => 6,
    }
}

impl Engine {
    /// Waits for a job call's task up to `wait` (or the client's cancellation), with a
    /// progress notice at most every [`PROGRESS_EVERY`]; then the task's answer, or the
    /// job as it stands while it goes on.
    pub(super) async fn await_job(
        &self,
        job: &Arc<LiveJob>,
        mut task: tokio::task::JoinHandle<Result<Value>>,
        wait: Duration,
        cancel: &CancellationToken,
        progress: Option<ProgressSink>,
    ) -> Result<Value> {
        *lock(&job.task) = Some(task.abort_handle());
        let until = tokio::time::Instant::now() + wait;
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            tokio::select! {
                joined = &mut task => {
                    return joined.unwrap_or_else(|error| Err(Error::internal(format!(
                        "job {} stopped unexpectedly (a bug: see the server log): {error}; its outcome is unknown", job.id
                    ))));
                }
                () = tokio::time::sleep_until(until) => break,
                () = cancel.cancelled() => break,
                _ = ticks.tick(), if progress.is_some() => {
                    if let Some(progress) = &progress {
                        let output = self.peek(job).await;
                        progress(job.hosts_done.load(Ordering::Relaxed), job.hosts.len(), &progress_line(job, &output));
                    }
                }
            }
        }
        let stored =
            self.store().job(&job.id).await?.ok_or_else(|| {
                Error::internal(format!("job {} is missing from the store", job.id))
            })?;
        let view = match stored.state {
            JobState::Running => {
                let output = self.peek(job).await;
                job.view(&stored, output)
            }
            _ => view_of(&stored),
        };
        serde_json::to_value(view)
            .map_err(|error| Error::internal(format!("unserializable job: {error}")))
    }

    /// Leaves this process's jobs to the next one: their tasks stop here, their rows
    /// stay `running`, their commands go on on their hosts (on shutdown, before the
    /// connections close).
    pub(super) fn leave_jobs(&self) {
        for job in lock(&self.inner.jobs.live).values() {
            if let Some(task) = lock(&job.task).take() {
                task.abort();
            }
        }
    }

    /// The progress sink of a job's work: counts finished hosts, and passes each on to
    /// the caller's sink.
    pub(super) fn job_progress(
        &self,
        job: &Arc<LiveJob>,
        caller: Option<ProgressSink>,
    ) -> ProgressSink {
        let job = Arc::clone(job);
        Arc::new(move |done, total, host| {
            job.hosts_done.fetch_max(done, Ordering::Relaxed);
            if let Some(caller) = &caller {
                caller(done, total, host);
            }
        })
    }

    fn store(&self) -> &Arc<dyn crate::store::Store> {
        &self.inner.approvals.store
    }

    /// This process's id in the audit log, which its jobs carry.
    fn instance(&self) -> Result<String> {
        match &self.inner.audit {
            Ok(log) => Ok(log.instance().to_owned()),
            Err(error) => Err(error.clone()),
        }
    }

    /// Writes the job of a call about to run, before any host is reached.
    pub(super) async fn begin_job(&self, start: JobStart<'_>) -> Result<Arc<LiveJob>> {
        let JobStart {
            job_id,
            owner,
            tool,
            summary,
            hosts,
            spooled,
            deadline,
            env_values,
        } = start;
        let now = now_ms();
        let deadline = deadline.unwrap_or(DEFAULT_DEADLINE);
        let job = Job {
            id: job_id.to_owned(),
            owner: owner.to_owned(),
            tool: tool.to_owned(),
            summary,
            hosts: hosts.iter().map(|host| host.id.to_string()).collect(),
            spooled,
            instance: self.instance()?,
            state: JobState::Running,
            created_at: now,
            updated_at: now,
            deadline_at: now + deadline.as_millis() as i64,
            finished_at: None,
            result: None,
        };
        self.store().create_job(&job).await?;
        let (finished, _) = watch::channel(false);
        let live = Arc::new(LiveJob {
            id: job_id.to_owned(),
            hosts: hosts.to_vec(),
            spooled,
            cancel: CancellationToken::new(),
            finished,
            spools: Mutex::default(),
            env_values,
            hosts_done: AtomicUsize::new(0),
            started: Instant::now(),
            task: Mutex::default(),
        });
        lock(&self.inner.jobs.live).insert(job_id.to_owned(), Arc::clone(&live));
        Ok(live)
    }

    /// The spool of a job's next command on `host` (none for work that is not
    /// spooled); the first on a host in this process also prunes old spools there.
    pub(super) fn spool_for(&self, job: &LiveJob, host: &Host) -> Option<Spooled> {
        if !job.spooled {
            return None;
        }
        let index = job.hosts.iter().position(|planned| planned.id == host.id)?;
        // Numbered per host: a host's first command is `<job>-<index>-0` (jobs_output).
        let spool = {
            let mut spools = lock(&job.spools);
            let seq = spools.iter().filter(|(at, _)| *at == index).count();
            let spool = Spool::new(&job.id, index, seq);
            spools.push((index, spool.clone()));
            spool
        };
        let prune = lock(&self.inner.jobs.pruned).insert(host.id.to_string());
        Some(Spooled { spool, prune })
    }

    /// Records how a job ended (its masked answer) and wakes its waiters.
    pub(super) async fn finish_job(&self, job: &LiveJob, answer: &Result<Value>) {
        let state = state_of(answer);
        let stored = match answer {
            Ok(value) => value.clone(),
            Err(error) => error.to_json(),
        };
        let finished = match self.instance() {
            Ok(instance) => {
                self.store()
                    .finish_job(&job.id, &instance, state, &stored, now_ms())
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = finished {
            tracing::error!(job = %job.id, "cannot record how the job ended: {error}");
        }
        lock(&self.inner.jobs.live).remove(&job.id);
        job.finished.send_replace(true);
    }

    /// The caller's job `id`, or `JOB_NOT_FOUND` (another caller's job is not found
    /// either). `owner` is `None` for the operator (the CLI), who sees every job.
    async fn owned_job(&self, owner: Option<&str>, id: &str) -> Result<Job> {
        self.store()
            .job(id)
            .await?
            .filter(|job| owner.is_none_or(|owner| job.owner == owner))
            .ok_or_else(|| {
                Error::new(ErrorCode::JobNotFound, format!("no job {id:?} of yours"))
                    .with_hint("jobs_list shows your jobs (finished ones are kept 7 days)")
                    .with_recovery_tool("jobs_list")
            })
    }

    /// The finished job a call names in `last_job_id`, if its tool takes one.
    pub(super) async fn previous_job_of(
        &self,
        caller: &super::Caller,
        tool: &str,
        args: &Value,
    ) -> Result<Option<Job>> {
        let Some(id) = args.get("last_job_id").and_then(Value::as_str) else {
            return Ok(None);
        };
        if !self.inner.registry.takes(tool, "last_job_id") {
            return Ok(None);
        }
        let job = self
            .owned_job(Some(&super::approve::owner(caller)), id)
            .await?;
        if job.state == JobState::Running {
            return Err(Error::invalid_input(format!(
                "job {id} is still running: a rerun needs how it ended"
            ))
            .with_hint(format!(
                "jobs_wait {{\"job_id\": \"{id}\"}} waits for it; then rerun"
            )));
        }
        Ok(Some(job))
    }

    /// The caller's job as it stands, with output so far when it runs here.
    pub async fn job_view(&self, owner: Option<&str>, id: &str) -> Result<JobView> {
        self.reconcile_jobs().await;
        let job = self.owned_job(owner, id).await?;
        let live = lock(&self.inner.jobs.live).get(id).cloned();
        match live {
            Some(live) if job.state == JobState::Running => {
                let output = self.peek(&live).await;
                Ok(live.view(&job, output))
            }
            _ => Ok(view_of(&job)),
        }
    }

    /// Waits up to `wait` for the caller's job to end; the view either way.
    pub async fn wait_job(
        &self,
        owner: Option<&str>,
        id: &str,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<JobView> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let job = self.owned_job(owner, id).await?;
            if job.state != JobState::Running || tokio::time::Instant::now() >= until {
                return self.job_view(owner, id).await;
            }
            let live = lock(&self.inner.jobs.live).get(id).cloned();
            let mut finished = live.map(|live| live.finished.subscribe());
            tokio::select! {
                () = tokio::time::sleep_until(until.min(tokio::time::Instant::now() + Duration::from_millis(500))) => {}
                _ = async {
                    match finished.as_mut() {
                        Some(finished) => { let _ = finished.wait_for(|done| *done).await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
                () = cancel.cancelled() => return self.job_view(owner, id).await,
            }
        }
    }

    /// The caller's jobs, newest first.
    pub async fn list_jobs(
        &self,
        owner: Option<&str>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<JobView>> {
        self.reconcile_jobs().await;
        let jobs = self.store().jobs(owner, state, limit).await?;
        Ok(jobs
            .iter()
            .map(|job| {
                let mut view = view_of(job);
                // A list stays small: each job's answer is one jobs_show away.
                view.result = None;
                if owner.is_none() {
                    view.owner = Some(job.owner.clone());
                }
                view
            })
            .collect())
    }

    /// Stops the caller's job: its commands get INT, TERM, then KILL (process group and
    /// every process marked as the job's), verified on each host.
    pub async fn cancel_job(&self, owner: Option<&str>, id: &str) -> Result<JobView> {
        let job = self.owned_job(owner, id).await?;
        if job.state != JobState::Running {
            return Ok(view_of(&job));
        }
        let live = lock(&self.inner.jobs.live).get(id).cloned();
        let mut may_still_run = false;
        if let Some(live) = live {
            live.cancel.cancel();
            let mut finished = live.finished.subscribe();
            let ended = tokio::time::timeout(CANCEL_WAIT, finished.wait_for(|done| *done))
                .await
                .is_ok();
            may_still_run = !ended;
        } else if job.spooled {
            // Run by another process (alive or not): stop it through its spools; its
            // watcher, or this process's reconciler, records the end.
            for (index, host) in self.job_hosts(&job) {
                for status in self
                    .spool_status(&job, index, &host)
                    .await
                    .unwrap_or_default()
                {
                    if status.alive {
                        let spool = Spool::from_key(&status.key);
                        may_still_run |= !self
                            .stop_spool(&job.id, &host, &spool, StopReason::Cancelled)
                            .await;
                    }
                }
            }
            self.reconcile_jobs().await;
        }
        let mut view = self.job_view(owner, id).await?;
        view.may_still_run = Some(may_still_run);
        if may_still_run {
            view.hint = String::from(
                "warden could not verify that the job's processes are gone: it may still be running; check the hosts",
            );
        }
        Ok(view)
    }

    /// Bytes of one host's output of the caller's job, read from its spool on the host.
    pub async fn job_output(
        &self,
        owner: Option<&str>,
        id: &str,
        host_id: &str,
        stream: &str,
        range: OutputRange,
    ) -> Result<JobOutput> {
        let job = self.owned_job(owner, id).await?;
        if !job.spooled {
            return Err(Error::invalid_input(format!(
                "job {id} ran {}, which keeps no command output on its hosts; jobs_show has its answer",
                job.tool
            )));
        }
        let Some((index, host)) = self
            .job_hosts(&job)
            .into_iter()
            .find(|(_, host)| host.id.as_str() == host_id)
        else {
            return Err(Error::invalid_input(format!(
                "host {host_id:?} is not in job {id} (its hosts: {})",
                job.hosts.join(", ")
            )));
        };
        let spool = Spool::new(&job.id, index, 0);
        let total = self
            .spool_status(&job, index, &host)
            .await?
            .into_iter()
            .find(|status| status.key == spool.key())
            .map(|status| if stream == "err" { status.stderr_bytes } else { status.stdout_bytes })
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::FileNotFound,
                    format!("{host_id} has no output of job {id} (its spool is gone: pruned after {} h, or never started)", crate::spool::RETENTION_MIN / 60),
                )
                .with_host(host_id)
            })?;
        let (offset, length) = match range {
            OutputRange::Tail(bytes) => (total.saturating_sub(bytes), bytes.min(total)),
            OutputRange::At { offset, length } => (offset.min(total), length),
        };
        let length = length.min(MAX_OUTPUT_READ);
        let read = self
            .host_script(
                &host,
                &job.id,
                spool.read_script(stream, offset, length),
                length as usize,
            )
            .await?;
        Ok(JobOutput {
            offset,
            total_bytes: total,
            stream: read.stdout,
        })
    }

    /// The job's hosts with their index (hosts since removed from the inventory are
    /// left out).
    fn job_hosts(&self, job: &Job) -> Vec<(usize, Arc<Host>)> {
        job.hosts
            .iter()
            .enumerate()
            .filter_map(|(index, id)| {
                self.inner
                    .inventory
                    .require(id)
                    .ok()
                    .map(|host| (index, host))
            })
            .collect()
    }

    /// The last bytes of each running spool of a live job, briefly.
    async fn peek(&self, job: &LiveJob) -> Vec<HostOutput> {
        let spools: Vec<(usize, Spool)> =
            lock(&job.spools).iter().take(PEEK_HOSTS).cloned().collect();
        let mut reads = tokio::task::JoinSet::new();
        for (order, (index, spool)) in spools.into_iter().enumerate() {
            let Some(host) = job.hosts.get(index).cloned() else {
                continue;
            };
            let engine = self.clone();
            let id = job.id.clone();
            let env_values = job.env_values.clone();
            reads.spawn(async move {
                let read = tokio::time::timeout(
                    PEEK_WAIT,
                    engine.host_script(
                        &host,
                        &id,
                        spool.peek_script(PEEK_TAIL),
                        2 * PEEK_TAIL + 64,
                    ),
                )
                .await;
                match read {
                    Ok(Ok(output)) => {
                        let mut shown = peeked(&host, &output);
                        let masker = &engine.inner.secrets;
                        let also = &env_values;
                        shown.stdout_tail = masker.mask_text(&shown.stdout_tail, also).into_owned();
                        shown.stderr_tail = masker.mask_text(&shown.stderr_tail, also).into_owned();
                        Some((order, shown))
                    }
                    _ => None,
                }
            });
        }
        let mut outputs: Vec<(usize, HostOutput)> =
            reads.join_all().await.into_iter().flatten().collect();
        outputs.sort_by_key(|(order, _)| *order);
        outputs.into_iter().map(|(_, output)| output).collect()
    }

    /// The status lines of a job's spools on one host.
    async fn spool_status(&self, job: &Job, index: usize, host: &Host) -> Result<Vec<SpoolStatus>> {
        let output = self
            .host_script(host, &job.id, status_script(&job.id, index), 64 * 1024)
            .await?;
        if output.status != ExitStatus::Code(0) {
            return Err(Error::new(
                ErrorCode::OutcomeUnknown,
                format!(
                    "could not read job {}'s spools on {}: {}",
                    job.id,
                    host.id,
                    output.stderr.text().trim()
                ),
            )
            .with_host(host.id.as_str()));
        }
        Ok(SpoolStatus::parse(&output.stdout.text()))
    }

    /// Stops one spooled command through its spool; true when verified.
    async fn stop_spool(
        &self,
        job_id: &str,
        host: &Host,
        spool: &Spool,
        reason: StopReason,
    ) -> bool {
        match self
            .host_script(host, job_id, spool.stop_script(reason), 1024)
            .await
        {
            Ok(output) => crate::spool::stop_verified(&output.stdout.text()),
            Err(error) => {
                tracing::warn!(job = job_id, host = %host.id, "could not stop the job: {error}");
                false
            }
        }
    }

    /// Runs one of warden's job scripts on a host of the job.
    async fn host_script(
        &self,
        host: &Host,
        job_id: &str,
        script: String,
        max_output_bytes: usize,
    ) -> Result<ExecOutput> {
        let permit = Permit::new(host.id.clone(), job_id.to_owned());
        let request = ExecRequest {
            command: Command::Shell(script),
            env: Default::default(),
            stdin: None,
            working_directory: None,
            timeout: Duration::from_secs(30),
            max_output_bytes,
            hide_command: false,
            spool: None,
            spill: None,
            secret_stdin: None,
        };
        self.transport(host)
            .exec(&permit, host, &request, &CancellationToken::new())
            .await
    }

    /// Takes over the running jobs of processes that are gone and reconciles them from
    /// their spools; returns how many it took. Several processes may run this at once:
    /// each job is taken by one.
    pub async fn reconcile_jobs(&self) -> usize {
        let Ok(instance) = self.instance() else {
            return 0;
        };
        let running = match self
            .store()
            .jobs(None, Some(JobState::Running), 10_000)
            .await
        {
            Ok(running) => running,
            Err(error) => {
                tracing::warn!("cannot list running jobs: {error}");
                return 0;
            }
        };
        let Ok(log) = &self.inner.audit else {
            return 0;
        };
        let mut taken = 0;
        for job in running {
            if job.instance == instance || log.instance_alive(&job.instance) {
                continue;
            }
            match self
                .store()
                .adopt_job(&job.id, &job.instance, &instance, now_ms())
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(job = %job.id, "cannot take the job over: {error}");
                    continue;
                }
            }
            taken += 1;
            let event =
                json!({"event": "job_adopted", "job_id": job.id, "from_instance": job.instance});
            if let Err(error) = self.audit_event(event).await {
                tracing::error!("cannot record a job take-over: {error}");
            }
            let engine = self.clone();
            let mut job = job;
            job.instance = instance.clone();
            tokio::spawn(async move { engine.watch_adopted(job).await });
        }
        if let Err(error) = self
            .store()
            .prune_jobs(now_ms() - RETENTION.as_millis() as i64)
            .await
        {
            tracing::warn!("cannot prune old jobs: {error}");
        }
        taken
    }

    /// Follows a job taken over from a dead process until every command ended (or its
    /// deadline stopped it), then records the end from the spools.
    async fn watch_adopted(&self, job: Job) {
        let state_and_answer = if job.spooled {
            self.settle_spools(&job).await
        } else {
            let error = Error::new(
                ErrorCode::OutcomeUnknown,
                format!(
                    "the warden process running {} stopped before the work ended; it ran inside warden (file transfers), so nothing is left to reconnect to: check the hosts",
                    job.tool
                ),
            );
            (JobState::OutcomeUnknown, error.to_json())
        };
        let (state, mut answer) = state_and_answer;
        // Output read back from spools: masked like any answer (the values this process
        // knows, patterns, token shapes) before it is kept.
        self.inner.secrets.mask(&mut answer, &[]);
        match self
            .store()
            .finish_job(&job.id, &job.instance, state, &answer, now_ms())
            .await
        {
            Ok(true) => {
                let event =
                    json!({"event": "job_reconciled", "job_id": job.id, "state": state.as_str()});
                if let Err(error) = self.audit_event(event).await {
                    tracing::error!("cannot record a reconciled job: {error}");
                }
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(job = %job.id, "cannot record how the job ended: {error}")
            }
        }
    }

    /// Checks a taken-over job's spools until none runs, stopping those past the
    /// deadline; the job's state and a fleet answer built from the spools.
    async fn settle_spools(&self, job: &Job) -> (JobState, Value) {
        let hosts = self.job_hosts(job);
        let mut results: Vec<Option<HostResult>> = vec![None; job.hosts.len()];
        loop {
            let mut running = false;
            for (index, host) in &hosts {
                if results[*index].is_some() {
                    continue;
                }
                let statuses = match self.spool_status(job, *index, host).await {
                    Ok(statuses) => statuses,
                    Err(error) if now_ms() < job.deadline_at => {
                        tracing::debug!(job = %job.id, "spools unreadable for now: {error}");
                        running = true;
                        continue;
                    }
                    Err(error) => {
                        results[*index] = Some(HostResult::from_error(host.id.as_str(), &error, 0));
                        continue;
                    }
                };
                let Some(status) = statuses.into_iter().next() else {
                    // Written before dispatch, but no spool: the host was never reached.
                    let error = Error::new(
                        ErrorCode::OutcomeUnknown,
                        "warden stopped before the command started here, or its spool is gone: check the host",
                    )
                    .with_host(host.id.as_str());
                    results[*index] = Some(HostResult::from_error(host.id.as_str(), &error, 0));
                    continue;
                };
                if status.alive {
                    if now_ms() < job.deadline_at {
                        running = true;
                        continue;
                    }
                    let spool = Spool::from_key(&status.key);
                    let stopped = self
                        .stop_spool(&job.id, host, &spool, StopReason::TimedOut)
                        .await;
                    if !stopped {
                        tracing::warn!(job = %job.id, host = %host.id, "a timed-out job may still be running");
                    }
                }
                results[*index] = Some(self.settled(job, host, &status).await);
            }
            if !running {
                break;
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
        let results: Vec<HostResult> = results
            .into_iter()
            .zip(&job.hosts)
            .map(|(result, host_id)| {
                result.unwrap_or_else(|| {
                    let error = Error::new(
                        ErrorCode::OutcomeUnknown,
                        "the host is no longer in the inventory",
                    )
                    .with_host(host_id);
                    HostResult::from_error(host_id, &error, 0)
                })
            })
            .collect();
        let mut fleet =
            serde_json::to_value(FleetResult::new(results, &job.id, Instant::now(), true))
                .unwrap_or_default();
        if let Some(duration) = fleet.pointer_mut("/summary/duration_ms") {
            *duration = json!(now_ms() - job.created_at);
        }
        (state_of(&Ok(fleet.clone())), fleet)
    }

    /// One host's result from its spool's status and output.
    async fn settled(&self, job: &Job, host: &Host, status: &SpoolStatus) -> HostResult {
        let exit = match (status.stopped, status.exit_code) {
            (Some(StopReason::TimedOut), _) => Some(ExitStatus::TimedOut),
            (Some(StopReason::Cancelled), _) => Some(ExitStatus::Cancelled),
            (None, Some(code)) => Some(ExitStatus::Code(code)),
            (None, None) if status.alive => Some(ExitStatus::TimedOut),
            (None, None) => None,
        };
        let spool = Spool::from_key(&status.key);
        let limit = self.inner.loaded.config.limits.max_output_bytes;
        let fetched = self
            .host_script(host, &job.id, spool.fetch_script(), limit)
            .await;
        let (stdout, stderr) = match fetched {
            Ok(output) => (output.stdout, output.stderr),
            Err(_) => (CapturedStream::with_limit(0), CapturedStream::with_limit(0)),
        };
        let Some(exit) = exit else {
            let error = Error::new(
                ErrorCode::OutcomeUnknown,
                "lost: the command's process is gone and left no exit code (killed, or the host rebooted); check the host",
            )
            .with_host(host.id.as_str());
            let mut result = HostResult::from_error(host.id.as_str(), &error, 0);
            if let Some(error) = result.error.as_mut() {
                error["lost"] = Value::Bool(true);
            }
            return result;
        };
        let output = ExecOutput {
            status: exit,
            stdout,
            stderr,
            duration: Duration::from_millis(
                u64::try_from(now_ms() - job.created_at).unwrap_or_default(),
            ),
            may_still_run: false,
        };
        HostResult::from_output(host.id.as_str(), &output, &job.summary)
    }
}

/// What a job call brings to its job.
pub(super) struct JobStart<'a> {
    pub(super) job_id: &'a str,
    pub(super) owner: &'a str,
    pub(super) tool: &'a str,
    /// One line for people (masked).
    pub(super) summary: String,
    pub(super) hosts: &'a [Arc<Host>],
    /// Its commands run spooled (it plans commands: `exec`, `run`).
    pub(super) spooled: bool,
    /// The tool's bound on its work.
    pub(super) deadline: Option<Duration>,
    /// The call's literal `env` values (masked wherever its output is shown).
    pub(super) env_values: Vec<String>,
}

/// Which bytes of a stream `jobs_output` reads.
#[derive(Debug, Clone, Copy)]
pub enum OutputRange {
    /// The last this many bytes.
    Tail(u64),
    At {
        offset: u64,
        length: u64,
    },
}

/// Bytes read from a job's spool.
#[derive(Debug)]
pub struct JobOutput {
    pub offset: u64,
    pub total_bytes: u64,
    pub stream: CapturedStream,
}

/// One line of progress: hosts done, bytes so far, and the last line printed.
fn progress_line(job: &LiveJob, output: &[HostOutput]) -> String {
    let bytes: u64 = output
        .iter()
        .map(|host| host.stdout_bytes + host.stderr_bytes)
        .sum();
    let last = output
        .iter()
        .rev()
        .find_map(|host| {
            host.stdout_tail
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .map(|line| {
                    format!(
                        "{}: {}",
                        host.host_id,
                        line.chars().take(120).collect::<String>()
                    )
                })
        })
        .unwrap_or_default();
    format!(
        "{}/{} hosts done, {bytes} bytes, {} s; {last}",
        job.hosts_done.load(Ordering::Relaxed),
        job.hosts.len(),
        job.started.elapsed().as_secs()
    )
}

/// What a peek script printed: sizes (and the exit code) on the first line, then tails.
fn peeked(host: &Host, output: &ExecOutput) -> HostOutput {
    let bytes = &output.stdout.bytes;
    let (first, rest) = match bytes.iter().position(|&byte| byte == b'\n') {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (&bytes[..], &[][..]),
    };
    let first = String::from_utf8_lossy(first);
    let mut fields = first.split_whitespace();
    let stdout_bytes = fields
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    let stderr_bytes = fields
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    let exit_code = fields.next().and_then(|code| code.parse().ok());
    HostOutput {
        host_id: host.id.to_string(),
        exit_code,
        stdout_tail: String::from_utf8_lossy(rest).into_owned(),
        stdout_bytes,
        stderr_tail: output.stderr.text(),
        stderr_bytes,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
