//! The audit log from the command line: `audit tail|search|export` over records an MCP
//! client wrote, and text chosen by agents shown to people without terminal escapes.

use std::path::Path;

use serde_json::{Value, json};

use crate::client::{McpProcess, warden_command};

/// The name a hostile client gives itself: colour, a bell, a CSI, an RTL override.
const HOSTILE: &str = "\u{1b}[31mred\u{7}\u{9b}2J\u{202e}gnp.exe";

/// A zero-config server whose client calls itself [`HOSTILE`] and calls `status` and
/// a denied `fs_read` (outside every root).
fn hostile_client(home: &Path) {
    let mut process = McpProcess::spawn(home, &["mcp", "serve"], &[]);
    let answer = process.request(
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": HOSTILE, "version": "1"}
        }),
    );
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
    process.notify("notifications/initialized", json!({}));
    let (_, is_error) = process.call("status", json!({}));
    assert!(!is_error);
    let (denied, is_error) = process.call(
        "fs_read",
        json!({"host_id": "local", "path": "/etc/\u{1b}]0;pwned\u{7}"}),
    );
    assert!(is_error, "{denied}");
    assert!(process.close().success());
}

fn assert_no_terminal_controls(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> = text
        .chars()
        .filter(|c| {
            (c.is_control() && !matches!(c, '\n'))
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what} printed raw controls {bad:?}:\n{text}"
    );
}

#[test]
fn agent_chosen_text_reaches_people_as_visible_escapes() {
    let home = tempfile::tempdir().unwrap();
    hostile_client(home.path());

    let tail = warden_command(home.path())
        .args(["audit", "tail", "-n", "50"])
        .output()
        .unwrap();
    assert!(tail.status.success(), "{tail:?}");
    assert_no_terminal_controls("audit tail", &tail.stdout);
    assert_no_terminal_controls("audit tail (stderr)", &tail.stderr);
    let shown = String::from_utf8_lossy(&tail.stdout);
    assert!(
        shown.contains("\\x1b[31mred\\x07\\u{9b}2J\\u{202e}gnp.exe"),
        "the name is shown, escaped:\n{shown}"
    );

    // --json: the exact value, still nothing a terminal obeys.
    let json = warden_command(home.path())
        .args(["audit", "search", "--tool", "status", "--json"])
        .output()
        .unwrap();
    assert!(json.status.success());
    assert_no_terminal_controls("audit search --json", &json.stdout);
    let records: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(records[0]["client"], HOSTILE);

    // An error message naming agent text goes to stderr escaped.
    let read = warden_command(home.path())
        .args([
            "call",
            "fs_read",
            r#"{"host_id":"local","path":"/x/\u001b[2J"}"#,
        ])
        .output()
        .unwrap();
    assert_no_terminal_controls("call (stdout)", &read.stdout);
    let exec = warden_command(home.path())
        .args(["exec", "-t", "local", "--", "echo", "\u{1b}[2J"])
        .output()
        .unwrap();
    assert!(!exec.status.success());
    assert_no_terminal_controls("exec (stderr)", &exec.stderr);
    assert_no_terminal_controls("exec (stdout)", &exec.stdout);
}

#[test]
fn audit_search_and_export_from_the_command_line() {
    let home = tempfile::tempdir().unwrap();
    hostile_client(home.path());
    let run = |args: &[&str]| warden_command(home.path()).args(args).output().unwrap();

    let denied = run(&[
        "audit",
        "search",
        "--decision",
        "denied",
        "--phase",
        "completed",
        "--json",
    ]);
    assert!(denied.status.success(), "{denied:?}");
    let records: Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 1, "{records}");
    assert_eq!(records[0]["tool"], "fs_read");

    let bad = run(&["audit", "search", "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("INVALID_INPUT") && stderr.contains("2026-12-01T10:00:00Z"),
        "{stderr}"
    );

    let file = home.path().join("denied.csv");
    let export = run(&[
        "audit",
        "export",
        "--format",
        "csv",
        "--decision",
        "denied",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{export:?}");
    let csv = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert!(rows[0].starts_with("seq,ts,client,identity,tool,hosts,"));
    assert_eq!(rows.len(), 3, "header, requested, completed: {csv:?}");
    assert!(rows[1].contains(",fs_read,local,"), "{}", rows[1]);

    let jsonl = run(&["audit", "export", "--tool", "status"]);
    assert!(jsonl.status.success());
    let text = String::from_utf8(jsonl.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[1]["phase"], "completed");
}
