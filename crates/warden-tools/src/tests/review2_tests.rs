//! Second review: `deny_paths` and the aliased (symlinked) allowed root.

use std::os::unix::fs::symlink;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use warden_core::{Caller, Engine};

/// `<tmp>/www -> <tmp>/data/www` is the only allowed root, and `deny_paths` names
/// `<tmp>/www/secret.txt` under that configured spelling (as an operator who wrote
/// `allowed_roots: [/var/www]` writes `deny_paths: ['/var/www/secret\.txt']`).
/// `data/www/link.txt -> secret.txt` is a link inside the root.
fn denied_under_alias() -> (tempfile::TempDir, String, String, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(base.join("data/www")).unwrap();
    std::fs::create_dir_all(base.join("state")).unwrap();
    std::fs::write(base.join("data/www/secret.txt"), "TOP SECRET\n").unwrap();
    std::fs::write(base.join("data/www/index.html"), "hello\n").unwrap();
    symlink("secret.txt", base.join("data/www/link.txt")).unwrap();
    symlink(base.join("data/www"), base.join("www")).unwrap();
    let root = base.join("www").display().to_string();
    let real = base.join("data/www").display().to_string();
    let yaml = format!(
        "local:\n  allow_write: true\npolicy:\n  allowed_roots: ['{root}']\n  deny_paths: ['{root}/secret\\.txt']\n"
    );
    let engine = super::engine_over(&yaml, &base.join("state"), warden_core::local_transport());
    (dir, root, real, engine)
}

async fn call(engine: &Engine, tool: &str, args: Value) -> warden_core::error::Result<Value> {
    engine
        .invoke(
            &Caller::new("a"),
            tool,
            args,
            CancellationToken::new(),
            None,
        )
        .await
}

/// A deny rule written under the configured spelling of a symlinked allowed root holds
/// only for that literal string: the same file read under the resolved spelling,
/// through a link inside the root, or from a session on the root is served.
#[tokio::test]
async fn review2_deny_paths_under_a_symlinked_roots_spelling_are_enforced() {
    let (_dir, root, real, engine) = denied_under_alias();
    let direct = call(
        &engine,
        "fs_read",
        json!({"host_id": "local", "path": format!("{root}/secret.txt")}),
    )
    .await;
    assert!(
        direct.is_err(),
        "sanity: the path as configured is denied: {direct:?}"
    );

    let mut leaks = Vec::new();
    for path in [format!("{real}/secret.txt"), format!("{root}/link.txt")] {
        let read = call(
            &engine,
            "fs_read",
            json!({"host_id": "local", "path": path}),
        )
        .await;
        if let Ok(answer) = read {
            leaks.push(format!("fs_read {path}: {}", answer["content"]));
        }
    }
    let session = call(
        &engine,
        "session_open",
        json!({"host_id": "local", "root": root}),
    )
    .await
    .unwrap();
    let session_id = session["session_id"].as_str().unwrap().to_owned();
    let read = call(
        &engine,
        "fs_read",
        json!({"session_id": session_id, "path": "secret.txt"}),
    )
    .await;
    if let Ok(answer) = read {
        leaks.push(format!(
            "fs_read secret.txt in a session on {root}: {}",
            answer["content"]
        ));
    }
    assert!(
        leaks.is_empty(),
        "the denied file was served:\n{}",
        leaks.join("\n")
    );
}
