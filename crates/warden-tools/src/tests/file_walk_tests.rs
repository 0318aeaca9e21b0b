//! The walking file tools (`fs_find`, `fs_grep`, `fs_tail`, `fs_du`) and the shared
//! walker, through the engine on `local` against real trees: happy paths, bounds, and
//! escapes (symlinks out of the root, link loops, deny_paths).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::fs::walk::{self, WalkOptions};
use crate::tests::file_tests::{World, world};
use warden_core::error::{Error, ErrorCode, Result};
use warden_core::files::{DirEntry, FileKind, FileMeta, HostFiles};

/// The shared world plus: `secret` as a denied directory with content, `data/back`
/// (a link to an ancestor: a loop if followed), `logs/` and an old file.
fn walk_world() -> World {
    let world = world("");
    let root = Path::new(&world.root);
    std::fs::remove_file(root.join("secret")).unwrap();
    std::fs::create_dir(root.join("secret")).unwrap();
    std::fs::write(root.join("secret/key"), "hidden ERROR\n").unwrap();
    symlink("..", root.join("data/back")).unwrap();
    std::fs::create_dir(root.join("logs")).unwrap();
    std::fs::write(root.join("logs/big.log"), "x".repeat(2000)).unwrap();
    std::fs::write(
        root.join("logs/app.log"),
        "one\nERROR first\nthree\nfour\nerror second\n",
    )
    .unwrap();
    let old = std::fs::File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(root.join("old.txt"))
        .unwrap();
    old.set_modified(SystemTime::now() - Duration::from_secs(2 * 86_400))
        .unwrap();
    world
}

fn paths(found: &Value, list: &str) -> Vec<String> {
    found[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["path"].as_str().unwrap().to_owned())
        .collect()
}

/// No result names anything outside the root or below a denied path.
fn assert_confined(world: &World, found: &[String]) {
    for path in found {
        assert!(path.starts_with(&format!("{}/", world.root)), "{path}");
        assert!(!path.contains("/secret"), "{path}");
        assert!(!path.contains("/link_out/"), "{path}");
        assert!(!path.contains("/back/"), "{path}");
    }
}

#[tokio::test]
async fn find_filters_by_name_type_size_age_and_depth() {
    let world = walk_world();
    let s = world.session().await;
    let root = &world.root;
    let find = |args: Value| {
        let mut args = args;
        args["session_id"] = json!(s);
        world.call("fs_find", args)
    };

    let logs = find(json!({"name": "*.log"})).await.unwrap();
    assert_eq!(
        paths(&logs, "entries"),
        [
            format!("{root}/logs/app.log"),
            format!("{root}/logs/big.log")
        ]
    );
    assert_eq!(logs["entries"][0]["type"], "file");
    assert_eq!(logs["truncated"], false);
    assert_eq!(logs["path"], root.as_str());

    let all = find(json!({})).await.unwrap();
    let everything = paths(&all, "entries");
    assert_confined(&world, &everything);
    assert!(everything.contains(&format!("{root}/data/a.txt")));
    assert_eq!(all["skipped_denied"], 1);
    assert_eq!(all["scanned"], everything.len());

    let links = find(json!({"type": "symlink"})).await.unwrap();
    let link_out = links["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["path"] == format!("{root}/link_out"))
        .unwrap();
    assert_eq!(link_out["target"], world.outside.as_str());
    assert_eq!(
        links["entries"].as_array().unwrap().len(),
        7,
        "link_out, file_link_out, relative_out, inside_link, loop1, loop2, data/back"
    );

    let big = find(json!({"min_size": 1000, "type": "file"}))
        .await
        .unwrap();
    assert_eq!(paths(&big, "entries"), [format!("{root}/logs/big.log")]);
    let small = find(json!({"max_size": 0, "type": "file"})).await.unwrap();
    assert_eq!(paths(&small, "entries"), [format!("{root}/old.txt")]);
    let old = find(json!({"older_than_s": 86_400})).await.unwrap();
    assert_eq!(paths(&old, "entries"), [format!("{root}/old.txt")]);
    let recent = find(json!({"newer_than_s": 3600, "name": "*.txt"}))
        .await
        .unwrap();
    assert_eq!(paths(&recent, "entries"), [format!("{root}/data/a.txt")]);
    let shallow = find(json!({"max_depth": 1, "name": "*.txt"}))
        .await
        .unwrap();
    assert_eq!(paths(&shallow, "entries"), [format!("{root}/old.txt")]);
    let below = find(json!({"path": "data"})).await.unwrap();
    assert_eq!(
        paths(&below, "entries"),
        [format!("{root}/data/a.txt"), format!("{root}/data/back")]
    );

    let limited = find(json!({"limit": 2})).await.unwrap();
    assert_eq!(limited["entries"].as_array().unwrap().len(), 2);
    assert_eq!(limited["truncated"], true);
    let exact = find(json!({"name": "*.log", "limit": 2})).await.unwrap();
    assert_eq!(exact["truncated"], false, "exactly limit matches");

    for (path, code) in [
        ("link_out", ErrorCode::PathOutsideRoot),
        ("relative_out", ErrorCode::PathOutsideRoot),
        ("loop1", ErrorCode::PathOutsideRoot),
        ("secret", ErrorCode::PolicyDenied),
        ("data/a.txt", ErrorCode::InvalidInput),
    ] {
        let code_found = world
            .code("fs_find", json!({"session_id": s, "path": path}))
            .await;
        assert_eq!(code_found, code, "{path}");
    }
    let bad_glob = world
        .code("fs_find", json!({"session_id": s, "name": "[z-a"}))
        .await;
    assert_eq!(bad_glob, ErrorCode::InvalidInput);
}

#[tokio::test]
async fn grep_finds_lines_with_context_and_skips_binary_big_and_denied() {
    let world = walk_world();
    let root = Path::new(&world.root);
    std::fs::write(root.join("blob.bin"), b"ERROR\0binary").unwrap();
    let mut huge = "ERROR in a huge file\n".repeat(1 + 16 * 1024 * 1024 / 21);
    huge.push_str("end\n");
    std::fs::write(root.join("logs/huge.txt"), huge).unwrap();
    let numbered: String = (1..=20_000).map(|n| format!("line {n}\n")).collect();
    std::fs::write(root.join("logs/numbered.txt"), numbered).unwrap();
    std::fs::write(
        root.join("long.txt"),
        format!("ERROR{}\n", "y".repeat(200_000)),
    )
    .unwrap();
    let s = world.session().await;
    let grep = |args: Value| {
        let mut args = args;
        args["session_id"] = json!(s);
        world.call("fs_grep", args)
    };
    let app_log = format!("{}/logs/app.log", world.root);

    let found = grep(json!({"path": ".", "pattern": "ERROR"}))
        .await
        .unwrap();
    assert_eq!(
        paths(&found, "matches"),
        [format!("{}/long.txt", world.root), app_log.clone()]
    );
    let long = &found["matches"][0];
    assert_eq!(long["line"], 1);
    assert!(long["text"].as_str().unwrap().ends_with('…'));
    assert_eq!(long["text"].as_str().unwrap().chars().count(), 501);
    assert_eq!(found["matches"][1]["line"], 2);
    assert_eq!(found["matches"][1]["text"], "ERROR first");
    assert_eq!(found["skipped"]["binary"], 1);
    assert_eq!(found["skipped"]["too_large"], 1);
    assert_eq!(found["skipped"]["denied"], 1);
    assert_eq!(found["truncated"], false);

    let with_context = grep(json!({"path": "logs", "pattern": "error", "ignore_case": true, "context_lines": 1, "glob": "*.log"}))
        .await
        .unwrap();
    assert_eq!(
        with_context["matches"],
        json!([
            {"path": app_log, "line": 2, "text": "ERROR first", "before": ["one"], "after": ["three"]},
            {"path": app_log, "line": 5, "text": "error second", "before": ["four"]},
        ])
    );
    let first_only =
        grep(json!({"path": "logs/app.log", "pattern": "(?i)error", "max_matches": 1}))
            .await
            .unwrap();
    assert_eq!(first_only["matches"].as_array().unwrap().len(), 1);
    assert_eq!(first_only["truncated"], true);
    let across_chunks = grep(json!({"path": "logs/numbered.txt", "pattern": "^line 15000$"}))
        .await
        .unwrap();
    assert_eq!(across_chunks["matches"][0]["line"], 15_000);
    let by_glob = grep(json!({"path": ".", "pattern": "alpha", "glob": "*.txt"}))
        .await
        .unwrap();
    assert_eq!(
        by_glob["matches"][0]["path"],
        format!("{}/data/a.txt", world.root)
    );
    let none = grep(json!({"path": ".", "pattern": "alpha", "glob": "*.log"}))
        .await
        .unwrap();
    assert_eq!(none["matches"], json!([]));

    // Links out of the root (file_link_out, relative_out, link_out/) are never read.
    let outside = grep(json!({"path": ".", "pattern": "outside|hidden"}))
        .await
        .unwrap();
    assert_eq!(outside["matches"], json!([]));
    for (path, code) in [
        ("file_link_out", ErrorCode::PathOutsideRoot),
        ("link_out", ErrorCode::PathOutsideRoot),
        ("secret/key", ErrorCode::PolicyDenied),
        ("fifo", ErrorCode::InvalidInput),
    ] {
        let refused = world
            .code(
                "fs_grep",
                json!({"session_id": s, "path": path, "pattern": "."}),
            )
            .await;
        assert_eq!(refused, code, "{path}");
    }
    let bad = world
        .code(
            "fs_grep",
            json!({"session_id": s, "path": ".", "pattern": "("}),
        )
        .await;
    assert_eq!(bad, ErrorCode::InvalidInput);
}

#[tokio::test]
async fn tail_reads_backwards_from_the_end_within_its_bound() {
    let world = walk_world();
    let root = Path::new(&world.root);
    let numbered: String = (1..=100_000).map(|n| format!("line {n}\n")).collect();
    std::fs::write(root.join("logs/numbered.log"), &numbered).unwrap();
    std::fs::write(root.join("no_newline"), "a\nb").unwrap();
    std::fs::write(root.join("empty"), "").unwrap();
    std::fs::write(root.join("blank"), "\n").unwrap();
    std::fs::write(
        root.join("long_line"),
        format!("first\n{}\nend\n", "z".repeat(200_000)),
    )
    .unwrap();
    let mut unbroken = "w".repeat(9 * 1024 * 1024);
    unbroken.push_str("\nlast\n");
    std::fs::write(root.join("unbroken"), unbroken).unwrap();
    let s = world.session().await;
    let tail = |args: Value| {
        let mut args = args;
        args["session_id"] = json!(s);
        world.call("fs_tail", args)
    };

    let last = tail(json!({"path": "logs/numbered.log", "lines": 3}))
        .await
        .unwrap();
    assert_eq!(
        last["lines"],
        json!(["line 99998", "line 99999", "line 100000"])
    );
    assert_eq!(last["size"], numbered.len());
    assert_eq!(last["bytes_scanned"], 64 * 1024, "one chunk, not the file");
    assert_eq!(last["bound_hit"], false);
    let default = tail(json!({"path": "logs/numbered.log"})).await.unwrap();
    assert_eq!(default["lines"].as_array().unwrap().len(), 50);
    let filtered =
        tail(json!({"path": "logs/numbered.log", "filter": "^line 500\\d$", "lines": 3}))
            .await
            .unwrap();
    assert_eq!(
        filtered["lines"],
        json!(["line 5007", "line 5008", "line 5009"])
    );
    let whole = tail(json!({"path": "logs/app.log", "lines": 100}))
        .await
        .unwrap();
    assert_eq!(
        whole["lines"],
        json!(["one", "ERROR first", "three", "four", "error second"])
    );
    for (path, lines) in [
        ("no_newline", json!(["a", "b"])),
        ("empty", json!([])),
        ("blank", json!([""])),
    ] {
        let answer = tail(json!({"path": path})).await.unwrap();
        assert_eq!(answer["lines"], lines, "{path}");
    }
    let long = tail(json!({"path": "long_line"})).await.unwrap();
    let lines = long["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "first");
    assert_eq!(lines[1].as_str().unwrap().chars().count(), 501);
    assert_eq!(lines[2], "end");
    let bounded = tail(json!({"path": "unbroken", "lines": 2})).await.unwrap();
    assert_eq!(bounded["lines"], json!(["last"]));
    assert_eq!(bounded["bound_hit"], true);
    assert_eq!(bounded["bytes_scanned"], 8 * 1024 * 1024);

    for (path, code) in [
        ("file_link_out", ErrorCode::PathOutsideRoot),
        ("relative_out", ErrorCode::PathOutsideRoot),
        ("data/back/../../outside/file", ErrorCode::PathOutsideRoot),
        ("loop1", ErrorCode::PathOutsideRoot),
        ("secret/key", ErrorCode::PolicyDenied),
        ("fifo", ErrorCode::InvalidInput),
        ("data", ErrorCode::InvalidInput),
    ] {
        let refused = world
            .code("fs_tail", json!({"session_id": s, "path": path}))
            .await;
        assert_eq!(refused, code, "{path}");
    }
}

#[tokio::test]
async fn du_counts_the_tree_and_ranks_children_without_following_links() {
    let world = walk_world();
    let root = Path::new(&world.root);
    std::fs::create_dir_all(root.join("big/inner")).unwrap();
    for name in ["one", "two", "inner/three"] {
        std::fs::write(root.join("big").join(name), "b".repeat(1000)).unwrap();
    }
    std::fs::write(root.join("tiny"), "t").unwrap();
    let s = world.session().await;

    let usage = world.call("fs_du", json!({"session_id": s})).await.unwrap();
    // data/a.txt 6, logs 2000 + 40, big 3000, tiny 1, old.txt 0; secret/ is denied.
    assert_eq!(usage["bytes"], 6 + 2000 + 40 + 3000 + 1);
    assert_eq!(usage["files"], 8);
    assert_eq!(usage["dirs"], 4, "data, logs, big, big/inner");
    assert_eq!(usage["other"], 8, "7 symlinks and a FIFO");
    assert_eq!(usage["skipped_denied"], 1);
    assert_eq!(usage["truncated"], false);
    let top = usage["top"].as_array().unwrap();
    assert_eq!(top[0]["path"], format!("{}/big", world.root));
    assert_eq!(top[0]["type"], "dir");
    assert_eq!(top[0]["bytes"], 3000);
    assert_eq!(top[0]["files"], 3);
    assert_eq!(top[0]["dirs"], 2);
    assert_eq!(top[1]["path"], format!("{}/logs", world.root));
    assert_eq!(top.len(), 10);

    let shallow = world
        .call("fs_du", json!({"session_id": s, "max_depth": 1, "top": 1}))
        .await
        .unwrap();
    assert_eq!(shallow["bytes"], 1, "only tiny at depth 1");
    assert_eq!(shallow["top"].as_array().unwrap().len(), 1);
    let file = world
        .call("fs_du", json!({"session_id": s, "path": "big/one"}))
        .await
        .unwrap();
    assert_eq!(file["bytes"], 1000);
    assert_eq!(file["files"], 1);

    for (path, code) in [
        ("link_out", ErrorCode::PathOutsideRoot),
        ("secret", ErrorCode::PolicyDenied),
    ] {
        let refused = world
            .code("fs_du", json!({"session_id": s, "path": path}))
            .await;
        assert_eq!(refused, code, "{path}");
    }
    let summary = world
        .call("session_summary", json!({"session_id": s}))
        .await
        .unwrap();
    assert_eq!(
        summary["activity"]["read"],
        json!([world.root, world.root, format!("{}/big/one", world.root)]),
        "one read event per call"
    );
}

/// `LocalFiles`, except that listing `victim`'s parent also removes `victim`: a
/// directory that vanishes between being listed and being descended into.
struct VanishingDir {
    local: Arc<dyn HostFiles>,
    victim: String,
}

#[async_trait]
impl HostFiles for VanishingDir {
    async fn lstat(&self, path: &str) -> Result<Option<FileMeta>> {
        self.local.lstat(path).await
    }
    async fn read_link(&self, path: &str) -> Result<String> {
        self.local.read_link(path).await
    }
    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.local.read(path, offset, length).await
    }
    async fn create_new(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        self.local.create_new(path, data, mode).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.local.rename(from, to).await
    }
    async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let entries = self.local.read_dir(path).await?;
        if warden_core::sandbox::parent_of(&self.victim) == path {
            let _ = std::fs::remove_dir_all(&self.victim);
        }
        Ok(entries)
    }
    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        self.local.mkdir(path, mode).await
    }
    async fn remove_file(&self, path: &str) -> Result<()> {
        self.local.remove_file(path).await
    }
    async fn remove_dir(&self, path: &str) -> Result<()> {
        self.local.remove_dir(path).await
    }
    async fn symlink(&self, target: &str, link_path: &str) -> Result<()> {
        self.local.symlink(target, link_path).await
    }
    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        self.local.set_mode(path, mode).await
    }
    async fn set_owner(&self, path: &str, uid: u32, gid: u32) -> Result<()> {
        self.local.set_owner(path, uid, gid).await
    }
    async fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.local.write_at(path, offset, data).await
    }
    async fn truncate(&self, path: &str, length: u64) -> Result<()> {
        self.local.truncate(path, length).await
    }
    async fn sync(&self, path: &str) -> Result<()> {
        self.local.sync(path).await
    }
}

#[tokio::test]
async fn the_walker_skips_links_denied_and_vanished_entries_and_stops_at_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for sub in ["a/deep", "gone/below", "denied"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("a/deep/file"), "x").unwrap();
    std::fs::write(root.join("denied/key"), "k").unwrap();
    symlink(&root, root.join("self")).unwrap();
    symlink("/", root.join("slash")).unwrap();
    let root = root.display().to_string();
    let files = Arc::new(VanishingDir {
        local: warden_core::testing::local_files(),
        victim: format!("{root}/gone"),
    });
    let guard = Arc::new(|path: &str| {
        if path.ends_with("/denied") {
            Err(Error::new(ErrorCode::PolicyDenied, "denied"))
        } else {
            Ok(())
        }
    });
    let sandbox = warden_core::testing::sandbox(files, &root, guard);
    let all = WalkOptions {
        max_depth: usize::MAX,
        max_entries: walk::MAX_WALK_ENTRIES,
    };

    let found = walk::walk(&sandbox, &root, all).await.unwrap();
    let relative: Vec<&str> = found
        .entries
        .iter()
        .map(|entry| entry.relative.as_str())
        .collect();
    assert_eq!(
        relative,
        ["a", "gone", "self", "slash", "a/deep", "a/deep/file"],
        "breadth first, sorted; gone/ vanished before it was descended into"
    );
    assert_eq!(found.entries[2].meta.kind, FileKind::Symlink);
    assert_eq!(found.entries[5].path, format!("{root}/a/deep/file"));
    assert!(!found.stats.truncated);
    assert_eq!(found.stats.skipped_denied, 1);

    let shallow = walk::walk(
        &sandbox,
        &root,
        WalkOptions {
            max_depth: 1,
            ..all
        },
    )
    .await
    .unwrap();
    assert_eq!(shallow.entries.len(), 3, "a, self, slash (gone is gone)");
    assert!(!shallow.stats.truncated);
    let bounded = walk::walk(
        &sandbox,
        &root,
        WalkOptions {
            max_entries: 2,
            ..all
        },
    )
    .await
    .unwrap();
    assert_eq!(bounded.entries.len(), 2);
    assert!(bounded.stats.truncated);
    let vanished_start = walk::walk(&sandbox, &format!("{root}/gone"), all).await;
    assert_eq!(vanished_start.unwrap_err().code, ErrorCode::FileNotFound);
}

#[tokio::test]
async fn grep_output_stays_within_max_read_bytes() {
    let world = world("limits:\n  max_read_bytes: 200\n");
    let lines: String = (1..=1000).map(|n| format!("match {n}\n")).collect();
    std::fs::write(Path::new(&world.root).join("many"), lines).unwrap();
    let s = world.session().await;
    let found = world
        .call(
            "fs_grep",
            json!({"session_id": s, "path": "many", "pattern": "match", "max_matches": 1000}),
        )
        .await
        .unwrap();
    let matches = found["matches"].as_array().unwrap();
    assert!(!matches.is_empty() && matches.len() < 10, "{found}");
    assert_eq!(found["truncated"], true);
}
