//! Adversarial review 10: approvals, secrets and the audit log through the real
//! `warden mcp serve` against real sshd. Each test states a promise and fails while it
//! is broken.

use std::path::Path;

use serde_json::{Value, json};

use crate::client::{McpProcess, warden_command};
use crate::{app_tree, fleet_allowing};

const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const FROM_ENV: &str = "envsecret-canary-1234";

fn cli(home: &Path, config: &Path, args: &[&str]) -> (Value, String, i32) {
    let output: std::process::Output = warden_command(home)
        .args(["--config", &config.display().to_string(), "--json"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (value, text, output.status.code().unwrap_or(-1))
}

fn start_named(home: &Path, config: &Path, name: &str, env: &[(&str, &str)]) -> McpProcess {
    let mut mcp = McpProcess::spawn(
        home,
        &["mcp", "serve", "--config", &config.display().to_string()],
        env,
    );
    let answer = mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": name, "version": "1"}}),
    );
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
    mcp.notify("notifications/initialized", json!({}));
    mcp
}

fn append(config: &Path, yaml: &str) {
    std::fs::write(config, std::fs::read_to_string(config).unwrap() + yaml).unwrap();
}

fn audit_text(home: &Path) -> String {
    let mut audit = String::new();
    for entry in std::fs::read_dir(home.join("state/audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "jsonl") {
            audit.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    audit
}

fn error_code(answer: &Value) -> String {
    answer["error"]["code"].as_str().unwrap_or("").to_owned()
}

/// Promise: an approval rule cannot be escaped by the agent. `callers` matches the
/// client name, which the agent picks itself (`clientInfo.name`, "shown, never
/// trusted"): naming itself after an exempted client skips every later rule.
#[test]
fn review10_an_agent_cannot_exempt_itself_from_approval_by_its_client_name() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(
        &config,
        "approval:\n  enabled: true\n  wait: 500ms\n  timeout: 10m\n  rules:\n    - callers: [release-bot]\n      require_approval: false\n    - tools: [exec]\n      programs: [touch]\n",
    );
    let target = root.join("escaped");
    let exec = json!({"target": "host:fleet-01", "command": format!("touch {}", target.display())});

    // An ordinary agent is gated.
    let mut honest = start_named(home.path(), &config, "agent-a", &[]);
    let (answer, _) = honest.call("exec", exec.clone());
    assert_eq!(error_code(&answer), "APPROVAL_PENDING", "{answer}");
    assert!(!target.exists());

    // The same agent, calling itself release-bot.
    let mut impostor = start_named(home.path(), &config, "release-bot", &[]);
    let (answer, _) = impostor.call("exec", exec);
    assert!(
        !target.exists() && error_code(&answer) == "APPROVAL_PENDING",
        "an agent that names itself `release-bot` runs a gated command without a human: {answer}"
    );
}

/// Promise (PRODUCT.md §7): `paths` in an approval rule are "regexes over resolved
/// paths" — a rule without `tools` covers every tool. A command that names the path
/// (`exec touch <guarded>/x`) is not matched: only file tools' planned paths are.
#[test]
fn review10_an_approval_paths_rule_covers_commands_that_name_the_path() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(root.join("guarded")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(
        &config,
        &format!(
            "approval:\n  enabled: true\n  wait: 500ms\n  timeout: 10m\n  rules:\n    - paths: ['{}/guarded/.*']\n",
            root.display()
        ),
    );
    let mut agent = start_named(home.path(), &config, "agent-a", &[]);
    // The file tool is gated ...
    let (answer, _) = agent.call(
        "fs_write",
        json!({"host_id": "fleet-01", "path": root.join("guarded/by-file-tool").display().to_string(), "content": "x", "confirm": true}),
    );
    assert_eq!(error_code(&answer), "APPROVAL_PENDING", "{answer}");
    // ... the same path through exec is not.
    let target = root.join("guarded/by-exec");
    let (answer, _) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": format!("touch {}", target.display())}),
    );
    assert!(
        !target.exists() && error_code(&answer) == "APPROVAL_PENDING",
        "exec wrote under a path an approval rule guards, without approval: {answer}"
    );
}

/// Promise: a token in a command never reaches the audit log (call records mask it)
/// nor what the operator's tools print. The `approval_requested` event carries the
/// unmasked summary, and the store keeps the unmasked request that `warden approvals
/// show|list` print.
#[test]
fn review10_a_token_in_a_gated_command_stays_out_of_the_audit_log_and_the_approval() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(
        &config,
        "approval:\n  enabled: true\n  wait: 300ms\n  timeout: 10m\n  rules:\n    - tools: [exec]\n      programs: [curl]\n",
    );
    let mut agent = start_named(home.path(), &config, "agent-a", &[]);
    let (answer, _) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": format!("curl -fsS -H 'Authorization: token {TOKEN}' https://127.0.0.1:9/"), "confirm": true}),
    );
    assert_eq!(error_code(&answer), "APPROVAL_PENDING", "{answer}");
    let id = answer["error"]["approval_id"].as_str().unwrap().to_owned();
    assert!(!answer.to_string().contains(TOKEN), "the answer is masked");
    assert_eq!(agent.close().code(), Some(0));

    let (_, shown, _) = cli(home.path(), &config, &["approvals", "show", &id]);
    let (_, listed, _) = cli(home.path(), &config, &["approvals", "list"]);
    let audit = audit_text(home.path());
    let mut leaks = Vec::new();
    if audit.contains(TOKEN) {
        let line = audit.lines().find(|line| line.contains(TOKEN)).unwrap();
        leaks.push(format!("audit log: {line}"));
    }
    if shown.contains(TOKEN) {
        leaks.push(format!("warden approvals show: {shown}"));
    }
    if listed.contains(TOKEN) {
        leaks.push(format!("warden approvals list: {listed}"));
    }
    assert!(leaks.is_empty(), "the token leaked:\n{}", leaks.join("\n"));
}

/// Promise: an approval runs only for its owner. The owner is `identity/client name`;
/// the name is the agent's choice and every id is in the audit log an agent may
/// search. A second agent finds the id, takes the first agent's name, and uses the
/// approval the human gave the first agent (who then gets "used already").
#[test]
fn review10_another_agent_cannot_take_over_an_approval_by_copying_the_client_name() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(
        &config,
        "approval:\n  enabled: true\n  wait: 300ms\n  timeout: 10m\n  rules:\n    - tools: [exec]\n      programs: [touch]\n",
    );
    let target = root.join("approved-for-a");
    let exec = json!({"target": "host:fleet-01", "command": format!("touch {}", target.display())});
    let mut owner = start_named(home.path(), &config, "agent-a", &[]);
    let (answer, _) = owner.call("exec", exec.clone());
    assert_eq!(error_code(&answer), "APPROVAL_PENDING", "{answer}");
    let id = answer["error"]["approval_id"].as_str().unwrap().to_owned();
    let (_, _, code) = cli(home.path(), &config, &["approvals", "approve", &id]);
    assert_eq!(code, 0);

    // The other agent learns the id and the owner's name from the audit log.
    let mut thief = start_named(home.path(), &config, "agent-b", &[]);
    let (found, is_error) = thief.call("audit_search", json!({"last": 50}));
    assert!(!is_error, "{found}");
    let text = found.to_string();
    let public = id.split('.').next().unwrap();
    assert!(text.contains(public), "the id is searchable: {text}");
    assert!(
        !text.contains(&id),
        "the token's secret half is not: {text}"
    );
    assert!(text.contains("agent-a"), "so is the owner's name");
    drop(thief);
    let mut thief = start_named(home.path(), &config, "agent-a", &[]);
    let mut stolen = exec.clone();
    stolen["approval_id"] = json!(public);
    let (answer, is_error) = thief.call("exec", stolen.clone());
    let taken = !is_error && target.exists();
    let mut mine = exec.clone();
    mine["approval_id"] = json!(id);
    let (mine, is_error) = owner.call("exec", mine);
    assert!(
        !is_error && target.exists(),
        "the owner still runs it: {mine}"
    );
    assert!(
        !taken,
        "another process that calls itself agent-a used agent-a's approval; the owner then got: {mine}"
    );
    let _ = answer;
}

/// Promise: a resolved secret never appears in an answer. Output that is not text
/// (a NUL, as in `/proc/self/environ` or `env -0`) comes back as base64, which the
/// masker does not look into.
#[test]
fn review10_a_secret_in_binary_output_is_masked_too() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(&config, "secrets:\n  env: [CANARY_ENV]\n");
    let mut agent = start_named(home.path(), &config, "e2e", &[("CANARY_ENV", FROM_ENV)]);
    let (text, is_error) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "printf '%s\\n' \"$S\"", "env": {"S": "${env:CANARY_ENV}"}}),
    );
    assert!(!is_error, "{text}");
    assert_eq!(
        text["results"][0]["stdout"], "***\n",
        "text output is masked"
    );
    let (binary, is_error) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "printf 'S=%s\\0' \"$S\"", "env": {"S": "${env:CANARY_ENV}"}}),
    );
    assert!(!is_error, "{binary}");
    let host = &binary["results"][0];
    assert_eq!(host["stdout_encoding"], "base64", "{binary}");
    let bytes = data_encoding::BASE64
        .decode(host["stdout"].as_str().unwrap().as_bytes())
        .unwrap();
    let decoded = String::from_utf8_lossy(&bytes);
    assert!(
        !decoded.contains(FROM_ENV),
        "the secret came back in base64: {decoded:?}"
    );
}

/// Promise: a resolved secret never appears in an answer. Output cut at
/// `max_output_bytes` in the middle of the value leaves a prefix no mask matches.
#[test]
fn review10_a_secret_cut_by_the_output_limit_is_masked_too() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(&config, "secrets:\n  env: [CANARY_ENV]\n");
    let mut agent = start_named(home.path(), &config, "e2e", &[("CANARY_ENV", FROM_ENV)]);
    let (answer, is_error) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "printf 'v=%s' \"$S\"", "env": {"S": "${env:CANARY_ENV}"}, "max_output_bytes": 18}),
    );
    assert!(!is_error, "{answer}");
    let stdout = answer["results"][0]["stdout"].as_str().unwrap_or_default();
    assert!(
        !stdout.contains(&FROM_ENV[..12]),
        "most of the secret came back past the cut: {stdout:?}"
    );
}

/// Promise: a `${env:}` secret never appears in an answer. It is masked only once
/// this process resolved it: a fresh server shows the same value read from a host.
#[test]
fn review10_a_configured_secret_is_masked_before_its_first_use_in_this_process() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let stored = root.join("app.env");
    std::fs::write(&stored, format!("DB_PASSWORD={FROM_ENV}\n")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(&config, "secrets:\n  env: [CANARY_ENV]\n");
    let mut agent = start_named(home.path(), &config, "e2e", &[("CANARY_ENV", FROM_ENV)]);
    let read = json!({"target": "host:fleet-01", "command": format!("cat {}", stored.display())});
    let (first, _) = agent.call("exec", read.clone());
    // After one call that uses the reference, the same read is masked.
    let (_, _) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "true", "env": {"S": "${env:CANARY_ENV}"}}),
    );
    let (second, _) = agent.call("exec", read);
    assert!(
        !second.to_string().contains(FROM_ENV),
        "masked after use: {second}"
    );
    assert!(
        !first.to_string().contains(FROM_ENV),
        "the secret was shown before its first use in this process: {first}"
    );
}

/// Promise: an `env` value never reaches the audit log or goes unmasked. A literal
/// value that merely looks like a reference (`${...}`, not `env:`/`file:`) is sent as
/// is but kept in the log and not masked in the answer.
#[test]
fn review10_a_literal_env_value_shaped_like_a_reference_is_masked() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let mut agent = start_named(home.path(), &config, "e2e", &[]);
    let literal = "${pa55-word-canary}";
    let (answer, is_error) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "printf '%s\\n' \"$PW\"", "env": {"PW": literal}}),
    );
    assert!(!is_error, "{answer}");
    assert_eq!(agent.close().code(), Some(0));
    let audit = audit_text(home.path());
    assert!(
        !answer.to_string().contains("pa55-word-canary"),
        "the literal env value came back unmasked: {answer}"
    );
    assert!(
        !audit.contains("pa55-word-canary"),
        "the literal env value is in the audit log"
    );
}

/// Promise: an agent cannot talk its way around an approval rule. `programs:
/// [touch]` matches what the analysis sees; a command it cannot see into (`eval`, a
/// substitution in command position, `find -exec`) runs with no approval when the
/// policy has no allow list (the default: opaque commands are then allowed).
#[test]
fn review10_an_approval_rule_for_a_program_holds_against_commands_it_cannot_see_into() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(
        &config,
        "approval:\n  enabled: true\n  wait: 300ms\n  timeout: 10m\n  rules:\n    - tools: [exec]\n      programs: [touch]\n",
    );
    let mut agent = start_named(home.path(), &config, "agent-a", &[]);
    let mut ran = Vec::new();
    for (index, shape) in [
        "eval 'touch {}'",
        "$(printf touch) {}",
        "t=touch; $t {}",
        "find / -maxdepth 0 -exec touch {} ';'",
    ]
    .iter()
    .enumerate()
    {
        let target = root.join(format!("opaque-{index}"));
        let command = shape.replace("{}", &target.display().to_string());
        let (answer, _) = agent.call(
            "exec",
            json!({"target": "host:fleet-01", "command": command, "confirm": true}),
        );
        if target.exists() {
            ran.push(format!("{command} -> {}", answer["error"]["code"]));
        }
    }
    assert!(
        ran.is_empty(),
        "ran without approval under `programs: [touch]`:\n{}",
        ran.join("\n")
    );
}

/// Promise: a human approves what runs. What the operator is shown of a call with
/// `stdin` (a script piped to `sh`) or file `content` is its size and hash only: the
/// script that runs once approved is not on screen.
#[test]
fn review10_the_operator_sees_the_script_and_content_they_approve() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(root.join("guarded")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    append(
        &config,
        &format!(
            "approval:\n  enabled: true\n  wait: 300ms\n  timeout: 10m\n  rules:\n    - tools: [exec]\n    - tools: [fs_write]\n      paths: ['{}/guarded/.*']\n",
            root.display()
        ),
    );
    let mut agent = start_named(home.path(), &config, "agent-a", &[]);
    let script = "echo hidden-script-marker; id";
    let (answer, _) = agent.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "sh", "stdin": script, "confirm": true}),
    );
    assert_eq!(error_code(&answer), "APPROVAL_PENDING", "{answer}");
    let exec_id = answer["error"]["approval_id"].as_str().unwrap().to_owned();
    let (answer, _) = agent.call(
        "fs_write",
        json!({"host_id": "fleet-01", "path": root.join("guarded/cron").display().to_string(), "content": "hidden-content-marker", "confirm": true}),
    );
    assert_eq!(error_code(&answer), "APPROVAL_PENDING", "{answer}");
    let write_id = answer["error"]["approval_id"].as_str().unwrap().to_owned();
    let (_, exec_shown, _) = cli(home.path(), &config, &["approvals", "show", &exec_id]);
    let (_, write_shown, _) = cli(home.path(), &config, &["approvals", "show", &write_id]);
    assert!(
        exec_shown.contains("hidden-script-marker")
            && write_shown.contains("hidden-content-marker"),
        "the operator approves blind:\n{exec_shown}\n{write_shown}"
    );
}
