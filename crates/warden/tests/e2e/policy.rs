//! Policy through `warden mcp serve` against real sshd: the bypass corpus leaves no
//! sentinel file on the host and `policy_test` agrees with `exec`; the everyday corpus
//! runs at once; destructive commands preview with a plan token that binds what runs;
//! a dry run lists each host's verdict; warden's own files are out of reach even with
//! unsafe-local on.

use serde_json::json;
use std::path::Path;

use crate::client::McpProcess;
use crate::{fleet, results};

const BYPASS: &str = include_str!("../../../warden-core/src/policy/corpus/bypass.txt");
const EVERYDAY: &str = include_str!("../../../warden-core/src/policy/corpus/everyday.txt");

/// A directory every login may write in: the commands' working directory, where a
/// command that got through leaves `f` or `x`.
fn sentinel_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    dir
}

/// `class<TAB>command` lines (`⏎` is a newline), as the policy corpus test reads them.
fn bypass_corpus() -> Vec<(String, String)> {
    BYPASS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split_once('\t'))
        .map(|(class, command)| (class.to_owned(), command.replace('⏎', "\n")))
        .collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_bypass_class_is_refused_on_a_real_host_and_policy_test_agrees() {
    let (_fleet, home, config) = fleet(1, "policy:\n  deny_commands: ['touch\\b.*']\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let dir = sentinel_dir();
    let directory = dir.path().display().to_string();
    let corpus = bypass_corpus();
    let mut through = Vec::new();
    for (class, command) in &corpus {
        let (answer, is_error) = mcp.call(
            "exec",
            json!({"target": "fleet-01", "command": command, "working_directory": directory, "timeout_ms": 5000}),
        );
        let (test, _) = mcp.call(
            "policy_test",
            json!({"host_id": "fleet-01", "command": command}),
        );
        if !is_error || answer["error"]["code"] != "POLICY_DENIED" {
            through.push(format!("{class}: {command:?} → {answer}"));
        }
        assert_eq!(
            test["allowed"], false,
            "policy_test disagrees with exec on {command:?}: {test}"
        );
        assert!(
            answer["error"]["hint"]
                .as_str()
                .is_some_and(|hint| !hint.is_empty()),
            "a denial says what to do next: {answer}"
        );
    }
    // Call-level smuggling: a shell fed its script on stdin, assignments in argv,
    // environment that changes what runs.
    for arguments in [
        json!({"command": "sh", "stdin": "touch f"}),
        json!({"argv": ["sh", "-c", "touch f"]}),
        json!({"argv": ["sudo", "-n", "touch", "f"]}),
        // An assignment-looking argv[0] is a program's name, one warden does not know:
        // what follows it is checked as what it may run.
        json!({"argv": ["FOO=1", "touch", "f"]}),
        json!({"command": "ls", "env": {"BASH_ENV": "/tmp/evil"}}),
        json!({"command": "ls", "env": {"LD_PRELOAD": "/tmp/evil.so"}}),
        json!({"command": "ls", "env": {"PATH": "/tmp"}}),
    ] {
        let mut arguments = arguments;
        arguments["target"] = json!("fleet-01");
        arguments["working_directory"] = json!(directory);
        let (answer, is_error) = mcp.call("exec", arguments.clone());
        if !is_error || answer["error"]["code"] != "POLICY_DENIED" {
            through.push(format!("{arguments} → {answer}"));
        }
    }
    assert!(through.is_empty(), "got through:\n{}", through.join("\n"));
    assert_eq!(
        leftovers(dir.path()),
        Vec::<String>::new(),
        "a sentinel appeared"
    );
    eprintln!(
        "bypass corpus: {} of {} refused",
        corpus.len(),
        corpus.len()
    );

    // The same commands do run where no rule applies: the corpus is live.
    let (_open_fleet, open_home, open_config) = fleet(1, "policy:\n  mode: off\n");
    let mut open = McpProcess::start(open_home.path(), Some(&open_config));
    for command in ["X=1 touch f", "sh -c 'touch x'"] {
        let (answer, is_error) = open.call(
            "exec",
            json!({"target": "fleet-01", "command": command, "working_directory": directory}),
        );
        assert!(!is_error, "{answer}");
    }
    assert_eq!(leftovers(dir.path()).len(), 2);
}

#[test]
fn the_everyday_corpus_runs_at_once_under_the_starter_policy() {
    let starter = warden_core::config::STARTER_CONFIG;
    let policy = &starter[starter.find("policy:").unwrap()..starter.find("limits:").unwrap()];
    let (_fleet, home, config) = fleet(1, policy);
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let commands: Vec<&str> = EVERYDAY
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    let mut refused = Vec::new();
    for chunk in commands.chunks(8) {
        let ids: Vec<u64> = chunk
            .iter()
            .map(|command| {
                mcp.send_request(
                    "tools/call",
                    json!({"name": "exec", "arguments": {"target": "fleet-01", "command": command, "timeout_ms": 5000}}),
                )
            })
            .collect();
        for (command, answer) in chunk.iter().zip(mcp.answers(&ids)) {
            let result = &answer["result"]["structuredContent"];
            if result.get("results").is_none() {
                refused.push(format!("{command:?}: {result}"));
            }
        }
    }
    assert!(commands.len() >= 150);
    assert!(
        refused.is_empty(),
        "{} of {} refused or previewed:\n{}",
        refused.len(),
        commands.len(),
        refused.join("\n")
    );
    eprintln!(
        "everyday corpus: {} of {} ran at once",
        commands.len() - refused.len(),
        commands.len()
    );
}

#[test]
fn previews_bind_what_runs_with_plan_tokens() {
    let (_fleet, home, config) = fleet(2, "policy:\n  deny_commands: [{program: mkfs*}]\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let dir = sentinel_dir();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let command = format!("rm -f {}", victim.display());

    // Without confirm: a preview, nothing removed.
    let (preview, is_error) = mcp.call("exec", json!({"target": "all", "command": command}));
    assert!(!is_error, "{preview}");
    assert_eq!(preview["dry_run"], false);
    assert_eq!(preview["commands"][0]["class"], "destructive", "{preview}");
    assert!(victim.exists());
    let token = preview["plan_token"].as_str().unwrap().to_owned();

    // The token binds the target: another target is PLAN_CHANGED, and the token is spent.
    let (changed, is_error) = mcp.call(
        "exec",
        json!({"target": "fleet-01", "command": command, "confirm": true, "plan_token": token}),
    );
    assert!(is_error);
    assert_eq!(changed["error"]["code"], "PLAN_CHANGED", "{changed}");
    let (spent, _) = mcp.call(
        "exec",
        json!({"target": "all", "command": command, "confirm": true, "plan_token": token}),
    );
    assert_eq!(
        spent["error"]["code"], "PLAN_CHANGED",
        "single use: {spent}"
    );
    assert!(victim.exists());

    // A fresh preview, confirmed with its token, runs exactly that.
    let (preview, _) = mcp.call("exec", json!({"target": "all", "command": command}));
    let token = preview["plan_token"].as_str().unwrap().to_owned();
    let (ran, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": command, "confirm": true, "plan_token": token}),
    );
    assert!(!is_error, "{ran}");
    assert_eq!(results(&ran).len(), 2);
    assert!(!victim.exists());

    // A command changed under the same token is PLAN_CHANGED.
    let (preview, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "rm -f /tmp/warden-none-a"}),
    );
    let token = preview["plan_token"].as_str().unwrap().to_owned();
    let (changed, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "rm -f /tmp/warden-none-b", "confirm": true, "plan_token": token}),
    );
    assert_eq!(changed["error"]["code"], "PLAN_CHANGED");

    // confirm without a token runs (an agent that adds it out of caution is answered),
    // and a read-only tool takes confirm and dry_run without a protocol error.
    let (ran, is_error) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "uptime", "confirm": true}),
    );
    assert!(!is_error, "{ran}");
    let (listed, is_error) = mcp.call("hosts_list", json!({"dry_run": true}));
    assert!(!is_error, "{listed}");
    assert_eq!(listed["dry_run"], true, "{listed}");
}

#[test]
fn a_file_changed_since_the_preview_changes_the_plan() {
    let (tree, base, root) = crate::app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let file = root.join("app.conf");
    std::fs::write(&file, "old").unwrap();
    let (_fleet, home, config) = crate::fleet_allowing(&root, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let path = file.display().to_string();
    let (preview, _) = mcp.call(
        "fs_write",
        json!({"host_id": "fleet-01", "path": path, "content": "new"}),
    );
    assert_eq!(preview["written"], false, "{preview}");
    let diff = preview["diff"].as_str().unwrap();
    assert!(diff.contains("-old") && diff.contains("+new"), "{diff}");
    let token = preview["plan_token"].as_str().unwrap().to_owned();
    std::fs::write(&file, "changed by someone else").unwrap();
    let (changed, is_error) = mcp.call(
        "fs_write",
        json!({"host_id": "fleet-01", "path": path, "content": "new", "confirm": true, "plan_token": token}),
    );
    assert!(is_error);
    assert_eq!(changed["error"]["code"], "PLAN_CHANGED", "{changed}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "changed by someone else"
    );
    let (preview, _) = mcp.call(
        "fs_write",
        json!({"host_id": "fleet-01", "path": path, "content": "new"}),
    );
    let token = preview["plan_token"].as_str().unwrap().to_owned();
    let (written, is_error) = mcp.call(
        "fs_write",
        json!({"host_id": "fleet-01", "path": path, "content": "new", "confirm": true, "plan_token": token}),
    );
    assert!(!is_error, "{written}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
    drop((tree, base));
}

#[test]
fn a_dry_run_lists_each_hosts_verdict() {
    let (_fleet, home, config) = fleet(
        2,
        "policy:\n  roles:\n    - name: locked\n      hosts: [host:fleet-02]\n      deny_commands: ['uptime']\n",
    );
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (preview, is_error) = mcp.call(
        "exec",
        json!({"target": "all", "command": "uptime", "dry_run": true}),
    );
    assert!(!is_error, "{preview}");
    let verdicts: Vec<(&str, &str)> = preview["policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|verdict| {
            (
                verdict["host_id"].as_str().unwrap(),
                verdict["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [("fleet-01", "allowed"), ("fleet-02", "denied")],
        "{preview}"
    );
    assert_eq!(preview["summary"]["ok"], false);
}

#[test]
fn warden_protects_its_own_files_even_with_unsafe_local() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("warden.yaml");
    std::fs::write(
        &config,
        format!(
            "policy:\n  mode: enforce\n  allowed_roots: ['{}']\n",
            home.path().canonicalize().unwrap().display()
        ),
    )
    .unwrap();
    let mut mcp =
        McpProcess::start_with(home.path(), Some(&config), &[("WARDEN_UNSAFE_LOCAL", "1")]);
    let config_path = config.canonicalize().unwrap().display().to_string();
    let state = home.path().canonicalize().unwrap().join("state");
    let (written, is_error) = mcp.call(
        "fs_write",
        json!({"host_id": "local", "path": config_path, "content": "policy:\n  mode: off\n", "confirm": true}),
    );
    assert!(is_error, "{written}");
    assert_eq!(written["error"]["code"], "POLICY_DENIED", "{written}");
    let audit_file = state
        .join("audit")
        .join("audit-000001.jsonl")
        .display()
        .to_string();
    let (removed, is_error) = mcp.call(
        "fs_remove",
        json!({"host_id": "local", "path": audit_file, "confirm": true}),
    );
    assert!(is_error, "{removed}");
    for command in [
        format!("echo 'policy: {{mode: off}}' > {config_path}"),
        format!("sed -i s/enforce/off/ {config_path}"),
        format!("cat /dev/null > {}", state.join("audit").display()),
        "sed -i s/enforce/off/ ~/warden.yaml".to_owned(),
        "sed -i s/enforce/off/ warden.yaml".to_owned(),
        format!(
            "cd {} && sed -i s/enforce/off/ warden.yaml",
            home.path().display()
        ),
    ] {
        let (answer, is_error) = mcp.call(
            "exec",
            json!({"target": "local", "command": command, "confirm": true}),
        );
        assert!(is_error, "{command}: {answer}");
        assert_eq!(
            answer["error"]["code"], "POLICY_DENIED",
            "{command}: {answer}"
        );
    }
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("enforce")
    );
}

#[test]
fn a_policy_that_protects_nothing_says_so_at_start() {
    for (policy, says) in [
        ("policy:\n  mode: off\n", "policy.mode is off"),
        (
            "policy:\n  deny_commands: ['reboot']\n  allow_opaque: true\n",
            "policy.allow_opaque is on",
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("warden.yaml");
        std::fs::write(&config, policy).unwrap();
        let output = crate::client::warden_command(home.path())
            .args(["mcp", "serve", "--config"])
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{policy}: {stderr}");
        assert!(output.stdout.is_empty(), "stdout carries only MCP");
    }
}
