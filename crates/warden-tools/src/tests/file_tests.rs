//! Sessions and file tools through the engine on the built-in `local` host, against a
//! real directory tree with real symlinks, FIFOs and siblings: the escape suite.
//! (The same tools over SFTP are exercised against sshd in the binary's e2e tests.)

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use warden_core::error::{Error, ErrorCode};
use warden_core::{Caller, Engine};

/// Permission bits of `path` itself (a symlink's own), set-id and sticky bits included.
pub(super) fn mode_of(path: impl AsRef<Path>) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The names in a directory, sorted.
pub(super) fn entries_in(directory: impl AsRef<Path>) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(super) struct World {
    pub(super) engine: Engine,
    pub(super) root: String,
    pub(super) outside: String,
    _dir: tempfile::TempDir,
}

/// A real tree under a temp dir: `app/` (the allowed root, with `data/a.txt`, `secret`
/// (denied), symlinks out, a link loop and a FIFO), `outside/file`, `app-evil/x`.
pub(super) fn world(extra: &str) -> World {
    world_denying("['.*/secret']", extra)
}

/// [`world`] with its own `deny_paths` (a YAML list of regexes).
pub(super) fn world_denying(deny_paths: &str, extra: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("app");
    let outside = base.join("outside");
    for directory in [
        &root.join("data"),
        &outside,
        &base.join("app-evil"),
        &base.join("state"),
    ] {
        std::fs::create_dir_all(directory).unwrap();
    }
    std::fs::write(root.join("data/a.txt"), "alpha\n").unwrap();
    std::fs::write(root.join("secret"), "hidden").unwrap();
    std::fs::write(outside.join("file"), "outside\n").unwrap();
    std::fs::write(base.join("app-evil/x"), "evil").unwrap();
    symlink(&outside, root.join("link_out")).unwrap();
    symlink(outside.join("file"), root.join("file_link_out")).unwrap();
    symlink("../outside/file", root.join("relative_out")).unwrap();
    symlink(root.join("data"), root.join("inside_link")).unwrap();
    symlink("loop2", root.join("loop1")).unwrap();
    symlink("loop1", root.join("loop2")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    let yaml = format!(
        "local:\n  allow_write: true\n  allow_exec: true\npolicy:\n  allowed_roots: ['{}']\n  deny_paths: {deny_paths}\n{extra}",
        root.display()
    );
    let engine = super::engine_over(&yaml, &base.join("state"), warden_core::local_transport());
    World {
        engine,
        root: root.display().to_string(),
        outside: outside.display().to_string(),
        _dir: dir,
    }
}

impl World {
    pub(super) async fn call_as(
        &self,
        client: &str,
        tool: &str,
        args: Value,
    ) -> Result<Value, Error> {
        self.engine
            .invoke(
                &Caller::new(client),
                tool,
                args,
                CancellationToken::new(),
                None,
            )
            .await
    }

    pub(super) async fn call(&self, tool: &str, args: Value) -> Result<Value, Error> {
        self.call_as("a", tool, args).await
    }

    pub(super) async fn session(&self) -> String {
        let opened = self
            .call(
                "session_open",
                json!({"host_id": "local", "root": self.root}),
            )
            .await
            .unwrap();
        assert_eq!(opened["resolved_root"], self.root.as_str());
        opened["session_id"].as_str().unwrap().to_owned()
    }

    pub(super) async fn code(&self, tool: &str, args: Value) -> ErrorCode {
        match self.call(tool, args.clone()).await {
            Ok(value) => panic!("{tool} {args} succeeded: {value}"),
            Err(error) => error.code,
        }
    }
}

pub(super) fn read_file(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn reads_inside_the_root_and_refuses_every_escape() {
    let world = world("");
    let s = world.session().await;
    let read = world
        .call("fs_read", json!({"session_id": s, "path": "data/a.txt"}))
        .await
        .unwrap();
    assert_eq!(read["content"], "alpha\n");
    assert_eq!(read["truncated"], false);
    let through_inner_link = world
        .call(
            "fs_read",
            json!({"session_id": s, "path": "inside_link/a.txt"}),
        )
        .await
        .unwrap();
    assert_eq!(through_inner_link["sha256"], read["sha256"]);

    let long_name = "x".repeat(300);
    let escapes = [
        String::from("../outside/file"),
        format!("{}/file", world.outside),
        "data/../../outside/file".into(),
        "link_out/file".into(),
        "file_link_out".into(),
        "relative_out".into(),
        format!("{}-evil/x", world.root),
        "data/a\0.txt".into(),
        long_name,
        "loop1".into(),
    ];
    for path in escapes {
        let code = world
            .code("fs_read", json!({"session_id": s, "path": path}))
            .await;
        assert_eq!(code, ErrorCode::PathOutsideRoot, "{path:?}");
    }
    let fifo = world
        .code("fs_read", json!({"session_id": s, "path": "fifo"}))
        .await;
    assert_eq!(fifo, ErrorCode::InvalidInput);
    let denied = world
        .code("fs_read", json!({"session_id": s, "path": "secret"}))
        .await;
    assert_eq!(denied, ErrorCode::PolicyDenied);
    let listing = world
        .call("fs_list", json!({"session_id": s, "path": "link_out"}))
        .await;
    assert_eq!(listing.unwrap_err().code, ErrorCode::PathOutsideRoot);

    let summary = world
        .call("session_summary", json!({"session_id": s}))
        .await
        .unwrap();
    assert_eq!(summary["activity"]["read"].as_array().unwrap().len(), 2);
    assert!(summary["activity"]["denied"].as_array().unwrap().len() >= 11);
}

#[tokio::test]
async fn session_roots_must_be_allowed_and_exact() {
    let world = world("");
    let parent = Path::new(&world.root)
        .parent()
        .unwrap()
        .display()
        .to_string();
    for root in [
        parent,
        format!("{}-evil", world.root),
        world.outside.clone(),
    ] {
        let code = world
            .code("session_open", json!({"host_id": "local", "root": root}))
            .await;
        assert_eq!(code, ErrorCode::PathOutsideRoot, "{root}");
    }
    // Outside a session: absolute paths under allowed_roots only.
    let read = world
        .call(
            "fs_read",
            json!({"host_id": "local", "path": format!("{}/data/a.txt", world.root)}),
        )
        .await
        .unwrap();
    assert_eq!(read["content"], "alpha\n");
    let code = world
        .code(
            "fs_read",
            json!({"host_id": "local", "path": format!("{}/file", world.outside)}),
        )
        .await;
    assert_eq!(code, ErrorCode::PathOutsideRoot);
}

#[tokio::test]
async fn writes_are_atomic_confirmed_and_never_follow_links_out() {
    let world = world("");
    let s = world.session().await;
    let outside_file = format!("{}/file", world.outside);
    for path in ["file_link_out", "link_out/new", "relative_out"] {
        let code = world
            .code(
                "fs_write",
                json!({"session_id": s, "path": path, "content": "pwned", "confirm": true}),
            )
            .await;
        assert_eq!(code, ErrorCode::PathOutsideRoot, "{path}");
    }
    assert_eq!(read_file(&outside_file), "outside\n");
    assert!(!Path::new(&world.outside).join("new").exists());

    let missing_parent = world
        .code(
            "fs_write",
            json!({"session_id": s, "path": "new/dir/x.txt", "content": "x"}),
        )
        .await;
    assert_eq!(missing_parent, ErrorCode::FileNotFound);
    let created = world
        .call("fs_write", json!({"session_id": s, "path": "new/dir/x.txt", "content": "one", "create_dirs": true}))
        .await
        .unwrap();
    assert_eq!(created["written"], true);
    let target = format!("{}/new/dir/x.txt", world.root);
    assert_eq!(read_file(&target), "one");

    let preview = world
        .call(
            "fs_write",
            json!({"session_id": s, "path": "new/dir/x.txt", "content": "two"}),
        )
        .await
        .unwrap();
    assert_eq!(preview["written"], false);
    assert_eq!(read_file(&target), "one");
    let stale = world
        .code("fs_write", json!({"session_id": s, "path": "new/dir/x.txt", "content": "two", "confirm": true, "expected_sha256": "00"}))
        .await;
    assert_eq!(stale, ErrorCode::Conflict);
    world
        .call("fs_write", json!({"session_id": s, "path": "new/dir/x.txt", "content": "two", "confirm": true, "expected_sha256": created["sha256"]}))
        .await
        .unwrap();
    assert_eq!(read_file(&target), "two");
    let leftovers: Vec<_> = std::fs::read_dir(format!("{}/new/dir", world.root))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
}

#[tokio::test]
async fn listing_and_removal_do_not_follow_symlinks() {
    let world = world("");
    let s = world.session().await;
    let listed = world
        .call("fs_list", json!({"session_id": s, "depth": 3}))
        .await
        .unwrap();
    let entries = listed["entries"].as_array().unwrap();
    let link = entries
        .iter()
        .find(|entry| entry["path"] == "link_out")
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], world.outside.as_str());
    assert!(
        entries
            .iter()
            .all(|entry| !entry["path"].as_str().unwrap().starts_with("link_out/"))
    );
    assert!(
        entries.iter().all(|entry| entry["path"] != "secret"),
        "deny_paths hides entries"
    );

    let preview = world
        .call("fs_remove", json!({"session_id": s, "path": "link_out"}))
        .await
        .unwrap();
    assert_eq!(preview["removed"], false);
    assert!(Path::new(&world.root).join("link_out").exists());
    world
        .call(
            "fs_remove",
            json!({"session_id": s, "path": "link_out", "confirm": true}),
        )
        .await
        .unwrap();
    assert!(!Path::new(&world.root).join("link_out").exists());
    assert_eq!(read_file(format!("{}/file", world.outside)), "outside\n");

    world
        .call(
            "fs_mkdir",
            json!({"session_id": s, "path": "tree/a/b", "parents": true}),
        )
        .await
        .unwrap();
    let refused = world
        .code(
            "fs_remove",
            json!({"session_id": s, "path": "tree", "confirm": true}),
        )
        .await;
    assert_eq!(refused, ErrorCode::InvalidInput);
    let removed = world
        .call(
            "fs_remove",
            json!({"session_id": s, "path": "tree", "recursive": true, "confirm": true}),
        )
        .await
        .unwrap();
    assert_eq!(removed["count"], 3);
    let stat = world
        .call("fs_stat", json!({"session_id": s, "path": "inside_link"}))
        .await
        .unwrap();
    assert_eq!(stat["type"], "symlink");
}

#[tokio::test]
async fn sessions_are_private_limited_and_expire() {
    let world = world("limits:\n  max_sessions_per_client: 3\n  session_idle_s: 1\n");
    let s = world.session().await;
    let other = world
        .call_as(
            "b",
            "fs_read",
            json!({"session_id": s, "path": "data/a.txt"}),
        )
        .await
        .unwrap_err();
    assert_eq!(other.code, ErrorCode::SessionNotFound);
    let listed = world.call_as("b", "session_list", json!({})).await.unwrap();
    assert_eq!(listed["sessions"], json!([]));
    world.session().await;
    world.session().await;
    let fourth = world
        .code(
            "session_open",
            json!({"host_id": "local", "root": world.root}),
        )
        .await;
    assert_eq!(fourth, ErrorCode::SessionLimit);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let expired = world
        .code("fs_read", json!({"session_id": s, "path": "data/a.txt"}))
        .await;
    assert_eq!(expired, ErrorCode::SessionNotFound);
    world.session().await;
}

#[tokio::test]
async fn local_writes_need_allow_write() {
    let world = world("");
    let read_only = {
        let mut config = world.engine.config().clone();
        config.config.local.allow_write = false;
        let store = super::store_for(&config);
        Engine::new(
            config,
            warden_core::local_transport(),
            std::sync::Arc::clone(crate::registry()),
            store,
        )
        .unwrap()
    };
    let error = read_only
        .invoke(
            &Caller::new("a"),
            "fs_write",
            json!({"host_id": "local", "path": format!("{}/x", world.root), "content": "x"}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::LocalDisabled);
    assert!(!Path::new(&world.root).join("x").exists());
}

#[tokio::test]
async fn commands_in_a_session_run_in_its_directory() {
    let world = world("");
    let s = world.session().await;
    let ran = world
        .call("exec", json!({"session_id": s, "command": "pwd"}))
        .await
        .unwrap();
    assert_eq!(ran["results"][0]["stdout"], format!("{}\n", world.root));
    let ran = world
        .call(
            "run",
            json!({"session_id": s, "argv": ["pwd"], "working_directory": "inside_link"}),
        )
        .await
        .unwrap();
    assert_eq!(ran["stdout"], format!("{}/data\n", world.root));
    for directory in ["link_out", "../outside", "data/a.txt"] {
        let code = world
            .code(
                "run",
                json!({"session_id": s, "argv": ["pwd"], "working_directory": directory}),
            )
            .await;
        let expected = if directory == "data/a.txt" {
            ErrorCode::InvalidInput
        } else {
            ErrorCode::PathOutsideRoot
        };
        assert_eq!(code, expected, "{directory}");
    }
    let both = world
        .code(
            "exec",
            json!({"session_id": s, "target": "local", "command": "pwd"}),
        )
        .await;
    assert_eq!(both, ErrorCode::InvalidInput);
    let foreign = world
        .call_as("b", "run", json!({"session_id": s, "argv": ["pwd"]}))
        .await
        .unwrap_err();
    assert_eq!(foreign.code, ErrorCode::SessionNotFound);
    let summary = world
        .call("session_summary", json!({"session_id": s}))
        .await
        .unwrap();
    assert_eq!(
        summary["activity"]["ran"],
        json!(["pwd", "pwd"]),
        "{summary}"
    );
}
