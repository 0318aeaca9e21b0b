//! Regression tests from a security review of the file tools: a directory move must
//! not carry entries past `deny_paths` or relative links out of the root, a symlink
//! target must not climb back through a component that does not exist, and recursive
//! tools stop at a bounded number of entries without changing anything.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::fleet::sync;
use crate::fs::file_args;
use crate::fs::file_args::FileScope;
use crate::fs::fs_copy::{FsCopyParams, plan_copy};
use crate::fs::fs_move;
use crate::fs::fs_remove;
use crate::tests::file_tests::{World, entries_in, read_file, world, world_denying};
use warden_core::error::{Error, ErrorCode};
use warden_core::files::FileKind;
use warden_core::sandbox::{Last, Sandbox};

impl World {
    fn at(&self, relative: &str) -> String {
        format!("{}/{relative}", self.root)
    }
}

#[tokio::test]
async fn moving_a_directory_checks_deny_paths_on_every_entry() {
    let world = world_denying("['.*/secret', '.*/config/secrets']", "");
    let s = world.session().await;
    std::fs::create_dir_all(world.at("config/secrets")).unwrap();
    std::fs::write(world.at("config/secrets/db.key"), "key").unwrap();
    std::fs::write(world.at("config/app.ini"), "ini").unwrap();
    let code = async |tool: &str, mut args: serde_json::Value| {
        args["session_id"] = json!(s);
        world.code(tool, args).await
    };
    assert_eq!(
        code("fs_read", json!({"path": "config/secrets/db.key"})).await,
        ErrorCode::PolicyDenied
    );
    // Renaming the parent would move the denied file out from under its rule.
    assert_eq!(
        code(
            "fs_move",
            json!({"from": "config", "to": "cfg", "confirm": true})
        )
        .await,
        ErrorCode::PolicyDenied
    );
    assert!(!Path::new(&world.at("cfg")).exists(), "nothing moved");
    assert_eq!(read_file(world.at("config/secrets/db.key")), "key");
    assert_eq!(
        code("fs_read", json!({"path": "cfg/secrets/db.key"})).await,
        ErrorCode::FileNotFound
    );

    // Nor may a move put entries where a rule denies them.
    std::fs::create_dir_all(world.at("stuff/secrets")).unwrap();
    std::fs::write(world.at("stuff/secrets/new.key"), "new").unwrap();
    std::fs::remove_dir_all(world.at("config")).unwrap();
    assert_eq!(
        code(
            "fs_move",
            json!({"from": "stuff", "to": "config", "confirm": true})
        )
        .await,
        ErrorCode::PolicyDenied
    );
    assert!(Path::new(&world.at("stuff/secrets/new.key")).exists());
    assert!(!Path::new(&world.at("config")).exists());

    // A directory with nothing denied still moves.
    std::fs::remove_dir_all(world.at("stuff/secrets")).unwrap();
    let moved = world
        .call(
            "fs_move",
            json!({"session_id": s, "from": "stuff", "to": "config"}),
        )
        .await
        .unwrap();
    assert_eq!(moved["moved"], true);
}

#[tokio::test]
async fn moving_a_directory_rechecks_its_relative_symlinks() {
    let world = world("");
    let s = world.session().await;
    std::fs::create_dir_all(world.at("deep/tree/bin")).unwrap();
    // From deep/tree/bin, ../../../data/a.txt is the root's data/a.txt: inside.
    symlink("../../../data/a.txt", world.at("deep/tree/bin/up")).unwrap();
    symlink("../bin/up", world.at("deep/tree/bin/sibling")).unwrap();
    let mv = |from: &str, to: &str| {
        world.call(
            "fs_move",
            json!({"session_id": s, "from": from, "to": to, "confirm": true}),
        )
    };
    // One level up, the same text climbs above the root.
    let error = mv("deep/tree", "tree").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::PathOutsideRoot, "{error:?}");
    assert!(Path::new(&world.at("deep/tree/bin/up")).is_symlink());
    assert!(!Path::new(&world.at("tree")).exists(), "nothing moved");

    // At the same depth elsewhere they stay inside, and move with the tree.
    std::fs::create_dir(world.at("other")).unwrap();
    mv("deep/tree", "other/tree").await.unwrap();
    assert_eq!(read_file(world.at("other/tree/bin/sibling")), "alpha\n");
}

#[tokio::test]
async fn symlink_targets_cannot_climb_back_through_missing_components() {
    let world = world("");
    let s = world.session().await;
    let link = |path: &str, target: &str| {
        world.call(
            "fs_symlink",
            json!({"session_id": s, "link_path": path, "target": target}),
        )
    };
    // With m1 and m2 later made links to ".", the host would resolve this to
    // ../outside/file: the text says nothing certain while m1 does not exist.
    let error = link("l", "m1/m2/../../outside/file").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::PathOutsideRoot, "{error:?}");
    assert!(
        error.message.contains("does not exist"),
        "{}",
        error.message
    );
    assert!(!Path::new(&world.at("l")).is_symlink());
    let error = link("l", "m1/../data/a.txt").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::PathOutsideRoot);

    // `..` through directories that exist, and dangling targets, are still fine.
    link("l", "data/../data/a.txt").await.unwrap();
    link("dangling", "data/later/file").await.unwrap();
    link("data/up", "../data/a.txt").await.unwrap();
    assert_eq!(read_file(world.at("l")), "alpha\n");
}

#[tokio::test]
async fn copies_into_new_directories_keep_links_that_climb_out_of_them() {
    // A tree's links are checked where their directories will be made: a leading
    // `..` from a directory the copy creates is not a climb through a missing name.
    let world = world("");
    let s = world.session().await;
    std::fs::create_dir_all(world.at("tree/sub")).unwrap();
    std::fs::write(world.at("tree/top.txt"), "top\n").unwrap();
    symlink("../top.txt", world.at("tree/sub/up")).unwrap();
    let copied = world
        .call(
            "fs_copy",
            json!({"session_id": s, "from": "tree", "to": "copy", "recursive": true}),
        )
        .await
        .unwrap();
    assert_eq!(copied["symlinks"], 1);
    assert_eq!(read_file(world.at("copy/sub/up")), "top\n");
}

/// A sandbox on the local file system over `root`, denying paths ending in /secret.
fn local_sandbox(root: &str) -> Sandbox {
    let guard = Arc::new(|path: &str| {
        if path.ends_with("/secret") {
            Err(Error::new(ErrorCode::PolicyDenied, "denied"))
        } else {
            Ok(())
        }
    });
    warden_core::testing::sandbox(warden_core::testing::local_files(), root, guard)
}

/// A root holding `tree/` with six files in two directories (nine entries with them).
fn small_tree() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().display().to_string();
    for sub in ["tree/a", "tree/b"] {
        std::fs::create_dir_all(format!("{root}/{sub}")).unwrap();
        for name in ["1", "2", "3"] {
            std::fs::write(format!("{root}/{sub}/{name}"), name).unwrap();
        }
    }
    (dir, root)
}

fn assert_too_many(result: Result<impl std::fmt::Debug, Error>) {
    let error = result.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error:?}");
    assert!(
        error
            .message
            .contains("more than 4 entries; work on a smaller tree"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn recursive_tools_stop_at_their_entry_cap() {
    let (_dir, root) = small_tree();
    let sandbox = local_sandbox(&root);
    let tree = format!("{root}/tree");
    let meta = sandbox.files().lstat(&tree).await.unwrap().unwrap();

    let mut doomed = Vec::new();
    assert_too_many(fs_remove::collect(&sandbox, &tree, FileKind::Dir, 4, &mut doomed).await);
    let mut doomed = Vec::new();
    fs_remove::collect(&sandbox, &tree, FileKind::Dir, 100, &mut doomed)
        .await
        .unwrap();
    assert_eq!(doomed.len(), 9);

    assert_too_many(file_args::tree(&sandbox, &tree, meta.clone(), 4).await);
    assert_eq!(
        file_args::tree(&sandbox, &tree, meta, 100)
            .await
            .unwrap()
            .len(),
        9
    );

    assert_too_many(sync::doomed_tree(&sandbox, &tree, FileKind::Dir, 4).await);
    let all = sync::doomed_tree(&sandbox, &tree, FileKind::Dir, 100)
        .await
        .unwrap();
    assert_eq!(all.map(|doomed| doomed.len()), Some(9));

    let params = FsCopyParams {
        scope: FileScope {
            session_id: None,
            host_id: Some("local".into()),
        },
        from: tree.clone(),
        to: format!("{root}/copy"),
        recursive: true,
        confirm: false,
    };
    assert_too_many(plan_copy(&sandbox, &sandbox, &params, 4).await.map(|_| ()));
    plan_copy(&sandbox, &sandbox, &params, 100).await.unwrap();

    let elsewhere = format!("{root}/moved");
    assert_too_many(fs_move::check_tree(&sandbox, &sandbox, &tree, &elsewhere, 4).await);
    fs_move::check_tree(&sandbox, &sandbox, &tree, &elsewhere, 100)
        .await
        .unwrap();

    // Nothing was changed by any of them.
    assert_eq!(entries_in(&root), ["tree"]);
    assert_eq!(entries_in(&tree), ["a", "b"]);
    let resolved = sandbox.resolve("tree/a/1", Last::NoFollow).await.unwrap();
    assert!(resolved.meta.is_some());
}

#[tokio::test]
async fn sync_previews_keep_links_that_climb_out_of_directories_still_to_make() {
    // In a dry run the host has none of the tree yet: `sub/up -> ../a.txt` is checked
    // from the directory the sync would make, and counted as created, not skipped.
    let world = world("hosts:\n  - {id: h1, address: 127.0.0.1}\n");
    std::fs::create_dir_all(world.at("src/sub")).unwrap();
    std::fs::write(world.at("src/a.txt"), "alpha\n").unwrap();
    symlink("../a.txt", world.at("src/sub/up")).unwrap();
    for dry_run in [true, false] {
        let synced = world
            .call(
                "sync",
                json!({"target": "host:h1", "source": world.at("src"), "path": world.at("dest"), "dry_run": dry_run}),
            )
            .await
            .unwrap();
        let host = &synced["results"][0];
        assert_eq!(host["created"]["count"], 3, "{host}");
        assert_eq!(host["skipped"]["count"], 0, "{host}");
    }
    assert_eq!(read_file(world.at("dest/sub/up")), "alpha\n");
}
