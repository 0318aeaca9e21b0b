//! The one error type every caller of warden can see, and its stable codes.
//!
//! An [`Error`] carries a stable [`ErrorCode`], a message that is safe to show to the
//! caller, a hint for the model, and the context fields of PRODUCT.md §6. Audit-only
//! detail lives in `detail` and is never serialized into a tool result.

use serde::Serialize;
use serde_json::{Value, json};

/// Stable error codes (PRODUCT.md §6). Append-only: agents and scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidInput,
    HostNotFound,
    TargetEmpty,
    PolicyDenied,
    SshAuthFailed,
    SshConnFailed,
    HostKeyUnknown,
    HostKeyMismatch,
    CmdTimeout,
    SftpFailed,
    FileNotFound,
    PermissionDenied,
    PathOutsideRoot,
    SessionNotFound,
    SessionLimit,
    RateLimited,
    ConfirmRequired,
    PlanChanged,
    ApprovalPending,
    ApprovalDenied,
    ApprovalTimeout,
    LocalDisabled,
    AuditUnavailable,
    JobNotFound,
    Cancelled,
    Conflict,
    PatchFailed,
    OutcomeUnknown,
    Internal,
}

/// What `explain` tells about a code.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub code: ErrorCode,
    pub meaning: &'static str,
    pub hint: &'static str,
    pub suggested_actions: &'static [&'static str],
    pub transient: bool,
    pub diagnostics_tools: &'static [&'static str],
    pub example: &'static str,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidInput,
        ErrorCode::HostNotFound,
        ErrorCode::TargetEmpty,
        ErrorCode::PolicyDenied,
        ErrorCode::SshAuthFailed,
        ErrorCode::SshConnFailed,
        ErrorCode::HostKeyUnknown,
        ErrorCode::HostKeyMismatch,
        ErrorCode::CmdTimeout,
        ErrorCode::SftpFailed,
        ErrorCode::FileNotFound,
        ErrorCode::PermissionDenied,
        ErrorCode::PathOutsideRoot,
        ErrorCode::SessionNotFound,
        ErrorCode::SessionLimit,
        ErrorCode::RateLimited,
        ErrorCode::ConfirmRequired,
        ErrorCode::PlanChanged,
        ErrorCode::ApprovalPending,
        ErrorCode::ApprovalDenied,
        ErrorCode::ApprovalTimeout,
        ErrorCode::LocalDisabled,
        ErrorCode::AuditUnavailable,
        ErrorCode::JobNotFound,
        ErrorCode::Cancelled,
        ErrorCode::Conflict,
        ErrorCode::PatchFailed,
        ErrorCode::OutcomeUnknown,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        self.explain().code_str()
    }

    pub fn parse(text: &str) -> Option<ErrorCode> {
        let wanted = text.trim().to_ascii_uppercase();
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == wanted)
    }

    pub fn transient(self) -> bool {
        self.explain().transient
    }

    /// Invariant: an exhaustive match, so a new code cannot ship without its explanation.
    pub fn explain(self) -> Explanation {
        use ErrorCode::*;
        let (meaning, hint, suggested_actions, transient, diagnostics_tools, example): (
            &'static str,
            &'static str,
            &'static [&'static str],
            bool,
            &'static [&'static str],
            &'static str,
        ) = match self {
            InvalidInput => (
                "The arguments were well-formed JSON but not acceptable (bad value, conflicting fields, file type not readable).",
                "Read the message; it names the field. `tools_schema` shows the full schema.",
                &[
                    "Fix the named argument and retry",
                    "Call tools_schema for the tool",
                ],
                false,
                &["tools_schema"],
                r#"{"tool":"tools_schema","arguments":{"tool":"exec"}}"#,
            ),
            HostNotFound => (
                "A host id in the target does not exist in the inventory.",
                "Use one of the suggested ids, or list hosts with `hosts_list`.",
                &["Pick an id from suggestions", "Call hosts_list"],
                false,
                &["hosts_list"],
                r#"{"tool":"hosts_list","arguments":{}}"#,
            ),
            TargetEmpty => (
                "The target selector matched no hosts.",
                "Check the group, tag or glob; `hosts_groups` lists groups and tags.",
                &["Call hosts_groups", "Use host:ID for a single host"],
                false,
                &["hosts_groups", "hosts_list"],
                r#"{"tool":"hosts_groups","arguments":{}}"#,
            ),
            PolicyDenied => (
                "The policy does not allow this command on this host.",
                "Do not retry the same command. `policy_test` shows which rule decided; ask the operator if the command is needed.",
                &[
                    "Call policy_test to see the rule",
                    "Use an allowed command instead",
                ],
                false,
                &["policy_test"],
                r#"{"tool":"policy_test","arguments":{"host_id":"web-1","command":"uptime"}}"#,
            ),
            SshAuthFailed => (
                "The SSH server rejected every credential warden offered.",
                "Check the host's user and identity_file, and that ssh-agent holds a key the host accepts.",
                &["Call doctor", "Check user and identity_file in warden.yaml"],
                false,
                &["doctor", "hosts_show"],
                r#"{"tool":"doctor","arguments":{}}"#,
            ),
            SshConnFailed => (
                "The TCP connection or SSH handshake to the host failed or dropped.",
                "Often transient: retry after a moment. If it persists the host may be down or unreachable.",
                &[
                    "Retry later",
                    "Call doctor",
                    "Call hosts_show for the address",
                ],
                true,
                &["doctor", "hosts_show"],
                r#"{"tool":"hosts_show","arguments":{"host_id":"web-1"}}"#,
            ),
            HostKeyUnknown => (
                "The host's SSH key is not in known_hosts and host_key_checking is strict.",
                "An operator must add the key (ssh-keyscan, or connect once with ssh) or set host_key_checking: accept-new.",
                &["Ask the operator to verify and add the host key"],
                false,
                &["doctor"],
                r#"{"tool":"doctor","arguments":{}}"#,
            ),
            HostKeyMismatch => (
                "The host presented a key different from the one in known_hosts. This can mean an attack; warden never retries.",
                "Stop and tell the operator. Only a human who verified the new key may update known_hosts.",
                &["Report to the operator; do not retry"],
                false,
                &["hosts_show"],
                r#"{"tool":"hosts_show","arguments":{"host_id":"web-1"}}"#,
            ),
            CmdTimeout => (
                "The command ran longer than timeout_ms; warden stopped it on the host.",
                "Raise timeout_ms if the command is expected to be slow, or run it in the background on the host.",
                &["Retry with a larger timeout_ms"],
                false,
                &[],
                r#"{"tool":"exec","arguments":{"target":"host:web-1","command":"make","timeout_ms":600000}}"#,
            ),
            SftpFailed => (
                "The SFTP subsystem failed or is not available on the host.",
                "Check that the host's sshd has an sftp Subsystem.",
                &["Call doctor"],
                true,
                &["doctor"],
                r#"{"tool":"doctor","arguments":{}}"#,
            ),
            FileNotFound => (
                "The path does not exist on the host.",
                "Check the path; list the parent directory.",
                &["List the parent directory"],
                false,
                &[],
                r#"{"tool":"exec","arguments":{"target":"host:web-1","argv":["ls","-la","/etc"]}}"#,
            ),
            PermissionDenied => (
                "The host refused the operation for the login user.",
                "Use a host entry with a user that has the rights, or ask the operator.",
                &["Ask the operator"],
                false,
                &["hosts_show"],
                r#"{"tool":"hosts_show","arguments":{"host_id":"web-1"}}"#,
            ),
            PathOutsideRoot => (
                "The path resolves outside the session root or the allowed roots.",
                "Use a path inside the root; symlinks pointing out of the root are refused.",
                &["Use a path relative to the session root"],
                false,
                &[],
                r#"{"tool":"policy_test","arguments":{"host_id":"web-1","command":"cat /etc/hosts"}}"#,
            ),
            SessionNotFound => (
                "The session id is unknown, expired, or belongs to another client.",
                "Open a new session.",
                &["Open a new session"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            SessionLimit => (
                "This client holds the maximum number of sessions (limits.max_sessions_per_client) or interactive commands (limits.max_commands_per_client).",
                "Close sessions or commands you no longer need (command with close: true).",
                &["Close unused sessions", "Close unused commands"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            RateLimited => (
                "Too many requests from this client.",
                "Wait retry_after_ms, then retry.",
                &["Wait and retry"],
                true,
                &["status"],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            ConfirmRequired => (
                "A destructive call needs confirm: true after the preview was reviewed.",
                "Review the preview, then repeat the call with confirm: true.",
                &["Repeat with confirm: true"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            PlanChanged => (
                "The world changed since the preview; the plan_token no longer matches.",
                "Request a new preview and review it again.",
                &["Preview again"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            ApprovalPending => (
                "A human must approve this call (`warden approvals` on the operator's machine); it is waiting.",
                "Call approval_status {approval_id} (it waits server-side); once approved, repeat the same call with approval_id. Do not change the call: an approval covers exactly what was asked.",
                &[
                    "Wait with approval_status",
                    "Repeat the call with approval_id once approved",
                ],
                true,
                &["approval_status", "approval_list"],
                r#"{"tool":"approval_status","arguments":{"approval_id":"apr-…"}}"#,
            ),
            ApprovalDenied => (
                "A human denied this call.",
                "Do not retry it; ask the operator why (the reason, when given, is in the message).",
                &["Ask the operator"],
                false,
                &["approval_status"],
                r#"{"tool":"approval_status","arguments":{"approval_id":"apr-…"}}"#,
            ),
            ApprovalTimeout => (
                "No human decided in time; the call was not run (approvals expire to deny).",
                "Ask the operator to watch `warden approvals watch`, then make the call again for a new approval.",
                &["Retry once an operator is available"],
                false,
                &["approval_list"],
                r#"{"tool":"approval_list","arguments":{}}"#,
            ),
            LocalDisabled => (
                "The built-in host `local` is read-only: exec and writes are off.",
                "The operator can set local.allow_exec: true (or WARDEN_UNSAFE_LOCAL=1). Read-only tools like facts work.",
                &[
                    "Use a remote host",
                    "Ask the operator to enable local.allow_exec",
                ],
                false,
                &["status"],
                r#"{"tool":"facts","arguments":{"target":"host:local"}}"#,
            ),
            AuditUnavailable => (
                "warden could not durably write its audit log, so it refused to act.",
                "Tell the operator: the state directory may be full or read-only.",
                &["Report to the operator", "Call doctor"],
                false,
                &["doctor", "audit_verify"],
                r#"{"tool":"doctor","arguments":{}}"#,
            ),
            JobNotFound => (
                "The job or command id is unknown: mistyped, forgotten (a command is kept 60 s after it ends, and stopped when unused for limits.command_idle_s), or another caller's.",
                "Check the job_id or command_id from the earlier result; start the command again if it was forgotten.",
                &["Check the id", "Start the command again"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            Cancelled => (
                "The call was cancelled; warden stopped the remote command.",
                "Retry if the work is still needed.",
                &["Retry if needed"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            Conflict => (
                "The file changed since you read it (expected_sha256 did not match).",
                "Read the file again and redo the change.",
                &["Read again and retry"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            PatchFailed => (
                "A hunk of the diff did not apply; nothing was changed.",
                "Read the file again and rebuild the diff.",
                &["Read again and rebuild the diff"],
                false,
                &[],
                r#"{"tool":"status","arguments":{}}"#,
            ),
            OutcomeUnknown => (
                "warden lost contact while the command ran; it may or may not have completed.",
                "Check the host's state before retrying a non-idempotent command.",
                &["Inspect the host state before retrying"],
                false,
                &["facts"],
                r#"{"tool":"facts","arguments":{"target":"host:web-1"}}"#,
            ),
            Internal => (
                "A bug in warden.",
                "Retry once; if it repeats, report it with the audit job_id.",
                &["Retry once", "Report the bug"],
                false,
                &["doctor"],
                r#"{"tool":"doctor","arguments":{}}"#,
            ),
        };
        Explanation {
            code: self,
            meaning,
            hint,
            suggested_actions,
            transient,
            diagnostics_tools,
            example,
        }
    }
}

impl Explanation {
    fn code_str(&self) -> &'static str {
        use ErrorCode::*;
        match self.code {
            InvalidInput => "INVALID_INPUT",
            HostNotFound => "HOST_NOT_FOUND",
            TargetEmpty => "TARGET_EMPTY",
            PolicyDenied => "POLICY_DENIED",
            SshAuthFailed => "SSH_AUTH_FAILED",
            SshConnFailed => "SSH_CONN_FAILED",
            HostKeyUnknown => "HOST_KEY_UNKNOWN",
            HostKeyMismatch => "HOST_KEY_MISMATCH",
            CmdTimeout => "CMD_TIMEOUT",
            SftpFailed => "SFTP_FAILED",
            FileNotFound => "FILE_NOT_FOUND",
            PermissionDenied => "PERMISSION_DENIED",
            PathOutsideRoot => "PATH_OUTSIDE_ROOT",
            SessionNotFound => "SESSION_NOT_FOUND",
            SessionLimit => "SESSION_LIMIT",
            RateLimited => "RATE_LIMITED",
            ConfirmRequired => "CONFIRM_REQUIRED",
            PlanChanged => "PLAN_CHANGED",
            ApprovalPending => "APPROVAL_PENDING",
            ApprovalDenied => "APPROVAL_DENIED",
            ApprovalTimeout => "APPROVAL_TIMEOUT",
            LocalDisabled => "LOCAL_DISABLED",
            AuditUnavailable => "AUDIT_UNAVAILABLE",
            JobNotFound => "JOB_NOT_FOUND",
            Cancelled => "CANCELLED",
            Conflict => "CONFLICT",
            PatchFailed => "PATCH_FAILED",
            OutcomeUnknown => "OUTCOME_UNKNOWN",
            Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a caller sees: a code, a safe message, and optional context.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Overrides the code's generic hint when the situation allows a sharper one.
    pub hint: Option<String>,
    pub host_id: Option<String>,
    pub path: Option<String>,
    pub command: Option<String>,
    pub retry_after_ms: Option<u64>,
    pub recovery_tool: Option<String>,
    /// The approval a call waits for (`APPROVAL_*`).
    pub approval_id: Option<String>,
    /// Closest matches for a mistyped name (host ids, tool names).
    pub suggestions: Vec<String>,
    /// Arguments that failed the tool's schema: a protocol error over MCP (-32602).
    pub schema_violation: bool,
    /// Detail for the audit log and stderr only; never sent to the caller.
    pub detail: Option<String>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            hint: None,
            host_id: None,
            path: None,
            command: None,
            retry_after_ms: None,
            recovery_tool: None,
            approval_id: None,
            suggestions: Vec::new(),
            schema_violation: false,
            detail: None,
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidInput, message)
    }

    /// Arguments that do not match the tool's input schema.
    pub fn invalid_arguments(message: impl Into<String>) -> Error {
        Error {
            schema_violation: true,
            ..Error::new(ErrorCode::InvalidInput, message)
        }
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, message)
    }

    pub fn with_host(mut self, host_id: impl Into<String>) -> Error {
        self.host_id = Some(host_id.into());
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Error {
        self.path = Some(path.into());
        self
    }

    pub fn with_command(mut self, command: impl Into<String>) -> Error {
        self.command = Some(command.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_suggestions(mut self, suggestions: Vec<String>) -> Error {
        self.suggestions = suggestions;
        self
    }

    pub fn with_retry_after_ms(mut self, retry_after_ms: u64) -> Error {
        self.retry_after_ms = Some(retry_after_ms);
        self
    }

    pub fn with_approval(mut self, approval_id: impl Into<String>) -> Error {
        self.approval_id = Some(approval_id.into());
        self
    }

    pub fn with_recovery_tool(mut self, tool: impl Into<String>) -> Error {
        self.recovery_tool = Some(tool.into());
        self
    }

    pub fn transient(&self) -> bool {
        self.code.transient()
    }

    /// The error object of PRODUCT.md §6, as sent to callers.
    pub fn to_json(&self) -> Value {
        let explanation = self.code.explain();
        let mut error = json!({
            "code": self.code.as_str(),
            "message": self.message,
            "hint": self.hint.as_deref().unwrap_or(explanation.hint),
            "suggested_actions": explanation.suggested_actions,
            "transient": self.transient(),
        });
        let fields = [
            ("host_id", self.host_id.clone().map(Value::String)),
            ("path", self.path.clone().map(Value::String)),
            ("command", self.command.clone().map(Value::String)),
            ("retry_after_ms", self.retry_after_ms.map(Value::from)),
            ("approval_id", self.approval_id.clone().map(Value::String)),
            (
                "recovery_tool",
                self.recovery_tool.clone().map(Value::String),
            ),
            (
                "suggestions",
                (!self.suggestions.is_empty()).then(|| json!(self.suggestions)),
            ),
        ];
        if let Value::Object(map) = &mut error {
            for (key, value) in fields {
                if let Some(value) = value {
                    map.insert(key.to_owned(), value);
                }
            }
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            let serialized = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(serialized, Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn error_json_has_the_contract_fields() {
        let error = Error::new(ErrorCode::HostNotFound, "no host web-9")
            .with_suggestions(vec!["web-1".into()]);
        let json = error.to_json();
        assert_eq!(json["error"]["code"], "HOST_NOT_FOUND");
        assert_eq!(json["error"]["transient"], false);
        assert!(json["error"]["hint"].is_string());
        assert!(json["error"]["suggested_actions"].is_array());
        assert_eq!(json["error"]["suggestions"][0], "web-1");
        assert!(json["error"].get("path").is_none());
    }
}
