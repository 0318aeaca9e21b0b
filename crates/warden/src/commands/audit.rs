//! `warden audit verify|tail`: the `audit_verify` and `audit_search` tools through the
//! engine (so reading the log is itself recorded), rendered for people or as JSON.

use serde_json::{Value, json};
use warden_core::Engine;

use crate::cli::AuditCommand;
use crate::output::{self, EXIT_FAILED, EXIT_OK};

pub async fn run(engine: Engine, command: AuditCommand, json_output: bool) -> u8 {
    let dir = engine.config().audit_dir();
    let (tool, args) = match command {
        AuditCommand::Anchor => return anchor(&engine),
        AuditCommand::Verify { anchor: None } => ("audit_verify", json!({})),
        AuditCommand::Verify { anchor: Some(path) } => match read_anchor(&path) {
            Ok(anchor) => ("audit_verify", json!({ "anchor": anchor })),
            Err(error) => return output::report_error(&error, json_output),
        },
        AuditCommand::Tail { count } => ("audit_search", json!({ "last": count })),
    };
    let report = match super::invoke(&engine, tool, args, None).await {
        Ok(report) => report,
        Err(error) => return output::report_error(&error, json_output),
    };
    if json_output {
        let shown = match tool {
            "audit_search" => report["records"].clone(),
            _ => report.clone(),
        };
        output::print_json(&shown);
    } else if tool == "audit_search" {
        output::print(&records_table(&report["records"]));
    } else if let Some(bad) = report.get("first_bad") {
        output::print(&format!(
            "TAMPERED: {} line {} (seq {}): {}\n{} records verified before it, in {}",
            output::cell(&bad["segment"]),
            output::cell(&bad["line"]),
            output::cell(&bad["seq"]),
            output::cell(&bad["problem"]),
            report["records"],
            dir.display()
        ));
    } else {
        output::print(&format!(
            "ok: {} records in {} segment(s), chain intact ({})",
            report["records"],
            report["segments"],
            dir.display()
        ));
    }
    if report["ok"] == Value::Bool(false) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// The current signed head, made current first (this process's records included).
fn anchor(engine: &Engine) -> u8 {
    engine.flush_audit();
    match warden_core::audit::read_head(&engine.config().audit_dir()) {
        Some(head) => {
            output::print(&serde_json::to_string(&head).unwrap_or_default());
            EXIT_OK
        }
        None => {
            let error = warden_core::Error::new(
                warden_core::ErrorCode::AuditUnavailable,
                format!(
                    "no signed head in {}",
                    engine.config().audit_dir().display()
                ),
            );
            output::report_error(&error, false)
        }
    }
}

fn read_anchor(path: &std::path::Path) -> Result<Value, warden_core::Error> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        warden_core::Error::invalid_input(format!("cannot read {}: {error}", path.display()))
    })?;
    serde_json::from_str(&text).map_err(|error| {
        warden_core::Error::invalid_input(format!(
            "{} is not an anchor printed by `warden audit anchor`: {error}",
            path.display()
        ))
    })
}

fn records_table(records: &Value) -> String {
    let rows = records
        .as_array()
        .into_iter()
        .flatten()
        .map(|record| {
            [
                "seq",
                "ts",
                "client",
                "tool",
                "phase",
                "decision",
                "outcome",
                "error_code",
            ]
            .iter()
            .map(|key| output::cell(&record[*key]))
            .collect()
        })
        .collect();
    output::table(
        &[
            "SEQ", "TIME", "CLIENT", "TOOL", "PHASE", "DECISION", "OUTCOME", "ERROR",
        ],
        rows,
    )
}
