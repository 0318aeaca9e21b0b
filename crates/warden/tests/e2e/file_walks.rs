//! The walking file tools (`fs_find`, `fs_grep`, `fs_tail`, `fs_du`) over SFTP through
//! `warden mcp serve`: their happy paths, and that no walk leaves the root through a
//! symlink, loops, or shows anything under `deny_paths`.

use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use crate::client::McpProcess;
use crate::{app_tree, fleet_allowing, open_session};

fn paths(value: &Value, list: &str) -> Vec<String> {
    value[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {value}"))
        .iter()
        .map(|entry| entry["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn walks_over_sftp_find_grep_tail_and_measure_inside_their_root() {
    let (_tree, base, root) = app_tree();
    for directory in ["conf", "logs", "secret"] {
        std::fs::create_dir_all(root.join(directory)).unwrap();
    }
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/secret"), "TOPSECRET port=1\n").unwrap();
    std::fs::write(root.join("conf/app.ini"), "[main]\nport=80\nuser=www\n").unwrap();
    std::fs::write(root.join("secret/key"), "TOPSECRET port=2\n").unwrap();
    let log: String = (1..=20_000)
        .map(|n| format!("req {n} status=200\n"))
        .collect();
    std::fs::write(root.join("logs/app.log"), &log).unwrap();
    symlink(base.join("outside"), root.join("escape")).unwrap();
    symlink("../outside/secret", root.join("leak")).unwrap();
    symlink(".", root.join("self")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "  deny_paths: ['.*/secret']\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let session = open_session(&mut mcp, &root);
    let root = root.display().to_string();
    let mut call = |tool: &str, mut args: Value| {
        args["session_id"] = json!(session);
        let (value, is_error) = mcp.call(tool, args.clone());
        assert!(!is_error, "{tool} {args}: {value}");
        value
    };

    let logs = call("fs_find", json!({"name": "*.log"}));
    assert_eq!(paths(&logs, "entries"), [format!("{root}/logs/app.log")]);
    let everything = call("fs_find", json!({}));
    let found = paths(&everything, "entries");
    assert_eq!(everything["skipped_denied"], 1);
    for path in &found {
        assert!(path.starts_with(&format!("{root}/")), "{path}");
        assert!(!path.contains("secret"), "{path}");
    }
    assert_eq!(
        found.len(),
        9,
        "conf, escape, leak, logs, loop_a, loop_b, self + 2 files: {found:?}"
    );
    let escape = &everything["entries"][1];
    assert_eq!(escape["path"], format!("{root}/escape"));
    assert_eq!(escape["type"], "symlink");

    let port = call(
        "fs_grep",
        json!({"path": ".", "pattern": "port=", "context_lines": 1}),
    );
    assert_eq!(
        port["matches"],
        json!([{"path": format!("{root}/conf/app.ini"), "line": 2, "text": "port=80", "before": ["[main]"], "after": ["user=www"]}]),
        "neither the link out nor the denied directory is read"
    );
    assert_eq!(port["skipped"]["denied"], 1);
    let request = call(
        "fs_grep",
        json!({"path": "logs/app.log", "pattern": "^req 19999 "}),
    );
    assert_eq!(request["matches"][0]["line"], 19_999);

    let tail = call("fs_tail", json!({"path": "logs/app.log", "lines": 2}));
    assert_eq!(
        tail["lines"],
        json!(["req 19999 status=200", "req 20000 status=200"])
    );
    assert_eq!(tail["bytes_scanned"], 64 * 1024, "read from the end only");
    let filtered = call(
        "fs_tail",
        json!({"path": "logs/app.log", "lines": 1, "filter": "^req 1234 "}),
    );
    assert_eq!(filtered["lines"], json!(["req 1234 status=200"]));

    let usage = call("fs_du", json!({}));
    assert_eq!(
        usage["bytes"],
        log.len() + "[main]\nport=80\nuser=www\n".len()
    );
    assert_eq!(usage["files"], 2);
    assert_eq!(usage["dirs"], 2);
    assert_eq!(usage["other"], 5, "symlinks counted, not followed");
    assert_eq!(usage["top"][0]["path"], format!("{root}/logs"));

    for (tool, path, code) in [
        ("fs_find", "escape", "PATH_OUTSIDE_ROOT"),
        ("fs_grep", "escape", "PATH_OUTSIDE_ROOT"),
        ("fs_grep", "leak", "PATH_OUTSIDE_ROOT"),
        ("fs_tail", "leak", "PATH_OUTSIDE_ROOT"),
        ("fs_tail", "loop_a", "PATH_OUTSIDE_ROOT"),
        ("fs_du", "escape", "PATH_OUTSIDE_ROOT"),
        ("fs_tail", "secret/key", "POLICY_DENIED"),
        ("fs_grep", "secret", "POLICY_DENIED"),
    ] {
        let mut args = json!({"session_id": session, "path": path});
        if tool == "fs_grep" {
            args["pattern"] = json!(".");
        }
        let (refused, is_error) = mcp.call(tool, args);
        assert!(is_error, "{tool} {path}: {refused}");
        assert_eq!(refused["error"]["code"], code, "{tool} {path}");
    }
}
