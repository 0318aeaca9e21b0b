//! Review 4, engine level: what policy is told about where an `exec` runs. Policy
//! places relative names in the call's `working_directory` as given (or keeps them as
//! `./name`); the engine runs them in the session's cwd, or in a working directory
//! that is itself never checked against `deny_paths`.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use warden_core::{Caller, Engine};

struct World {
    engine: Engine,
    root: String,
    home: String,
    _dir: tempfile::TempDir,
}

/// `app/` is the allowed root with `secret` and `data/key` denied by absolute rules;
/// `home/.ssh/id_rsa` is under the usual `.ssh` rule.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("app");
    let home = base.join("home");
    for directory in [root.join("data"), home.join(".ssh"), base.join("state")] {
        std::fs::create_dir_all(directory).unwrap();
    }
    std::fs::write(root.join("secret"), "TOP SECRET\n").unwrap();
    std::fs::write(root.join("data/key"), "DATA KEY\n").unwrap();
    std::fs::write(home.join(".ssh/id_rsa"), "PRIVATE KEY\n").unwrap();
    let root = root.display().to_string();
    let yaml = format!(
        "local:\n  allow_write: true\n  allow_exec: true\npolicy:\n  allowed_roots: ['{root}']\n  deny_paths: ['{root}/secret', '{root}/data/key', '.*/\\.ssh(/.*)?']\n"
    );
    let engine = super::engine_over(&yaml, &base.join("state"), warden_core::local_transport());
    World {
        engine,
        root,
        home: home.display().to_string(),
        _dir: dir,
    }
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

/// What a successful exec printed (any host), or `None` when it was refused.
fn printed(answer: &warden_core::error::Result<Value>) -> Option<String> {
    let answer = answer.as_ref().ok()?;
    let stdout = answer
        .pointer("/results/0/stdout")
        .or_else(|| answer.get("stdout"))?;
    Some(stdout.as_str().unwrap_or_default().to_owned())
}

/// In a session the command runs in the session's cwd (its root, or a
/// `working_directory` resolved inside it), but policy analyses it with the
/// `working_directory` as given (`None`, or `data`): `cat secret` is `./secret` to
/// policy and `{root}/secret` to the shell.
#[tokio::test]
async fn review4_relative_names_in_a_session_meet_absolute_deny_paths() {
    let world = world();
    let root = &world.root;
    let sanity = call(
        &world.engine,
        "fs_read",
        json!({"host_id": "local", "path": format!("{root}/secret")}),
    )
    .await;
    assert!(sanity.is_err(), "sanity: the file is denied: {sanity:?}");
    let opened = call(
        &world.engine,
        "session_open",
        json!({"host_id": "local", "root": root}),
    )
    .await
    .unwrap();
    let session = opened["session_id"].as_str().unwrap().to_owned();
    let mut leaks = Vec::new();
    for args in [
        json!({"session_id": session, "command": "cat secret"}),
        json!({"session_id": session, "command": "cat key", "working_directory": "data"}),
    ] {
        let answer = call(&world.engine, "exec", args.clone()).await;
        if let Some(stdout) = printed(&answer) {
            leaks.push(format!("{args}: {stdout:?}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "denied files were served:\n{}",
        leaks.join("\n")
    );
}

/// The working directory of an exec is never checked against `deny_paths`: a command
/// with no path operand (`grep -r ''` searches `.`) reads the denied directory whole.
#[tokio::test]
async fn review4_a_denied_working_directory_is_refused() {
    let world = world();
    let ssh = format!("{}/.ssh", world.home);
    let sanity = call(
        &world.engine,
        "exec",
        json!({"target": "host:local", "command": format!("cat {ssh}/id_rsa")}),
    )
    .await;
    assert!(sanity.is_err(), "sanity: the key is denied: {sanity:?}");
    let answer = call(
        &world.engine,
        "exec",
        json!({"target": "host:local", "command": "grep -r ''", "working_directory": ssh}),
    )
    .await;
    assert_eq!(printed(&answer), None, "the key was served: {answer:?}");
}
