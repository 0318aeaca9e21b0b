//! Rollouts through `warden mcp serve` on real sshds: a rolling change over 50 hosts in
//! batches of 5 that stops at the failing batch (`fail_fast`, `min_success_rate`) with
//! nothing run on the later ones (markers on disk say which hosts ran), a subset that a
//! dry run and its confirmed call agree on, the pause between batches, bad controls,
//! `push` and `sync` stopped by a host that fails, and the CLI's flags and table.
//!
//! Every sshd sets `WARDEN_TESTKIT_SSHD` to its own dir name in its sessions: that is
//! how a command (the same on every host) leaves a marker naming the host it ran on.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use warden_testkit::Fleet;

use super::client::{McpProcess, warden_command};
use super::{fleet, results};

/// Each host's `WARDEN_TESTKIT_SSHD`, by index.
fn tags(fleet: &Fleet) -> Vec<String> {
    fleet
        .hosts()
        .iter()
        .map(|host| {
            host.dir()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The host ids that left `{prefix}-{tag}` in `dir`.
fn marked(dir: &Path, tags: &[String], prefix: &str) -> BTreeSet<String> {
    (0..tags.len())
        .filter(|&index| dir.join(format!("{prefix}-{}", tags[index])).exists())
        .map(Fleet::host_id)
        .collect()
}

/// Hosts `first..=last` (1-based) as ids.
fn ids(first: usize, last: usize) -> BTreeSet<String> {
    (first - 1..last).map(Fleet::host_id).collect()
}

/// A command that marks the host it ran on in `dir`, then fails where `dir` holds a
/// `fail-` marker for that host.
fn marking(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "touch \"{dir}/ran-$WARDEN_TESTKIT_SSHD\" && test ! -e \"{dir}/fail-$WARDEN_TESTKIT_SSHD\""
    )
}

/// Makes host `index` (0-based) fail the `marking` command in `dir`.
fn fail_on(dir: &Path, tags: &[String], index: usize) {
    std::fs::write(dir.join(format!("fail-{}", tags[index])), "").unwrap();
}

fn host_ids(value: &Value) -> Vec<String> {
    results(value)
        .iter()
        .map(|host| host["host_id"].as_str().unwrap().to_owned())
        .collect()
}

fn statuses(value: &Value) -> Vec<String> {
    value["rollout"]["batches"]
        .as_array()
        .unwrap_or_else(|| panic!("no rollout in {value}"))
        .iter()
        .map(|batch| batch["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks a rollout over fleet-01..50 in batches of 5 that stopped after batch 3.
fn assert_stopped_after_batch_3(value: &Value, cause: &str, failed: u64) {
    let hosts = results(value);
    assert_eq!(hosts.len(), 50, "every host answers, run or not");
    for (index, host) in hosts.iter().enumerate() {
        assert_eq!(host["host_id"], Fleet::host_id(index), "plan order");
        if index < 15 {
            assert!(host.get("not_run").is_none(), "{host}");
        } else {
            assert_eq!(host["ok"], false, "{host}");
            assert!(
                host.get("error").is_none(),
                "not run is not an error: {host}"
            );
            let why = host["not_run"].as_str().unwrap_or_else(|| panic!("{host}"));
            assert!(why.contains("after batch 3 of 10"), "{why}");
        }
    }
    let summary = &value["summary"];
    assert_eq!(summary["success_count"], 15 - failed, "{summary}");
    assert_eq!(summary["fail_count"], failed, "{summary}");
    assert_eq!(summary["skipped_count"], 35, "{summary}");
    assert_eq!(summary["ok"], false);
    let stopped = &value["rollout"]["stopped"];
    assert_eq!(stopped["after_batch"], 3, "{stopped}");
    assert_eq!(stopped["cause"], cause, "{stopped}");
    assert_eq!(stopped["skipped_hosts"], 35);
    let mut expected = vec!["ran"; 3];
    expected.extend(["skipped"; 7]);
    assert_eq!(statuses(value), expected);
}

#[test]
fn a_rolling_change_over_50_hosts_stops_at_the_failing_batch() {
    let (fleet, home, config) = fleet(50, "");
    let tags = tags(&fleet);
    let mut mcp = McpProcess::start(home.path(), Some(&config));

    // fail_fast: two hosts of batch 3 fail; batches 4..10 never start.
    let markers = tempfile::tempdir().unwrap();
    fail_on(markers.path(), &tags, 10);
    fail_on(markers.path(), &tags, 12);
    let (value, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": marking(markers.path()), "batch_size": 5,
               "fail_fast": true, "confirm": true}),
    );
    assert!(!is_error, "{value}");
    assert_stopped_after_batch_3(&value, "fail_fast", 2);
    assert!(
        value["rollout"]["stopped"]["reason"]
            .as_str()
            .unwrap()
            .contains("2 host(s) of batch 3 failed"),
        "{value}"
    );
    assert_eq!(marked(markers.path(), &tags, "ran"), ids(1, 15));
    let batch = &value["rollout"]["batches"][2];
    assert_eq!(
        (batch["success_count"].clone(), batch["fail_count"].clone()),
        (json!(3), json!(2))
    );

    // min_success_rate 0.9: one failure in batch 2 (9 of 10) is tolerated, two more in
    // batch 3 (12 of 15) are not.
    let markers = tempfile::tempdir().unwrap();
    for index in [6, 10, 12] {
        fail_on(markers.path(), &tags, index);
    }
    let (value, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": marking(markers.path()), "batch_size": 5,
               "min_success_rate": "90%", "confirm": true}),
    );
    assert!(!is_error, "{value}");
    assert_stopped_after_batch_3(&value, "min_success_rate", 3);
    let reason = value["rollout"]["stopped"]["reason"].as_str().unwrap();
    assert!(reason.contains("12 of 15"), "{reason}");
    assert_eq!(value["rollout"]["batches"][1]["success_rate"], 0.9);
    assert_eq!(marked(markers.path(), &tags, "ran"), ids(1, 15));

    // Without a stop condition every batch runs.
    let markers = tempfile::tempdir().unwrap();
    let (value, _) = mcp.call(
        "exec",
        json!({"target": "all", "command": marking(markers.path()), "batch_size": "20%",
               "confirm": true}),
    );
    assert_eq!(statuses(&value), vec!["ran"; 5], "{value}");
    assert_eq!(value["summary"]["success_count"], 50);
    assert_eq!(marked(markers.path(), &tags, "ran"), ids(1, 50));

    // A subset: the dry run shows which hosts and batches; the confirmed call with its
    // plan_token runs exactly those, and only those leave a marker.
    let markers = tempfile::tempdir().unwrap();
    let subset = json!({"target": "all", "command": marking(markers.path()), "subset": 7,
                        "batch_size": 3});
    let mut dry = subset.clone();
    dry["dry_run"] = json!(true);
    let (preview, is_error) = mcp.call("exec", dry.clone());
    assert!(!is_error, "{preview}");
    let previewed: Vec<String> = preview["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|host| host.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(previewed.len(), 7);
    assert_eq!(
        previewed.iter().collect::<BTreeSet<_>>().len(),
        7,
        "distinct hosts"
    );
    assert_eq!(
        preview["policy"].as_array().unwrap().len(),
        7,
        "a verdict per host"
    );
    assert_eq!(preview["rollout"]["subset"], json!({"picked": 7, "of": 50}));
    assert_eq!(statuses(&preview), vec!["planned"; 3]);
    let batched: Vec<Value> = preview["rollout"]["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|batch| batch["hosts"].as_array().unwrap().clone())
        .collect();
    assert_eq!(
        batched,
        previewed.iter().map(|id| json!(id)).collect::<Vec<_>>()
    );
    assert!(
        marked(markers.path(), &tags, "ran").is_empty(),
        "a dry run runs nothing"
    );
    let (again, _) = mcp.call("exec", dry);
    assert_eq!(
        again["hosts"], preview["hosts"],
        "the same arguments draw the same hosts"
    );

    let mut run = subset.clone();
    run["confirm"] = json!(true);
    run["plan_token"] = preview["plan_token"].clone();
    let (value, is_error) = mcp.call("exec", run);
    assert!(!is_error, "{value}");
    assert_eq!(host_ids(&value), previewed);
    assert_eq!(value["summary"]["success_count"], 7);
    assert_eq!(
        marked(markers.path(), &tags, "ran"),
        previewed.iter().cloned().collect::<BTreeSet<_>>()
    );
    let mut seeded = subset.clone();
    seeded["dry_run"] = json!(true);
    seeded["subset_seed"] = json!("another draw");
    let (other, _) = mcp.call("exec", seeded);
    assert_ne!(other["hosts"], preview["hosts"], "a seed draws other hosts");
    assert_eq!(other["rollout"]["subset"]["seed"], "another draw");

    // batch_wait: the second batch starts at least the pause after the first ended.
    let markers = tempfile::tempdir().unwrap();
    let stamp = format!(
        "date +%s%3N > \"{}/at-$WARDEN_TESTKIT_SSHD\"",
        markers.path().display()
    );
    let (value, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": stamp, "subset": 4, "batch_size": 2,
               "batch_wait": 1500, "confirm": true}),
    );
    assert!(!is_error, "{value}");
    assert_eq!(statuses(&value), vec!["ran"; 2], "{value}");
    assert_eq!(value["rollout"]["batch_wait"], 1500);
    let at = |host: &Value| -> u64 {
        let index = (0..50)
            .find(|&i| json!(Fleet::host_id(i)) == *host)
            .unwrap();
        let path = markers.path().join(format!("at-{}", tags[index]));
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let batches = value["rollout"]["batches"].as_array().unwrap();
    let first_done = batches[0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(at)
        .max()
        .unwrap();
    let second_start = batches[1]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(at)
        .min()
        .unwrap();
    assert!(
        second_start >= first_done + 1400,
        "the second batch began {} ms after the first",
        second_start.saturating_sub(first_done)
    );
    assert!(value["summary"]["duration_ms"].as_u64().unwrap() >= 1500);

    // Bad controls: INVALID_INPUT with a hint, before anything runs.
    for bad in [
        json!({"batch_size": 0}),
        json!({"batch_size": "0%"}),
        json!({"batch_size": "many"}),
        json!({"subset": 0}),
        json!({"subset": 51}),
        json!({"subset_seed": "x"}),
        json!({"min_success_rate": 1.5}),
        json!({"min_success_rate": "150%"}),
        json!({"batch_wait": 600_001}),
    ] {
        let mut args = json!({"target": "all", "command": "true"});
        for (key, value) in bad.as_object().unwrap() {
            args[key] = value.clone();
        }
        let (error, is_error) = mcp.call("exec", args);
        assert!(is_error, "{bad}: {error}");
        assert_eq!(error["error"]["code"], "INVALID_INPUT", "{bad}: {error}");
        assert!(
            error["error"]["hint"]
                .as_str()
                .is_some_and(|hint| !hint.is_empty()),
            "{error}"
        );
    }
    // A batch_size that is not a count or a share fails the schema.
    let answer = mcp.request(
        "tools/call",
        json!({"name": "exec", "arguments": {"target": "all", "command": "true", "batch_size": -1}}),
    );
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch_size"),
        "{answer}"
    );

    // The CLI: the same controls as flags; the table shows batches and the stop.
    let cli = |json: bool| {
        let mut command = warden_command(home.path());
        command.arg("--config").arg(&config);
        if json {
            command.arg("--json");
        }
        command
            .args([
                "exec",
                "-t",
                "all",
                "--subset",
                "6",
                "--batch-size",
                "2",
                "--fail-fast",
            ])
            .args([
                "--batch-wait",
                "10",
                "--min-success-rate",
                "0.5",
                "--",
                "test",
                "-e",
                "/nonexistent",
            ])
            .output()
            .unwrap()
    };
    let output = cli(false);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    for line in [
        "BATCH",
        "batch 1/3: 2 hosts, 0 ok, 2 failed",
        "batch 2/3: 2 hosts, skipped",
        "stopped after batch 1: fail_fast",
        "0 ok, 2 failed, 4 skipped",
    ] {
        assert!(table.contains(line), "{line:?} in\n{table}");
    }
    let output = cli(true);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["summary"]["skipped_count"], 4, "{value}");
    assert_eq!(value["rollout"]["stopped"]["after_batch"], 1);
    assert_eq!(value["rollout"]["min_success_rate"], 0.5);
    assert!(mcp.close().success());
}

#[test]
fn push_and_sync_roll_out_in_batches_and_stop_at_a_failing_host() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    for sub in ["src/tree", "dest"] {
        std::fs::create_dir_all(base.join(sub)).unwrap();
    }
    std::fs::write(base.join("src/app.conf"), "listen = 443\n").unwrap();
    std::fs::write(base.join("src/tree/index.html"), "hello\n").unwrap();
    // fleet-01 may not write below dest: there the push and the sync fail.
    let (_fleet, home, config) = fleet(
        3,
        &format!(
            "policy:\n  allowed_roots: ['{base}']\n  roles:\n    - name: locked\n      hosts: ['host:fleet-01']\n      deny_paths: ['{base}/dest/.*']\n",
            base = base.display()
        ),
    );
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let dest = base.join("dest/app.conf");
    let push = json!({"target": "all", "source": base.join("src/app.conf"), "path": dest,
                      "batch_size": 1});

    // A dry run lists the batches and each host's verdict.
    let mut dry = push.clone();
    dry["dry_run"] = json!(true);
    let (value, is_error) = mcp.call("push", dry);
    assert!(!is_error, "{value}");
    assert_eq!(statuses(&value), vec!["planned"; 3]);
    assert_eq!(results(&value).len(), 3);
    assert_eq!(
        results(&value)[0]["ok"],
        false,
        "denied on fleet-01: {value}"
    );
    assert_eq!(results(&value)[1]["action"], "created", "{value}");

    // fail_fast: fleet-01 (batch 1) fails, so nothing is written by the others.
    let mut run = push.clone();
    run["fail_fast"] = json!(true);
    let (value, is_error) = mcp.call("push", run);
    assert!(!is_error, "{value}");
    assert_eq!(
        statuses(&value),
        vec!["ran", "skipped", "skipped"],
        "{value}"
    );
    assert_eq!(value["summary"]["skipped_count"], 2);
    assert_eq!(value["summary"]["fail_count"], 1);
    assert!(results(&value)[1]["not_run"].is_string(), "{value}");
    assert!(!dest.exists(), "no skipped host wrote the file");

    // A subset without fleet-01 pushes on its two hosts.
    let (value, is_error) = mcp.call(
        "push",
        json!({"target": "host:fleet-02,host:fleet-03", "source": base.join("src/app.conf"),
               "path": dest, "subset": 1, "subset_seed": "one"}),
    );
    assert!(!is_error, "{value}");
    assert_eq!(results(&value).len(), 1, "{value}");
    assert_eq!(value["rollout"]["subset"]["picked"], 1);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "listen = 443\n");

    // sync: min_success_rate 1 stops after fleet-01; the directory is never made.
    let synced = base.join("dest/site");
    let (value, is_error) = mcp.call(
        "sync",
        json!({"target": "all", "source": base.join("src/tree"), "path": synced,
               "batch_size": 1, "min_success_rate": 1}),
    );
    assert!(!is_error, "{value}");
    assert_eq!(
        statuses(&value),
        vec!["ran", "skipped", "skipped"],
        "{value}"
    );
    assert_eq!(value["rollout"]["stopped"]["cause"], "min_success_rate");
    assert_eq!(value["summary"]["skipped_count"], 2);
    assert!(!synced.exists(), "no skipped host synced");

    // Without fleet-01 the sync runs batch after batch.
    let (value, is_error) = mcp.call(
        "sync",
        json!({"target": "host:fleet-02,host:fleet-03", "source": base.join("src/tree"),
               "path": synced, "batch_size": 1, "fail_fast": true}),
    );
    assert!(!is_error, "{value}");
    assert_eq!(statuses(&value), vec!["ran", "ran"], "{value}");
    assert_eq!(
        std::fs::read_to_string(synced.join("index.html")).unwrap(),
        "hello\n"
    );
    assert!(mcp.close().success());
}

/// `rerun: "failure"` with `last_job_id` runs exactly the hosts that did not succeed
/// (failed, or not run after a stop); `"success"` the others; bad pairs are refused.
#[test]
fn rerun_targets_exactly_the_failed_set() {
    let (fleet, home, config) = fleet(6, "");
    let tags = tags(&fleet);
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let first = tempfile::tempdir().unwrap();
    fail_on(first.path(), &tags, 2);
    fail_on(first.path(), &tags, 3);
    // Batches of 2 with fail_fast: batch 2 fails, batch 3 is not run.
    let (value, _) = mcp.call(
        "exec",
        json!({"target": "all", "command": marking(first.path()), "batch_size": 2,
               "fail_fast": true, "confirm": true}),
    );
    let job = value["summary"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(marked(first.path(), &tags, "ran"), ids(1, 4));
    let again = tempfile::tempdir().unwrap();
    let (value, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": marking(again.path()), "rerun": "failure",
               "last_job_id": job, "confirm": true}),
    );
    assert!(!is_error, "{value}");
    let expected: BTreeSet<String> = [2, 3, 4, 5].into_iter().map(Fleet::host_id).collect();
    assert_eq!(marked(again.path(), &tags, "ran"), expected, "{value}");
    assert_eq!(
        host_ids(&value).into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    let (value, _) = mcp.call(
        "exec",
        json!({"target": "all", "command": "true", "rerun": "success", "last_job_id": job}),
    );
    let succeeded: BTreeSet<String> = [0, 1].into_iter().map(Fleet::host_id).collect();
    assert_eq!(
        host_ids(&value).into_iter().collect::<BTreeSet<_>>(),
        succeeded
    );
    for (args, code) in [
        (
            json!({"target": "all", "command": "true", "rerun": "failure"}),
            "INVALID_INPUT",
        ),
        (
            json!({"target": "all", "command": "true", "last_job_id": job}),
            "INVALID_INPUT",
        ),
        (
            json!({"target": "all", "command": "true", "rerun": "failure", "last_job_id": "job_nope"}),
            "JOB_NOT_FOUND",
        ),
        (
            json!({"target": "host:fleet-01", "command": "true", "rerun": "failure", "last_job_id": job}),
            "TARGET_EMPTY",
        ),
    ] {
        let (refused, is_error) = mcp.call("exec", args.clone());
        assert!(is_error, "{args}: {refused}");
        assert_eq!(refused["error"]["code"], code, "{args}: {refused}");
    }
}
