//! A store in memory, for the engine's unit tests only (the proof that approvals work
//! across processes runs on `warden-store`'s SQLite, end to end).

use std::sync::Mutex;

use super::{Approval, ApprovalState, Job, JobState, Store};
use crate::error::{Error, Result};

#[derive(Default)]
pub(crate) struct MemoryStore {
    approvals: Mutex<Vec<Approval>>,
    jobs: Mutex<Vec<Job>>,
}

impl MemoryStore {
    fn with<T>(&self, work: impl FnOnce(&mut Vec<Approval>) -> T) -> Result<T> {
        let mut approvals = self
            .approvals
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?;
        Ok(work(&mut approvals))
    }

    fn jobs_with<T>(&self, work: impl FnOnce(&mut Vec<Job>) -> T) -> Result<T> {
        let mut jobs = self
            .jobs
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?;
        Ok(work(&mut jobs))
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn create_approval(&self, approval: &Approval) -> Result<()> {
        self.with(|approvals| approvals.push(approval.clone()))
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>> {
        self.with(|approvals| approvals.iter().find(|approval| approval.id == id).cloned())
    }

    async fn approvals(
        &self,
        state: Option<ApprovalState>,
        caller: Option<&str>,
    ) -> Result<Vec<Approval>> {
        self.with(|approvals| {
            approvals
                .iter()
                .rev()
                .filter(|approval| state.is_none_or(|state| approval.state == state))
                .filter(|approval| caller.is_none_or(|caller| approval.caller == caller))
                .cloned()
                .collect()
        })
    }

    async fn transition(
        &self,
        id: &str,
        from: ApprovalState,
        to: ApprovalState,
        by: Option<&str>,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        self.with(|approvals| {
            let Some(approval) = approvals.iter_mut().find(|approval| {
                approval.id == id
                    && approval.state == from
                    && (to == ApprovalState::Expired || approval.expires_at > now)
            }) else {
                return false;
            };
            approval.state = to;
            if let Some(by) = by {
                approval.decided_at = Some(now);
                approval.decided_by = Some(by.to_owned());
            }
            if let Some(reason) = reason {
                approval.reason = Some(reason.to_owned());
            }
            true
        })
    }

    async fn expire(&self, now: i64) -> Result<Vec<Approval>> {
        self.with(|approvals| {
            approvals
                .iter_mut()
                .filter(|approval| {
                    matches!(
                        approval.state,
                        ApprovalState::Pending | ApprovalState::Approved
                    ) && approval.expires_at <= now
                })
                .map(|approval| {
                    approval.state = ApprovalState::Expired;
                    approval.clone()
                })
                .collect()
        })
    }

    async fn create_job(&self, job: &Job) -> Result<()> {
        self.jobs_with(|jobs| jobs.push(job.clone()))
    }

    async fn job(&self, id: &str) -> Result<Option<Job>> {
        self.jobs_with(|jobs| jobs.iter().find(|job| job.id == id).cloned())
    }

    async fn jobs(
        &self,
        owner: Option<&str>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        self.jobs_with(|jobs| {
            jobs.iter()
                .rev()
                .filter(|job| owner.is_none_or(|owner| job.owner == owner))
                .filter(|job| state.is_none_or(|state| job.state == state))
                .take(limit as usize)
                .cloned()
                .collect()
        })
    }

    async fn finish_job(
        &self,
        id: &str,
        instance: &str,
        state: JobState,
        result: &serde_json::Value,
        now: i64,
    ) -> Result<bool> {
        self.jobs_with(|jobs| {
            let Some(job) = jobs.iter_mut().find(|job| {
                job.id == id && job.state == JobState::Running && job.instance == instance
            }) else {
                return false;
            };
            job.state = state;
            job.result = Some(result.clone());
            job.finished_at = Some(now);
            job.updated_at = now;
            true
        })
    }

    async fn adopt_job(&self, id: &str, from: &str, to: &str, now: i64) -> Result<bool> {
        self.jobs_with(|jobs| {
            let Some(job) = jobs
                .iter_mut()
                .find(|job| job.id == id && job.state == JobState::Running && job.instance == from)
            else {
                return false;
            };
            job.instance = to.to_owned();
            job.updated_at = now;
            true
        })
    }

    async fn prune_jobs(&self, before: i64) -> Result<u64> {
        self.jobs_with(|jobs| {
            let count = jobs.len();
            jobs.retain(|job| {
                job.state == JobState::Running || job.finished_at.is_none_or(|at| at >= before)
            });
            (count - jobs.len()) as u64
        })
    }
}
