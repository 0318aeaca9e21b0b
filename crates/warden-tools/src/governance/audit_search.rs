//! `audit_search`: the latest audit records, filtered (what did an agent do?).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use warden_core::audit;
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct AuditSearch;

/// Records looked at, newest first, before filters: a bound on one call's work.
const SCAN_LIMIT: usize = 10_000;
const MAX_RECORDS: usize = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuditSearchParams {
    /// Newest records to return [20, at most 1000].
    #[serde(default)]
    pub last: Option<usize>,
    /// Only calls of this tool.
    #[serde(default)]
    pub tool: Option<String>,
    /// Only calls of this client (its name).
    #[serde(default)]
    pub client: Option<String>,
    /// Only this decision: allowed, warned, denied, rejected.
    #[serde(default)]
    pub decision: Option<String>,
    /// Only calls naming this host.
    #[serde(default)]
    pub host_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditSearchOutput {
    /// Oldest first, as written (seq, ts, client, tool, args masked, hosts, decision…).
    pub records: Vec<serde_json::Map<String, Value>>,
    pub count: usize,
    /// Older records matched too but were left out (see `last`).
    pub truncated: bool,
}

impl Tool for AuditSearch {
    type Params = AuditSearchParams;
    type Output = AuditSearchOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "audit_search",
        domain: Domain::Governance,
        summary: "Search the audit log",
        description: "The newest audit records (default 20), filtered by tool, client, decision or host: who called what, where, and what policy decided. Looks at the last 10000 records. Errors: AUDIT_UNAVAILABLE.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"last": 20, "decision": "denied"}"#,
    };

    fn plan(&self, _params: &AuditSearchParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: AuditSearchParams,
        context: RunContext,
    ) -> impl Future<Output = Result<AuditSearchOutput>> + Send + 'static {
        async move {
            let dir = context.config().audit_dir();
            let scanned = audit::tail(&dir, SCAN_LIMIT).map_err(|error| {
                Error::new(
                    ErrorCode::AuditUnavailable,
                    format!("cannot read the audit log in {}: {error}", dir.display()),
                )
            })?;
            let wanted = |record: &Value| {
                let is = |key: &str, want: &Option<String>| {
                    want.as_deref()
                        .is_none_or(|want| record[key].as_str() == Some(want))
                };
                let names_host = params.host_id.as_deref().is_none_or(|host| {
                    record["hosts"]
                        .as_array()
                        .is_some_and(|hosts| hosts.iter().any(|id| id == host))
                });
                is("tool", &params.tool)
                    && is("client", &params.client)
                    && is("decision", &params.decision)
                    && names_host
            };
            let matched: Vec<serde_json::Map<String, Value>> = scanned
                .into_iter()
                .filter(wanted)
                .filter_map(|record| match record {
                    Value::Object(map) => Some(map),
                    _ => None,
                })
                .collect();
            let last = params.last.unwrap_or(20).min(MAX_RECORDS);
            let skip = matched.len().saturating_sub(last);
            let records: Vec<_> = matched.into_iter().skip(skip).collect();
            Ok(AuditSearchOutput {
                count: records.len(),
                truncated: skip > 0,
                records,
            })
        }
    }
}
