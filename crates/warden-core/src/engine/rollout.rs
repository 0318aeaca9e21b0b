//! [`RunContext::rollout`]: the planned hosts run batch after batch, as the plan's
//! [`Rollout`] says; the one implementation behind `exec`, `push` and `sync`.
//!
//! A batch runs like any fan-out (`for_each_host`: concurrent up to
//! `ssh.max_parallel`, one result per host). It always runs to its end: hosts already
//! changing are not recalled halfway. After it, `fail_fast` (a host of this batch
//! failed) and `min_success_rate` (successes / hosts run so far fell below it) stop the
//! rollout, as does cancellation; every host of the later batches is then a `not_run`
//! result, and nothing reaches it.

use std::future::Future;
use std::sync::Arc;

use super::RunContext;
use crate::error::Error;
use crate::inventory::Host;
use crate::tool::rollout::{
    BatchReport, BatchStatus, Rolled, Rollout, RolloutHost, StopCause, Stopped,
};

impl RunContext {
    /// Runs `work` on every planned host, batch by batch when the plan has a rollout
    /// (else all at once, like [`RunContext::for_each_host`]). Results come back in plan
    /// order, one per host; a host whose task panicked gets `on_panic`'s result.
    /// Progress reports each host with its batch (`web-3 (batch 2/10)`) and each pause.
    pub async fn rollout<T, F, Fut>(
        &self,
        work: F,
        on_panic: impl Fn(&Host, Error) -> T,
    ) -> Rolled<T>
    where
        T: RolloutHost,
        F: Fn(RunContext, Arc<Host>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let hosts = self.planned_hosts();
        let Some(rollout) = self.rollout.clone() else {
            let results = self.for_each_host(&hosts, work, on_panic).await;
            return Rolled {
                results,
                skipped: 0,
                report: None,
            };
        };
        if rollout.preview {
            // Nothing changes: every host is looked at at once, the batches listed.
            let results = self.for_each_host(&hosts, work, on_panic).await;
            return Rolled {
                results,
                skipped: 0,
                report: Some(rollout.planned(&hosts)),
            };
        }
        self.in_batches(&rollout, &hosts, &work, &on_panic).await
    }

    async fn in_batches<T, F, Fut>(
        &self,
        rollout: &Rollout,
        hosts: &[Arc<Host>],
        work: &F,
        on_panic: &impl Fn(&Host, Error) -> T,
    ) -> Rolled<T>
    where
        T: RolloutHost,
        F: Fn(RunContext, Arc<Host>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let batches: Vec<&[Arc<Host>]> = rollout.batches(hosts).collect();
        let count = batches.len();
        let mut results = Vec::with_capacity(hosts.len());
        let mut reports = Vec::with_capacity(count);
        let (mut ran, mut succeeded) = (0usize, 0usize);
        let mut stopped: Option<Stopped> = None;
        for (index, batch) in batches.iter().enumerate() {
            if stopped.is_none()
                && index > 0
                && !rollout.wait.is_zero()
                && !self.cancel.is_cancelled()
            {
                self.report_progress(
                    ran,
                    hosts.len(),
                    &format!(
                        "batch {index}/{count} done; next in {} ms",
                        rollout.wait.as_millis()
                    ),
                );
                tokio::select! {
                    () = tokio::time::sleep(rollout.wait) => {}
                    () = self.cancel.cancelled() => {}
                }
            }
            if stopped.is_none() && self.cancel.is_cancelled() {
                stopped = Some(cancelled(index));
            }
            if let Some(stop) = &mut stopped {
                let when = match stop.after_batch {
                    0 => String::from("before its first batch"),
                    last => format!("after batch {last} of {count}"),
                };
                let reason = format!("not run: the rollout stopped {when} ({})", stop.reason);
                results.extend(
                    batch
                        .iter()
                        .map(|host| T::not_run(host.id.as_str(), &reason)),
                );
                stop.skipped_hosts += batch.len();
                reports.push(BatchReport::new(index, batch, BatchStatus::Skipped));
                continue;
            }
            let context = self.in_batch(ran, hosts.len(), index + 1, count);
            let batch_results = context
                .for_each_host(batch, work, |host, error| on_panic(host, error))
                .await;
            let batch_ok = batch_results
                .iter()
                .filter(|result| result.succeeded())
                .count();
            let batch_failed = batch.len() - batch_ok;
            ran += batch.len();
            succeeded += batch_ok;
            let rate = succeeded as f64 / ran as f64;
            let mut report = BatchReport::new(index, batch, BatchStatus::Ran);
            report.success_count = Some(batch_ok);
            report.fail_count = Some(batch_failed);
            report.success_rate = Some(rate);
            reports.push(report);
            results.extend(batch_results);
            // A cancel during the batch is why its hosts failed: named as the cause.
            if index + 1 < count && !self.cancel.is_cancelled() {
                stopped = stop_after(rollout, index + 1, batch_failed, succeeded, ran);
            }
        }
        let skipped = stopped.as_ref().map_or(0, |stop| stop.skipped_hosts);
        Rolled {
            results,
            skipped,
            report: Some(rollout.report(hosts.len(), reports, stopped)),
        }
    }

    /// This context, reporting progress over the whole rollout with the batch named:
    /// `before` hosts of `total` are done when batch `batch` of `batches` starts.
    fn in_batch(&self, before: usize, total: usize, batch: usize, batches: usize) -> RunContext {
        let mut context = self.clone();
        if let Some(outer) = self.progress.clone() {
            context.progress = Some(Arc::new(move |done: usize, _: usize, host: &str| {
                outer(
                    before + done,
                    total,
                    &format!("{host} (batch {batch}/{batches})"),
                );
            }));
        }
        context
    }

    fn report_progress(&self, done: usize, total: usize, what: &str) {
        if let Some(progress) = &self.progress {
            progress(done, total, what);
        }
    }
}

/// The stop of a call cancelled after batch `after_batch` (0: before the first).
fn cancelled(after_batch: usize) -> Stopped {
    Stopped {
        after_batch,
        cause: StopCause::Cancelled,
        reason: String::from("the call was cancelled"),
        skipped_hosts: 0,
    }
}

/// Whether the rollout stops after batch `batch` (1-based), in which `failed` hosts
/// failed, with `succeeded` of `ran` hosts successful so far.
fn stop_after(
    rollout: &Rollout,
    batch: usize,
    failed: usize,
    succeeded: usize,
    ran: usize,
) -> Option<Stopped> {
    let stop = |cause, reason| {
        Some(Stopped {
            after_batch: batch,
            cause,
            reason,
            skipped_hosts: 0,
        })
    };
    if rollout.fail_fast && failed > 0 {
        return stop(
            StopCause::FailFast,
            format!("fail_fast: {failed} host(s) of batch {batch} failed"),
        );
    }
    if let Some(min) = rollout.min_success_rate {
        let rate = succeeded as f64 / ran as f64;
        if rate < min {
            return stop(
                StopCause::MinSuccessRate,
                format!(
                    "min_success_rate: {succeeded} of {ran} hosts succeeded so far ({:.1}%), below {:.1}%",
                    rate * 100.0,
                    min * 100.0
                ),
            );
        }
    }
    None
}
