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

/// Prints bytes meant for another program as they are (an export), with no newline.
#[allow(clippy::print_stdout)]
pub fn print_raw(text: &str) {
    print!("{text}");
}

/// A line for people on stderr (progress, what was left out); made safe to print.
pub fn note(text: &str) {
    eprintln!("{}", block(text));
}

/// JSON for scripts: the exact value, with every character a terminal could act on
/// written as a `\u` escape (serde already escapes C0; DEL, C1 and bidi controls it
/// leaves raw), so `--json` on a terminal is as safe as a table.
pub fn print_json(value: &Value) {
    print(&json_text(value));
}

pub fn json_text(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    // serde escapes C0 inside strings, so a raw one is pretty-printing's whitespace;
    // the rest can only be inside a string, where an escape is the same character.
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if u32::from(c) >= 0x20 && is_dangerous(c) {
            safe.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            safe.push(c);
        }
    }
    safe
}

/// A JSON value as a table cell: strings bare, null empty, the rest as JSON. Text from
/// agents, hosts and records is shown, never obeyed: every control character (line
/// breaks too: a cell is one line) becomes a visible escape.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => visible(text, false),
        Value::Null => String::new(),
        other => visible(&other.to_string(), false),
    }
}

/// Text shown as a multi-line block (command output, an error message): line breaks
/// and tabs stay, every other control character becomes a visible escape.
pub fn block(text: &str) -> String {
    visible(text, true)
}

/// Characters a terminal may act on: C0 and C1 controls (ESC starts a sequence, BEL
/// rings, U+009B is CSI on its own), DEL, and the bidi embeddings, overrides and
/// isolates that make text display in another order than it reads.
fn is_dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn visible(text: &str, keep_lines: bool) -> String {
    if !text.chars().any(is_dangerous) {
        return text.to_owned();
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' if keep_lines => shown.push(c),
            '\n' => shown.push_str("\\n"),
            '\t' => shown.push_str("\\t"),
            '\r' => shown.push_str("\\r"),
            c if u32::from(c) < 0x80 && is_dangerous(c) => {
                shown.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if is_dangerous(c) => shown.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => shown.push(c),
        }
    }
    shown
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
        eprintln!("error[{}]: {}", error.code, block(&error.message));
        if let Some(hint) = error.to_json()["error"]["hint"].as_str() {
            eprintln!("  hint: {}", block(hint));
        }
    }
    exit_code_for(error)
}
