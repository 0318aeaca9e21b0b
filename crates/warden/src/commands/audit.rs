//! `warden audit verify|tail`: read the log without starting an engine.

use warden_core::audit;

use crate::cli::{AuditCommand, Global};
use crate::output::{self, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub fn run(global: &Global, command: AuditCommand) -> u8 {
    let loaded = match super::sources(global).load() {
        Ok(loaded) => loaded,
        Err(error) => return output::report_error(&error, global.json),
    };
    let dir = loaded.audit_dir();
    match command {
        AuditCommand::Verify => match audit::verify(&dir) {
            Ok(report) => {
                if global.json {
                    output::print_json(&serde_json::to_value(&report).unwrap_or_default());
                } else if let Some(bad) = &report.first_bad {
                    output::print(&format!(
                        "TAMPERED: {} line {} (seq {}): {}\n{} records verified before it, in {}",
                        bad.segment,
                        bad.line,
                        bad.seq
                            .map(|seq| seq.to_string())
                            .unwrap_or_else(|| "?".into()),
                        bad.problem,
                        report.records,
                        dir.display()
                    ));
                } else {
                    output::print(&format!(
                        "ok: {} records in {} segment(s), chain intact ({})",
                        report.records,
                        report.segments,
                        dir.display()
                    ));
                }
                if report.ok { EXIT_OK } else { EXIT_FAILED }
            }
            Err(error) => {
                eprintln!(
                    "error: cannot read the audit log in {}: {error}",
                    dir.display()
                );
                EXIT_USAGE
            }
        },
        AuditCommand::Tail { count } => match audit::tail(&dir, count) {
            Ok(records) => {
                if global.json {
                    output::print_json(&serde_json::Value::Array(records));
                } else {
                    let text = |value: &serde_json::Value| {
                        value.as_str().map(str::to_owned).unwrap_or_else(|| {
                            if value.is_null() {
                                String::new()
                            } else {
                                value.to_string()
                            }
                        })
                    };
                    let rows = records
                        .iter()
                        .map(|record| {
                            vec![
                                text(&record["seq"]),
                                text(&record["ts"]),
                                text(&record["client"]),
                                text(&record["tool"]),
                                text(&record["phase"]),
                                text(&record["decision"]),
                                text(&record["outcome"]),
                                text(&record["error_code"]),
                            ]
                        })
                        .collect();
                    output::print(&output::table(
                        &[
                            "SEQ", "TIME", "CLIENT", "TOOL", "PHASE", "DECISION", "OUTCOME",
                            "ERROR",
                        ],
                        rows,
                    ));
                }
                EXIT_OK
            }
            Err(error) => {
                eprintln!(
                    "error: cannot read the audit log in {}: {error}",
                    dir.display()
                );
                EXIT_USAGE
            }
        },
    }
}
