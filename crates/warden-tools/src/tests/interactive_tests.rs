//! `command` through the engine, with the local transport's real processes standing
//! in for host `web-1`: lines sent to a shell are checked like `exec`, ids belong to
//! their caller, output is bounded and masked, limits and the reaper hold. The SSH
//! side (pty, signals as root and as an ordinary user) is in the e2e suite.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::{Caller, Engine, ErrorCode, Result};

struct World {
    engine: Engine,
    base: tempfile::TempDir,
}

impl World {
    fn new(extra: &str) -> World {
        let base = tempfile::tempdir().unwrap();
        let yaml = format!("hosts:\n  - {{id: web-1, address: 127.0.0.1}}\n{extra}");
        let engine = super::engine_over(
            &yaml,
            &base.path().join("state"),
            warden_core::local_transport(),
        );
        World { engine, base }
    }

    async fn call_as(&self, caller: &str, args: Value) -> Result<Value> {
        self.engine
            .invoke(
                &Caller::new(caller),
                "command",
                args,
                CancellationToken::new(),
                None,
            )
            .await
    }

    async fn call(&self, args: Value) -> Result<Value> {
        self.call_as("agent", args).await
    }

    /// Starts `command`, answering after `idle` seconds quiet; its id.
    async fn start(&self, command: &str, idle: f64) -> String {
        let started = self
            .call(json!({"host_id": "web-1", "command": command, "idle_timeout": idle}))
            .await
            .unwrap();
        started["command_id"].as_str().unwrap().to_owned()
    }

    async fn send(&self, id: &str, input: &str) -> Result<Value> {
        self.call(json!({"command_id": id, "input": input, "idle_timeout": 1}))
            .await
    }

    fn audit_text(&self) -> String {
        let dir = self.base.path().join("state/audit");
        warden_core::audit::tail(&dir, 1000)
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn records(&self) -> Vec<Value> {
        warden_core::audit::tail(&self.base.path().join("state/audit"), 1000).unwrap()
    }
}

fn sentinel(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("warden-{name}-{}", std::process::id()))
}

#[tokio::test]
async fn lines_sent_to_a_shell_are_checked_like_exec_and_a_denied_one_is_never_sent() {
    let world = World::new("policy:\n  deny_commands: ['touch\\s+.*']\n");
    let id = world.start("sh", 0.3).await;
    let echoed = world.send(&id, "echo hello\n").await.unwrap();
    assert_eq!(echoed["output"], "hello\n", "{echoed}");
    assert_eq!(echoed["running"], true);

    let file = sentinel("denied-line");
    let _ = std::fs::remove_file(&file);
    for line in [
        format!("touch {}\n", file.display()),
        format!("echo ok; tou''ch {}\n", file.display()),
        format!("sh -c 'touch {}'\n", file.display()),
    ] {
        let error = world.send(&id, &line).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::PolicyDenied, "{line}: {error:?}");
    }
    // Lines policy cannot read whole, and history the shell would expand, are refused.
    for bad in [
        "echo partial",
        "tou\\x7fch x\n",
        "echo touch x\n!!:1-2\n",
        "fc -s\n",
        "tou\\\nch x\n",
    ] {
        let error = world.send(&id, bad).await.unwrap_err();
        assert!(
            matches!(
                error.code,
                ErrorCode::InvalidInput | ErrorCode::PolicyDenied
            ),
            "{bad:?}: {error:?}"
        );
    }
    let after = world.send(&id, "echo still here\n").await.unwrap();
    assert_eq!(
        after["output"], "still here\n",
        "nothing refused reached the shell"
    );
    assert!(!file.exists(), "a denied line ran");

    // Each line is a call of its own: a requested and a completed record, the line as
    // the command; the denied ones denied.
    let lines: Vec<(String, String)> = world
        .records()
        .iter()
        .filter(|record| record["tool"] == "command" && record["phase"] == "requested")
        .map(|record| {
            (
                record["commands"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                record["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        lines.contains(&("echo hello".into(), "allowed".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(format!("touch {}", file.display()), "denied".into())),
        "{lines:?}"
    );

    let ended = world
        .call(json!({"command_id": id, "eof": true, "idle_timeout": 3}))
        .await
        .unwrap();
    assert_eq!(ended["running"], false, "{ended}");
    assert_eq!(ended["exit_code"], 0);
}

#[tokio::test]
async fn a_line_after_cd_is_read_from_an_unknown_directory() {
    let world = World::new("policy:\n  deny_paths: ['/etc/shadow']\n");
    let id = world.start("sh", 0.3).await;
    // Before any cd, a relative path is where the shell started.
    let read = world
        .send(&id, "cat shadow 2>/dev/null; echo $?\n")
        .await
        .unwrap();
    assert_eq!(read["output"], "1\n", "{read}");
    world.send(&id, "cd /etc\n").await.unwrap();
    let error = world.send(&id, "cat shadow\n").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::PolicyDenied, "{error:?}");
}

#[tokio::test]
async fn a_destructive_line_previews_and_runs_when_confirmed() {
    let world = World::new("");
    let id = world.start("sh", 0.3).await;
    let file = sentinel("confirmed-line");
    std::fs::write(&file, "x").unwrap();
    let line = format!("rm -f {}\n", file.display());
    let preview = world.send(&id, &line).await.unwrap();
    assert!(preview["plan_token"].is_string(), "{preview}");
    assert!(file.exists(), "a preview sent the line");
    let ran = world
        .call(json!({"command_id": id, "input": line, "idle_timeout": 1, "confirm": true, "plan_token": preview["plan_token"]}))
        .await
        .unwrap();
    assert_eq!(ran["running"], true, "{ran}");
    assert!(!file.exists(), "the confirmed line ran");
}

#[tokio::test]
async fn a_command_id_belongs_to_its_caller() {
    let world = World::new("");
    let id = world.start("cat", 0.2).await;
    for args in [
        json!({"command_id": id, "idle_timeout": 0}),
        json!({"command_id": id, "input": "hi\n"}),
        json!({"command_id": id, "close": true}),
    ] {
        let error = world.call_as("intruder", args).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::JobNotFound, "{error:?}");
    }
    let unknown = world
        .call(json!({"command_id": "cmd_000000000000"}))
        .await
        .unwrap_err();
    assert_eq!(unknown.code, ErrorCode::JobNotFound);
    // The owner still has it, untouched.
    let echoed = world.send(&id, "mine\n").await.unwrap();
    assert_eq!(echoed["output"], "mine\n", "{echoed}");
}

#[tokio::test]
async fn escapes_raw_input_eof_and_the_exit_code_after_the_end() {
    let world = World::new("");
    let id = world.start("cat; exit 3", 0.2).await;
    let escaped = world.send(&id, "a\\tb\\x41\\n").await.unwrap();
    assert_eq!(escaped["output"], "a\tbA\n", "{escaped}");
    let raw = world
        .call(json!({"command_id": id, "input": "a\\tb\n", "raw": true, "idle_timeout": 1}))
        .await
        .unwrap();
    assert_eq!(raw["output"], "a\\tb\n", "{raw}");
    let ended = world
        .call(json!({"command_id": id, "eof": true, "idle_timeout": 3}))
        .await
        .unwrap();
    assert_eq!(
        (ended["running"].clone(), ended["exit_code"].clone()),
        (json!(false), json!(3)),
        "{ended}"
    );
    // Readable again while its grace lasts; input now goes nowhere.
    let again = world
        .call(json!({"command_id": id, "idle_timeout": 0}))
        .await
        .unwrap();
    assert_eq!(again["exit_code"], 3, "{again}");
    let error = world.send(&id, "late\n").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error:?}");
}

#[tokio::test]
async fn idle_timeout_zero_answers_at_once_and_the_default_waits_for_quiet() {
    let world = World::new("");
    let started = Instant::now();
    let id = world.start("sh", 0.0).await;
    let now = world
        .call(json!({"command_id": id, "input": "sleep 1; echo late\n", "idle_timeout": 0}))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(now["output"], "");
    // The default (5 s quiet) answers once the output came and 5 s passed.
    let waited = Instant::now();
    let later = world.call(json!({"command_id": id})).await.unwrap();
    assert_eq!(later["output"], "late\n", "{later}");
    let took = waited.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_flood_is_bounded_per_answer_and_what_the_ring_dropped_is_counted() {
    let world = World::new("limits:\n  max_output_bytes: 262144\n");
    let started = world
        .call(json!({"host_id": "web-1", "command": "head -c 3000000 /dev/zero | tr '\\0' x", "idle_timeout": 0}))
        .await
        .unwrap();
    let id = started["command_id"].as_str().unwrap().to_owned();
    let mut seen = 0;
    let mut dropped = 0;
    let mut answer = started;
    // A slow reader: the ring overflows while the program writes.
    for _ in 0..200 {
        let chunk = answer["output"].as_str().unwrap().len() as u64;
        assert!(chunk <= 262_144, "one answer is bounded: {chunk}");
        seen += chunk;
        dropped += answer["dropped_bytes"].as_u64().unwrap_or(0);
        if answer["running"] == false && answer["pending_bytes"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        answer = world
            .call(json!({"command_id": id, "idle_timeout": 0}))
            .await
            .unwrap();
    }
    answer["output"] = json!("...");
    assert_eq!(
        seen + dropped,
        3_000_000,
        "every byte is read or counted: {answer}"
    );
    assert!(dropped > 0, "{answer}");
    assert_eq!(answer["exit_code"], 0, "{answer}");
}

#[tokio::test]
async fn inputs_and_output_are_masked_in_answers_and_audit_records() {
    const CANARY: &str = "literal-canary-5678";
    let world = World::new("");
    let started = world
        .call(json!({"host_id": "web-1", "command": "sh", "env": {"TOKEN": CANARY}, "idle_timeout": 0.3}))
        .await
        .unwrap();
    let id = started["command_id"].as_str().unwrap().to_owned();
    let typed = world
        .send(&id, &format!("echo \"$TOKEN\" {CANARY}\n"))
        .await
        .unwrap();
    assert_eq!(typed["output"], "*** ***\n", "{typed}");
    let audit = world.audit_text();
    assert!(audit.contains("echo"), "the input is recorded");
    assert!(!audit.contains(CANARY), "{audit}");
}

#[tokio::test]
async fn limits_per_caller_and_the_idle_reaper_hold() {
    let world = World::new("limits:\n  max_commands_per_client: 2\n  command_idle_s: 1\n");
    let first = world.start("exec sleep 31.25", 0.0).await;
    let _second = world.start("exec sleep 31.25", 0.0).await;
    let error = world
        .call(json!({"host_id": "web-1", "command": "true", "idle_timeout": 0}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::SessionLimit, "{error:?}");
    // Another caller has its own allowance.
    world
        .call_as(
            "other",
            json!({"host_id": "web-1", "command": "true", "idle_timeout": 0}),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let error = world
        .call(json!({"command_id": first, "idle_timeout": 0}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::JobNotFound, "reaped: {error:?}");
    assert!(!sleeping("31.25"), "the reaper stopped the programs");
    assert!(world.audit_text().contains("command_stopped"));
    // Room again.
    world.start("true", 0.0).await;
}

#[tokio::test]
async fn close_stops_the_program_and_forgets_the_id() {
    let world = World::new("");
    let id = world.start("exec sleep 32.5", 0.0).await;
    let closed = world
        .call(json!({"command_id": id, "close": true}))
        .await
        .unwrap();
    assert_eq!(closed["closed"], true, "{closed}");
    assert_eq!(closed["running"], false, "{closed}");
    assert_eq!(closed["exit_signal"], "TERM", "{closed}");
    assert!(!sleeping("32.5"));
    let error = world
        .call(json!({"command_id": id, "idle_timeout": 0}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::JobNotFound);
}

#[tokio::test]
async fn signals_reach_the_program_and_pty_is_refused_on_local() {
    let world = World::new("local:\n  allow_exec: true\n");
    let id = world.start("exec sleep 33.75", 0.0).await;
    // TERM, not INT: a test run started in the background inherits SIGINT ignored,
    // which no child can undo (INT is covered over SSH, where sshd resets it).
    let signalled = world
        .call(json!({"command_id": id, "signal": "TERM", "idle_timeout": 3}))
        .await
        .unwrap();
    assert_eq!(signalled["exit_signal"], "TERM", "{signalled}");
    let error = world
        .call(json!({"host_id": "local", "command": "sh", "pty": true}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error:?}");
    assert!(error.message.contains("pty"), "{error:?}");
}

/// Whether a `sleep SECONDS` runs anywhere on this machine.
fn sleeping(seconds: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
            cmdline
                .split(|&byte| byte == 0)
                .any(|word| word == seconds.as_bytes())
                && cmdline.starts_with(b"sleep")
        })
    })
}
