//! Approvals through `warden mcp serve` and the operator's CLI, against real sshd:
//! the round trip, binding to the plan and the caller, expiry, restarts, and the
//! live view driven in tmux.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{McpProcess, warden_command};
use crate::{app_tree, fleet_allowing};

/// `approval:` with one rule for fs_write under `guarded/` and exec of `touch`.
fn approval_yaml(wait: &str, timeout: &str) -> String {
    format!(
        "approval:\n  enabled: true\n  wait: {wait}\n  timeout: {timeout}\n  rules:\n    - tools: [fs_write]\n      paths: ['.*/guarded/.*']\n    - tools: [exec]\n      programs: [touch]\n"
    )
}

fn cli(home: &Path, config: &Path, args: &[&str]) -> (Value, i32) {
    let output = warden_command(home)
        .args(["--config", &config.display().to_string(), "--json"])
        .args(args)
        .output()
        .unwrap();
    let value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (value, output.status.code().unwrap_or(-1))
}

/// The public half of an approval token: what the operator and the audit log see.
fn public(token: &str) -> &str {
    token.split('.').next().unwrap()
}

fn pending_id(answer: &Value) -> String {
    assert_eq!(answer["error"]["code"], "APPROVAL_PENDING", "{answer}");
    answer["error"]["approval_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no approval_id in {answer}"))
        .to_owned()
}

fn start_named(home: &Path, config: &Path, name: &str) -> McpProcess {
    let mut mcp = McpProcess::spawn(
        home,
        &["mcp", "serve", "--config", &config.display().to_string()],
        &[],
    );
    let answer = mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": name, "version": "1"}}),
    );
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
    mcp.notify("notifications/initialized", json!({}));
    mcp
}

fn audit_records(home: &Path, config: &Path) -> Vec<Value> {
    let (records, code) = cli(home, config, &["audit", "tail", "-n", "500"]);
    assert_eq!(code, 0);
    records.as_array().cloned().unwrap_or_default()
}

#[test]
fn an_approved_call_runs_once_for_its_caller_only() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + &approval_yaml("1s", "10m"),
    )
    .unwrap();
    let target = root.join("touched");
    let exec = json!({"target": "host:fleet-01", "command": format!("touch {}", target.display())});
    let mut agent = start_named(home.path(), &config, "agent-a");

    // Waits `wait`, then answers APPROVAL_PENDING; nothing ran.
    let started = Instant::now();
    let (answer, is_error) = agent.call("exec", exec.clone());
    assert!(is_error);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let id = pending_id(&answer);
    assert!(!target.exists());
    let hint = answer["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("warden approvals approve"), "{hint}");

    let (listed, is_error) = agent.call("approval_list", json!({}));
    assert!(!is_error);
    assert_eq!(listed["pending"][0]["approval_id"], json!(public(&id)));
    let (status, _) = agent.call(
        "approval_status",
        json!({"approval_id": id, "wait_ms": 300}),
    );
    assert_eq!(status["approval"]["state"], "pending", "{status}");
    assert_eq!(status["retry_after_ms"], 1000);

    // Another caller can neither see nor use it.
    let mut other = start_named(home.path(), &config, "agent-b");
    let (foreign, is_error) = other.call("approval_status", json!({"approval_id": id}));
    assert!(is_error, "{foreign}");
    assert!(
        foreign["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no approval")
    );
    let (listed, _) = other.call("approval_list", json!({}));
    assert_eq!(listed["pending"], json!([]));

    // The operator sees it and approves it from the CLI.
    let (pending, code) = cli(home.path(), &config, &["approvals", "list"]);
    assert_eq!(code, 0);
    assert_eq!(pending["approvals"][0]["approval_id"], json!(public(&id)));
    assert_eq!(pending["approvals"][0]["client"], "agent-a");
    let (shown, _) = cli(home.path(), &config, &["approvals", "show", &id]);
    assert!(
        shown["request"]["commands"][0]
            .as_str()
            .unwrap()
            .contains("touch")
    );
    let (decided, code) = cli(
        home.path(),
        &config,
        &["approvals", "approve", &id, "--reason", "ticket 42"],
    );
    assert_eq!(code, 0, "{decided}");
    let (status, _) = agent.call("approval_status", json!({"approval_id": id}));
    assert_eq!(status["approval"]["state"], "approved", "{status}");

    // The other caller still cannot use it, even approved.
    let mut foreign_exec = exec.clone();
    foreign_exec["approval_id"] = json!(id);
    let (refused, is_error) = other.call("exec", foreign_exec);
    assert!(is_error, "{refused}");
    assert!(!target.exists());

    // The asker repeats the same call with the id: it runs, once.
    let mut approved = exec.clone();
    approved["approval_id"] = json!(id);
    let (ran, is_error) = agent.call("exec", approved.clone());
    assert!(!is_error, "{ran}");
    assert!(target.exists());
    let (again, is_error) = agent.call("exec", approved);
    assert!(is_error);
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("used already"),
        "{again}"
    );

    // Every step is in the chain.
    drop((agent, other));
    let records = audit_records(home.path(), &config);
    let events: Vec<&str> = records
        .iter()
        .filter(|record| record["approval_id"] == json!(public(&id)))
        .filter_map(|record| record["event"].as_str())
        .collect();
    assert_eq!(events, ["approval_requested", "approval_decided"]);
    let used: Vec<&Value> = records
        .iter()
        .filter(|record| {
            record["event"].is_null()
                && record["tool"] == "exec"
                && record["decision"] == "approved"
                && record["approval_id"] == json!(public(&id))
        })
        .collect();
    assert_eq!(used.len(), 2, "requested and completed: {records:?}");
    let (report, code) = cli(home.path(), &config, &["audit", "verify"]);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn an_approval_is_bound_to_the_plan_it_was_given_for() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(root.join("guarded")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + &approval_yaml("0ms", "10m"),
    )
    .unwrap();
    let file = root.join("guarded/app.conf");
    std::fs::write(&file, "old\n").unwrap();
    let write = json!({"host_id": "fleet-01", "path": file.display().to_string(), "content": "new\n", "confirm": true});
    let mut agent = start_named(home.path(), &config, "agent");
    let (answer, _) = agent.call("fs_write", write.clone());
    let id = pending_id(&answer);
    let (_, code) = cli(home.path(), &config, &["approvals", "approve", &id]);
    assert_eq!(code, 0);

    // Different content than approved: refused, and nothing written.
    let mut changed = write.clone();
    changed["content"] = json!("evil\n");
    changed["approval_id"] = json!(id);
    let (refused, _) = agent.call("fs_write", changed);
    assert_eq!(refused["error"]["code"], "PLAN_CHANGED", "{refused}");

    // The file changed on the host between approval and use: refused too.
    std::fs::write(&file, "changed by someone else\n").unwrap();
    let mut same = write.clone();
    same["approval_id"] = json!(id);
    let (refused, _) = agent.call("fs_write", same);
    assert_eq!(refused["error"]["code"], "PLAN_CHANGED", "{refused}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "changed by someone else\n"
    );

    // A denied one says so, with the reason.
    let (answer, _) = agent.call("fs_write", write.clone());
    let denied = pending_id(&answer);
    cli(
        home.path(),
        &config,
        &["approvals", "deny", &denied, "--reason", "not today"],
    );
    let mut retry = write;
    retry["approval_id"] = json!(denied);
    let (refused, _) = agent.call("fs_write", retry);
    assert_eq!(refused["error"]["code"], "APPROVAL_DENIED", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not today")
    );
}

#[test]
fn approvals_expire_to_deny_and_survive_a_restart() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + &approval_yaml("0ms", "2s"),
    )
    .unwrap();
    let exec = |name: &str| json!({"target": "host:fleet-01", "command": format!("touch {}", root.join(name).display())});
    // One asked before a restart of both warden and the client, approved after it.
    let mut before = start_named(home.path(), &config, "agent");
    let (answer, _) = before.call("exec", exec("kept"));
    let kept = pending_id(&answer);
    let (answer, _) = before.call("exec", exec("late"));
    let late = pending_id(&answer);
    assert_eq!(before.close().code(), Some(0));
    let (_, code) = cli(home.path(), &config, &["approvals", "approve", &kept]);
    assert_eq!(code, 0);
    let mut after = start_named(home.path(), &config, "agent");
    let mut call = exec("kept");
    call["approval_id"] = json!(kept);
    let (ran, is_error) = after.call("exec", call);
    assert!(!is_error, "{ran}");
    assert!(root.join("kept").exists());

    // The other one nobody decided: expired, which is deny.
    std::thread::sleep(Duration::from_millis(2200));
    let (status, _) = after.call("approval_status", json!({"approval_id": late}));
    assert_eq!(status["approval"]["state"], "expired", "{status}");
    let mut call = exec("late");
    call["approval_id"] = json!(late);
    let (refused, _) = after.call("exec", call);
    assert_eq!(refused["error"]["code"], "APPROVAL_TIMEOUT", "{refused}");
    assert!(!root.join("late").exists());
    let (_, code) = cli(home.path(), &config, &["approvals", "approve", &late]);
    assert_ne!(code, 0, "an expired approval cannot be approved");
    drop(after);
    let records = audit_records(home.path(), &config);
    assert!(records.iter().any(|record| {
        record["event"] == "approval_expired" && record["approval_id"] == json!(public(&late))
    }));
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let output = Command::new("tmux")
        .args(["-L", socket])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn wait_for_screen(socket: &str, wanted: &str) -> String {
    let started = Instant::now();
    loop {
        let screen = tmux(socket, &["capture-pane", "-p", "-t", "watch"]);
        if screen.contains(wanted) {
            return screen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{wanted:?} never showed:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_operator_approves_and_denies_in_the_live_view() {
    warden_testkit::require_tmux();
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + &approval_yaml("0ms", "10m"),
    )
    .unwrap();
    let mut agent = start_named(home.path(), &config, "agent");
    let (answer, _) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": format!("touch {}", root.join("one").display())}),
    );
    let first = pending_id(&answer);
    let (answer, _) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": format!("touch {}", root.join("two").display())}),
    );
    let second = pending_id(&answer);

    let socket = format!("warden-e2e-{}", std::process::id());
    let command = format!(
        "env HOME={home} WARDEN_STATE_DIR={home}/state {warden} --config {config} approvals watch",
        home = home.path().display(),
        warden = crate::client::WARDEN,
        config = config.display()
    );
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "watch",
            "-x",
            "200",
            "-y",
            "40",
            &command,
        ],
    );
    // Newest first: the second is selected; deny it, then approve the first.
    let screen = wait_for_screen(&socket, public(&first));
    assert!(screen.contains(public(&second)), "{screen}");
    assert!(
        !screen.contains(&first),
        "the secret half is the agent's only"
    );
    tmux(&socket, &["send-keys", "-t", "watch", "d"]);
    wait_for_screen(&socket, &format!("denied {}", public(&second)));
    tmux(&socket, &["send-keys", "-t", "watch", "a"]);
    wait_for_screen(&socket, &format!("approved {}", public(&first)));
    tmux(&socket, &["send-keys", "-t", "watch", "q"]);
    let started = Instant::now();
    while tmux(&socket, &["list-sessions"]).contains("watch") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "watch did not quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux(&socket, &["kill-server"]);

    let (all, _) = cli(home.path(), &config, &["approvals", "list", "--all"]);
    let state = |id: &str| {
        all["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|approval| approval["approval_id"] == json!(public(id)))
            .map(|approval| approval["state"].clone())
    };
    assert_eq!(state(&first), Some(json!("approved")), "{all}");
    assert_eq!(state(&second), Some(json!("denied")), "{all}");
}
