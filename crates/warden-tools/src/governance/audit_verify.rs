//! `audit_verify`: check the audit chain and name the first bad record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use warden_core::audit::{self, BadRecord, SignedHead, VerifyOptions};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct AuditVerify;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditVerifyParams {
    /// A head saved earlier (`warden audit anchor`): the log must still hold that
    /// record unchanged, which finds a rewrite or a cut tail even when the head and the
    /// key in the state dir were replaced too.
    #[serde(default)]
    pub anchor: Option<SignedHead>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditVerifyOutput {
    /// The whole chain is intact.
    pub ok: bool,
    pub records: u64,
    pub segments: usize,
    pub head_seq: Option<u64>,
    /// The head's Ed25519 signature holds under the log's key.
    pub head_signed: bool,
    /// The saved anchor's seq, when one was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor_seq: Option<u64>,
    /// The first record that fails: segment file, line, seq, what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub first_bad: Option<BadRecord>,
}

impl Tool for AuditVerify {
    type Params = AuditVerifyParams;
    type Output = AuditVerifyOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "audit_verify",
        domain: Domain::Governance,
        summary: "Verify audit chain",
        description: "Check the audit log's SHA-256 chain and its Ed25519-signed head, and optionally a head saved earlier (`anchor`); names the first edited, deleted, reordered, inserted or cut record.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{}"#,
    };

    fn plan(&self, _params: &AuditVerifyParams, _planning: &PlanContext) -> Result<Plan> {
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: AuditVerifyParams,
        context: RunContext,
    ) -> impl Future<Output = Result<AuditVerifyOutput>> + Send + 'static {
        async move {
            let options = VerifyOptions {
                public_key: audit::public_key(&context.config().audit_key_path()),
                anchor: params.anchor,
            };
            let report =
                audit::verify(&context.config().audit_dir(), &options).map_err(|error| {
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
                head_signed: report.head_signed,
                anchor_seq: report.anchor_seq,
                first_bad: report.first_bad,
            })
        }
    }
}
