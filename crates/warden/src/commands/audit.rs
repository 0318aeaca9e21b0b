//! `warden audit verify|anchor|tail|search|export`: the `audit_verify`, `audit_search` and
//! `audit_export` tools through the engine (so reading the log is itself recorded),
//! rendered for people or as JSON.

use std::path::Path;

use serde_json::{Map, Value, json};
use warden_core::Engine;

use crate::cli::{AuditCommand, AuditFilterArgs, ExportFormat};
use crate::output::{self, EXIT_FAILED, EXIT_INTERNAL, EXIT_OK};

/// The largest export `audit_export` answers with in one call.
const EXPORT_MAX_BYTES: u64 = 4 * 1024 * 1024;

pub async fn run(engine: Engine, command: AuditCommand, json_output: bool) -> u8 {
    let dir = engine.config().audit_dir();
    // A tail always leaves older records out; a search says when it did.
    let mut notes = false;
    let (tool, args, output_file) = match command {
        AuditCommand::Anchor => return anchor(&engine),
        AuditCommand::Verify { anchor: None } => ("audit_verify", json!({}), None),
        AuditCommand::Verify { anchor: Some(path) } => match read_anchor(&path) {
            Ok(anchor) => ("audit_verify", json!({ "anchor": anchor }), None),
            Err(error) => return output::report_error(&error, json_output),
        },
        AuditCommand::Tail { count } => ("audit_search", json!({ "last": count }), None),
        AuditCommand::Search { last, filters } => {
            notes = true;
            let mut args = filter_args(filters);
            args.insert("last".into(), json!(last));
            ("audit_search", Value::Object(args), None)
        }
        AuditCommand::Export {
            format,
            output,
            filters,
        } => {
            let mut args = filter_args(filters);
            let format = match format {
                ExportFormat::Jsonl => "jsonl",
                ExportFormat::Csv => "csv",
            };
            args.insert("format".into(), json!(format));
            args.insert("max_bytes".into(), json!(EXPORT_MAX_BYTES));
            ("audit_export", Value::Object(args), Some(output))
        }
    };
    let report = match super::invoke(&engine, tool, args, None).await {
        Ok(report) => report,
        Err(error) => return output::report_error(&error, json_output),
    };
    if let Some(output_file) = output_file {
        return export(&report, output_file.as_deref(), json_output);
    }
    if json_output {
        let shown = match tool {
            "audit_search" => report["records"].clone(),
            _ => report.clone(),
        };
        output::print_json(&shown);
    } else if tool == "audit_search" {
        output::print(&records_table(&report["records"]));
        if notes {
            scan_notes(&report, "use -n for more");
        }
    } else if let Some(bad) = report.get("first_bad") {
        output::print(&format!(
            "TAMPERED: {} line {} (seq {}): {}\n{} records verified before it, in {}",
            output::cell(&bad["segment"]),
            output::cell(&bad["line"]),
            output::cell(&bad["seq"]),
            output::cell(&bad["problem"]),
            output::cell(&report["records"]),
            output::block(&dir.display().to_string())
        ));
    } else {
        output::print(&format!(
            "ok: {} records in {} segment(s), chain intact ({})",
            output::cell(&report["records"]),
            output::cell(&report["segments"]),
            output::block(&dir.display().to_string())
        ));
    }
    if report["ok"] == Value::Bool(false) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// The filters given on the command line, as the tools' arguments.
fn filter_args(filters: AuditFilterArgs) -> Map<String, Value> {
    let AuditFilterArgs {
        since,
        until,
        tool,
        host_id,
        client,
        identity,
        decision,
        phase,
        class,
        error_code,
        job_id,
    } = filters;
    [
        ("since", since),
        ("until", until),
        ("tool", tool),
        ("host_id", host_id),
        ("client", client),
        ("identity", identity),
        ("decision", decision),
        ("phase", phase),
        ("class", class),
        ("error_code", error_code),
        ("job_id", job_id),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key.to_owned(), json!(value))))
    .collect()
}

/// Writes the export's data (the bytes as they are: a file for other programs, not a
/// rendering for people), or the whole answer with --json. An incomplete export fails.
fn export(report: &Value, file: Option<&Path>, json_output: bool) -> u8 {
    let data = report["data"].as_str().unwrap_or_default();
    let written = match file {
        Some(path) => std::fs::write(path, data).map_err(|error| {
            output::note(&format!("error: cannot write {}: {error}", path.display()));
        }),
        None if json_output => {
            output::print_json(report);
            Ok(())
        }
        None => {
            output::print_raw(data);
            Ok(())
        }
    };
    if written.is_err() {
        return EXIT_INTERNAL;
    }
    if file.is_some() {
        output::note(&format!(
            "{} record(s), {} bytes",
            output::cell(&report["count"]),
            output::cell(&report["bytes"])
        ));
    }
    if scan_notes(report, "export in parts with --since/--until") {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Says on stderr what a search or export left out; whether it left anything out.
fn scan_notes(report: &Value, remedy: &str) -> bool {
    let truncated = report["truncated"] == Value::Bool(true);
    let limited = report["scan_limited"] == Value::Bool(true);
    if truncated {
        output::note(&format!("older matching records were left out ({remedy})"));
    }
    if limited {
        output::note(&format!(
            "the search stopped after {} records; older ones were not read (narrow with --since/--until)",
            output::cell(&report["scanned"])
        ));
    }
    truncated || limited
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
