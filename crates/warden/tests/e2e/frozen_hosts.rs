//! A host whose sshd is frozen (SIGSTOP on its whole process tree), through `warden mcp
//! serve`: a fan-out answers the other hosts and the frozen one's error within its
//! deadline, `run` on it fails the same way, and once thawed it answers on a new
//! connection (docs/ssh.md).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::McpProcess;

/// The connect deadline configured here, and the generous bound "within it" is
/// asserted as: reaching a pooled connection that froze costs at most two deadlines.
const DEADLINE_MS: u64 = 3_000;
const BOUND: Duration = Duration::from_secs(15);

/// Puts `connect_timeout_ms` into the `ssh:` section the fleet wrote.
fn with_connect_deadline(config: &Path) {
    let yaml = std::fs::read_to_string(config).unwrap();
    let yaml = yaml.replacen(
        "ssh:\n",
        &format!("ssh:\n  connect_timeout_ms: {DEADLINE_MS}\n"),
        1,
    );
    std::fs::write(config, yaml).unwrap();
}

fn connects(mcp: &mut McpProcess) -> u64 {
    let (status, is_error) = mcp.call("status", json!({}));
    assert!(!is_error, "{status}");
    status["connections"]["connects"].as_u64().unwrap()
}

/// The error object of a frozen host: `SSH_CONN_FAILED`, transient, with a hint.
fn assert_unresponsive(error: &Value, host: &str) {
    assert_eq!(error["code"], "SSH_CONN_FAILED", "{error}");
    assert_eq!(error["transient"], true, "{error}");
    assert_eq!(error["host_id"], host, "{error}");
    assert!(error["hint"].as_str().unwrap().contains("Retry"), "{error}");
}

#[test]
fn a_frozen_host_fails_within_its_deadline_and_answers_again_once_thawed() {
    let (fleet, home, config) = super::fleet(3, "");
    with_connect_deadline(&config);
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (value, is_error) = mcp.call("exec", json!({"target": "all", "command": "echo up"}));
    assert!(!is_error, "{value}");
    let before = connects(&mut mcp);
    assert_eq!(before, 3);

    let frozen = &fleet.hosts()[1];
    frozen.freeze();
    // Its pooled connection is half-open now: the fan-out must not wait on it past
    // its deadline, and must answer the two others.
    let started = Instant::now();
    let (value, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": "echo up", "fold": false}),
    );
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert!(!is_error, "per-host failures are results: {value}");
    let results = super::results(&value);
    assert_eq!(results.len(), 3);
    for (index, result) in results.iter().enumerate() {
        if index == 1 {
            assert_eq!(result["host_id"], "fleet-02");
            assert_eq!(result["ok"], false, "{result}");
            assert_unresponsive(&result["error"], "fleet-02");
        } else {
            assert_eq!(result["ok"], true, "{result}");
            assert_eq!(result["stdout"], "up\n");
        }
    }

    let started = Instant::now();
    let (value, is_error) = mcp.call("run", json!({"host_id": "fleet-02", "command": "echo up"}));
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert!(is_error, "{value}");
    assert_unresponsive(&value["error"], "fleet-02");

    frozen.thaw();
    let (value, is_error) = mcp.call("run", json!({"host_id": "fleet-02", "command": "echo up"}));
    assert!(!is_error, "{value}");
    assert_eq!(value["stdout"], "up\n", "{value}");
    assert_eq!(connects(&mut mcp), before + 1, "reconnected");
}
