//! The filters `audit_search` and `audit_export` share, and the bounded scan behind both.

use std::ops::ControlFlow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use warden_core::RunContext;
use warden_core::audit::{self, Bound, Query, Scanned};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::policy::Class;

/// Records looked at, newest first, before filters: a bound on one call's work.
pub const SCAN_RECORDS: usize = 10_000;
/// Bytes of the log one call reads at most.
pub const SCAN_BYTES: u64 = 64 * 1024 * 1024;

/// What policy decided about a call.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allowed,
    Warned,
    Denied,
    Rejected,
}

/// A record's phase: `requested` before the call runs, `completed` after.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Requested,
    Completed,
}

/// Every filter is optional; a record passes when it meets all that are given.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AuditFilters {
    /// Only records at or after this RFC 3339 time (2026-12-01T10:00:00Z) or date.
    #[serde(default)]
    pub since: Option<String>,
    /// Only records at or before this RFC 3339 time or date.
    #[serde(default)]
    pub until: Option<String>,
    /// Only calls of this tool.
    #[serde(default)]
    pub tool: Option<String>,
    /// Only calls naming this host.
    #[serde(default)]
    pub host_id: Option<String>,
    /// Only calls of this client (its name).
    #[serde(default)]
    pub client: Option<String>,
    /// Only calls of this identity.
    #[serde(default)]
    pub identity: Option<String>,
    /// Only this decision.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// Only this phase.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// Only calls whose commands were at most this class (the record's `class`).
    #[serde(default)]
    pub class: Option<Class>,
    /// Only records with this error code (POLICY_DENIED, …).
    #[serde(default)]
    pub error_code: Option<String>,
    /// Only records of this job.
    #[serde(default)]
    pub job_id: Option<String>,
}

/// How much of the log a call read.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct ScanReport {
    /// Records looked at, newest first, matching or not.
    pub scanned: usize,
    /// The scan stopped at its bound (10000 records or 64 MiB) with older records
    /// unread: narrow with since/until to reach them.
    pub scan_limited: bool,
}

impl AuditFilters {
    pub fn query(&self) -> Result<Query> {
        let time = |name: &str, value: &Option<String>| -> Result<Option<i64>> {
            value
                .as_deref()
                .map(|text| {
                    audit::parse_rfc3339(text.trim()).ok_or_else(|| {
                        Error::invalid_input(format!("{name} {text:?} is not an RFC 3339 time"))
                            .with_hint("Write a UTC time like 2026-12-01T10:00:00Z (an offset such as +02:00, fractions of a second or a bare date 2026-12-01 also work).")
                    })
                })
                .transpose()
        };
        let since_ms = time("since", &self.since)?;
        let until_ms = time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since_ms, until_ms)
            && since > until
        {
            return Err(
                Error::invalid_input("since is later than until: nothing can match")
                    .with_hint("Swap the two times."),
            );
        }
        let decision = self.decision.map(|decision| match decision {
            Decision::Allowed => "allowed",
            Decision::Warned => "warned",
            Decision::Denied => "denied",
            Decision::Rejected => "rejected",
        });
        let phase = self.phase.map(|phase| match phase {
            Phase::Requested => "requested",
            Phase::Completed => "completed",
        });
        let equals = [
            ("tool", self.tool.as_deref()),
            ("client", self.client.as_deref()),
            ("identity", self.identity.as_deref()),
            ("decision", decision),
            ("phase", phase),
            ("class", self.class.map(Class::name)),
            ("error_code", self.error_code.as_deref()),
            ("job_id", self.job_id.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, want)| want.map(|want| (key, want.to_owned())))
        .collect();
        Ok(Query {
            since_ms,
            until_ms,
            equals,
            host_id: self.host_id.clone(),
        })
    }
}

/// Runs the bounded search of the audit dir on a blocking thread (it reads files),
/// handing `state` and each matching record (newest first) with its line as written to
/// `visit`; returns the state.
pub async fn scan<S, V>(
    context: &RunContext,
    query: Query,
    state: S,
    visit: V,
) -> Result<(S, ScanReport)>
where
    S: Send + 'static,
    V: FnMut(&mut S, &Map<String, Value>, &str) -> ControlFlow<()> + Send + 'static,
{
    let dir = context.config().audit_dir();
    let bound = Bound {
        records: SCAN_RECORDS,
        bytes: SCAN_BYTES,
    };
    let read = tokio::task::spawn_blocking(move || {
        let (mut state, mut visit) = (state, visit);
        let scanned = audit::search(&dir, &query, bound, |record, line| {
            visit(&mut state, record, line)
        });
        (state, scanned, dir)
    })
    .await
    .map_err(|error| Error::internal(format!("the audit search stopped: {error}")))?;
    let (state, scanned, dir) = read;
    let Scanned { records, bounded } = scanned.map_err(|error| {
        Error::new(
            ErrorCode::AuditUnavailable,
            format!("cannot read the audit log in {}: {error}", dir.display()),
        )
    })?;
    Ok((
        state,
        ScanReport {
            scanned: records,
            scan_limited: bounded,
        },
    ))
}
