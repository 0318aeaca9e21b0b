//! The audit log with several `warden mcp serve` processes on one state dir, processes
//! killed under load, and a saved anchor against rewrites and cut tails.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{McpProcess, warden_command};
use crate::{app_tree, fleet_allowing};

/// Every record of the log, oldest first (`warden audit tail --json`).
fn all_records(home: &Path, config: &Path) -> Vec<Value> {
    let output = warden_command(home)
        .args(["--config", &config.display().to_string()])
        .args(["--json", "audit", "tail", "-n", "1000"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice::<Value>(&output.stdout).unwrap()["records"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap_or_default())
}

/// `warden audit verify --json [--anchor FILE]`: its report and exit code.
fn verify(home: &Path, config: &Path, anchor: Option<&Path>) -> (Value, i32) {
    let mut command = warden_command(home);
    command
        .args(["--config", &config.display().to_string()])
        .args(["--json", "audit", "verify"]);
    if let Some(anchor) = anchor {
        command.args(["--anchor", &anchor.display().to_string()]);
    }
    let output = command.output().unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {output:?}"));
    (report, output.status.code().unwrap_or(-1))
}

/// Sends `count` mutating calls (each a directory of its own) and `count` read-only
/// ones without waiting, then collects the answers.
fn load(mcp: &mut McpProcess, root: &Path, name: &str, count: usize) -> Vec<Value> {
    let mut ids = Vec::new();
    for index in 0..count {
        let path = root.join(format!("{name}-{index}"));
        ids.push(mcp.send_request(
            "tools/call",
            json!({"name": "fs_mkdir", "arguments": {"host_id": "fleet-01", "path": path.display().to_string()}}),
        ));
        ids.push(mcp.send_request("tools/call", json!({"name": "status", "arguments": {}})));
    }
    mcp.answers(&ids)
}

#[test]
fn five_servers_on_one_state_dir_keep_one_verifiable_chain() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let servers: Vec<McpProcess> = (0..5)
        .map(|_| McpProcess::start(home.path(), Some(&config)))
        .collect();
    // Each server's load in its own thread, so the five write at the same time.
    let threads: Vec<_> = servers
        .into_iter()
        .enumerate()
        .map(|(index, mut mcp)| {
            let root = root.clone();
            std::thread::spawn(move || {
                let answers = load(&mut mcp, &root, &format!("s{index}"), 20);
                assert_eq!(mcp.close().code(), Some(0));
                answers
            })
        })
        .collect();
    for thread in threads {
        for answer in thread.join().unwrap() {
            assert_eq!(answer["result"]["isError"], json!(false), "{answer}");
        }
    }
    let (report, code) = verify(home.path(), &config, None);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["head_signed"], true);
    let records = all_records(home.path(), &config);
    let mkdirs = records
        .iter()
        .filter(|record| record["tool"] == "fs_mkdir" && record["phase"] == "completed")
        .count();
    assert_eq!(mkdirs, 100);
    let instances: std::collections::HashSet<_> = records
        .iter()
        .map(|record| record["instance"].clone())
        .collect();
    assert!(instances.len() >= 5, "{instances:?}");
    // Clean exits leave no live files behind.
    let live = home.path().join("state/audit/live");
    let left: Vec<_> = std::fs::read_dir(live).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_killed_server_leaves_every_acknowledged_call_recorded_and_the_rest_unknown() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let mut unknown = 0;
    for round in 0..3 {
        let mut mcp = McpProcess::start(home.path(), Some(&config));
        let quick: Vec<u64> = (0..10)
            .map(|index| {
                let path = root.join(format!("k{round}-{index}"));
                mcp.send_request(
                    "tools/call",
                    json!({"name": "fs_mkdir", "arguments": {"host_id": "fleet-01", "path": path.display().to_string()}}),
                )
            })
            .collect();
        for _ in 0..5 {
            mcp.send_request(
                "tools/call",
                json!({"name": "exec", "arguments": {"target": "host:fleet-01", "command": "sleep 30"}}),
            );
        }
        // The quick calls answer; kill -9 with the slow ones in flight.
        let acknowledged = mcp.answers(&quick);
        std::thread::sleep(Duration::from_millis(200 + 100 * round as u64));
        mcp.child.kill().unwrap();
        mcp.child.wait().unwrap();
        let records = all_records(home.path(), &config);
        for answer in &acknowledged {
            assert_eq!(answer["result"]["isError"], json!(false), "{answer}");
            let path = &answer["result"]["structuredContent"]["path"];
            let phases: Vec<&Value> = records
                .iter()
                .filter(|record| &record["args"]["path"] == path)
                .map(|record| &record["phase"])
                .collect();
            assert_eq!(phases, [&json!("requested"), &json!("completed")], "{path}");
        }
        // The next process (the CLI above) completed every open call.
        let mut open = std::collections::HashMap::new();
        for record in records
            .iter()
            .filter(|record| record["tool"] == "fs_mkdir" || record["tool"] == "exec")
        {
            let job = record["job_id"].as_str().unwrap().to_owned();
            match record["phase"].as_str() {
                Some("requested") => *open.entry(job).or_insert(0) += 1,
                Some("completed") => *open.entry(job).or_insert(0) -= 1,
                _ => {}
            }
        }
        assert!(open.values().all(|count| *count == 0), "{open:?}");
        unknown = records
            .iter()
            .filter(|record| record["outcome"] == "outcome_unknown")
            .count();
        let (report, code) = verify(home.path(), &config, None);
        assert_eq!(code, 0, "{report}");
    }
    assert_eq!(unknown, 15, "every slow call was in flight at its kill");
}

#[test]
fn a_saved_anchor_finds_a_cut_tail_after_the_head_was_deleted() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    load(&mut mcp, &root, "a", 5);
    assert_eq!(mcp.close().code(), Some(0));
    let anchor = warden_command(home.path())
        .args(["--config", &config.display().to_string(), "audit", "anchor"])
        .output()
        .unwrap();
    assert!(anchor.status.success(), "{anchor:?}");
    let anchor_file = home.path().join("anchor.json");
    std::fs::write(&anchor_file, &anchor.stdout).unwrap();
    let saved: Value = serde_json::from_slice(&anchor.stdout).unwrap();
    assert!(saved["seq"].as_u64().unwrap() > 10, "{saved}");

    // Cut the tail and delete the head: alone, the log still reads as whole.
    let segment = home.path().join("state/audit/audit-000001.jsonl");
    let text = std::fs::read_to_string(&segment).unwrap();
    let kept: Vec<&str> = text.lines().take(6).collect();
    std::fs::write(&segment, kept.join("\n") + "\n").unwrap();
    std::fs::remove_file(home.path().join("state/audit/head.json")).unwrap();
    let (report, code) = verify(home.path(), &config, Some(&anchor_file));
    assert_eq!(code, 1, "{report}");
    let problem = report["first_bad"]["problem"].as_str().unwrap();
    assert!(problem.contains("cut from the end"), "{problem}");
}

fn send_signal(mcp: &McpProcess, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &mcp.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM: the calls in flight get the grace to finish and answer; the work that
/// outlives it answers as a running job, goes on on its host, and the next warden
/// takes it over.
#[test]
fn sigterm_answers_the_calls_in_flight_and_records_them() {
    let (_fleet, home, config) = crate::fleet(1, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    // Ten that finish within the grace, two that outlive it.
    let quick: Vec<u64> = (0..10)
        .map(|_| {
            mcp.send_request(
                "tools/call",
                json!({"name": "exec", "arguments": {"target": "host:fleet-01", "command": "sleep 1; echo done"}}),
            )
        })
        .collect();
    let slow: Vec<u64> = (0..2)
        .map(|_| {
            mcp.send_request(
                "tools/call",
                json!({"name": "exec", "arguments": {"target": "host:fleet-01", "command": "sleep 9; echo late"}}),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    send_signal(&mcp, "-TERM");
    for answer in mcp.answers(&quick) {
        let result = &answer["result"]["structuredContent"]["results"][0];
        assert_eq!(result["stdout"], "done\n", "{answer}");
    }
    let mut jobs = Vec::new();
    for answer in mcp.answers(&slow) {
        let view = &answer["result"]["structuredContent"];
        assert_eq!(view["state"], "running", "{answer}");
        jobs.push(view["job_id"].as_str().unwrap().to_owned());
    }
    let started = std::time::Instant::now();
    while mcp.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let records = all_records(home.path(), &config);
    let exec = |phase: &str| {
        records
            .iter()
            .filter(|record| record["tool"] == "exec" && record["phase"] == phase)
            .count()
    };
    assert_eq!((exec("requested"), exec("completed")), (12, 12));
    // The two left running are unknown to the process that stopped...
    let unknown: Vec<&Value> = records
        .iter()
        .filter(|record| record["outcome"] == "outcome_unknown")
        .collect();
    assert_eq!(unknown.len(), 2, "{unknown:?}");
    // ...and the next one takes them over and sees them end.
    let mut next = McpProcess::start(home.path(), Some(&config));
    for job in &jobs {
        let mut view = Value::Null;
        for _ in 0..6 {
            let (waited, _) = next.call("jobs_wait", json!({"job_id": job}));
            view = waited;
            if view["state"] != "running" {
                break;
            }
        }
        assert_eq!(view["state"], "succeeded", "{view}");
        assert_eq!(view["result"]["results"][0]["stdout"], "late\n", "{view}");
    }
}

/// A host key trusted on first use (`accept-new`) is an audit event the operator can
/// review: which host, which fingerprint, which call.
#[test]
fn a_host_key_learned_under_accept_new_is_in_the_audit_log() {
    let (_fleet, home, config) = crate::fleet(1, "");
    let yaml = std::fs::read_to_string(&config).unwrap();
    let fresh = home.path().join("fresh_known_hosts");
    let yaml = yaml.replacen(
        "  use_ssh_config: false\n",
        &format!(
            "  use_ssh_config: false\n  host_key_checking: accept-new\n  known_hosts: {}\n",
            fresh.display()
        ),
        1,
    );
    // The fleet's own known_hosts line goes: this config starts knowing no key.
    let yaml: String = yaml
        .lines()
        .filter(|line| !line.contains("cfg/known_hosts"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&config, yaml).unwrap();
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (answer, is_error) = mcp.call("run", json!({"host_id": "fleet-01", "command": "true"}));
    assert!(!is_error, "{answer}");
    assert_eq!(mcp.close().code(), Some(0));
    let learned: Vec<Value> = all_records(home.path(), &config)
        .into_iter()
        .filter(|record| record["event"] == "host_key_learned")
        .collect();
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert!(
        learned[0]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert!(std::fs::read_to_string(&fresh).unwrap().contains("ssh-"));
}
