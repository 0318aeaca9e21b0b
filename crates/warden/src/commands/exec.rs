//! `warden exec`, `warden facts`, `warden doctor`: fan-out tools with a progress bar
//! on stderr and a table per host.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use warden_core::Engine;

use crate::output::{self, EXIT_FAILED, EXIT_OK};

pub async fn run(engine: Engine, tool: &str, args: Value, json: bool) -> u8 {
    let bar = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} hosts {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress_bar = bar.clone();
    let progress: warden_core::ProgressSink = Arc::new(move |done, total, host_id| {
        progress_bar.set_length(total as u64);
        progress_bar.set_position(done as u64);
        progress_bar.set_message(host_id.to_owned());
    });
    let result = match super::invoke(&engine, tool, args, Some(progress)).await {
        // Work that outlived the first wait: the CLI waits for its end.
        Ok(first) => super::jobs::until_done(&engine, first).await,
        Err(error) => Err(error),
    };
    bar.finish_and_clear();
    let value = match result {
        Ok(value) => value,
        Err(error) => return output::report_error(&error, json),
    };
    if json {
        output::print_json(&value);
    } else {
        output::print(&render(tool, &value));
    }
    let failed = value.pointer("/summary/ok") == Some(&Value::Bool(false))
        || value.get("ok") == Some(&Value::Bool(false));
    if failed { EXIT_FAILED } else { EXIT_OK }
}

fn render(tool: &str, value: &Value) -> String {
    if value.get("dry_run") == Some(&Value::Bool(true)) {
        return output::json_text(value);
    }
    let text = output::cell;
    match tool {
        "doctor" => {
            let rows = value["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|check| {
                    vec![
                        if check["ok"] == Value::Bool(true) {
                            "ok"
                        } else {
                            "FAIL"
                        }
                        .to_owned(),
                        text(&check["name"]),
                        text(&check["detail"]),
                    ]
                })
                .collect();
            output::table(&["", "CHECK", "DETAIL"], rows)
        }
        "facts" => {
            let rows = value["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|result| {
                    let facts = &result["facts"];
                    let memory = facts["memory_total_kb"]
                        .as_u64()
                        .map(|kb| format!("{} MiB", kb / 1024))
                        .unwrap_or_default();
                    vec![
                        text(&result["host_id"]),
                        text(&facts["os"]),
                        text(&facts["kernel_release"]),
                        text(&facts["cpus"]),
                        memory,
                        text(&result["error"]["code"]),
                    ]
                })
                .collect();
            output::table(&["HOST", "OS", "KERNEL", "CPUS", "MEMORY", "ERROR"], rows)
        }
        _ => {
            let rows = value["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|result| {
                    let out = match result.get("same_as") {
                        Some(other) => format!("(same as {})", text(other)),
                        None => format!(
                            "{}{}",
                            output::block(&stream(result, "stdout")).trim_end(),
                            output::block(&stream(result, "stderr")).trim_end()
                        ),
                    };
                    let status = match &result["error"]["code"] {
                        Value::Null => text(&result["exit_code"]),
                        code => text(code),
                    };
                    vec![
                        text(&result["host_id"]),
                        status,
                        format!("{} ms", text(&result["duration_ms"])),
                        out,
                    ]
                })
                .collect();
            let summary = &value["summary"];
            format!(
                "{}\n{} ok, {} failed, job {} in {} ms",
                output::table(&["HOST", "EXIT", "TIME", "OUTPUT"], rows),
                text(&summary["success_count"]),
                text(&summary["fail_count"]),
                text(&summary["job_id"]),
                text(&summary["duration_ms"])
            )
        }
    }
}

/// A host's stdout or stderr as people read it in the table: bytes that are not text
/// (base64 in the answer) are described, not dumped.
fn stream(result: &Value, name: &str) -> String {
    let text = result[name].as_str().unwrap_or_default();
    if result[format!("{name}_encoding")].is_null() {
        return text.to_owned();
    }
    // base64: 4 characters per 3 bytes, less the padding.
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
    let bytes = (text.len() / 4 * 3).saturating_sub(padding);
    format!("({bytes} bytes on {name}, not text: --json gives them in base64)\n")
}
