//! The fleet result shape of PRODUCT.md §6, shared by every tool that runs on hosts.

use std::time::Instant;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, ErrorCode};
use crate::transport::{ExecOutput, ExitStatus};

/// One host's outcome.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostResult {
    pub host_id: String,
    /// Exit code 0 and no error.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal name when the command was killed by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    pub duration_ms: u64,
    /// Output was cut at max_output_bytes; see the *_bytes totals.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_bytes: Option<u64>,
    /// Same output as this earlier host; stdout/stderr are left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
    /// Why this host failed (an error object as in PRODUCT.md §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub error: Option<Value>,
}

impl HostResult {
    pub fn from_output(host_id: &str, output: &ExecOutput, command: &str) -> HostResult {
        let (exit_code, signal, error) = match &output.status {
            ExitStatus::Code(code) => (Some(*code), None, None),
            ExitStatus::Signal(signal) => (None, Some(signal.clone()), None),
            ExitStatus::TimedOut => (
                None,
                None,
                Some(
                    Error::new(
                        ErrorCode::CmdTimeout,
                        format!(
                            "stopped after {} ms; the remote process group was killed",
                            output.duration.as_millis()
                        ),
                    )
                    .with_host(host_id)
                    .with_command(command),
                ),
            ),
            ExitStatus::Cancelled => (
                None,
                None,
                Some(
                    Error::new(
                        ErrorCode::Cancelled,
                        "cancelled; the remote process group was killed",
                    )
                    .with_host(host_id),
                ),
            ),
        };
        let truncated = output.stdout.truncated() || output.stderr.truncated();
        HostResult {
            host_id: host_id.to_owned(),
            ok: exit_code == Some(0) && error.is_none(),
            exit_code,
            signal,
            stdout: Some(output.stdout.text()),
            stderr: Some(output.stderr.text()),
            duration_ms: output.duration.as_millis() as u64,
            truncated,
            stdout_bytes: truncated.then_some(output.stdout.total_bytes),
            stderr_bytes: truncated.then_some(output.stderr.total_bytes),
            same_as: None,
            error: error.map(|error| error.to_json()["error"].clone()),
        }
    }

    pub fn from_error(host_id: &str, error: &Error, duration_ms: u64) -> HostResult {
        HostResult {
            host_id: host_id.to_owned(),
            ok: false,
            exit_code: None,
            signal: None,
            stdout: None,
            stderr: None,
            duration_ms,
            truncated: false,
            stdout_bytes: None,
            stderr_bytes: None,
            same_as: None,
            error: Some(error.to_json()["error"].clone()),
        }
    }

    fn same_output(&self, other: &HostResult) -> bool {
        self.exit_code == other.exit_code
            && self.signal == other.signal
            && self.stdout == other.stdout
            && self.stderr == other.stderr
            && self.truncated == other.truncated
            && self.error.as_ref().map(|error| &error["code"])
                == other.error.as_ref().map(|error| &error["code"])
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Summary {
    /// Every host succeeded.
    pub ok: bool,
    pub success_count: usize,
    pub fail_count: usize,
    pub skipped_count: usize,
    pub job_id: String,
    pub duration_ms: u64,
}

impl Summary {
    pub fn count<'a>(
        oks: impl Iterator<Item = &'a bool>,
        job_id: &str,
        started: Instant,
    ) -> Summary {
        let (mut success_count, mut fail_count) = (0, 0);
        for ok in oks {
            if *ok {
                success_count += 1;
            } else {
                fail_count += 1;
            }
        }
        Summary {
            ok: fail_count == 0,
            success_count,
            fail_count,
            skipped_count: 0,
            job_id: job_id.to_owned(),
            duration_ms: started.elapsed().as_millis() as u64,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FleetResult {
    pub results: Vec<HostResult>,
    pub summary: Summary,
}

impl FleetResult {
    pub fn new(
        mut results: Vec<HostResult>,
        job_id: &str,
        started: Instant,
        fold: bool,
    ) -> FleetResult {
        if fold {
            fold_identical(&mut results);
        }
        let summary = Summary::count(results.iter().map(|result| &result.ok), job_id, started);
        FleetResult { results, summary }
    }
}

/// Replaces the output of a host that printed exactly what an earlier host printed by
/// `same_as`, to save tokens on large fleets.
fn fold_identical(results: &mut [HostResult]) {
    for index in 1..results.len() {
        let (earlier, rest) = results.split_at_mut(index);
        let current = &mut rest[0];
        let printed = current.stdout.as_deref().is_some_and(|out| !out.is_empty())
            || current.stderr.as_deref().is_some_and(|err| !err.is_empty());
        if !printed {
            continue;
        }
        if let Some(first) = earlier
            .iter()
            .find(|first| first.same_as.is_none() && first.same_output(current))
        {
            current.same_as = Some(first.host_id.clone());
            current.stdout = None;
            current.stderr = None;
        }
    }
}
