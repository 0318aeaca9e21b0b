//! `audit_export`: the audit records a filter selects, as JSON lines or CSV, inline and
//! bounded.

use std::ops::ControlFlow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::governance::audit_filters::{self, AuditFilters, ScanReport};
use warden_core::error::{Error, Result};
use warden_core::tool::{Domain, Effect, Plan, Tool, ToolInfo};
use warden_core::{PlanContext, RunContext};

pub struct AuditExport;

const DEFAULT_MAX_BYTES: usize = 256 * 1024;
/// The answer carries the export twice (text content mirrors structuredContent).
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// The CSV columns, in order: a fixed set so spreadsheets and scripts can rely on it.
const CSV_COLUMNS: &[&str] = &[
    "seq",
    "ts",
    "client",
    "identity",
    "tool",
    "hosts",
    "phase",
    "decision",
    "class",
    "outcome",
    "error_code",
    "duration_ms",
    "job_id",
    "hash",
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One record per line exactly as the log holds it (its hash chain can be checked).
    #[default]
    Jsonl,
    /// A header and one row per record: seq, ts, client, identity, tool, hosts
    /// (space-separated), phase, decision, class, outcome, error_code, duration_ms,
    /// job_id, hash.
    Csv,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuditExportParams {
    /// jsonl (records as written) or csv (fixed columns) [jsonl].
    #[serde(default)]
    pub format: Format,
    /// Most bytes of export to return [262144, at most 4194304]; older records are
    /// left out past it.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    #[serde(flatten)]
    pub filters: AuditFilters,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditExportOutput {
    pub format: Format,
    /// The export, oldest record first.
    pub data: String,
    /// Records in `data`.
    pub count: usize,
    pub bytes: usize,
    /// Older matching records were left out at max_bytes: export them with `until`
    /// set to the first record's ts.
    pub truncated: bool,
    #[serde(flatten)]
    pub scan: ScanReport,
}

impl Tool for AuditExport {
    type Params = AuditExportParams;
    type Output = AuditExportOutput;

    const INFO: ToolInfo = ToolInfo {
        name: "audit_export",
        domain: Domain::Governance,
        summary: "Export audit records as JSONL or CSV",
        description: "The audit records the filters select (as audit_search: since/until, tool, host_id, client, identity, decision, phase, class, error_code, job_id), oldest first, inline as JSON lines (as written) or CSV (fixed columns). Bounded by max_bytes (truncated keeps the newest) and a 10000-record scan (scan_limited). Errors: INVALID_INPUT, AUDIT_UNAVAILABLE.",
        effect: Effect::ReadOnly,
        idempotent: true,
        open_world: false,
        example: r#"{"format": "csv", "decision": "denied"}"#,
    };

    fn plan(&self, params: &AuditExportParams, _planning: &PlanContext) -> Result<Plan> {
        params.filters.query()?;
        max_bytes(params)?;
        Ok(Plan::local_state())
    }

    fn run(
        &self,
        params: AuditExportParams,
        context: RunContext,
    ) -> impl Future<Output = Result<AuditExportOutput>> + Send + 'static {
        async move {
            let query = params.filters.query()?;
            let limit = max_bytes(&params)?;
            let format = params.format;
            let header = match format {
                Format::Jsonl => String::new(),
                Format::Csv => csv_row(CSV_COLUMNS.iter().map(|name| (*name).to_owned())),
            };
            let kept = Kept {
                rows: Vec::new(),
                bytes: header.len(),
                truncated: false,
            };
            // Newest first until the next row would pass the limit, so a cut keeps the
            // most recent records.
            let (kept, scan) = audit_filters::scan(
                &context,
                query,
                kept,
                move |kept: &mut Kept, record, line| {
                    let row = match format {
                        Format::Jsonl => format!("{line}\n"),
                        Format::Csv => csv_record(record),
                    };
                    if kept.bytes + row.len() > limit {
                        kept.truncated = true;
                        return ControlFlow::Break(());
                    }
                    kept.bytes += row.len();
                    kept.rows.push(row);
                    ControlFlow::Continue(())
                },
            )
            .await?;
            let mut data = header;
            data.reserve(kept.bytes);
            for row in kept.rows.iter().rev() {
                data.push_str(row);
            }
            Ok(AuditExportOutput {
                format,
                count: kept.rows.len(),
                bytes: data.len(),
                data,
                truncated: kept.truncated,
                scan,
            })
        }
    }
}

/// Rows gathered so far, newest first.
struct Kept {
    rows: Vec<String>,
    bytes: usize,
    truncated: bool,
}

fn max_bytes(params: &AuditExportParams) -> Result<usize> {
    match params.max_bytes {
        None => Ok(DEFAULT_MAX_BYTES),
        Some(bytes) if (1..=MAX_BYTES).contains(&bytes) => Ok(bytes),
        Some(bytes) => Err(Error::invalid_input(format!(
            "max_bytes {bytes} is outside 1..={MAX_BYTES}"
        ))
        .with_hint("Export in parts with since/until instead of one larger answer.")),
    }
}

fn csv_record(record: &Map<String, Value>) -> String {
    csv_row(CSV_COLUMNS.iter().map(|column| {
        match record.get(*column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_owned)
                })
                .collect::<Vec<_>>()
                .join(" "),
            Some(other) => other.to_string(),
        }
    }))
}

/// One CSV line (RFC 4180: CRLF, quotes doubled inside quoted cells).
fn csv_row(cells: impl Iterator<Item = String>) -> String {
    let mut row = cells
        .map(|cell| csv_cell(&cell))
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row
}

/// A cell a spreadsheet takes as text: agents choose client names, tools and hosts,
/// so a cell that would start a formula (= + - @, or a tab or CR before one) gets a
/// leading `'`; a cell holding a comma, quote or line break is quoted.
fn csv_cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for start in ["+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert!(
                csv_cell(start).trim_start_matches('"').starts_with('\''),
                "{start:?}"
            );
        }
        assert_eq!(
            csv_cell("a=b"),
            "a=b",
            "only a leading formula character counts"
        );
    }

    #[test]
    fn a_record_becomes_a_row_of_the_fixed_columns() {
        let record = json!({
            "seq": 7, "ts": "2026-12-01T10:00:00.000Z", "client": "=cmd|' /C calc'!A0",
            "identity": "ops", "tool": "exec", "hosts": ["web-1", "web-2"],
            "phase": "completed", "decision": "denied", "class": "destructive",
            "outcome": null, "error_code": "POLICY_DENIED", "duration_ms": 3,
            "job_id": "job_1", "hash": "ab", "args": {"command": "rm -rf /"},
        });
        assert_eq!(
            csv_record(record.as_object().unwrap()),
            "7,2026-12-01T10:00:00.000Z,'=cmd|' /C calc'!A0,ops,exec,web-1 web-2,completed,denied,destructive,,POLICY_DENIED,3,job_1,ab\r\n"
        );
    }
}
