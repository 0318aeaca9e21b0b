//! End to end: the built `warden` binary, driven as an MCP client and as a CLI,
//! against real sshd hosts on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on setup failure

mod approvals;
mod archives;
mod audit;
mod audit_cli;
mod binary_output;
mod client;
mod file_edits;
mod file_walks;
mod fleet_files;
mod frozen_hosts;
mod interactive;
mod jobs;
mod output;
mod policy;
mod review10;
mod rollout;
mod secrets;
mod sessions;
mod sudo;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::{McpProcess, warden_command};
use serde_json::{Value, json};
use warden_testkit::{Fleet, SshdOptions, require_sshd};

fn fleet(n: usize, extra_yaml: &str) -> (Fleet, tempfile::TempDir, PathBuf) {
    require_sshd();
    let fleet = Fleet::start(n, SshdOptions::default()).expect("fleet");
    let home = tempfile::tempdir().unwrap();
    let config = fleet.write_config(&home.path().join("cfg"), extra_yaml);
    (fleet, home, config)
}

/// Permission bits of `path` itself (a symlink's own), set-id and sticky bits included.
fn mode_of(path: impl AsRef<Path>) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// A temp tree for a session test: its guard, its canonical path, and `app` below it
/// as the root to be (nothing made yet).
fn app_tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tree = tempfile::tempdir().unwrap();
    let base = tree.path().canonicalize().unwrap();
    let root = base.join("app");
    (tree, base, root)
}

/// One host whose policy allows `root`, plus `more_policy` (lines under `policy:`).
fn fleet_allowing(root: &Path, more_policy: &str) -> (Fleet, tempfile::TempDir, PathBuf) {
    fleet(
        1,
        &format!(
            "policy:\n  allowed_roots: ['{}']\n{more_policy}",
            root.display()
        ),
    )
}

/// Opens a session at `root` on fleet-01; its id.
fn open_session(mcp: &mut McpProcess, root: &Path) -> String {
    let (opened, is_error) = mcp.call(
        "session_open",
        json!({"host_id": "fleet-01", "root": root.display().to_string()}),
    );
    assert!(!is_error, "{opened}");
    opened["session_id"].as_str().unwrap().to_owned()
}

fn results(value: &Value) -> &Vec<Value> {
    value["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {value}"))
}

#[test]
fn exec_facts_policy_and_audit_across_a_fleet() {
    let (_fleet, home, config) = fleet(3, "policy:\n  deny_commands: ['rm\\s+-rf\\s+.*']\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));

    let (value, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": "echo hello; echo oops >&2; exit 3"}),
    );
    assert!(!is_error, "{value}");
    let hosts = results(&value);
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[0]["stdout"], "hello\n");
    assert_eq!(hosts[0]["stderr"], "oops\n");
    assert_eq!(hosts[0]["exit_code"], 3);
    assert_eq!(hosts[1]["same_as"], "fleet-01", "identical output folds");
    assert_eq!(value["summary"]["fail_count"], 3);
    assert!(
        value["summary"]["job_id"]
            .as_str()
            .unwrap()
            .starts_with("job_")
    );

    let (value, _) = mcp.call(
        "exec",
        json!({"target": "group:web", "argv": ["printf", "%s|", "a b", "$(id)"], "fold": false}),
    );
    assert_eq!(results(&value).len(), 2);
    assert_eq!(
        results(&value)[0]["stdout"],
        "a b|$(id)|",
        "argv is not reinterpreted by a shell"
    );

    let (facts, is_error) = mcp.call("facts", json!({"target": "all"}));
    assert!(!is_error);
    for host in results(&facts) {
        assert_eq!(host["ok"], true, "{host}");
        assert_eq!(host["facts"]["kernel"], "Linux");
        assert!(host["facts"]["memory_total_kb"].as_u64().unwrap() > 0);
        assert!(host["facts"]["cpus"].as_u64().unwrap() >= 1);
    }

    let (denied, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": "cd /tmp && rm -rf /tmp/nothing"}),
    );
    assert!(is_error);
    assert_eq!(denied["error"]["code"], "POLICY_DENIED");
    assert_eq!(denied["error"]["recovery_tool"], "policy_test");

    let (test, _) = mcp.call(
        "policy_test",
        json!({"host_id": "fleet-02", "command": "uptime; rm -rf /"}),
    );
    assert_eq!(test["allowed"], false);
    assert_eq!(test["results"][0]["rule"], "rm\\s+-rf\\s+.*");

    let (missing, is_error) = mcp.call("run", json!({"host_id": "fleet-4", "command": "id"}));
    assert!(is_error);
    assert_eq!(missing["error"]["code"], "HOST_NOT_FOUND");
    assert!(
        missing["error"]["suggestions"]
            .as_array()
            .unwrap()
            .contains(&json!("fleet-01"))
    );

    let (verify, _) = mcp.call("audit_verify", json!({}));
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(verify["records"].as_u64().unwrap() >= 10);
    assert!(mcp.close().success());

    // The audit log holds masked records; the CLI verifies it, then finds an edit.
    let audit_dir = home.path().join("state/audit");
    let status = warden_command(home.path())
        .args(["audit", "verify"])
        .status()
        .unwrap();
    assert!(status.success());
    let segment = audit_dir.join("audit-000001.jsonl");
    let text = std::fs::read_to_string(&segment).unwrap();
    std::fs::write(&segment, text.replacen("echo hello", "echo HELLO", 1)).unwrap();
    let output = warden_command(home.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("TAMPERED") && report.contains("line 1"),
        "{report}"
    );
}

#[test]
fn big_output_timeouts_env_stdin_and_working_directory() {
    let (_fleet, home, config) = fleet(1, "limits:\n  max_output_bytes: 1000\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));

    let (big, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "head -c 5000000 /dev/zero | tr '\\0' x"}),
    );
    assert_eq!(big["truncated"], true);
    // Head and tail, 500 bytes each, around the marker that names the artifact.
    let stdout = big["stdout"].as_str().unwrap();
    let (head, tail) = stdout
        .split_once("\n…[4999000 bytes cut; all of it: artifacts_get job_id=")
        .unwrap();
    assert_eq!(
        (head, &tail[tail.len() - 500..]),
        ("x".repeat(500).as_str(), "x".repeat(500).as_str())
    );
    assert_eq!(big["stdout_bytes"], 5_000_000);

    let (env, _) = mcp.call(
        "run",
        json!({
            "host_id": "fleet-01",
            "command": "printf '%s|%s|%s|' \"$WARDEN_TEST\" \"${#WARDEN_TEST}\" \"$(pwd)\"; cat",
            "env": {"WARDEN_TEST": "it's $HOME\n\n"},
            "stdin": "from stdin",
            "working_directory": "/tmp",
        }),
    );
    // The value arrived whole (trailing newlines too); an env value is masked in
    // answers like a secret.
    assert_eq!(env["stdout"], "***|12|/tmp|from stdin", "{env}");

    let (timeout, is_error) = mcp.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "echo started; sleep 30", "timeout_ms": 500}),
    );
    assert!(!is_error);
    assert_eq!(results(&timeout)[0]["error"]["code"], "CMD_TIMEOUT");
    let (run_timeout, is_error) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "sleep 29", "timeout_ms": 300}),
    );
    assert!(is_error);
    assert_eq!(run_timeout["error"]["code"], "CMD_TIMEOUT");
    // Killed on the host: TERM, then KILL 0.2 s later; a loaded machine may take a
    // moment more to reap them, so look for up to 5 s.
    let (left, _) = mcp.call("run", json!({"host_id": "fleet-01", "command": "for i in 1 2 3 4 5 6 7 8 9 10; do pgrep -f 'sleep 3[0]' >/dev/null || pgrep -f 'sleep 2[9]' >/dev/null || { echo none; exit 0; }; sleep 0.5; done; pgrep -f 'sleep [23][09]'"}));
    assert_eq!(
        left["stdout"], "none\n",
        "timed-out commands must be killed on the host"
    );
}

/// A client's `notifications/cancelled` ends its wait, not the work (PRODUCT.md §12:
/// the work goes on as a job); `cancel` ends the work on the host.
#[test]
fn a_client_cancel_ends_the_wait_and_cancel_ends_the_job() {
    let (_fleet, home, config) = fleet(1, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let id = mcp.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"host_id": "fleet-01", "command": "sleep 31.5"}}),
    );
    std::thread::sleep(Duration::from_millis(700));
    mcp.notify(
        "notifications/cancelled",
        json!({"requestId": id, "reason": "test"}),
    );
    std::thread::sleep(Duration::from_millis(800));
    let (left, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "pgrep -f 'sleep 3[1].5' >/dev/null && echo running"}),
    );
    assert_eq!(left["stdout"], "running\n");
    let (listed, _) = mcp.call("jobs_list", json!({"state": "running"}));
    let job = listed["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let (cancelled, _) = mcp.call("cancel", json!({"job_id": job}));
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["may_still_run"], false, "{cancelled}");
    let (left, _) = mcp.call("run", json!({"host_id": "fleet-01", "command": "for i in 1 2 3 4 5 6 7 8 9 10; do pgrep -f 'sleep 3[1].5' >/dev/null || { echo none; exit 0; }; sleep 0.5; done; ps -eo pid,pgid,stat,args | grep 'sleep 3[1].5'"}));
    assert_eq!(left["stdout"], "none\n", "{left}");
    assert!(mcp.close().success());
}

#[test]
fn dead_hosts_and_changed_host_keys_are_reported_per_host() {
    let (mut fleet, home, config) = fleet(3, "");
    fleet.hosts_mut()[1].kill();
    fleet.hosts_mut()[2].restart_with_new_host_key().unwrap();
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (value, _) = mcp.call("exec", json!({"target": "all", "command": "true"}));
    let hosts = results(&value);
    assert_eq!(hosts[0]["ok"], true);
    assert_eq!(hosts[1]["error"]["code"], "SSH_CONN_FAILED");
    assert_eq!(hosts[2]["error"]["code"], "HOST_KEY_MISMATCH");
    assert_eq!(hosts[2]["error"]["transient"], false);
    assert_eq!(value["summary"]["success_count"], 1);
}

#[test]
fn zero_config_serves_a_read_only_local_host() {
    let home = tempfile::tempdir().unwrap();
    let mut mcp = McpProcess::start(home.path(), None);
    let tools = mcp.request("tools/list", json!({}));
    assert!(tools["result"]["tools"].as_array().unwrap().len() >= 13);
    let (status, _) = mcp.call("status", json!({}));
    assert_eq!(status["config"], Value::Null);
    let (refused, is_error) = mcp.call("exec", json!({"target": "host:local", "command": "id"}));
    assert!(is_error);
    assert_eq!(refused["error"]["code"], "LOCAL_DISABLED");
    let (facts, _) = mcp.call("facts", json!({"target": "host:local"}));
    assert_eq!(facts["results"][0]["ok"], true);
    let (empty, _) = mcp.call("exec", json!({"target": "all", "command": "id"}));
    assert_eq!(empty["error"]["code"], "TARGET_EMPTY");
    assert!(mcp.close().success());
}

#[test]
fn malformed_json_rpc_never_kills_the_server() {
    let home = tempfile::tempdir().unwrap();
    let mut mcp = McpProcess::start(home.path(), None);
    mcp.send_raw("{this is not json");
    mcp.send_raw(r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":5}}"#);
    mcp.send_raw(r#"{"jsonrpc":"2.0","id":99,"method":"no/such/method"}"#);
    let unknown = mcp.answer(99);
    assert!(unknown.get("error").is_some(), "{unknown}");
    let bad_args = mcp.request(
        "tools/call",
        json!({"name": "exec", "arguments": {"target": ["all"]}}),
    );
    assert_eq!(bad_args["error"]["code"], -32602, "{bad_args}");
    let (status, is_error) = mcp.call("status", json!({}));
    assert!(!is_error, "{status}");
    assert!(mcp.close().success());
}

#[test]
fn cli_commands_teach_and_use_exit_codes() {
    let (_fleet, home, config) = fleet(2, "");
    let config_arg = config.display().to_string();
    let run = |args: &[&str]| warden_command(home.path()).args(args).output().unwrap();

    let help = run(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("warden exec -t group:web -- uptime"));

    let exec = run(&[
        "--config",
        &config_arg,
        "exec",
        "--json",
        "-t",
        "all",
        "--",
        "echo",
        "hi",
    ]);
    assert!(
        exec.status.success(),
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
    let value: Value = serde_json::from_slice(&exec.stdout).unwrap();
    assert_eq!(value["summary"]["success_count"], 2);

    let table = run(&["--config", &config_arg, "hosts", "list"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("fleet-02"));

    let call = run(&[
        "--config",
        &config_arg,
        "call",
        "hosts_show",
        r#"{"host_id":"nope"}"#,
    ]);
    assert_eq!(call.status.code(), Some(2));
    let error: Value = serde_json::from_slice(&call.stdout).unwrap();
    assert_eq!(error["error"]["code"], "HOST_NOT_FOUND");

    let starter = home.path().join("starter.yaml");
    assert!(run(&["init", starter.to_str().unwrap()]).status.success());
    assert!(
        run(&["--config", starter.to_str().unwrap(), "config", "check"])
            .status
            .success()
    );

    let bad = home.path().join("bad.yaml");
    std::fs::write(&bad, "hosts:\n  - id: a\n    address: b\n    prot: 22\n").unwrap();
    let check = run(&["--config", bad.to_str().unwrap(), "config", "check"]);
    assert_eq!(check.status.code(), Some(2));
    let message = String::from_utf8_lossy(&check.stderr);
    assert!(
        message.contains("prot") && message.contains("line 4"),
        "{message}"
    );
    assert!(Path::new(&config_arg).exists());
}

#[test]
fn file_sessions_over_sftp_stay_inside_their_root() {
    let (_tree, base, root) = app_tree();
    std::fs::create_dir_all(root.join("conf")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/secret"), "outside\n").unwrap();
    std::os::unix::fs::symlink(base.join("outside"), root.join("escape")).unwrap();
    std::fs::create_dir_all(base.join("app-evil")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));

    let session = open_session(&mut mcp, &root);
    let (written, is_error) = mcp.call(
        "fs_write",
        json!({"session_id": session, "path": "conf/app.ini", "content": "port=80\n"}),
    );
    assert!(!is_error, "{written}");
    assert_eq!(
        std::fs::read_to_string(root.join("conf/app.ini")).unwrap(),
        "port=80\n"
    );
    let (read, _) = mcp.call(
        "fs_read",
        json!({"session_id": session, "path": "conf/app.ini"}),
    );
    assert_eq!(read["content"], "port=80\n");
    assert_eq!(read["sha256"], written["sha256"]);

    for path in [
        "escape/secret",
        "../outside/secret",
        &format!("{}-evil", root.display()),
    ] {
        let (refused, is_error) = mcp.call("fs_read", json!({"session_id": session, "path": path}));
        assert!(is_error, "{path}: {refused}");
        assert_eq!(refused["error"]["code"], "PATH_OUTSIDE_ROOT", "{path}");
    }
    let (overwrite, is_error) = mcp.call(
        "fs_write",
        json!({"session_id": session, "path": "escape/secret", "content": "x", "confirm": true}),
    );
    assert!(is_error, "{overwrite}");
    assert_eq!(
        std::fs::read_to_string(base.join("outside/secret")).unwrap(),
        "outside\n"
    );

    // Directories, listings, metadata and removal over SFTP.
    let (made, is_error) = mcp.call(
        "fs_mkdir",
        json!({"session_id": session, "path": "logs/old", "parents": true, "mode": "0750"}),
    );
    assert!(!is_error, "{made}");
    assert_eq!(mode_of(root.join("logs/old")), 0o750);
    let (listed, _) = mcp.call(
        "fs_list",
        json!({"session_id": session, "path": ".", "depth": 2}),
    );
    let names: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["path"].as_str().unwrap())
        .collect();
    for expected in ["conf", "conf/app.ini", "escape", "logs", "logs/old"] {
        assert!(names.contains(&expected), "{expected} missing in {names:?}");
    }
    assert!(
        !names.iter().any(|name| name.contains("secret")),
        "{names:?}"
    );
    let (stat, _) = mcp.call("fs_stat", json!({"session_id": session, "path": "escape"}));
    assert_eq!(stat["type"], "symlink", "{stat}");
    let (preview, _) = mcp.call(
        "fs_remove",
        json!({"session_id": session, "path": "logs", "recursive": true}),
    );
    assert_eq!(preview["removed"], false);
    assert!(root.join("logs/old").exists());
    let (removed, _) = mcp.call(
        "fs_remove",
        json!({"session_id": session, "path": "logs", "recursive": true, "confirm": true}),
    );
    assert_eq!(removed["count"], 2, "{removed}");
    assert!(!root.join("logs").exists());
    let (link_removed, _) = mcp.call(
        "fs_remove",
        json!({"session_id": session, "path": "escape", "confirm": true}),
    );
    assert_eq!(link_removed["removed"], true);
    assert!(
        base.join("outside/secret").exists(),
        "the link's target survives"
    );

    let (summary, _) = mcp.call("session_summary", json!({"session_id": session}));
    let activity = &summary["activity"];
    assert!(
        activity["written"].to_string().contains("app.ini"),
        "{summary}"
    );
    assert!(
        activity["denied"].as_array().unwrap().len() >= 3,
        "{summary}"
    );

    // Another client (its own server process and state) cannot use this session.
    let other_home = tempfile::tempdir().unwrap();
    let mut other = McpProcess::start(other_home.path(), Some(&config));
    let (foreign, is_error) = other.call(
        "fs_read",
        json!({"session_id": session, "path": "conf/app.ini"}),
    );
    assert!(is_error);
    assert_eq!(foreign["error"]["code"], "SESSION_NOT_FOUND");
    let (closed, is_error) = mcp.call("session_close", json!({"session_id": session}));
    assert!(!is_error, "{closed}");
    let (gone, _) = mcp.call("fs_stat", json!({"session_id": session, "path": "conf"}));
    assert_eq!(gone["error"]["code"], "SESSION_NOT_FOUND");
}

/// Some clients mark a server failed on any stderr line: a healthy one says nothing at
/// the default level, also when the client leaves before `initialize`.
#[test]
fn a_healthy_server_is_silent_on_stderr() {
    use std::io::Write;
    use std::process::Stdio;
    let home = tempfile::tempdir().unwrap();
    let run = |input: &str| {
        let mut child = warden_command(home.path())
            .args(["mcp", "serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let closed_early = run("");
    assert!(closed_early.status.success(), "{closed_early:?}");
    assert_eq!(String::from_utf8_lossy(&closed_early.stderr), "");
    let session = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"quiet","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"status","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"fs_read","arguments":{"host_id":"local","path":"/etc/hostname"}}}"#,
        // A bad call is answered with an error, not a complaint on stderr.
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}"#,
    ]
    .join("\n");
    let served = run(&format!("{session}\n"));
    assert!(served.status.success(), "{served:?}");
    let stdout = String::from_utf8_lossy(&served.stdout);
    assert!(
        stdout.contains(r#""id":3"#) && stdout.contains(r#""id":4"#),
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&served.stderr), "");
}

/// `limits.max_per_host` bounds the commands running at once on one host, whoever
/// sends them: each command counts the others running beside it.
#[test]
fn commands_on_one_host_take_turns() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(root.join("running")).unwrap();
    let (_fleet, home, config) = fleet(1, "limits:\n  max_per_host: 2\n");
    let mut first = McpProcess::start(home.path(), Some(&config));
    let command = format!(
        "d={}; mkdir $d/$$; ls $d | wc -l; sleep 0.4; rmdir $d/$$",
        root.join("running").display()
    );
    let ids: Vec<u64> = (0..6)
        .map(|_| {
            first.send_request(
                "tools/call",
                json!({"name": "run", "arguments": {"host_id": "fleet-01", "command": command}}),
            )
        })
        .collect();
    let mut most = 0;
    for answer in first.answers(&ids) {
        let result = &answer["result"]["structuredContent"];
        let seen: u32 = result["stdout"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .trim()
            .parse()
            .unwrap();
        most = most.max(seen);
    }
    assert!(most <= 2, "{most} commands ran at once");
    assert_eq!(most, 2, "the two turns were used");
}

/// A client that stops reading while 60 reads of 1 MiB finish: the server's memory
/// stays bounded (answers wait, calls stall), and every answer arrives once it reads.
#[test]
fn a_client_that_stops_reading_stalls_its_calls_not_the_servers_memory() {
    use std::io::{BufRead, BufReader, Write};
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let big = root.join("big.txt");
    let line = "0123456789abcdef".repeat(4) + "\n";
    std::fs::write(&big, line.repeat((1 << 20) / line.len())).unwrap();
    // All 60 may be in flight at once: they stall on the budget, none is refused.
    let (_fleet, home, config) = fleet(
        1,
        &format!(
            "policy:\n  allowed_roots: ['{}']\nlimits:\n  max_concurrent: 100\n",
            root.display()
        ),
    );
    let mut child = client::warden_command(home.path())
        .args(["mcp", "serve", "--config", &config.display().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut requests = String::from(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"slow","version":"1"}}}"#,
    );
    requests.push('\n');
    requests.push_str(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    requests.push('\n');
    for id in 1..=60 {
        requests.push_str(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "fs_read", "arguments": {"host_id": "fleet-01", "path": big.display().to_string()}}})
                .to_string(),
        );
        requests.push('\n');
    }
    stdin.write_all(requests.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // Nobody reads stdout for a while; the server works as far as it may.
    let rss_kib = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let mut peak = 0;
    for _ in 0..30 {
        peak = peak.max(rss_kib(child.id()));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let reader = BufReader::new(child.stdout.take().unwrap());
    let mut answered = 0;
    for line in reader.lines() {
        let message: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if message["id"].as_u64().is_some_and(|id| id >= 1) {
            assert_eq!(
                message["result"]["isError"],
                json!(false),
                "{}",
                &message.to_string()[..200]
            );
            answered += 1;
            peak = peak.max(rss_kib(child.id()));
            if answered == 60 {
                break;
            }
        }
    }
    drop(stdin);
    let _ = child.wait();
    assert_eq!(answered, 60);
    assert!(peak < 200 * 1024, "RSS peaked at {} MiB", peak / 1024);
}
