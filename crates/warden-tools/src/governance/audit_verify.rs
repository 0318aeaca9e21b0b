//! `audit_verify`: check the audit chain and name the first bad record.

use schemars::JsonSchema;
use serde::Serialize;

use warden_core::audit::{self, BadRecord};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::tool::{Domain, Effect, NoParams, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct AuditVerify;

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditVerifyOutput {
    /// The whole chain is intact.
    pub ok: bool,
    pub records: u64,
    pub segments: usize,
    pub head_seq: Option<u64>,
    /// The first record that fails: segment file, line, seq, what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub first_bad: Option<BadRecord>,
}

impl Tool for AuditVerify {
    type Params = NoParams;
    type Output = AuditVerifyOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "audit_verify",
        domain: Domain::Governance,
        summary: "Verify audit chain",
        description: "Check the audit log's SHA-256 chain and head; names the first edited, deleted, reordered, inserted or cut record.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{}"#,
    };

    fn plan(&self, _params: &NoParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        _params: NoParams,
        context: RunContext,
    ) -> impl Future<Output = Result<AuditVerifyOutput>> + Send + 'static {
        async move {
            let report = audit::verify(&context.config().audit_dir()).map_err(|error| {
                Error::new(
                    ErrorCode::AuditUnavailable,
                    format!("cannot read the audit log: {error}"),
                )
            })?;
            Ok(AuditVerifyOutput {
                ok: report.ok,
                records: report.records,
                segments: report.segments,
                head_seq: report.head_seq,
                first_bad: report.first_bad,
            })
        }
    }
}
