//! `warden exec`, `warden facts`, `warden doctor`: fan-out tools with a progress bar
//! on stderr and a table per host.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use warden_core::Engine;

use crate::cli::RolloutArgs;
use crate::output::{self, EXIT_FAILED, EXIT_OK};

/// Adds the rollout flags that were given to `args` (a tool's JSON arguments):
/// `--batch-size 5` is a number and `20%` a share, `--min-success-rate 0.9` a fraction
/// and `90%` a percentage, as the tool takes them.
pub fn add_rollout(args: &mut Value, rollout: &RolloutArgs) {
    let number_or_text = |text: &str| {
        text.parse::<u64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(text))
    };
    let given = [
        (
            "batch_size",
            rollout.batch_size.as_deref().map(number_or_text),
        ),
        ("batch_wait", rollout.batch_wait.map(Value::from)),
        ("subset", rollout.subset.map(Value::from)),
        ("subset_seed", rollout.subset_seed.clone().map(Value::from)),
        ("fail_fast", rollout.fail_fast.then_some(Value::Bool(true))),
        (
            "min_success_rate",
            rollout.min_success_rate.as_deref().map(number_or_text),
        ),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            args[name] = value;
        }
    }
}

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
            let rollout = &value["rollout"];
            let batch_of = |host: &Value| {
                rollout["batches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|batch| {
                        batch["hosts"]
                            .as_array()
                            .is_some_and(|hosts| hosts.contains(host))
                    })
                    .map(|batch| text(&batch["batch"]))
                    .unwrap_or_default()
            };
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
                    let status = match (&result["error"]["code"], &result["not_run"]) {
                        (Value::Null, Value::Null) => text(&result["exit_code"]),
                        (Value::Null, _) => String::from("skipped"),
                        (code, _) => text(code),
                    };
                    let mut row = vec![
                        text(&result["host_id"]),
                        status,
                        format!("{} ms", text(&result["duration_ms"])),
                        out,
                    ];
                    if !rollout.is_null() {
                        row.insert(1, batch_of(&result["host_id"]));
                    }
                    row
                })
                .collect();
            let headers: &[&str] = if rollout.is_null() {
                &["HOST", "EXIT", "TIME", "OUTPUT"]
            } else {
                &["HOST", "BATCH", "EXIT", "TIME", "OUTPUT"]
            };
            let summary = &value["summary"];
            format!(
                "{}\n{}{} ok, {} failed, {} skipped, job {} in {} ms",
                output::table(headers, rows),
                batches(rollout),
                text(&summary["success_count"]),
                text(&summary["fail_count"]),
                text(&summary["skipped_count"]),
                text(&summary["job_id"]),
                text(&summary["duration_ms"])
            )
        }
    }
}

/// One line per batch of a rollout, and why it stopped (nothing without a rollout).
fn batches(rollout: &Value) -> String {
    let text = output::cell;
    let all = rollout["batches"].as_array().map_or(&[][..], Vec::as_slice);
    let mut lines = String::new();
    for batch in all {
        let line = match batch["status"].as_str() {
            Some("ran") => format!(
                "batch {}/{}: {} hosts, {} ok, {} failed ({:.0}% ok so far)",
                text(&batch["batch"]),
                all.len(),
                batch["hosts"].as_array().map_or(0, Vec::len),
                text(&batch["success_count"]),
                text(&batch["fail_count"]),
                batch["success_rate"].as_f64().unwrap_or_default() * 100.0
            ),
            _ => format!(
                "batch {}/{}: {} hosts, {}",
                text(&batch["batch"]),
                all.len(),
                batch["hosts"].as_array().map_or(0, Vec::len),
                text(&batch["status"])
            ),
        };
        lines.push_str(&line);
        lines.push('\n');
    }
    if let Some(stopped) = rollout.get("stopped") {
        lines.push_str(&format!(
            "stopped after batch {}: {}\n",
            text(&stopped["after_batch"]),
            text(&stopped["reason"])
        ));
    }
    lines
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
