//! Rollout controls shared by the fleet tools (`exec`, `push`, `sync`): batches, a
//! pause between them, a random subset of the target, and the conditions that stop a
//! rollout early. [`RolloutParams`] is flattened into each tool's params; the tool turns
//! it into a [`Rollout`] at plan time (the subset is drawn there, so policy, the
//! `requested` record and the plan digest see exactly the hosts that will run), and the
//! engine runs it with [`crate::RunContext::rollout`]. What each control means, and why,
//! is in docs/rollout.md.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::inventory::Host;

/// The longest pause between batches: a call must end within a bounded time, and a
/// rollout that needs longer pauses is better run as separate calls.
pub const MAX_BATCH_WAIT_MS: u64 = 600_000;

/// The rollout arguments of a fleet tool. All optional: without them every host runs
/// at once, as before.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct RolloutParams {
    /// Hosts per batch (a number, or a share of the hosts such as "20%"); batches run one after another [all at once].
    #[serde(default)]
    pub batch_size: Option<BatchSize>,
    /// Pause between batches, ms (at most 600000).
    #[serde(default)]
    pub batch_wait: Option<u64>,
    /// Run on N hosts of the target drawn at random, the same N for the same arguments (a preview and its confirmed call agree).
    #[serde(default)]
    pub subset: Option<usize>,
    /// Any text: seeds the subset draw [the target and what runs].
    #[serde(default)]
    pub subset_seed: Option<String>,
    /// Stop after the first batch in which a host failed; later batches are skipped.
    #[serde(default)]
    pub fail_fast: bool,
    /// Stop when successes / hosts run so far fall below this after a batch: 0..1, or "90%".
    #[serde(default)]
    pub min_success_rate: Option<Rate>,
    /// Run again only where last_job_id failed (or succeeded), within the target.
    #[serde(default)]
    pub rerun: Option<Rerun>,
    /// With rerun: one of your finished jobs.
    #[serde(default)]
    pub last_job_id: Option<String>,
}

/// Which hosts of an earlier job a rerun takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rerun {
    /// Every host that did not succeed (failed, errors, not run).
    Failure,
    /// Every host that succeeded.
    Success,
}

/// Hosts per batch: a count, or a percentage of the planned hosts.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum BatchSize {
    Hosts(u64),
    Share(String),
}

/// A success rate: a fraction, or a percentage.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Rate {
    Fraction(f64),
    Percent(String),
}

// By hand rather than `untagged`: serde's untagged error ("data did not match any
// variant") names neither the argument nor what it takes.
impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(number) if number.is_u64() => {
                Ok(BatchSize::Hosts(number.as_u64().unwrap_or_default()))
            }
            Value::String(text) => Ok(BatchSize::Share(text)),
            other => Err(D::Error::custom(format!(
                "batch_size takes a number of hosts or a share such as \"20%\", not {other}"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(number) => Ok(Rate::Fraction(number.as_f64().unwrap_or(f64::NAN))),
            Value::String(text) => Ok(Rate::Percent(text)),
            other => Err(D::Error::custom(format!(
                "min_success_rate takes a fraction 0..1 or a percentage such as \"90%\", not {other}"
            ))),
        }
    }
}

/// A rollout as planned: validated, its subset already drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    size: Size,
    pub(crate) wait: Duration,
    pub(crate) fail_fast: bool,
    pub(crate) min_success_rate: Option<f64>,
    pub(crate) subset: Option<SubsetReport>,
    /// Nothing changes (a tool's own dry run or preview): every host is looked at
    /// at once, and the batches are only listed.
    pub(crate) preview: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Size {
    All,
    Hosts(usize),
    Percent(f64),
}

/// How the subset was drawn.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SubsetReport {
    /// Hosts drawn.
    pub picked: usize,
    /// Hosts in the target.
    pub of: usize,
    /// The subset_seed given (else the draw is seeded by the target and what runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

impl RolloutParams {
    /// Nothing asked: every host at once, no report.
    fn is_empty(&self) -> bool {
        self.batch_size.is_none()
            && self.batch_wait.is_none()
            && self.subset.is_none()
            && self.subset_seed.is_none()
            && !self.fail_fast
            && self.min_success_rate.is_none()
            && self.rerun.is_none()
            && self.last_job_id.is_none()
    }

    /// The target narrowed to the hosts of `last_job_id` that `rerun` names
    /// (`previous`: that job, read by the engine before planning).
    fn rerun_hosts(
        &self,
        mut target: Vec<Arc<Host>>,
        previous: Option<&crate::store::Job>,
    ) -> Result<Vec<Arc<Host>>> {
        let (rerun, id) = match (self.rerun, &self.last_job_id) {
            (None, None) => return Ok(target),
            (Some(rerun), Some(id)) => (rerun, id),
            _ => {
                return Err(Error::invalid_input("rerun and last_job_id go together")
                    .with_hint("Give rerun: \"failure\" (or \"success\") with last_job_id: the job to rerun."));
            }
        };
        let job = previous
            .filter(|job| &job.id == id)
            .ok_or_else(|| Error::internal(format!("job {id} was not read before planning")))?;
        let outcomes = host_outcomes(job);
        let wanted = rerun == Rerun::Success;
        target.retain(|host| {
            outcomes
                .iter()
                .any(|(id, ok)| id == host.id.as_str() && *ok == wanted)
        });
        if target.is_empty() {
            let which = if wanted { "succeeded" } else { "failed" };
            return Err(Error::new(
                crate::ErrorCode::TargetEmpty,
                format!("no host of this target {which} in job {id}"),
            )
            .with_hint("jobs_show has the job's result per host; nothing to rerun"));
        }
        Ok(target)
    }

    /// Validates the controls and draws the subset from `target` (the target's hosts in
    /// target order); returns the hosts to plan, in target order, and the rollout
    /// (`None` when no control was given). `draw` seeds the subset when no
    /// `subset_seed` is given: the tool's target and what it runs, so the same call
    /// draws the same hosts. `preview`: the call changes nothing (the tool's own dry
    /// run), so batches are listed, not run one by one.
    ///
    /// A later host filter (rerunning the failed hosts of a job) narrows `target`
    /// before the draw.
    pub fn plan(
        &self,
        target: Vec<Arc<Host>>,
        draw: &str,
        preview: bool,
        previous: Option<&crate::store::Job>,
    ) -> Result<(Vec<Arc<Host>>, Option<Rollout>)> {
        if self.is_empty() {
            return Ok((target, None));
        }
        let target = self.rerun_hosts(target, previous)?;
        let size = match &self.batch_size {
            None => Size::All,
            Some(BatchSize::Hosts(0)) => {
                return Err(Error::invalid_input("batch_size must be at least 1").with_hint(
                    "Give the hosts per batch (batch_size: 5) or a share of the target (batch_size: \"20%\"); leave it out to run every host at once.",
                ));
            }
            Some(BatchSize::Hosts(count)) => {
                Size::Hosts(usize::try_from(*count).unwrap_or(usize::MAX))
            }
            Some(BatchSize::Share(text)) => Size::Percent(percent(text, "batch_size", false)?),
        };
        let wait = self.batch_wait.unwrap_or(0);
        if wait > MAX_BATCH_WAIT_MS {
            return Err(Error::invalid_input(format!(
                "batch_wait {wait} ms is more than the {MAX_BATCH_WAIT_MS} ms (10 min) allowed"
            ))
            .with_hint(
                "Give a shorter pause, or run the batches as separate calls (subset and target pick which hosts).",
            ));
        }
        let min_success_rate = match &self.min_success_rate {
            None => None,
            Some(Rate::Fraction(rate)) if (0.0..=1.0).contains(rate) => Some(*rate),
            Some(Rate::Fraction(rate)) => {
                return Err(Error::invalid_input(format!(
                    "min_success_rate {rate} is outside 0..1"
                ))
                .with_hint("Give a fraction such as 0.9, or a percentage such as \"90%\"."));
            }
            Some(Rate::Percent(text)) => Some(percent(text, "min_success_rate", true)? / 100.0),
        };
        let (hosts, subset) = match self.subset {
            None if self.subset_seed.is_some() => {
                return Err(Error::invalid_input("subset_seed is given without subset")
                    .with_hint("Give subset: N to run on N hosts drawn from the target, or leave subset_seed out."));
            }
            None => (target, None),
            Some(count) => {
                let of = target.len();
                if count == 0 || count > of {
                    return Err(Error::invalid_input(format!(
                        "subset {count} is not between 1 and the {of} hosts of the target"
                    ))
                    .with_hint(if of == 0 {
                        String::from("subset draws from a target: give target (not session_id).")
                    } else {
                        format!("Give subset: 1..{of}, or leave it out to run on every host of the target.")
                    }));
                }
                let seed = self.subset_seed.as_deref().unwrap_or(draw);
                let hosts = draw_subset(target, count, seed);
                let report = SubsetReport {
                    picked: count,
                    of,
                    seed: self.subset_seed.clone(),
                };
                (hosts, Some(report))
            }
        };
        let rollout = Rollout {
            size,
            wait: Duration::from_millis(wait),
            fail_fast: self.fail_fast,
            min_success_rate,
            subset,
            preview,
        };
        Ok((hosts, Some(rollout)))
    }
}

/// Each host of a finished job and whether it succeeded: from its fleet answer
/// (`results`), or a one-host answer (`run`); a host the answer does not name did not.
fn host_outcomes(job: &crate::store::Job) -> Vec<(String, bool)> {
    let result = job.result.as_ref();
    let results = result
        .and_then(|result| result.get("results"))
        .and_then(serde_json::Value::as_array);
    job.hosts
        .iter()
        .map(|host| {
            let ok = match results {
                Some(results) => results.iter().any(|entry| {
                    entry["host_id"] == host.as_str()
                        && entry["ok"] == serde_json::Value::Bool(true)
                }),
                None => result.is_some_and(|result| result["ok"] == serde_json::Value::Bool(true)),
            };
            (host.clone(), ok)
        })
        .collect()
}

/// `text` as a percentage: "20%" (or "20"), above 0 unless `zero_ok`, at most 100.
fn percent(text: &str, name: &str, zero_ok: bool) -> Result<f64> {
    let number = text.trim().trim_end_matches('%').trim();
    let low = if zero_ok { "0" } else { "above 0" };
    let invalid = || {
        Error::invalid_input(format!(
            "{name} {text:?} is not a percentage {low} and at most 100"
        ))
        .with_hint(format!(
            "Give {name} as a number, or a percentage such as \"20%\"."
        ))
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let in_range = if zero_ok {
        (0.0..=100.0).contains(&value)
    } else {
        value > 0.0 && value <= 100.0
    };
    if !in_range {
        return Err(invalid());
    }
    Ok(value)
}

/// `count` hosts of `target`, in target order, ranked by the hash of `seed` and each
/// host id: a uniform draw that the same seed always repeats, and in which a host added
/// to the target displaces at most one of the hosts drawn before.
fn draw_subset(target: Vec<Arc<Host>>, count: usize, seed: &str) -> Vec<Arc<Host>> {
    let rank = |host: &Host| {
        let mut hasher = Sha256::new();
        hasher.update(seed.as_bytes());
        hasher.update([0]);
        hasher.update(host.id.as_str().as_bytes());
        hasher.finalize()
    };
    let mut ranked: Vec<(usize, _)> = target
        .iter()
        .enumerate()
        .map(|(index, host)| (index, rank(host)))
        .collect();
    ranked.sort_by_key(|(_, rank)| *rank);
    let mut chosen: Vec<usize> = ranked
        .into_iter()
        .take(count)
        .map(|(index, _)| index)
        .collect();
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|index| Arc::clone(&target[index]))
        .collect()
}

impl Rollout {
    /// Hosts per batch for `hosts` hosts: a share rounds up, and a batch holds at least one.
    pub(crate) fn batch_size(&self, hosts: usize) -> usize {
        match self.size {
            Size::All => hosts.max(1),
            Size::Hosts(count) => count,
            Size::Percent(share) => ((hosts as f64 * share / 100.0).ceil() as usize).max(1),
        }
    }

    /// `hosts` cut into batches, in order.
    pub(crate) fn batches<'a, T>(&self, hosts: &'a [T]) -> std::slice::Chunks<'a, T> {
        hosts.chunks(self.batch_size(hosts.len()))
    }

    /// The report before anything ran: every batch `planned` (previews).
    pub(crate) fn planned(&self, hosts: &[Arc<Host>]) -> RolloutReport {
        let batches = self
            .batches(hosts)
            .enumerate()
            .map(|(index, batch)| BatchReport::new(index, batch, BatchStatus::Planned))
            .collect();
        self.report(hosts.len(), batches, None)
    }

    /// The report of a rollout over `hosts` hosts: its settings, its batches and why
    /// it stopped.
    pub(crate) fn report(
        &self,
        hosts: usize,
        batches: Vec<BatchReport>,
        stopped: Option<Stopped>,
    ) -> RolloutReport {
        RolloutReport {
            batch_size: self.batch_size(hosts),
            batch_wait: self.wait.as_millis() as u64,
            fail_fast: self.fail_fast,
            min_success_rate: self.min_success_rate,
            subset: self.subset.clone(),
            batches,
            stopped,
        }
    }
}

/// How a rollout was planned and how it went.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RolloutReport {
    /// Hosts per batch (the last batch may hold fewer).
    pub batch_size: usize,
    /// Pause between batches, ms.
    pub batch_wait: u64,
    pub fail_fast: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_success_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<SubsetReport>,
    pub batches: Vec<BatchReport>,
    /// Set when the rollout stopped before its last batch: after which batch, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// One batch: its hosts and what became of it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchReport {
    /// 1-based.
    pub batch: usize,
    pub hosts: Vec<String>,
    pub status: BatchStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_count: Option<usize>,
    /// Successes / hosts run so far, after this batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
}

impl BatchReport {
    /// Batch `index` (0-based) of `hosts`, before any count.
    pub(crate) fn new(index: usize, hosts: &[Arc<Host>], status: BatchStatus) -> BatchReport {
        BatchReport {
            batch: index + 1,
            hosts: hosts.iter().map(|host| host.id.to_string()).collect(),
            status,
            success_count: None,
            fail_count: None,
            success_rate: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// A preview: it would run.
    Planned,
    Ran,
    /// The rollout stopped before it: none of its hosts ran.
    Skipped,
}

/// Where and why a rollout stopped early.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Stopped {
    /// The last batch that ran (0: none ran).
    pub after_batch: usize,
    pub cause: StopCause,
    /// The numbers behind the cause.
    pub reason: String,
    /// Hosts of the later batches, none of them run.
    pub skipped_hosts: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    FailFast,
    MinSuccessRate,
    Cancelled,
}

/// A fleet tool's per-host result, as a rollout needs it.
pub trait RolloutHost: Send + 'static {
    /// Counts toward the success rate.
    fn succeeded(&self) -> bool;
    /// The result of a host the rollout did not run, and why.
    fn not_run(host_id: &str, reason: &str) -> Self;
}

/// What a rollout gives back: one result per planned host, in plan order.
#[derive(Debug)]
pub struct Rolled<T> {
    pub results: Vec<T>,
    /// Hosts not run because the rollout stopped (their results say why).
    pub skipped: usize,
    /// `None` when the call asked for no rollout control.
    pub report: Option<RolloutReport>,
}

impl<T: RolloutHost> Rolled<T> {
    /// The PRODUCT.md §6 summary: hosts not run are `skipped_count`, not failures,
    /// and make `ok` false (the work asked for was not all done).
    pub fn summary(&self, job_id: &str, started: std::time::Instant) -> super::Summary {
        let success_count = self
            .results
            .iter()
            .filter(|result| result.succeeded())
            .count();
        let fail_count = self.results.len() - success_count - self.skipped;
        super::Summary {
            ok: fail_count == 0 && self.skipped == 0,
            success_count,
            fail_count,
            skipped_count: self.skipped,
            job_id: job_id.to_owned(),
            duration_ms: started.elapsed().as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn hosts(n: usize) -> Vec<Arc<Host>> {
        let yaml: String = (1..=n)
            .map(|i| format!("  - {{id: web-{i:02}, address: 127.0.0.1}}\n"))
            .collect();
        let config = crate::config::Config::parse(&format!("hosts:\n{yaml}")).unwrap();
        crate::inventory::Inventory::from_config(&config)
            .resolve("all")
            .unwrap()
    }

    fn params(json: Value) -> RolloutParams {
        serde_json::from_value(json).unwrap()
    }

    fn ids(hosts: &[Arc<Host>]) -> Vec<String> {
        hosts.iter().map(|host| host.id.to_string()).collect()
    }

    #[test]
    fn no_control_is_no_rollout() {
        let (planned, rollout) = RolloutParams::default()
            .plan(hosts(3), "x", false, None)
            .unwrap();
        assert_eq!(planned.len(), 3);
        assert!(rollout.is_none());
    }

    #[test]
    fn batches_by_count_and_by_share_round_up() {
        let target = hosts(10);
        for (size, expected) in [
            (serde_json::json!(3), vec![3, 3, 3, 1]),
            (serde_json::json!("25%"), vec![3, 3, 3, 1]),
            (serde_json::json!("100%"), vec![10]),
            (serde_json::json!("1%"), vec![1; 10]),
            (serde_json::json!(50), vec![10]),
        ] {
            let (planned, rollout) = params(serde_json::json!({"batch_size": size}))
                .plan(target.clone(), "x", false, None)
                .unwrap();
            let rollout = rollout.unwrap();
            let sizes: Vec<usize> = rollout.batches(&planned).map(<[_]>::len).collect();
            assert_eq!(sizes, expected, "{size}");
        }
    }

    #[test]
    fn a_subset_is_distinct_in_target_order_and_stable_for_its_seed() {
        let target = hosts(50);
        let draw = |json: Value, seed: &str| {
            let (planned, rollout) = params(json)
                .plan(target.clone(), seed, false, None)
                .unwrap();
            (ids(&planned), rollout.unwrap().subset.unwrap())
        };
        let (first, report) = draw(serde_json::json!({"subset": 7}), "exec on all: uptime");
        assert_eq!((report.picked, report.of), (7, 50));
        let mut sorted = first.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, first, "distinct, in target order");
        let (again, _) = draw(serde_json::json!({"subset": 7}), "exec on all: uptime");
        assert_eq!(again, first, "the same arguments draw the same hosts");
        let (other, _) = draw(serde_json::json!({"subset": 7}), "exec on all: hostname");
        assert_ne!(other, first, "another call draws others");
        let (seeded, report) = draw(
            serde_json::json!({"subset": 7, "subset_seed": "canary"}),
            "anything",
        );
        let (seeded_again, _) = draw(
            serde_json::json!({"subset": 7, "subset_seed": "canary"}),
            "something else",
        );
        assert_eq!(seeded, seeded_again, "a seed fixes the draw across calls");
        assert_eq!(report.seed.as_deref(), Some("canary"));
    }

    #[test]
    fn bad_controls_are_invalid_input_with_a_hint() {
        for json in [
            serde_json::json!({"batch_size": 0}),
            serde_json::json!({"batch_size": "0%"}),
            serde_json::json!({"batch_size": "120%"}),
            serde_json::json!({"batch_size": "five"}),
            serde_json::json!({"subset": 0}),
            serde_json::json!({"subset": 6}),
            serde_json::json!({"subset_seed": "x"}),
            serde_json::json!({"min_success_rate": 1.5}),
            serde_json::json!({"min_success_rate": -0.1}),
            serde_json::json!({"min_success_rate": "101%"}),
            serde_json::json!({"batch_wait": MAX_BATCH_WAIT_MS + 1}),
        ] {
            let error = params(json.clone())
                .plan(hosts(5), "x", false, None)
                .unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidInput, "{json}");
            assert!(error.hint.is_some(), "{json}: {error:?}");
        }
        for json in [
            serde_json::json!({"batch_size": -1}),
            serde_json::json!({"batch_size": 1.5}),
            serde_json::json!({"min_success_rate": true}),
        ] {
            let error = serde_json::from_value::<RolloutParams>(json.clone()).unwrap_err();
            assert!(error.to_string().contains("takes"), "{json}: {error}");
        }
    }

    #[test]
    fn rates_read_as_fractions_or_percentages() {
        for (json, expected) in [
            (serde_json::json!(0.8), 0.8),
            (serde_json::json!("80%"), 0.8),
            (serde_json::json!(0), 0.0),
            (serde_json::json!(1), 1.0),
        ] {
            let (_, rollout) = params(serde_json::json!({"min_success_rate": json}))
                .plan(hosts(2), "x", false, None)
                .unwrap();
            let rate = rollout.unwrap().min_success_rate.unwrap();
            assert!((rate - expected).abs() < 1e-9, "{json}");
        }
    }
}
