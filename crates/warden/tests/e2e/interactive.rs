//! `command` end to end: `warden mcp serve` against a real sshd, as root and as an
//! ordinary user (OpenSSH ignores signal requests for root: the signals here must
//! arrive anyway). Interactive bash with and without a pty, python3, C escapes,
//! INT and KILL, idle timeouts, exit codes after the end, a flood, a denied line that
//! never reaches the host, masked audit records, and another caller's id.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_testkit::{Fleet, SshdOptions, non_root_user, require_sshd};

use crate::client::McpProcess;

const CANARY: &str = "e2e-canary-2468";

/// One sshd logging in as `user` (the current one when `None`), a config allowing
/// opaque commands (python3 reads code warden cannot see) but denying `touch`.
fn host(user: Option<&str>) -> (Fleet, tempfile::TempDir, std::path::PathBuf) {
    require_sshd();
    let options = match user {
        Some(user) => SshdOptions::default().user(user),
        None => SshdOptions::default(),
    };
    let fleet = Fleet::start(1, options).expect("fleet");
    let home = tempfile::tempdir().unwrap();
    let config = fleet.write_config(
        &home.path().join("cfg"),
        "policy:\n  allow_opaque: true\n  deny_commands: ['touch\\s+.*']\n",
    );
    (fleet, home, config)
}

/// A call that must succeed; its answer.
fn ok(mcp: &mut McpProcess, args: Value) -> Value {
    let (answer, is_error) = mcp.call("command", args.clone());
    assert!(!is_error, "{args} answered {answer}");
    answer
}

/// Sends `input` and reads until `wanted` shows up in the output (a pty echoes and
/// prompts, so output arrives in pieces); everything read.
fn expect(mcp: &mut McpProcess, id: &str, input: Option<&str>, wanted: &str) -> String {
    let mut args = json!({"command_id": id, "idle_timeout": 1});
    if let Some(input) = input {
        args["input"] = json!(input);
    }
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let answer = ok(mcp, args.clone());
        seen.push_str(answer["output"].as_str().unwrap());
        if seen.contains(wanted) {
            return seen;
        }
        args = json!({"command_id": id, "idle_timeout": 1});
    }
    panic!("{wanted:?} never came; got {seen:?}");
}

/// Whether a process with `pattern` in its command line runs on the host (pgrep -f).
fn running_on_host(mcp: &mut McpProcess, pattern: &str) -> bool {
    let (answer, is_error) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": format!("for i in 1 2 3 4 5 6 7 8 9 10; do pgrep -f '{pattern}' >/dev/null || {{ echo none; exit 0; }}; sleep 0.3; done; echo some")}),
    );
    assert!(!is_error, "{answer}");
    answer["stdout"] == "some\n"
}

fn interactive_sessions(user: Option<&str>, tag: &str) {
    let (_fleet, home, config) = host(user);
    let mut mcp = McpProcess::start(home.path(), Some(&config));

    // bash in a pty: prompts, echo, C escapes, ^C as a signal the shell survives.
    let started = ok(
        &mut mcp,
        json!({"host_id": "fleet-01", "command": "bash", "pty": true, "idle_timeout": 1, "env": {"SECRET_TOKEN": CANARY}}),
    );
    assert_eq!(started["running"], true, "{started}");
    let bash = started["command_id"].as_str().unwrap().to_owned();
    expect(&mut mcp, &bash, Some("echo $((6*7))\n"), "42");
    expect(&mut mcp, &bash, Some("echo \\x41\\x42-\\u00e9\n"), "AB-é");
    let sleep = format!("sleep 100.{tag}");
    let pattern = format!("sleep 10[0].{tag}");
    expect(&mut mcp, &bash, Some(&format!("{sleep}\n")), &sleep);
    assert!(running_on_host(&mut mcp, &pattern), "the sleep runs");
    let interrupted = ok(
        &mut mcp,
        json!({"command_id": bash, "signal": "INT", "idle_timeout": 1}),
    );
    assert_eq!(
        interrupted["running"], true,
        "bash survives ^C: {interrupted}"
    );
    assert!(
        !running_on_host(&mut mcp, &pattern),
        "INT interrupted the sleep"
    );
    expect(&mut mcp, &bash, Some("echo after-int\n"), "after-int");

    // A denied line answers POLICY_DENIED and never reaches the host.
    let sentinel = format!("/tmp/warden-e2e-denied-{tag}-{}", std::process::id());
    let (denied, is_error) = mcp.call(
        "command",
        json!({"command_id": bash, "input": format!("touch {sentinel}\n")}),
    );
    assert!(is_error, "{denied}");
    assert_eq!(denied["error"]["code"], "POLICY_DENIED", "{denied}");
    expect(
        &mut mcp,
        &bash,
        Some(&format!(
            "test -e {sentinel} && echo there || echo absent\n"
        )),
        "absent",
    );

    // An env secret typed as input is masked in the answer and in the audit log.
    let typed = expect(
        &mut mcp,
        &bash,
        Some(&format!("echo {CANARY} \"$SECRET_TOKEN\"\n")),
        "*** ***",
    );
    assert!(!typed.contains(CANARY), "{typed}");

    // KILL ends it, for root too; the end stays readable.
    expect(&mut mcp, &bash, Some(&format!("{sleep}\n")), &sleep);
    let killed = ok(
        &mut mcp,
        json!({"command_id": bash, "signal": "KILL", "idle_timeout": 3}),
    );
    assert_eq!(killed["running"], false, "{killed}");
    assert!(!running_on_host(&mut mcp, &pattern), "KILL ended the sleep");
    let after = ok(&mut mcp, json!({"command_id": bash, "idle_timeout": 0}));
    assert_eq!(after["running"], false, "{after}");

    // bash without a pty: no prompt; INT over the second channel stops the sleep (and
    // the non-interactive shell with it); an exit code is readable after the end.
    let plain = ok(
        &mut mcp,
        json!({"host_id": "fleet-01", "command": "bash", "idle_timeout": 0.5}),
    );
    let plain = plain["command_id"].as_str().unwrap().to_owned();
    expect(&mut mcp, &plain, Some("echo plain-$((1+1))\n"), "plain-2");
    ok(
        &mut mcp,
        json!({"command_id": plain, "input": format!("{sleep}\n"), "idle_timeout": 0.5}),
    );
    assert!(running_on_host(&mut mcp, &pattern));
    let stopped = ok(
        &mut mcp,
        json!({"command_id": plain, "signal": "INT", "idle_timeout": 3}),
    );
    assert_eq!(stopped["running"], false, "{stopped}");
    assert!(
        !running_on_host(&mut mcp, &pattern),
        "INT reached the sleep"
    );
    let exits = ok(
        &mut mcp,
        json!({"host_id": "fleet-01", "command": "bash", "idle_timeout": 0}),
    );
    let exits = exits["command_id"].as_str().unwrap().to_owned();
    let ended = ok(
        &mut mcp,
        json!({"command_id": exits, "input": "echo bye; exit 7\n", "idle_timeout": 3}),
    );
    assert_eq!(
        (ended["running"].clone(), ended["exit_code"].clone()),
        (json!(false), json!(7)),
        "{ended}"
    );
    let again = ok(&mut mcp, json!({"command_id": exits, "idle_timeout": 0}));
    assert_eq!(again["exit_code"], 7, "readable after the end: {again}");

    // python3 in a pty (its code is opaque to policy: a destructive start, confirmed).
    let (preview, _) = mcp.call(
        "command",
        json!({"host_id": "fleet-01", "command": "python3", "pty": true}),
    );
    assert!(preview["plan_token"].is_string(), "{preview}");
    let python = ok(
        &mut mcp,
        json!({"host_id": "fleet-01", "command": "python3", "pty": true, "confirm": true, "idle_timeout": 1}),
    );
    if !python["output"].as_str().unwrap().contains(">>>") {
        expect(
            &mut mcp,
            python["command_id"].as_str().unwrap(),
            None,
            ">>>",
        );
    }
    let python = python["command_id"].as_str().unwrap().to_owned();
    expect(&mut mcp, &python, Some("print(6*7)\n"), "42");
    // idle_timeout 0 answers at once; the default waits until the output came and
    // stayed quiet.
    let asked = Instant::now();
    let now = ok(
        &mut mcp,
        json!({"command_id": python, "input": "import time; time.sleep(1.5); print('late-' + 'line')\n", "idle_timeout": 0}),
    );
    assert!(
        asked.elapsed() < Duration::from_millis(1400),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        !now["output"].as_str().unwrap().contains("late-line"),
        "{now}"
    );
    let later = ok(&mut mcp, json!({"command_id": python}));
    assert!(
        later["output"].as_str().unwrap().contains("late-line"),
        "{later}"
    );
    let exited = ok(
        &mut mcp,
        json!({"command_id": python, "eof": true, "idle_timeout": 3}),
    );
    assert_eq!(exited["exit_code"], 0, "^D ends python: {exited}");

    // A flood: every byte is read or counted as dropped.
    let flood = ok(
        &mut mcp,
        json!({"host_id": "fleet-01", "command": "head -c 3000000 /dev/zero | tr '\\0' y", "idle_timeout": 0}),
    );
    let flood_id = flood["command_id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(3));
    let (mut seen, mut dropped) = (0, 0);
    let mut answer = flood;
    for _ in 0..200 {
        seen += answer["output"].as_str().unwrap().len() as u64;
        dropped += answer["dropped_bytes"].as_u64().unwrap_or(0);
        if answer["running"] == false && answer["pending_bytes"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        answer = ok(&mut mcp, json!({"command_id": flood_id, "idle_timeout": 0}));
    }
    assert!(dropped > 0, "the ring overflowed");
    assert_eq!(seen + dropped, 3_000_000);

    // Another caller (a second server on the same state dir, another client) cannot
    // use the id; this caller still can, and closes it.
    let mut other = McpProcess::spawn(
        home.path(),
        &["mcp", "serve", "--config", &config.display().to_string()],
        &[],
    );
    other.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "intruder", "version": "1"}}),
    );
    other.notify("notifications/initialized", json!({}));
    let (foreign, is_error) =
        other.call("command", json!({"command_id": plain, "idle_timeout": 0}));
    assert!(is_error);
    assert_eq!(foreign["error"]["code"], "JOB_NOT_FOUND", "{foreign}");
    drop(other);
    let closed = ok(&mut mcp, json!({"command_id": exits, "close": true}));
    assert_eq!(closed["closed"], true);

    // Every call was audited; the inputs are there, the secret is not.
    let (found, _) = mcp.call("audit_search", json!({"tool": "command", "last": 1000}));
    let text = found.to_string();
    assert!(text.contains("after-int"), "inputs are recorded: {text}");
    assert!(!text.contains(CANARY), "{text}");

    // No command outlives the server: its shutdown stops them on the host.
    let left = ok(
        &mut mcp,
        json!({"host_id": "fleet-01", "command": "bash", "idle_timeout": 0}),
    );
    ok(
        &mut mcp,
        json!({"command_id": left["command_id"], "input": format!("{sleep}\n"), "idle_timeout": 0.5}),
    );
    assert!(running_on_host(&mut mcp, &pattern));
    assert!(mcp.close().success());
    let mut after = McpProcess::start(home.path(), Some(&config));
    assert!(
        !running_on_host(&mut after, &pattern),
        "the server's shutdown stopped its commands"
    );
    drop(after);
    let segments = std::fs::read_dir(home.path().join("state/audit")).unwrap();
    for segment in segments.flatten() {
        let raw = std::fs::read_to_string(segment.path()).unwrap_or_default();
        assert!(!raw.contains(CANARY), "{}", segment.path().display());
    }
}

#[test]
fn interactive_shells_and_python_as_root() {
    interactive_sessions(None, "1");
}

#[test]
fn interactive_shells_and_python_as_an_ordinary_user() {
    let Some(user) = non_root_user() else {
        // Only root can create the user; without it this case cannot run here.
        println!("note: no user wardentest and not root: the ordinary-user case is skipped");
        return;
    };
    interactive_sessions(Some(&user), "2");
}
