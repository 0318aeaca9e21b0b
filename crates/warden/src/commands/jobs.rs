//! `warden jobs list|show|wait|output|cancel`: the operator's view of every job on this
//! state dir (any agent's, and the CLI's own), through the engine's job API.

use std::io::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use warden_core::engine::OutputRange;
use warden_core::store::JobState;
use warden_core::tool::job::JobView;
use warden_core::{Engine, Error};

use crate::cli::JobsCommand;
use crate::output::{self, EXIT_FAILED, EXIT_OK};

pub async fn run(engine: Engine, command: JobsCommand, json_output: bool) -> u8 {
    let cancel = tokio_util::sync::CancellationToken::new();
    let result = match command {
        JobsCommand::List { state, limit } => {
            list(&engine, state.as_deref(), limit, json_output).await
        }
        JobsCommand::Show { job_id } => engine
            .job_view(None, &job_id)
            .await
            .map(|view| show(&view, json_output)),
        JobsCommand::Wait { job_id } => wait(&engine, &job_id, &cancel)
            .await
            .map(|view| show(&view, json_output)),
        JobsCommand::Cancel { job_id } => engine
            .cancel_job(None, &job_id)
            .await
            .map(|view| show(&view, json_output)),
        JobsCommand::Output {
            job_id,
            host_id,
            stderr,
            tail,
        } => output_of(&engine, &job_id, &host_id, stderr, tail).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => output::report_error(&error, json_output),
    }
}

async fn list(
    engine: &Engine,
    state: Option<&str>,
    limit: u32,
    json_output: bool,
) -> Result<u8, Error> {
    let state = match state {
        None => None,
        Some(text) => Some(JobState::parse(text).ok_or_else(|| {
            Error::invalid_input(format!(
                "no job state {text:?}: running, succeeded, failed, cancelled, timed_out, lost, outcome_unknown"
            ))
        })?),
    };
    let jobs = engine.list_jobs(None, state, limit).await?;
    if json_output {
        output::print_json(&json!({ "jobs": jobs }));
        return Ok(EXIT_OK);
    }
    if jobs.is_empty() {
        output::print("no jobs");
        return Ok(EXIT_OK);
    }
    let rows = jobs
        .iter()
        .map(|job| {
            vec![
                job.job_id.clone(),
                job.state.as_str().to_owned(),
                job.hosts.to_string(),
                format!("{:.1}s", job.elapsed_ms as f64 / 1000.0),
                job.owner.clone().unwrap_or_default(),
                job.summary.clone(),
            ]
        })
        .collect();
    output::print(&output::table(
        &["JOB", "STATE", "HOSTS", "ELAPSED", "OWNER", "WHAT"],
        rows,
    ));
    Ok(EXIT_OK)
}

/// Waits in rounds until the job ends (Ctrl-C stops waiting; the job goes on).
async fn wait(
    engine: &Engine,
    job_id: &str,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<JobView, Error> {
    loop {
        let view = engine
            .wait_job(None, job_id, Duration::from_secs(25), cancel)
            .await?;
        if view.state != JobState::Running {
            return Ok(view);
        }
    }
}

fn show(view: &JobView, json_output: bool) -> u8 {
    if json_output {
        output::print_json(&json!(view));
    } else {
        let mut text = format!(
            "{}  {}  {} on {} host(s), {:.1}s\n{}\n",
            view.job_id,
            view.state.as_str(),
            view.tool,
            view.hosts,
            view.elapsed_ms as f64 / 1000.0,
            view.summary
        );
        for host in &view.output {
            text.push_str(&format!(
                "--- {} ({} bytes so far)\n{}",
                host.host_id, host.stdout_bytes, host.stdout_tail
            ));
        }
        if let Some(result) = &view.result {
            text.push_str(&output::json_text(result));
        }
        text.push_str(&format!("\n{}", view.hint));
        output::print(&text);
    }
    match view.state {
        JobState::Running | JobState::Succeeded => EXIT_OK,
        _ => EXIT_FAILED,
    }
}

/// The raw bytes of one host's stream, for pipes.
async fn output_of(
    engine: &Engine,
    job_id: &str,
    host_id: &str,
    stderr: bool,
    tail: Option<u64>,
) -> Result<u8, Error> {
    let stream = if stderr { "err" } else { "out" };
    let mut offset = 0;
    let mut out = std::io::stdout().lock();
    loop {
        let range = match tail {
            Some(bytes) => OutputRange::Tail(bytes),
            None => OutputRange::At {
                offset,
                length: warden_core::engine::MAX_OUTPUT_READ,
            },
        };
        let read = engine
            .job_output(None, job_id, host_id, stream, range)
            .await?;
        let _ = out.write_all(&read.stream.bytes);
        offset = read.offset + read.stream.bytes.len() as u64;
        if tail.is_some() || read.stream.bytes.is_empty() || offset >= read.total_bytes {
            return Ok(EXIT_OK);
        }
    }
}

/// `warden exec`'s answer once its job ended, when it outlived the first wait.
pub async fn until_done(engine: &Engine, first: Value) -> Result<Value, Error> {
    let Some(job_id) = first
        .get("job_id")
        .and_then(Value::as_str)
        .filter(|_| first.get("state").and_then(Value::as_str) == Some("running"))
    else {
        return Ok(first);
    };
    let view = wait(engine, job_id, &tokio_util::sync::CancellationToken::new()).await?;
    match view.result {
        Some(result) => Ok(result),
        None => Ok(json!(view)),
    }
}
