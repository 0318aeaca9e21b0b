//! Sessions and streamed transfers through `warden mcp serve`: commands in a session
//! over SSH, a chunked upload over SFTP cut off by a warden restart and resumed, the
//! per-client session limit and idle expiry.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::McpProcess;
use super::{app_tree, fleet_allowing, open_session};

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn base64(data: &[u8]) -> String {
    data_encoding::BASE64.encode(data)
}

fn ok(mcp: &mut McpProcess, tool: &str, args: Value) -> Value {
    let (value, is_error) = mcp.call(tool, args);
    assert!(!is_error, "{tool}: {value}");
    value
}

#[test]
fn session_commands_and_a_resumed_upload_over_ssh() {
    let (_tree, _, root) = app_tree();
    std::fs::create_dir_all(root.join("releases")).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let root_text = root.display().to_string();
    let mut mcp = McpProcess::start(home.path(), Some(&config));

    let session = open_session(&mut mcp, &root);
    let ran = ok(
        &mut mcp,
        "run",
        json!({"session_id": session, "command": "pwd", "working_directory": "releases"}),
    );
    assert_eq!(ran["stdout"], format!("{root_text}/releases\n"));
    let (outside, is_error) = mcp.call(
        "exec",
        json!({"session_id": session, "command": "pwd", "working_directory": "../.."}),
    );
    assert!(is_error);
    assert_eq!(outside["error"]["code"], "PATH_OUTSIDE_ROOT");

    // 3 MiB in 1 MiB chunks; warden dies after the first two.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 5)
        .map(|index: usize| (index * 31 % 253) as u8)
        .collect();
    let chunk = 1024 * 1024;
    let path = format!("{root_text}/releases/app.tar");
    let first = ok(
        &mut mcp,
        "fs_stream_write",
        json!({"host_id": "fleet-01", "path": path, "content_base64": base64(&data[..chunk])}),
    );
    let id = first["upload_id"].as_str().unwrap().to_owned();
    ok(
        &mut mcp,
        "fs_stream_write",
        json!({"host_id": "fleet-01", "path": path, "upload_id": id, "offset": chunk, "content_base64": base64(&data[chunk..2 * chunk])}),
    );
    drop(mcp);
    assert!(!std::path::Path::new(&path).exists());

    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let status = ok(
        &mut mcp,
        "fs_stream_write",
        json!({"host_id": "fleet-01", "path": path, "upload_id": id}),
    );
    let resume_at = status["next_offset"].as_u64().unwrap() as usize;
    assert_eq!(resume_at, 2 * chunk);
    assert_eq!(status["received_sha256"], sha256_hex(&data[..resume_at]));
    ok(
        &mut mcp,
        "fs_stream_write",
        json!({"host_id": "fleet-01", "path": path, "upload_id": id, "offset": resume_at, "content_base64": base64(&data[resume_at..]), "finish": true, "sha256": sha256_hex(&data)}),
    );
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let names: Vec<_> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["app.tar"], "partial files left behind");

    let last = ok(
        &mut mcp,
        "fs_stream_read",
        json!({"host_id": "fleet-01", "path": path, "offset": 3 * chunk, "length": chunk}),
    );
    assert_eq!(last["eof"], true);
    assert_eq!(last["bytes"], 5);
    assert_eq!(last["file_sha256"], sha256_hex(&data));
}

#[test]
fn the_51st_session_is_refused_and_idle_sessions_expire() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().canonicalize().unwrap().display().to_string();
    std::fs::write(
        home.path().join("warden.yaml"),
        format!("limits:\n  session_idle_s: 2\npolicy:\n  allowed_roots: ['{root}']\n"),
    )
    .unwrap();
    let config = home.path().join("warden.yaml");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let mut sessions = Vec::new();
    for _ in 0..50 {
        let opened = ok(
            &mut mcp,
            "session_open",
            json!({"host_id": "local", "root": root}),
        );
        sessions.push(opened["session_id"].as_str().unwrap().to_owned());
    }
    let (refused, is_error) = mcp.call("session_open", json!({"host_id": "local", "root": root}));
    assert!(is_error);
    assert_eq!(refused["error"]["code"], "SESSION_LIMIT");
    let listed = ok(&mut mcp, "session_list", json!({}));
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 50);

    // Closing one frees a place; unused sessions expire after the idle time.
    ok(
        &mut mcp,
        "session_close",
        json!({"session_id": sessions[0]}),
    );
    ok(
        &mut mcp,
        "session_open",
        json!({"host_id": "local", "root": root}),
    );
    std::thread::sleep(Duration::from_millis(2_200));
    let (expired, is_error) = mcp.call("fs_list", json!({"session_id": sessions[1], "path": "."}));
    assert!(is_error);
    assert_eq!(expired["error"]["code"], "SESSION_NOT_FOUND");
    let listed = ok(&mut mcp, "session_list", json!({}));
    assert_eq!(listed["sessions"], json!([]));
}
