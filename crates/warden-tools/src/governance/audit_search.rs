//! `audit_search`: the latest audit records, filtered (what did an agent do?).

use std::ops::ControlFlow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::governance::audit_filters::{self, AuditFilters, ScanReport};
use warden_core::error::Result;
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct AuditSearch;

const MAX_RECORDS: usize = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuditSearchParams {
    /// Newest records to return [20, at most 1000].
    #[serde(default)]
    pub last: Option<usize>,
    #[serde(flatten)]
    pub filters: AuditFilters,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditSearchOutput {
    /// Oldest first, as written (seq, ts, client, tool, args masked, hosts, decision…).
    pub records: Vec<serde_json::Map<String, Value>>,
    pub count: usize,
    /// Older records matched too but were left out (see `last`).
    pub truncated: bool,
    #[serde(flatten)]
    pub scan: ScanReport,
}

impl Tool for AuditSearch {
    type Params = AuditSearchParams;
    type Output = AuditSearchOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "audit_search",
        domain: Domain::Governance,
        summary: "Search the audit log",
        description: "The newest audit records (default 20), filtered by since/until (RFC 3339), tool, host_id, client, identity, decision, phase, class, error_code or job_id: who called what, where, and what policy decided. Looks at the last 10000 records (scan_limited says when older ones were left unread). Errors: INVALID_INPUT, AUDIT_UNAVAILABLE.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"last": 20, "decision": "denied", "since": "2026-01-01T00:00:00Z"}"#,
    };

    fn plan(&self, params: &AuditSearchParams, _planning: &PlanContext) -> Result<Plan> {
        // Bad times are refused before the call is recorded as allowed.
        params.filters.query()?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: AuditSearchParams,
        context: RunContext,
    ) -> impl Future<Output = Result<AuditSearchOutput>> + Send + 'static {
        async move {
            let last = params.last.unwrap_or(20).min(MAX_RECORDS);
            let query = params.filters.query()?;
            // One match past `last` tells whether older ones were left out.
            let (mut matched, scan) = audit_filters::scan(
                &context,
                query,
                Vec::new(),
                move |matched: &mut Vec<_>, record, _| {
                    matched.push(record.clone());
                    if matched.len() > last {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .await?;
            let truncated = matched.len() > last;
            matched.truncate(last);
            matched.reverse();
            Ok(AuditSearchOutput {
                count: matched.len(),
                records: matched,
                truncated,
                scan,
            })
        }
    }
}
