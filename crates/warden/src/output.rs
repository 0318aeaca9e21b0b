//! How the CLI prints: tables for people, JSON for scripts, and exit codes.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::Value;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The work ran but something failed (a host, a check, a tampered log).
pub const EXIT_FAILED: u8 = 1;
/// Bad input: arguments, config, unknown host or tool.
pub const EXIT_USAGE: u8 = 2;
/// Refused: policy, local disabled, audit unavailable.
pub const EXIT_REFUSED: u8 = 3;
/// Unreachable hosts or warden itself failed.
pub const EXIT_INTERNAL: u8 = 4;

/// Prints to stdout. The binary's commands own stdout except under `mcp serve`.
#[allow(clippy::print_stdout)]
pub fn print(text: &str) {
    println!("{text}");
}

pub fn print_json(value: &Value) {
    print(&serde_json::to_string_pretty(value).unwrap_or_default());
}

/// A JSON value as a table cell: strings bare, null empty, the rest as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    *table.style_mut() = UTF8_BORDERS_ONLY;
    table.set_header(headers.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

pub fn exit_code_for(error: &warden_core::Error) -> u8 {
    use warden_core::ErrorCode::*;
    match error.code {
        InvalidInput | HostNotFound | TargetEmpty | SessionNotFound | JobNotFound => EXIT_USAGE,
        PolicyDenied | LocalDisabled | AuditUnavailable | ConfirmRequired | ApprovalDenied
        | ApprovalPending | ApprovalTimeout | PlanChanged | RateLimited | SessionLimit => {
            EXIT_REFUSED
        }
        SshAuthFailed | SshConnFailed | HostKeyUnknown | HostKeyMismatch | Internal
        | OutcomeUnknown | SftpFailed => EXIT_INTERNAL,
        CmdTimeout | FileNotFound | PermissionDenied | PathOutsideRoot | Cancelled | Conflict
        | PatchFailed => EXIT_FAILED,
    }
}

/// Reports an error on stderr (or as JSON on stdout with --json) and returns its exit code.
pub fn report_error(error: &warden_core::Error, json: bool) -> u8 {
    if json {
        print_json(&error.to_json());
    } else {
        eprintln!("error[{}]: {}", error.code, error.message);
        if let Some(hint) = error.to_json()["error"]["hint"].as_str() {
            eprintln!("  hint: {hint}");
        }
    }
    exit_code_for(error)
}
