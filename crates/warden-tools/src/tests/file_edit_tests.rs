//! The editing file tools (patch, diff, copy, move, chmod, chown, symlink, readlink)
//! through the engine on `local`, against the real tree of `file_tests::world`: each
//! tool's work, its confirm preview, and the escapes it must refuse.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::tests::file_tests::{World, entries_in, mode_of, read_file, world};
use warden_core::config::{Config, ConfigSources, LoadedConfig};
use warden_core::error::ErrorCode;
use warden_core::{Caller, Engine};

const CONFIG: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\ntwelve\n";

fn set_mode(path: impl AsRef<Path>, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl World {
    fn path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.root)
    }

    /// The error of a call expected to fail.
    async fn error(&self, tool: &str, args: Value) -> warden_core::error::Error {
        match self.call(tool, args.clone()).await {
            Ok(value) => panic!("{tool} {args} succeeded: {value}"),
            Err(error) => error,
        }
    }
}

/// A diff turning CONFIG's "two" into "TWO" and "eleven" into "ELEVEN" (two hunks).
fn two_hunk_diff() -> String {
    let changed = CONFIG.replace("two", "TWO").replace("eleven", "ELEVEN");
    diffy::create_patch(CONFIG, &changed).to_string()
}

#[tokio::test]
async fn patch_applies_every_hunk_or_nothing_and_keeps_the_mode() {
    let world = world("");
    let s = world.session().await;
    let file = world.path("data/app.ini");
    std::fs::write(&file, CONFIG).unwrap();
    set_mode(&file, 0o640);

    let patched = world
        .call(
            "fs_patch",
            json!({"session_id": s, "path": "data/app.ini", "unified_diff": two_hunk_diff()}),
        )
        .await
        .unwrap();
    let expected = CONFIG.replace("two", "TWO").replace("eleven", "ELEVEN");
    assert_eq!(read_file(&file), expected);
    assert_eq!(patched["hunks_applied"], 2);
    assert_eq!(patched["bytes"], expected.len());
    assert_eq!(patched["path"], file.as_str());
    assert_eq!(
        patched["sha256_before"],
        crate::fs::file_args::sha256_hex(CONFIG.as_bytes())
    );
    assert_eq!(
        patched["sha256_after"],
        crate::fs::file_args::sha256_hex(expected.as_bytes())
    );
    assert_eq!(mode_of(&file), 0o640, "the mode is kept");

    // The second hunk no longer matches (its "ELEVEN" was changed by hand): nothing
    // changes, and the error names that hunk and the line that differs.
    let hand_edited = expected.replace("ELEVEN", "eleven (edited)");
    std::fs::write(&file, &hand_edited).unwrap();
    let diff = diffy::create_patch(
        &expected,
        &expected.replace("TWO", "2").replace("ELEVEN", "11"),
    )
    .to_string();
    let failed = world
        .error(
            "fs_patch",
            json!({"session_id": s, "path": "data/app.ini", "unified_diff": diff}),
        )
        .await;
    assert_eq!(failed.code, ErrorCode::PatchFailed);
    assert!(
        failed.message.contains("hunk #2 (@@ -8,5 +8,5 @@)")
            && failed.message.contains("line 11 is \"eleven (edited)\"")
            && failed.message.contains("\"ELEVEN\""),
        "{}",
        failed.message
    );
    assert_eq!(
        read_file(&file),
        hand_edited,
        "the first hunk was not applied"
    );

    let stale = world
        .error(
            "fs_patch",
            json!({"session_id": s, "path": "data/app.ini", "unified_diff": two_hunk_diff(),
                   "expected_sha256": crate::fs::file_args::sha256_hex(CONFIG.as_bytes())}),
        )
        .await;
    assert_eq!(stale.code, ErrorCode::Conflict);
    let matching = world
        .call(
            "fs_patch",
            json!({"session_id": s, "path": "data/app.ini",
                   "unified_diff": "@@ -11 +11 @@\n-eleven (edited)\n+eleven\n",
                   "expected_sha256": crate::fs::file_args::sha256_hex(hand_edited.as_bytes())}),
        )
        .await
        .unwrap();
    assert_eq!(matching["hunks_applied"], 1, "headers without ---/+++ do");
    assert_eq!(read_file(&file), expected.replace("ELEVEN", "eleven"));
    assert_eq!(entries_in(world.path("data")), ["a.txt", "app.ini"]);

    let code = |path: &str, diff: &str| {
        world.code(
            "fs_patch",
            json!({"session_id": s, "path": path, "unified_diff": diff}),
        )
    };
    let one_line = "@@ -1 +1 @@\n-outside\n+pwned\n";
    for path in ["file_link_out", "../outside/file", "link_out/file"] {
        assert_eq!(
            code(path, one_line).await,
            ErrorCode::PathOutsideRoot,
            "{path}"
        );
    }
    assert_eq!(read_file(format!("{}/file", world.outside)), "outside\n");
    assert_eq!(
        code("secret", "@@ -1 +1 @@\n-hidden\n+x\n").await,
        ErrorCode::PolicyDenied
    );
    assert_eq!(code("data", one_line).await, ErrorCode::InvalidInput);
    assert_eq!(code("missing.txt", one_line).await, ErrorCode::FileNotFound);
    assert_eq!(
        code("data/a.txt", "not a diff").await,
        ErrorCode::InvalidInput
    );

    // A big file: a hunk where its header says applies; one elsewhere is not
    // searched for across 600k lines (bounded CPU), and nothing changes.
    let many: String = (0..600_000).map(|line| format!("l{line}\n")).collect();
    std::fs::write(world.path("many.txt"), &many).unwrap();
    let context: String = (1000..1400).map(|line| format!(" l{line}\n")).collect();
    let hunk = |at: usize| format!("@@ -{at},400 +{at},401 @@\n+added\n{context}");
    let misplaced = world
        .error(
            "fs_patch",
            json!({"session_id": s, "path": "many.txt", "unified_diff": hunk(5001)}),
        )
        .await;
    assert_eq!(misplaced.code, ErrorCode::PatchFailed);
    assert!(
        misplaced
            .message
            .contains("line 5001 is \"l5000\" where the hunk expects \"l1000\"")
            && misplaced.message.contains("not searched"),
        "{}",
        misplaced.message
    );
    world
        .call(
            "fs_patch",
            json!({"session_id": s, "path": "many.txt", "unified_diff": hunk(1001)}),
        )
        .await
        .unwrap();
    assert!(read_file(world.path("many.txt")).contains("l999\nadded\nl1000\n"));

    let big = world.path("big.txt");
    std::fs::write(&big, vec![b'x'; 9 * 1024 * 1024]).unwrap();
    let too_big = world
        .error(
            "fs_patch",
            json!({"session_id": s, "path": "big.txt", "unified_diff": one_line}),
        )
        .await;
    assert_eq!(too_big.code, ErrorCode::InvalidInput);
    assert!(too_big.message.contains("8 MiB"), "{}", too_big.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_of_one_file_never_lose_an_update() {
    let world = world("");
    let s = world.session().await;
    let file = world.path("data/app.ini");
    for round in 0..5 {
        std::fs::write(&file, CONFIG).unwrap();
        let sha = crate::fs::file_args::sha256_hex(CONFIG.as_bytes());
        let patch = |from: &str, to: &str| {
            let diff = diffy::create_patch(CONFIG, &CONFIG.replace(from, to)).to_string();
            world.call(
                "fs_patch",
                json!({"session_id": s, "path": "data/app.ini", "unified_diff": diff,
                       "expected_sha256": sha}),
            )
        };
        // Both made against the same content: exactly one wins.
        let (first, second) = tokio::join!(patch("two", "TWO"), patch("nine", "NINE"));
        let content = read_file(&file);
        match (&first, &second) {
            (Ok(_), Err(error)) => {
                assert_eq!(error.code, ErrorCode::Conflict);
                assert_eq!(content, CONFIG.replace("two", "TWO"), "round {round}");
            }
            (Err(error), Ok(_)) => {
                assert_eq!(error.code, ErrorCode::Conflict);
                assert_eq!(content, CONFIG.replace("nine", "NINE"), "round {round}");
            }
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        }

        // Without a precondition both apply, one after the other: neither is lost.
        std::fs::write(&file, CONFIG).unwrap();
        let unguarded = |from: &str, to: &str| {
            let diff = diffy::create_patch(CONFIG, &CONFIG.replace(from, to)).to_string();
            world.call(
                "fs_patch",
                json!({"session_id": s, "path": "data/app.ini", "unified_diff": diff}),
            )
        };
        let (first, second) = tokio::join!(unguarded("two", "TWO"), unguarded("nine", "NINE"));
        first.unwrap();
        second.unwrap();
        assert_eq!(
            read_file(&file),
            CONFIG.replace("two", "TWO").replace("nine", "NINE")
        );

        // fs_write's expected_sha256 is checked under the same lock.
        let write = |content: &str| {
            world.call(
                "fs_write",
                json!({"session_id": s, "path": "data/a.txt", "content": content,
                       "confirm": true, "expected_sha256": crate::fs::file_args::sha256_hex(b"alpha\n")}),
            )
        };
        std::fs::write(world.path("data/a.txt"), "alpha\n").unwrap();
        let (first, second) = tokio::join!(write("first\n"), write("second\n"));
        assert!(
            first.is_ok() != second.is_ok(),
            "round {round}: {first:?} {second:?}"
        );
        let loser = first.err().or(second.err()).unwrap();
        assert_eq!(loser.code, ErrorCode::Conflict);
    }
}

#[tokio::test]
async fn diff_shows_changes_as_a_patch_fs_patch_takes() {
    let world = world("limits:\n  max_output_bytes: 2000\n");
    let s = world.session().await;
    std::fs::write(world.path("data/old.ini"), CONFIG).unwrap();
    let changed = CONFIG.replace("five", "FIVE");
    std::fs::write(world.path("data/new.ini"), &changed).unwrap();

    let diff = world
        .call(
            "fs_diff",
            json!({"session_id": s, "path_a": "data/old.ini", "path_b": "data/new.ini", "context_lines": 1}),
        )
        .await
        .unwrap();
    assert_eq!(diff["identical"], false);
    assert_eq!(diff["truncated"], false);
    let text = diff["diff"].as_str().unwrap();
    assert!(
        text.contains("@@ -4,3 +4,3 @@\n four\n-five\n+FIVE\n six\n"),
        "{text}"
    );
    world
        .call(
            "fs_patch",
            json!({"session_id": s, "path": "data/old.ini", "unified_diff": text}),
        )
        .await
        .unwrap();
    assert_eq!(read_file(world.path("data/old.ini")), changed);
    let same = world
        .call(
            "fs_diff",
            json!({"session_id": s, "path_a": "data/old.ini", "path_b": "data/new.ini"}),
        )
        .await
        .unwrap();
    assert_eq!(same["identical"], true);
    assert_eq!(same["diff"], "");

    std::fs::write(world.path("data/bin"), [0u8, 159, 146, 150]).unwrap();
    let binary = world
        .call(
            "fs_diff",
            json!({"session_id": s, "path_a": "data/bin", "path_b": "data/a.txt"}),
        )
        .await
        .unwrap();
    assert_eq!(
        (binary["binary"].clone(), binary["diff"].clone()),
        (json!(true), json!(""))
    );

    let long: String = (0..500).map(|line| format!("line {line}\n")).collect();
    std::fs::write(world.path("data/long"), &long).unwrap();
    let cut = world
        .call(
            "fs_diff",
            json!({"session_id": s, "path_a": "data/a.txt", "path_b": "data/long"}),
        )
        .await
        .unwrap();
    assert_eq!(cut["truncated"], true);
    assert_eq!(cut["diff"].as_str().unwrap().len(), 2000);

    // Files that differ across more lines than a diff can afford are refused.
    let numbered = |prefix: &str| -> String {
        (0..10_001)
            .map(|line| format!("{prefix}{line}\n"))
            .collect()
    };
    std::fs::write(world.path("data/left"), numbered("a")).unwrap();
    std::fs::write(world.path("data/right"), numbered("b")).unwrap();
    let span = world
        .code(
            "fs_diff",
            json!({"session_id": s, "path_a": "data/left", "path_b": "data/right"}),
        )
        .await;
    assert_eq!(span, ErrorCode::InvalidInput);

    for (a, b) in [
        ("data/a.txt", "file_link_out"),
        ("../outside/file", "data/a.txt"),
    ] {
        let code = world
            .code(
                "fs_diff",
                json!({"session_id": s, "path_a": a, "path_b": b}),
            )
            .await;
        assert_eq!(code, ErrorCode::PathOutsideRoot, "{a} {b}");
    }
    let denied = world
        .code(
            "fs_diff",
            json!({"session_id": s, "path_a": "data/a.txt", "path_b": "secret"}),
        )
        .await;
    assert_eq!(denied, ErrorCode::PolicyDenied);
    let fifo = world
        .code(
            "fs_diff",
            json!({"session_id": s, "path_a": "data/a.txt", "path_b": "fifo"}),
        )
        .await;
    assert_eq!(fifo, ErrorCode::InvalidInput);
}

#[tokio::test]
async fn copies_files_and_trees_atomically_with_modes_and_inner_links_only() {
    let world = world("");
    let s = world.session().await;
    let copy = |args: Value| {
        let mut args = args;
        args["session_id"] = json!(s);
        world.call("fs_copy", args)
    };
    set_mode(world.path("data/a.txt"), 0o750);
    let copied = copy(json!({"from": "data/a.txt", "to": "b.txt"}))
        .await
        .unwrap();
    assert_eq!(copied["copied"], true);
    assert_eq!(copied["files"], 1);
    assert_eq!(read_file(world.path("b.txt")), "alpha\n");
    assert_eq!(mode_of(world.path("b.txt")), 0o750);

    // Over an existing file: a preview first, the copy with confirm.
    std::fs::write(world.path("b.txt"), "old\n").unwrap();
    let preview = copy(json!({"from": "data/a.txt", "to": "b.txt"}))
        .await
        .unwrap();
    assert_eq!(preview["copied"], false);
    assert_eq!(preview["replaced"], json!([world.path("b.txt")]));
    assert_eq!(read_file(world.path("b.txt")), "old\n");
    copy(json!({"from": "data/a.txt", "to": "b.txt", "confirm": true}))
        .await
        .unwrap();
    assert_eq!(read_file(world.path("b.txt")), "alpha\n");
    // A set-user-ID bit is not carried over to warden's copy; a folder is no file name.
    set_mode(world.path("data/a.txt"), 0o4755);
    copy(json!({"from": "data/a.txt", "to": "c.txt"}))
        .await
        .unwrap();
    assert_eq!(mode_of(world.path("c.txt")), 0o755);
    let onto_dir = world
        .code(
            "fs_copy",
            json!({"session_id": s, "from": "data/a.txt", "to": "data", "confirm": true}),
        )
        .await;
    assert_eq!(onto_dir, ErrorCode::InvalidInput);

    // A tree: modes, inner links (relative and absolute) recreated as links.
    let tree = world.path("tree");
    std::fs::create_dir_all(format!("{tree}/sub/deep")).unwrap();
    std::fs::write(format!("{tree}/sub/deep/f"), "deep\n").unwrap();
    symlink("sub/deep/f", format!("{tree}/relative")).unwrap();
    symlink(world.path("data"), format!("{tree}/absolute")).unwrap();
    set_mode(format!("{tree}/sub"), 0o750);
    set_mode(format!("{tree}/sub/deep"), 0o500);
    let refused = world
        .code(
            "fs_copy",
            json!({"session_id": s, "from": "tree", "to": "tree2"}),
        )
        .await;
    assert_eq!(
        refused,
        ErrorCode::InvalidInput,
        "a directory needs recursive"
    );
    let copied = copy(json!({"from": "tree", "to": "tree2", "recursive": true}))
        .await
        .unwrap();
    assert_eq!(
        (
            copied["dirs"].clone(),
            copied["files"].clone(),
            copied["symlinks"].clone()
        ),
        (json!(3), json!(1), json!(2)),
        "{copied}"
    );
    let tree2 = world.path("tree2");
    assert_eq!(read_file(format!("{tree2}/sub/deep/f")), "deep\n");
    assert_eq!(read_file(format!("{tree2}/relative")), "deep\n");
    assert_eq!(
        std::fs::read_link(format!("{tree2}/relative")).unwrap(),
        Path::new("sub/deep/f")
    );
    assert_eq!(
        std::fs::read_link(format!("{tree2}/absolute")).unwrap(),
        Path::new(&world.path("data"))
    );
    assert_eq!(mode_of(format!("{tree2}/sub")), 0o750);
    assert_eq!(mode_of(format!("{tree2}/sub/deep")), 0o500);

    // Merging into the copy replaces what exists, after a preview.
    std::fs::write(format!("{tree}/new"), "new\n").unwrap();
    let preview = copy(json!({"from": "tree", "to": "tree2", "recursive": true}))
        .await
        .unwrap();
    assert_eq!(preview["copied"], false);
    assert_eq!(preview["replaced_count"], 3, "{preview}");
    assert!(!Path::new(&format!("{tree2}/new")).exists());
    copy(json!({"from": "tree", "to": "tree2", "recursive": true, "confirm": true}))
        .await
        .unwrap();
    assert_eq!(read_file(format!("{tree2}/new")), "new\n");

    // A link out of the root anywhere in the tree refuses the whole copy.
    symlink("../../../outside", format!("{tree}/sub/out")).unwrap();
    let escape = world
        .code(
            "fs_copy",
            json!({"session_id": s, "from": "tree", "to": "tree3", "recursive": true}),
        )
        .await;
    assert_eq!(escape, ErrorCode::PathOutsideRoot);
    assert!(!Path::new(&world.path("tree3")).exists());
    // A relative link inside the root at the source that would point out of it
    // from the destination is refused too.
    std::fs::remove_file(format!("{tree}/sub/out")).unwrap();
    std::fs::create_dir_all(world.path("x/y")).unwrap();
    symlink("../../data", world.path("x/y/up")).unwrap();
    let moved_meaning = world
        .code(
            "fs_copy",
            json!({"session_id": s, "from": "x/y", "to": "y", "recursive": true}),
        )
        .await;
    assert_eq!(moved_meaning, ErrorCode::PathOutsideRoot);

    for (from, to) in [
        ("data/a.txt", "../outside/copy"),
        ("data/a.txt", "link_out/copy"),
        ("link_out/file", "stolen"),
        ("file_link_out", "stolen"),
    ] {
        let code = world
            .code(
                "fs_copy",
                json!({"session_id": s, "from": from, "to": to, "confirm": true}),
            )
            .await;
        assert_eq!(code, ErrorCode::PathOutsideRoot, "{from} -> {to}");
    }
    assert_eq!(entries_in(&world.outside), ["file"]);
    assert!(!Path::new(&world.path("stolen")).exists());
    let into_itself = world
        .code(
            "fs_copy",
            json!({"session_id": s, "from": "tree", "to": "tree/inner", "recursive": true}),
        )
        .await;
    assert_eq!(into_itself, ErrorCode::InvalidInput);
    let denied = world
        .code(
            "fs_copy",
            json!({"session_id": s, "from": "data/a.txt", "to": "secret", "confirm": true}),
        )
        .await;
    assert_eq!(denied, ErrorCode::PolicyDenied);

    // A file bigger than one chunk streams through and arrives whole.
    let big: Vec<u8> = (0..9 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    std::fs::write(world.path("big.bin"), &big).unwrap();
    copy(json!({"from": "big.bin", "to": "data/big.bin"}))
        .await
        .unwrap();
    assert!(std::fs::read(world.path("data/big.bin")).unwrap() == big);
    assert_eq!(
        entries_in(world.path("data")),
        ["a.txt", "big.bin"],
        "no temp file left"
    );
}

#[tokio::test]
async fn moves_rename_confirm_and_refuse_the_root_and_escapes() {
    let world = world("");
    let s = world.session().await;
    let mv = |from: &str, to: &str, confirm: bool| {
        world.call(
            "fs_move",
            json!({"session_id": s, "from": from, "to": to, "confirm": confirm}),
        )
    };
    let moved = mv("data/a.txt", "a.txt", false).await.unwrap();
    assert_eq!(moved["moved"], true);
    assert_eq!(read_file(world.path("a.txt")), "alpha\n");
    assert!(!Path::new(&world.path("data/a.txt")).exists());

    std::fs::write(world.path("b.txt"), "bravo\n").unwrap();
    let preview = mv("a.txt", "b.txt", false).await.unwrap();
    assert_eq!(preview["moved"], false);
    assert_eq!(preview["replaced"], "file");
    assert_eq!(read_file(world.path("b.txt")), "bravo\n");
    mv("a.txt", "b.txt", true).await.unwrap();
    assert_eq!(read_file(world.path("b.txt")), "alpha\n");

    // A link moves as a link; one whose text would then point out is refused.
    let moved_link = mv("inside_link", "data/inner", false).await.unwrap();
    assert_eq!(moved_link["moved"], true);
    assert!(
        std::fs::symlink_metadata(world.path("data/inner"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    symlink("../b.txt", world.path("data/up")).unwrap();
    let code = |from: &str, to: &str| {
        world.code(
            "fs_move",
            json!({"session_id": s, "from": from, "to": to, "confirm": true}),
        )
    };
    assert_eq!(code("data/up", "up").await, ErrorCode::PathOutsideRoot);
    assert_eq!(
        code("b.txt", "../outside/b.txt").await,
        ErrorCode::PathOutsideRoot
    );
    assert_eq!(
        code("b.txt", "link_out/b.txt").await,
        ErrorCode::PathOutsideRoot
    );
    assert_eq!(
        code("link_out/file", "taken").await,
        ErrorCode::PathOutsideRoot
    );
    assert_eq!(code(".", "elsewhere").await, ErrorCode::InvalidInput);
    assert_eq!(code("data", "data/sub").await, ErrorCode::InvalidInput);
    assert_eq!(code("secret", "public").await, ErrorCode::PolicyDenied);
    assert_eq!(code("missing", "x").await, ErrorCode::FileNotFound);
    assert_eq!(code("b.txt", "data").await, ErrorCode::InvalidInput);
    assert_eq!(entries_in(&world.outside), ["file"]);
    // A link already pointing out is not moved around either.
    assert_eq!(
        code("file_link_out", "data/link").await,
        ErrorCode::PathOutsideRoot
    );
    assert!(Path::new(&world.path("file_link_out")).is_symlink());
}

#[tokio::test]
async fn moves_across_file_systems_are_refused_clearly() {
    let base = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let (here, there) = (
        base.path().canonicalize().unwrap(),
        shm.path().canonicalize().unwrap(),
    );
    std::fs::write(here.join("f"), "f\n").unwrap();
    let yaml = format!(
        "local:\n  allow_write: true\npolicy:\n  allowed_roots: ['{}', '{}']\n",
        here.display(),
        there.display()
    );
    let loaded = LoadedConfig {
        config: Config::parse(&yaml).unwrap(),
        source: None,
        state_dir: ConfigSources {
            config: None,
            state_dir: Some(here.join("state")),
        }
        .state_dir(),
    };
    let store = super::store_for(&loaded);
    let engine = Engine::new(
        loaded,
        warden_core::local_transport(),
        std::sync::Arc::clone(crate::registry()),
        store,
    )
    .unwrap();
    let error = engine
        .invoke(
            &Caller::new("a"),
            "fs_move",
            json!({"host_id": "local", "from": here.join("f"), "to": there.join("f")}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        error.message.contains("the host refused to rename")
            && error.hint.as_deref().unwrap_or("").contains("fs_copy"),
        "{error:?}"
    );
    assert!(here.join("f").exists() && !there.join("f").exists());
}

#[tokio::test]
async fn chmod_takes_octal_and_symbolic_modes_and_never_follows_links() {
    let world = world("");
    let s = world.session().await;
    let chmod = |path: &str, mode: &str, recursive: bool| {
        world.call(
            "fs_chmod",
            json!({"session_id": s, "path": path, "mode": mode, "recursive": recursive}),
        )
    };
    let file = world.path("data/a.txt");
    set_mode(&file, 0o644);
    let changed = chmod("data/a.txt", "0600", false).await.unwrap();
    assert_eq!(changed["mode"], "0600");
    assert_eq!(mode_of(&file), 0o600);
    chmod("data/a.txt", "u+x,g=r", false).await.unwrap();
    assert_eq!(mode_of(&file), 0o740);
    chmod("data/a.txt", "755", false).await.unwrap();
    chmod("data/a.txt", "go-w", false).await.unwrap();
    assert_eq!(mode_of(&file), 0o755);

    // A tree: every entry, the link in it skipped (its target outside untouched).
    let outside_mode = mode_of(&world.outside);
    std::fs::create_dir_all(world.path("tree/sub")).unwrap();
    std::fs::write(world.path("tree/sub/f"), "f").unwrap();
    symlink(&world.outside, world.path("tree/out")).unwrap();
    let tree = chmod("tree", "a=rX,u+w", true).await.unwrap();
    assert_eq!(
        (tree["entries"].clone(), tree["skipped_symlinks"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(mode_of(world.path("tree")), 0o755);
    assert_eq!(mode_of(world.path("tree/sub")), 0o755);
    assert_eq!(mode_of(world.path("tree/sub/f")), 0o644);
    assert_eq!(mode_of(&world.outside), outside_mode);

    let code = |path: &str, mode: &str| {
        world.code(
            "fs_chmod",
            json!({"session_id": s, "path": path, "mode": mode}),
        )
    };
    assert_eq!(code("inside_link", "0700").await, ErrorCode::InvalidInput);
    assert_eq!(
        code("link_out/file", "0777").await,
        ErrorCode::PathOutsideRoot
    );
    assert_eq!(code("../outside", "0777").await, ErrorCode::PathOutsideRoot);
    assert_eq!(code("secret", "0777").await, ErrorCode::PolicyDenied);
    assert_eq!(code("data/a.txt", "u+q").await, ErrorCode::InvalidInput);
    assert_eq!(mode_of(&world.outside), outside_mode);
    // A denied entry inside a tree refuses the whole walk before any change.
    std::fs::write(world.path("tree/secret"), "x").unwrap();
    let denied = world
        .code(
            "fs_chmod",
            json!({"session_id": s, "path": "tree", "mode": "0700", "recursive": true}),
        )
        .await;
    assert_eq!(denied, ErrorCode::PolicyDenied);
    assert_eq!(mode_of(world.path("tree/sub")), 0o755);
}

/// The uid of `name` in this machine's /etc/passwd.
fn uid_of(name: &str) -> u32 {
    read_file("/etc/passwd")
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields[0] == name).then(|| fields[2].parse().unwrap())
        })
        .unwrap()
}

#[tokio::test]
async fn chown_sets_owners_by_name_or_id_and_skips_links() {
    let world = world("");
    let file = world.path("data/a.txt");
    if std::fs::metadata(&file).unwrap().uid() != 0 {
        eprintln!("chown needs root: skipped");
        return;
    }
    let s = world.session().await;
    let chown = |path: &str, owner: &str, recursive: bool| {
        world.call(
            "fs_chown",
            json!({"session_id": s, "path": path, "owner": owner, "recursive": recursive}),
        )
    };
    let numeric = chown("data/a.txt", "1000:1001", false).await.unwrap();
    assert_eq!(
        (numeric["uid"].clone(), numeric["gid"].clone()),
        (json!(1000), json!(1001))
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1001));

    chown("data/a.txt", "daemon", false).await.unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (uid_of("daemon"), 1001),
        "group kept"
    );
    chown("data/a.txt", ":root", false).await.unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (uid_of("daemon"), 0), "user kept");
    chown("data/a.txt", "root:root", false).await.unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 0);

    symlink(&world.outside, world.path("data/out")).unwrap();
    let tree = chown("data", "1234:1234", true).await.unwrap();
    assert_eq!(tree["skipped_symlinks"], 1);
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 1234);
    assert_eq!(std::fs::metadata(world.path("data")).unwrap().gid(), 1234);
    assert_eq!(
        std::fs::symlink_metadata(world.path("data/out"))
            .unwrap()
            .uid(),
        0
    );
    assert_eq!(std::fs::metadata(&world.outside).unwrap().uid(), 0);

    let unknown = world
        .error(
            "fs_chown",
            json!({"session_id": s, "path": "data/a.txt", "owner": "no-such-user-here"}),
        )
        .await;
    assert_eq!(unknown.code, ErrorCode::InvalidInput);
    assert!(
        unknown.message.contains("numeric id"),
        "{}",
        unknown.message
    );
    let code = |path: &str| {
        world.code(
            "fs_chown",
            json!({"session_id": s, "path": path, "owner": "1:1"}),
        )
    };
    assert_eq!(code("inside_link").await, ErrorCode::InvalidInput);
    assert_eq!(code("link_out/file").await, ErrorCode::PathOutsideRoot);
    assert_eq!(code("secret").await, ErrorCode::PolicyDenied);
    assert_eq!(
        std::fs::metadata(format!("{}/file", world.outside))
            .unwrap()
            .uid(),
        0
    );
}

#[tokio::test]
async fn symlinks_are_made_only_to_targets_inside_and_read_back_safely() {
    let world = world("");
    let s = world.session().await;
    let link = |target: &str, link_path: &str| {
        world.call(
            "fs_symlink",
            json!({"session_id": s, "target": target, "link_path": link_path}),
        )
    };
    let made = link("data/a.txt", "to_a").await.unwrap();
    assert_eq!(made["resolved_target"], world.path("data/a.txt"));
    assert_eq!(made["target_exists"], true);
    assert_eq!(read_file(world.path("to_a")), "alpha\n");
    // Relative to the link's own directory, written as given.
    let sibling = link("a.txt", "data/sibling").await.unwrap();
    assert_eq!(sibling["resolved_target"], world.path("data/a.txt"));
    assert_eq!(
        std::fs::read_link(world.path("data/sibling")).unwrap(),
        Path::new("a.txt")
    );
    let absolute = link(&world.path("data"), "abs").await.unwrap();
    assert_eq!(absolute["resolved_target"], world.path("data"));
    let dangling = link("later.txt", "data/later").await.unwrap();
    assert_eq!(dangling["target_exists"], false);

    let code = |target: &str, link_path: &str| {
        world.code(
            "fs_symlink",
            json!({"session_id": s, "target": target, "link_path": link_path}),
        )
    };
    let outside_file = format!("{}/file", world.outside);
    for target in [
        "../../outside/file",
        outside_file.as_str(),
        "/etc/passwd",
        "../link_out/file",
        "../relative_out",
        "../loop1",
    ] {
        assert_eq!(
            code(target, "data/evil").await,
            ErrorCode::PathOutsideRoot,
            "{target}"
        );
    }
    assert!(!Path::new(&world.path("data/evil")).exists());
    // The same text means another place from another directory: out from the root,
    // a (dangling) path inside from data/.
    assert_eq!(
        code("../outside/file", "evil").await,
        ErrorCode::PathOutsideRoot
    );
    let inner = link("../outside/file", "data/inner").await.unwrap();
    assert_eq!(inner["resolved_target"], world.path("outside/file"));
    assert_eq!(
        code("data/a.txt", "link_out/evil").await,
        ErrorCode::PathOutsideRoot
    );
    assert!(!Path::new(&format!("{}/evil", world.outside)).exists());
    assert_eq!(code("data/a.txt", "to_a").await, ErrorCode::Conflict);
    assert_eq!(code("secret", "to_secret").await, ErrorCode::PolicyDenied);
    assert_eq!(
        code("data/a.txt", "missing/link").await,
        ErrorCode::FileNotFound
    );

    let readlink = |path: &str| world.call("fs_readlink", json!({"session_id": s, "path": path}));
    let inside = readlink("data/sibling").await.unwrap();
    assert_eq!(
        inside,
        json!({"path": world.path("data/sibling"), "target": "a.txt", "inside_root": true,
               "resolved_target": world.path("data/a.txt"), "target_exists": true})
    );
    let out = readlink("link_out").await.unwrap();
    assert_eq!(
        out,
        json!({"path": world.path("link_out"), "target": world.outside, "inside_root": false,
               "target_exists": false}),
        "the link text only, never the outside resolved"
    );
    assert_eq!(
        readlink("relative_out").await.unwrap()["inside_root"],
        false
    );
    assert_eq!(readlink("loop1").await.unwrap()["inside_root"], false);
    let not_link = world
        .code(
            "fs_readlink",
            json!({"session_id": s, "path": "data/a.txt"}),
        )
        .await;
    assert_eq!(not_link, ErrorCode::InvalidInput);
    let through = world
        .code(
            "fs_readlink",
            json!({"session_id": s, "path": "link_out/x"}),
        )
        .await;
    assert_eq!(through, ErrorCode::PathOutsideRoot);

    let summary = world
        .call("session_summary", json!({"session_id": s}))
        .await
        .unwrap();
    let written = summary["activity"]["written"].as_array().unwrap();
    assert!(
        written.contains(&json!(world.path("data/sibling"))),
        "{summary}"
    );
    let read = summary["activity"]["read"].as_array().unwrap();
    assert!(read.contains(&json!(world.path("link_out"))), "{summary}");
}
