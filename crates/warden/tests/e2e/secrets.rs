//! Secret canaries: an `env` value, a `${env:}` and a `${file:}` secret, a token in a
//! command and a configured pattern never appear in an answer, the audit log, a debug
//! log or the host's process list, on every path (rejected calls too).

use std::process::Stdio;

use serde_json::json;

use crate::client::McpProcess;
use crate::{app_tree, fleet_allowing};

const LITERAL: &str = "literal-canary-5678";
const FROM_ENV: &str = "envsecret-canary-1234";
const FROM_FILE: &str = "filesecret-canary-4321";
const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const PATTERN: &str = "corp-canary-777";

#[test]
fn secrets_never_leave_warden_or_reach_an_argv() {
    let (_tree, base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let secret_file = base.join("secret.txt");
    std::fs::write(&secret_file, format!("{FROM_FILE}\n")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let yaml = format!(
        "secrets:\n  env: [CANARY_ENV]\n  files: ['{}/*.txt']\n  patterns: ['corp-canary-[0-9]+']\n",
        base.display()
    );
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + &yaml).unwrap();
    let log = home.path().join("stderr.log");
    let mut mcp = McpProcess::spawn_with_stderr(
        home.path(),
        &[
            "-vv",
            "mcp",
            "serve",
            "--config",
            &config.display().to_string(),
        ],
        &[("CANARY_ENV", FROM_ENV)],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}),
    );
    mcp.notify("notifications/initialized", json!({}));

    let ps = root.join("ps.txt");
    let command = format!(
        "echo \"$LITERAL $FROM_ENV $FROM_FILE\"; read line; echo \"in: $line\"; ps -eo args > {}; echo {TOKEN} {PATTERN}",
        ps.display()
    );
    let (answer, is_error) = mcp.call(
        "exec",
        json!({
            "target": "host:fleet-01",
            "command": command,
            "stdin": "stdin-canary-9999\n",
            // `> file` overwrites: a destructive command, confirmed.
            "confirm": true,
            "env": {
                "LITERAL": LITERAL,
                "FROM_ENV": "${env:CANARY_ENV}",
                "FROM_FILE": format!("${{file:{}}}", secret_file.display()),
            },
        }),
    );
    assert!(!is_error, "{answer}");
    let stdout = answer["results"][0]["stdout"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    // The command saw the real values (they were masked on the way back), and the
    // caller's stdin still arrived after the env values.
    assert_eq!(
        stdout, "*** *** ***\nin: stdin-canary-9999\n*** ***\n",
        "{answer}"
    );
    let processes = std::fs::read_to_string(&ps).unwrap();
    assert!(processes.contains("head -c"), "{processes}");

    // Refused references and a malformed env: clear errors, nothing stored.
    let (refused, is_error) = mcp.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "true", "env": {"X": "${env:HOME}"}}),
    );
    assert!(is_error);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("secrets.env"),
        "{refused}"
    );
    let (refused, is_error) = mcp.call(
        "exec",
        json!({"target": "host:fleet-01", "command": "true", "env": {"X": "${file:/etc/passwd}"}}),
    );
    assert!(is_error, "{refused}");
    let malformed = mcp.request(
        "tools/call",
        json!({"name": "exec", "arguments": {"target": "host:fleet-01", "command": "true", "env": [LITERAL], "stdin": 7}}),
    );
    assert!(malformed.get("error").is_some() || malformed["result"]["isError"] == true);
    let answer_text = answer.to_string();
    assert_eq!(mcp.close().code(), Some(0));

    let mut audit = String::new();
    for entry in std::fs::read_dir(home.path().join("state/audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "jsonl") {
            audit.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let stderr = std::fs::read_to_string(&log).unwrap();
    for canary in [LITERAL, FROM_ENV, FROM_FILE, TOKEN, PATTERN] {
        assert!(!answer_text.contains(canary), "{canary} in the answer");
        assert!(!processes.contains(canary), "{canary} in ps:\n{processes}");
    }
    // stdin is the caller's data (the command echoed it back): kept out of the log.
    for canary in [
        LITERAL,
        FROM_ENV,
        FROM_FILE,
        TOKEN,
        PATTERN,
        "stdin-canary-9999",
    ] {
        assert!(!audit.contains(canary), "{canary} in the audit log");
        assert!(!stderr.contains(canary), "{canary} in the -vv log");
    }
    assert!(
        audit.contains("${env:CANARY_ENV}"),
        "the reference is what is kept"
    );
}
