//! Jobs against real sshd: a call answers at its wait and the work goes on; a killed
//! warden's jobs are taken over and reconciled by the next one, none run twice, and
//! the processes killed meanwhile are `lost`; cancel and timeouts leave nothing behind
//! (a `setsid nohup … &` child included); output is read back by offset and tail, by
//! its owner only.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::McpProcess;

/// Waits for `job` to end (jobs_wait rounds); its final view.
fn wait_for(mcp: &mut McpProcess, job: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (view, is_error) = mcp.call("jobs_wait", json!({"job_id": job, "wait_ms": 5000}));
        assert!(!is_error, "{view}");
        if view["state"] != "running" {
            return view;
        }
        assert_eq!(view["retry_after_ms"], 0, "{view}");
        assert!(
            started.elapsed() < within,
            "job {job} still running: {view}"
        );
    }
}

/// The login's home on the fleet's hosts (they share this machine).
fn remote_home(mcp: &mut McpProcess) -> String {
    let (answer, is_error) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "printf %s \"$HOME\""}),
    );
    assert!(!is_error, "{answer}");
    answer["stdout"].as_str().unwrap().to_owned()
}

/// Processes on this machine whose command line is `needle`.
fn processes_with(needle: &str) -> usize {
    let output = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.trim() == needle)
        .count()
}

#[test]
fn a_long_command_answers_at_its_wait_with_a_job_and_ends_succeeded() {
    let (_fleet, home, config) = crate::fleet(2, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let started = Instant::now();
    let id = mcp.send_request(
        "tools/call",
        json!({
            "name": "exec",
            "arguments": {"target": "all", "command": "for i in 1 2 3 4 5 6 7; do echo line-$i; sleep 1; done", "wait_ms": 6000},
            "_meta": {"progressToken": "p-1"},
        }),
    );
    let (answer, notifications) = mcp.answer_and_notifications(id);
    let waited = started.elapsed();
    let view = &answer["result"]["structuredContent"];
    assert_eq!(view["state"], "running", "{answer}");
    assert_eq!(view["hosts"], 2, "{view}");
    assert!(waited < Duration::from_secs(7 + 5), "{waited:?}");
    // The output so far, per host.
    let output = view["output"].as_array().expect("output so far");
    assert!(
        output
            .iter()
            .any(|host| host["stdout_tail"].as_str().unwrap_or("").contains("line-")),
        "{view}"
    );
    // A progress notice while it waited, with hosts and the last line.
    let progress: Vec<&Value> = notifications
        .iter()
        .filter(|message| message["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "{notifications:?}");
    assert_eq!(progress[0]["params"]["progressToken"], "p-1");
    assert!(
        progress[0]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("hosts done"),
        "{progress:?}"
    );
    let job = view["job_id"].as_str().unwrap().to_owned();
    let done = wait_for(&mut mcp, &job, Duration::from_secs(30));
    assert_eq!(done["state"], "succeeded", "{done}");
    let results = done["result"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results[0]["stdout"].as_str().unwrap().ends_with("line-7\n"),
        "{done}"
    );
    // The listing has it, without its answer.
    let (listed, _) = mcp.call("jobs_list", json!({}));
    let entry = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["job_id"] == job.as_str())
        .expect("listed");
    assert_eq!(entry["state"], "succeeded");
    assert!(entry.get("result").is_none(), "{entry}");
}

#[test]
fn a_killed_warden_s_jobs_are_reconciled_by_the_next_none_twice_and_the_killed_ones_lost() {
    // Ten at once per host (the default allows 8).
    let (_fleet, home, config) = crate::fleet(5, "limits:\n  max_per_host: 16\n");
    let marks = tempfile::tempdir().unwrap();
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let spools = format!("{}/.warden/jobs", remote_home(&mut mcp));
    let mut jobs = Vec::new();
    for index in 0..50 {
        let host = format!("fleet-0{}", index % 5 + 1);
        let mark = marks.path().join(format!("ran-{index}"));
        let (answer, is_error) = mcp.call(
            "run",
            json!({
                "host_id": host,
                "command": format!("echo ran >> {}; sleep 8; echo finished-{index}", mark.display()),
                "wait_ms": 0,
            }),
        );
        assert!(!is_error, "{answer}");
        assert_eq!(answer["state"], "running", "{answer}");
        jobs.push(answer["job_id"].as_str().unwrap().to_owned());
    }
    // Every command started (its spool has its pid) before warden dies.
    let started = Instant::now();
    while !jobs
        .iter()
        .all(|job| Path::new(&format!("{spools}/{job}-0-0.pid")).exists())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "spools missing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    mcp.child.kill().unwrap();
    mcp.child.wait().unwrap();
    // While warden is down, five of the commands are killed with their process group.
    let killed: Vec<&String> = jobs.iter().step_by(10).collect();
    for job in &killed {
        let pid = std::fs::read_to_string(format!("{spools}/{job}-0-0.pid")).unwrap();
        let group = pid.split_whitespace().next().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let restarted = Instant::now();
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let mut states = std::collections::BTreeMap::new();
    for job in &jobs {
        let view = wait_for(&mut mcp, job, Duration::from_secs(60));
        states.insert(job.clone(), view);
    }
    eprintln!("restart to all 50 reconciled: {:?}", restarted.elapsed());
    for (job, view) in &states {
        let expected = if killed.contains(&job) {
            "lost"
        } else {
            "succeeded"
        };
        assert_eq!(view["state"], expected, "{job}: {view}");
    }
    let finished = states
        .values()
        .filter(|view| {
            view["result"]["results"][0]["stdout"]
                .as_str()
                .is_some_and(|out| out.starts_with("finished-"))
        })
        .count();
    assert_eq!(finished, 45);
    // None ran twice.
    for index in 0..50 {
        let ran = std::fs::read_to_string(marks.path().join(format!("ran-{index}"))).unwrap();
        assert_eq!(ran, "ran\n", "job {index}");
    }
    // The take-overs are in the audit log.
    let output = crate::client::warden_command(home.path())
        .args([
            "--config",
            config.to_str().unwrap(),
            "audit",
            "verify",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn cancel_and_timeouts_leave_no_process_behind_a_setsid_child_included() {
    let (_fleet, home, config) = crate::fleet(1, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    // cancel: the job and the child that left its process group and session.
    let (answer, _) = mcp.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "setsid nohup sleep 313 >/dev/null 2>&1 & sleep 314", "wait_ms": 1000}),
    );
    assert_eq!(answer["state"], "running", "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    assert_eq!(processes_with("sleep 313"), 1);
    let (cancelled, is_error) = mcp.call("cancel", json!({"job_id": job}));
    assert!(!is_error, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["may_still_run"], false, "{cancelled}");
    assert_eq!(processes_with("sleep 313"), 0);
    assert_eq!(processes_with("sleep 314"), 0);
    // Cancelling again shows it unchanged.
    let (again, _) = mcp.call("cancel", json!({"job_id": job}));
    assert_eq!(again["state"], "cancelled");

    // A timeout, within the wait and after it.
    let (timed, _) = mcp.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "setsid nohup sleep 317 >/dev/null 2>&1 & sleep 318", "timeout_ms": 1500}),
    );
    assert_eq!(
        timed["results"][0]["error"]["code"], "CMD_TIMEOUT",
        "{timed}"
    );
    assert_eq!(processes_with("sleep 317"), 0);
    assert_eq!(processes_with("sleep 318"), 0);
    let (running, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "setsid nohup sleep 319 >/dev/null 2>&1 & sleep 320", "timeout_ms": 2000, "wait_ms": 200}),
    );
    let job = running["job_id"].as_str().unwrap().to_owned();
    let ended = wait_for(&mut mcp, &job, Duration::from_secs(20));
    assert_eq!(ended["state"], "timed_out", "{ended}");
    assert_eq!(ended["result"]["error"]["code"], "CMD_TIMEOUT", "{ended}");
    assert_eq!(processes_with("sleep 319"), 0);
}

#[test]
fn output_is_read_by_offset_and_tail_and_only_by_its_owner() {
    let (_fleet, home, config) = crate::fleet(1, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (answer, is_error) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "seq 1 20000; echo oops >&2"}),
    );
    assert!(!is_error, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let whole: String = (1..=20000).map(|n| format!("{n}\n")).collect();
    let (part, _) = mcp.call(
        "jobs_output",
        json!({"job_id": job, "host_id": "fleet-01", "offset": 10, "length": 20}),
    );
    assert_eq!(part["data"], &whole[10..30], "{part}");
    assert_eq!(part["total_bytes"], whole.len());
    assert_eq!(part["eof"], false);
    let (tail, _) = mcp.call(
        "jobs_output",
        json!({"job_id": job, "host_id": "fleet-01", "tail": 12}),
    );
    assert_eq!(tail["data"], &whole[whole.len() - 12..], "{tail}");
    assert_eq!(tail["eof"], true);
    let (err, _) = mcp.call(
        "jobs_output",
        json!({"job_id": job, "host_id": "fleet-01", "stream": "stderr"}),
    );
    assert_eq!(err["data"], "oops\n", "{err}");
    let (wrong, is_error) = mcp.call("jobs_output", json!({"job_id": job, "host_id": "nope"}));
    assert!(is_error, "{wrong}");
    assert_eq!(wrong["error"]["code"], "INVALID_INPUT", "{wrong}");
    // Another identity sees no such job.
    let mut other = McpProcess::start_with(
        home.path(),
        Some(&config),
        &[("WARDEN_IDENTITY", "mallory")],
    );
    for tool in ["jobs_show", "jobs_wait", "cancel"] {
        let (refused, is_error) = other.call(tool, json!({"job_id": job}));
        assert!(is_error, "{tool}: {refused}");
        assert_eq!(
            refused["error"]["code"], "JOB_NOT_FOUND",
            "{tool}: {refused}"
        );
    }
    let (refused, _) = other.call("jobs_output", json!({"job_id": job, "host_id": "fleet-01"}));
    assert_eq!(refused["error"]["code"], "JOB_NOT_FOUND", "{refused}");
    let (listed, _) = other.call("jobs_list", json!({}));
    assert_eq!(listed["jobs"], json!([]), "{listed}");
    // The operator sees every job, and reads its output raw.
    let cli = |args: &[&str]| {
        let output = crate::client::warden_command(home.path())
            .args(["--config", config.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        output.stdout
    };
    let listed: Value = serde_json::from_slice(&cli(&["jobs", "list", "--json"])).unwrap();
    let entry = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["job_id"] == job.as_str())
        .expect("the agent's job is listed for the operator")
        .clone();
    assert!(entry["owner"].as_str().unwrap().contains("e2e"), "{entry}");
    let table = String::from_utf8(cli(&["jobs", "list"])).unwrap();
    assert!(
        table.contains(&job) && table.contains("succeeded"),
        "{table}"
    );
    assert_eq!(cli(&["jobs", "output", &job, "fleet-01"]), whole.as_bytes());
    assert_eq!(
        cli(&["jobs", "output", &job, "fleet-01", "--tail", "6"]),
        b"20000\n"
    );
    // wait_ms out of range is refused with the rule.
    let answer = mcp.request(
        "tools/call",
        json!({"name": "run", "arguments": {"host_id": "fleet-01", "command": "true", "wait_ms": -1}}),
    );
    assert!(answer.to_string().contains("wait_ms"), "{answer}");
}

/// Review of the spool (issue 11): under dash (the local host's `/bin/sh`) a cancel
/// reaches the whole group, so the command's shell does not go on to its next step; a
/// command killed from outside with TERM reads as `lost`, not `succeeded` (bash ran
/// its EXIT trap with status 0); every host's output is found, not only the first's.
#[test]
fn review_spool_stops_under_dash_records_no_false_success_and_reads_every_host() {
    let (_fleet, home, config) = crate::fleet(2, "local:\n  allow_exec: true\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (answer, _) = mcp.call(
        "run",
        json!({"host_id": "local", "command": "sleep 321; sleep 322", "wait_ms": 500, "timeout_ms": 600000}),
    );
    assert_eq!(answer["state"], "running", "{answer}");
    let (cancelled, _) = mcp.call("cancel", json!({"job_id": answer["job_id"]}));
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(processes_with("sleep 321"), 0);
    assert_eq!(
        processes_with("sleep 322"),
        0,
        "the shell went on after the cancel"
    );

    let (answer, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "sleep 323", "wait_ms": 300}),
    );
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let spools = format!("{}/.warden/jobs", remote_home(&mut mcp));
    let pid = std::fs::read_to_string(format!("{spools}/{job}-0-0.pid")).unwrap();
    let group = pid.split_whitespace().next().unwrap().to_owned();
    let status = std::process::Command::new("kill")
        .args(["-TERM", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = wait_for(&mut mcp, &job, Duration::from_secs(30));
    assert_ne!(ended["state"], "succeeded", "{ended}");

    let (answer, _) = mcp.call(
        "exec",
        json!({"target": "all", "command": "echo from-$WARDEN_TESTKIT_SSHD"}),
    );
    let job = answer["summary"]["job_id"].as_str().unwrap().to_owned();
    for host in ["fleet-01", "fleet-02"] {
        let (read, is_error) = mcp.call("jobs_output", json!({"job_id": job, "host_id": host}));
        assert!(!is_error, "{host}: {read}");
        assert!(
            read["data"].as_str().unwrap().starts_with("from-"),
            "{read}"
        );
    }
}
