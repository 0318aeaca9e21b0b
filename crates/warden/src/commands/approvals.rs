//! `warden approvals list|show|approve|deny|watch`: the human side of approvals. These
//! call the engine's operator API directly, not tools: deciding is exactly what no
//! tool (and so no agent) can do.

use std::time::Duration;

use serde_json::{Value, json};
use warden_core::engine::approval_json;
use warden_core::store::{Approval, ApprovalState};
use warden_core::{Caller, Engine};

use crate::cli::ApprovalsCommand;
use crate::output::{self, EXIT_OK};

pub async fn run(engine: Engine, command: ApprovalsCommand, json_output: bool) -> u8 {
    let result = match command {
        ApprovalsCommand::List { all } => list(&engine, all, json_output).await,
        ApprovalsCommand::Show { approval_id } => show(&engine, &approval_id, json_output).await,
        ApprovalsCommand::Approve {
            approval_id,
            reason,
        } => decide(&engine, &approval_id, true, reason.as_deref(), json_output).await,
        ApprovalsCommand::Deny {
            approval_id,
            reason,
        } => decide(&engine, &approval_id, false, reason.as_deref(), json_output).await,
        ApprovalsCommand::Watch => watch(&engine).await,
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(error) => output::report_error(&error, json_output),
    }
}

/// Who decided, as the audit log names them: the OS user at this terminal.
fn operator() -> String {
    format!("cli:{}", Caller::new("cli").identity)
}

async fn list(engine: &Engine, all: bool, json_output: bool) -> Result<(), warden_core::Error> {
    let state = (!all).then_some(ApprovalState::Pending);
    let approvals = engine.approvals(state).await?;
    if json_output {
        let shown: Vec<Value> = approvals
            .iter()
            .map(|approval| Value::Object(approval_json(approval)))
            .collect();
        output::print_json(&json!({ "approvals": shown }));
    } else if approvals.is_empty() {
        output::print(if all {
            "no approvals"
        } else {
            "no pending approvals"
        });
    } else {
        output::print(&table(&approvals, None));
    }
    Ok(())
}

fn table(approvals: &[Approval], selected: Option<usize>) -> String {
    let rows = approvals
        .iter()
        .enumerate()
        .map(|(index, approval)| {
            let shown = approval_json(approval);
            let marker = if selected == Some(index) { "▶" } else { " " };
            vec![
                format!("{marker}{}", approval.id),
                approval.state.as_str().to_owned(),
                output::cell(&shown["tool"]),
                approval.hosts.join(","),
                output::cell(&shown["summary"]),
                output::cell(&shown["client"]),
                expires_in(approval),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "STATE", "TOOL", "HOSTS", "SUMMARY", "CLIENT", "EXPIRES",
        ],
        rows,
    )
}

fn expires_in(approval: &Approval) -> String {
    let left = approval.expires_at - warden_core::store::now_ms();
    if left <= 0 {
        "expired".into()
    } else {
        format!("in {}s", left / 1000)
    }
}

async fn show(engine: &Engine, id: &str, json_output: bool) -> Result<(), warden_core::Error> {
    let approval = engine
        .approval(id)
        .await?
        .ok_or_else(|| warden_core::Error::invalid_input(format!("no approval {id:?}")))?;
    let mut shown = approval_json(&approval);
    shown.insert("request".into(), approval.request.clone());
    shown.insert("digest".into(), json!(approval.digest));
    if json_output {
        output::print_json(&Value::Object(shown));
    } else {
        let lines: Vec<String> = shown
            .iter()
            .map(|(key, value)| match value {
                Value::String(_) => format!("{key:>12}: {}", output::cell(value)),
                other => format!(
                    "{key:>12}: {}",
                    output::cell(&json!(
                        serde_json::to_string_pretty(other).unwrap_or_default()
                    ))
                ),
            })
            .collect();
        output::print(&lines.join("\n"));
    }
    Ok(())
}

async fn decide(
    engine: &Engine,
    id: &str,
    approve: bool,
    reason: Option<&str>,
    json_output: bool,
) -> Result<(), warden_core::Error> {
    let approval = engine
        .decide_approval(id, approve, &operator(), reason)
        .await?;
    let verdict = if approve { "approved" } else { "denied" };
    if json_output {
        output::print_json(&json!({ "approval_id": id, "state": verdict }));
    } else {
        output::print(&format!(
            "{verdict} {id}: {}",
            output::cell(&json!(approval.summary))
        ));
    }
    Ok(())
}

/// A live list, refreshed every second; keys come from a blocking reader thread.
async fn watch(engine: &Engine) -> Result<(), warden_core::Error> {
    let terminal = console::Term::stdout();
    let (keys, mut pressed) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let input = console::Term::stdout();
        while let Ok(key) = input.read_key() {
            if keys.send(key).is_err() {
                break;
            }
        }
    });
    let mut selected = 0usize;
    let mut note = String::new();
    loop {
        let pending = engine.approvals(Some(ApprovalState::Pending)).await?;
        selected = selected.min(pending.len().saturating_sub(1));
        let view = if pending.is_empty() {
            "no pending approvals".to_owned()
        } else {
            table(&pending, Some(selected))
        };
        let screen = format!(
            "warden approvals — ↑/↓ select · a approve · d deny · q quit\n\n{view}\n\n{note}\n"
        );
        let _ = terminal.clear_screen();
        // The reader keeps the terminal raw: lines need a carriage return.
        let _ = terminal.write_str(&screen.replace('\n', "\r\n"));
        let key = tokio::select! {
            key = pressed.recv() => key,
            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
        };
        let Some(key) = key else {
            return Ok(());
        };
        use console::Key;
        match key {
            Key::Char('q') | Key::Escape | Key::CtrlC => {
                let _ = terminal.write_str("\r\n");
                return Ok(());
            }
            Key::ArrowUp | Key::Char('k') => selected = selected.saturating_sub(1),
            Key::ArrowDown | Key::Char('j') => selected += 1,
            Key::Char(choice @ ('a' | 'd')) => {
                if let Some(approval) = pending.get(selected) {
                    let approve = choice == 'a';
                    note = match engine
                        .decide_approval(&approval.id, approve, &operator(), None)
                        .await
                    {
                        Ok(_) => format!(
                            "{} {}",
                            if approve { "approved" } else { "denied" },
                            approval.id
                        ),
                        Err(error) => format!("{}: {}", error.code, error.message),
                    };
                }
            }
            _ => {}
        }
    }
}
