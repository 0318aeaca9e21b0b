//! warden's state store: [`warden_core::store::Store`] on SQLite, the embedded default
//! (PostgreSQL for teams and HA is the second implementation to come, PRODUCT.md §10).
//!
//! One SQLite file under the state dir, in WAL mode so readers
//! never block the writer, with a busy timeout so processes wait for each other's
//! short transactions instead of failing, and `synchronous = FULL` so a decision or a
//! use survives a power cut (a used approval that came back could run twice).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlStr};
use tokio::sync::OnceCell;

use warden_core::error::{Error, Result};
use warden_core::store::{Approval, ApprovalState, Job, JobState, Store};

/// The schema, in order; applied once per database (sqlx's migration table).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "approvals",
        include_str!("../migrations/sqlite/0001_approvals.sql"),
    ),
    (
        2,
        "jobs",
        include_str!("../migrations/sqlite/0002_jobs.sql"),
    ),
];

pub struct SqliteStore {
    path: PathBuf,
    pool: SqlitePool,
    migrated: OnceCell<()>,
}

impl SqliteStore {
    /// The store at `path`, opened on first use (so starting warden stays cheap and
    /// sync); the file and the schema are created then.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|error| store_error(path, &error))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options);
        Ok(SqliteStore {
            path: path.to_path_buf(),
            pool,
            migrated: OnceCell::new(),
        })
    }

    async fn pool(&self) -> Result<&SqlitePool> {
        self.migrated
            .get_or_try_init(|| async {
                if let Some(parent) = self.path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|error| store_error(&self.path, &error))?;
                }
                let migrations = MIGRATIONS
                    .iter()
                    .map(|(version, name, sql)| {
                        Migration::new(
                            *version,
                            (*name).into(),
                            MigrationType::Simple,
                            SqlStr::from_static(sql),
                            false,
                        )
                    })
                    .collect();
                Migrator::with_migrations(migrations)
                    .run(&self.pool)
                    .await
                    .map_err(|error| store_error(&self.path, &error))
            })
            .await?;
        Ok(&self.pool)
    }
}

impl SqliteStore {
    fn decode(&self, rows: &[SqliteRow]) -> Result<Vec<Approval>> {
        rows.iter()
            .map(row_to_approval)
            .collect::<std::result::Result<_, _>>()
            .map_err(|error| store_error(&self.path, &error))
    }

    fn decode_jobs(&self, rows: &[SqliteRow]) -> Result<Vec<Job>> {
        rows.iter()
            .map(row_to_job)
            .collect::<std::result::Result<_, _>>()
            .map_err(|error| store_error(&self.path, &error))
    }
}

fn row_to_job(row: &SqliteRow) -> std::result::Result<Job, sqlx::Error> {
    let hosts: String = row.try_get("hosts")?;
    let state: String = row.try_get("state")?;
    let result: Option<String> = row.try_get("result")?;
    let spooled: i64 = row.try_get("spooled")?;
    Ok(Job {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        tool: row.try_get("tool")?,
        summary: row.try_get("summary")?,
        hosts: serde_json::from_str(&hosts).unwrap_or_default(),
        spooled: spooled != 0,
        instance: row.try_get("instance")?,
        state: JobState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown job state {state:?}").into()))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deadline_at: row.try_get("deadline_at")?,
        finished_at: row.try_get("finished_at")?,
        result: result.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

fn store_error(path: &Path, error: &dyn std::fmt::Display) -> Error {
    Error::internal(format!(
        "the state store at {} failed: {error}",
        path.display()
    ))
    .with_hint("check that the state dir is writable (`warden doctor`)")
}

fn row_to_approval(row: &SqliteRow) -> std::result::Result<Approval, sqlx::Error> {
    let hosts: String = row.try_get("hosts")?;
    let request: String = row.try_get("request")?;
    let state: String = row.try_get("state")?;
    Ok(Approval {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        caller: row.try_get("caller")?,
        client: row.try_get("client")?,
        identity: row.try_get("identity")?,
        tool: row.try_get("tool")?,
        hosts: serde_json::from_str(&hosts).unwrap_or_default(),
        summary: row.try_get("summary")?,
        request: serde_json::from_str(&request).unwrap_or_default(),
        digest: row.try_get("digest")?,
        state: ApprovalState::parse(&state).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown approval state {state:?}").into())
        })?,
        rule: row.try_get("rule")?,
        requested_at: row.try_get("requested_at")?,
        expires_at: row.try_get("expires_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row.try_get("decided_by")?,
        reason: row.try_get("reason")?,
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_approval(&self, approval: &Approval) -> Result<()> {
        sqlx::query(
            "INSERT INTO approvals (id, secret_hash, caller, client, identity, tool, hosts, summary, \
             request, digest, state, rule, requested_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&approval.id)
        .bind(&approval.secret_hash)
        .bind(&approval.caller)
        .bind(&approval.client)
        .bind(&approval.identity)
        .bind(&approval.tool)
        .bind(serde_json::to_string(&approval.hosts).unwrap_or_default())
        .bind(&approval.summary)
        .bind(approval.request.to_string())
        .bind(&approval.digest)
        .bind(approval.state.as_str())
        .bind(&approval.rule)
        .bind(approval.requested_at)
        .bind(approval.expires_at)
        .execute(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        Ok(())
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>> {
        let row = sqlx::query("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool().await?)
            .await
            .map_err(|error| store_error(&self.path, &error))?;
        row.as_ref()
            .map(row_to_approval)
            .transpose()
            .map_err(|error| store_error(&self.path, &error))
    }

    async fn approvals(
        &self,
        state: Option<ApprovalState>,
        caller: Option<&str>,
    ) -> Result<Vec<Approval>> {
        let rows = sqlx::query(
            "SELECT * FROM approvals WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR caller = ?2) \
             ORDER BY requested_at DESC LIMIT 1000",
        )
        .bind(state.map(ApprovalState::as_str))
        .bind(caller)
        .fetch_all(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        self.decode(&rows)
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
        // A decision must land before the expiry, a use too; expiring is always due.
        let done = sqlx::query(
            "UPDATE approvals SET state = ?1, decided_at = COALESCE(?2, decided_at), \
             decided_by = COALESCE(?3, decided_by), reason = COALESCE(?4, reason) \
             WHERE id = ?5 AND state = ?6 AND (?1 = 'expired' OR expires_at > ?7)",
        )
        .bind(to.as_str())
        .bind(by.map(|_| now))
        .bind(by)
        .bind(reason)
        .bind(id)
        .bind(from.as_str())
        .bind(now)
        .execute(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire(&self, now: i64) -> Result<Vec<Approval>> {
        let rows = sqlx::query(
            "UPDATE approvals SET state = 'expired' \
             WHERE state IN ('pending', 'approved') AND expires_at <= ? RETURNING *",
        )
        .bind(now)
        .fetch_all(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        self.decode(&rows)
    }

    async fn create_job(&self, job: &Job) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (id, owner, tool, summary, hosts, spooled, instance, state, \
             created_at, updated_at, deadline_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&job.id)
        .bind(&job.owner)
        .bind(&job.tool)
        .bind(&job.summary)
        .bind(serde_json::to_string(&job.hosts).unwrap_or_default())
        .bind(i64::from(job.spooled))
        .bind(&job.instance)
        .bind(job.state.as_str())
        .bind(job.created_at)
        .bind(job.updated_at)
        .bind(job.deadline_at)
        .execute(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        Ok(())
    }

    async fn job(&self, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool().await?)
            .await
            .map_err(|error| store_error(&self.path, &error))?;
        row.as_ref()
            .map(row_to_job)
            .transpose()
            .map_err(|error| store_error(&self.path, &error))
    }

    async fn jobs(
        &self,
        owner: Option<&str>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR state = ?2) \
             ORDER BY created_at DESC, id LIMIT ?3",
        )
        .bind(owner)
        .bind(state.map(JobState::as_str))
        .bind(i64::from(limit))
        .fetch_all(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        self.decode_jobs(&rows)
    }

    async fn finish_job(
        &self,
        id: &str,
        instance: &str,
        state: JobState,
        result: &serde_json::Value,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET state = ?1, result = ?2, finished_at = ?3, updated_at = ?3 \
             WHERE id = ?4 AND state = 'running' AND instance = ?5",
        )
        .bind(state.as_str())
        .bind(result.to_string())
        .bind(now)
        .bind(id)
        .bind(instance)
        .execute(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        Ok(done.rows_affected() == 1)
    }

    async fn adopt_job(&self, id: &str, from: &str, to: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET instance = ?1, updated_at = ?2 \
             WHERE id = ?3 AND state = 'running' AND instance = ?4",
        )
        .bind(to)
        .bind(now)
        .bind(id)
        .bind(from)
        .execute(self.pool().await?)
        .await
        .map_err(|error| store_error(&self.path, &error))?;
        Ok(done.rows_affected() == 1)
    }

    async fn prune_jobs(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM jobs WHERE state != 'running' AND finished_at < ?")
            .bind(before)
            .execute(self.pool().await?)
            .await
            .map_err(|error| store_error(&self.path, &error))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn approval(id: &str, expires_at: i64) -> Approval {
        Approval {
            id: id.into(),
            secret_hash: "h".into(),
            caller: "alice/agent".into(),
            client: "agent".into(),
            identity: "alice".into(),
            tool: "exec".into(),
            hosts: vec!["web-1".into()],
            summary: "exec on web-1: touch x".into(),
            request: serde_json::json!({"commands": ["touch x"]}),
            digest: "d".into(),
            state: ApprovalState::Pending,
            rule: "approval.rules[0]".into(),
            requested_at: 1,
            expires_at,
            decided_at: None,
            decided_by: None,
            reason: None,
        }
    }

    /// Two stores on one file stand for two processes: each change happens once.
    #[tokio::test]
    async fn two_processes_cannot_both_decide_or_use_an_approval() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("state/warden.db");
        let (first, second) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        first
            .create_approval(&approval("a1", i64::MAX))
            .await
            .unwrap();
        let (approve, deny) = tokio::join!(
            first.transition(
                "a1",
                ApprovalState::Pending,
                ApprovalState::Approved,
                Some("op"),
                None,
                10
            ),
            second.transition(
                "a1",
                ApprovalState::Pending,
                ApprovalState::Denied,
                Some("op2"),
                Some("no"),
                10
            ),
        );
        assert!(
            approve.unwrap() ^ deny.unwrap(),
            "exactly one decision lands"
        );
        let decided = second.approval("a1").await.unwrap().unwrap();
        if decided.state == ApprovalState::Approved {
            let (used, again) = tokio::join!(
                first.transition(
                    "a1",
                    ApprovalState::Approved,
                    ApprovalState::Used,
                    None,
                    None,
                    11
                ),
                second.transition(
                    "a1",
                    ApprovalState::Approved,
                    ApprovalState::Used,
                    None,
                    None,
                    11
                ),
            );
            assert!(used.unwrap() ^ again.unwrap(), "exactly one use");
        }
    }

    #[tokio::test]
    async fn expiry_wins_over_a_late_decision() {
        let temp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&temp.path().join("warden.db")).unwrap();
        store.create_approval(&approval("late", 100)).await.unwrap();
        let decided = store
            .transition(
                "late",
                ApprovalState::Pending,
                ApprovalState::Approved,
                Some("op"),
                None,
                150,
            )
            .await
            .unwrap();
        assert!(!decided, "a decision after the expiry does not land");
        let expired = store.expire(150).await.unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(
            store
                .approvals(Some(ApprovalState::Expired), Some("alice/agent"))
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
