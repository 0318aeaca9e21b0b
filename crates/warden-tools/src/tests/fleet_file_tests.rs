//! `push` and `sync` through the engine: three configured hosts served by the local
//! transport (one real file system, so they share the destination), sources read on
//! `local`. The same tools over SFTP against sshd are in the binary's e2e tests.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::tests::file_tests::{World, mode_of, read_file, world};
use warden_core::error::ErrorCode;
use warden_core::{Caller, Engine};

const HOSTS: &str = "hosts:\n  - {id: h1, address: 127.0.0.1}\n  - {id: h2, address: 127.0.0.1}\n  - {id: h3, address: 127.0.0.1}\n";

fn hosts(value: &Value) -> &Vec<Value> {
    value["results"].as_array().unwrap()
}

/// `world` (`extra` continues its `policy:` section) plus `src/app.conf` (mode 0640) and an empty `dest/` inside the root.
fn push_world(extra: &str) -> (World, String, String) {
    let world = world(&format!("{extra}{HOSTS}"));
    let root = Path::new(&world.root);
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("dest")).unwrap();
    let source = root.join("src/app.conf");
    std::fs::write(&source, "port = 8080\n").unwrap();
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o640)).unwrap();
    let dest = format!("{}/dest/app.conf", world.root);
    (world, source.display().to_string(), dest)
}

#[tokio::test]
async fn push_writes_verifies_and_leaves_identical_files_alone() {
    let (world, source, dest) = push_world("");
    let args = json!({"target": "all", "source": source, "path": dest});
    let first = world.call("push", args.clone()).await.unwrap();
    let sha256 = first["sha256"].as_str().unwrap();
    assert_eq!(first["bytes"], 12);
    assert_eq!(first["summary"]["success_count"], 3, "{first}");
    for host in hosts(&first) {
        // The hosts share one file system: a host may find the file another just wrote.
        assert_eq!(host["verified"], true, "{host}");
        assert_eq!(host["sha256"], sha256);
        assert!(["created", "unchanged"].contains(&host["action"].as_str().unwrap()));
    }
    assert!(hosts(&first).iter().any(|host| host["changed"] == true));
    assert_eq!(read_file(&dest), "port = 8080\n");
    assert_eq!(mode_of(&dest), 0o640, "a new file takes the source's mode");

    let again = world.call("push", args.clone()).await.unwrap();
    for host in hosts(&again) {
        assert_eq!(
            (&host["action"], &host["changed"], &host["verified"]),
            (&json!("unchanged"), &json!(false), &json!(true)),
            "{host}"
        );
    }

    let chmod = world
        .call(
            "push",
            json!({"target": "host:h2", "source": source, "path": dest, "mode": "0600"}),
        )
        .await
        .unwrap();
    assert_eq!(hosts(&chmod)[0]["action"], "mode_set");
    assert_eq!(mode_of(&dest), 0o600);

    // A different file is replaced only with confirm; its mode is kept.
    std::fs::write(&dest, "edited on the host\n").unwrap();
    let preview = world.call("push", args.clone()).await.unwrap();
    assert_eq!(preview["confirm_needed"], true);
    for host in hosts(&preview) {
        assert_eq!(host["action"], "replaced");
        assert_eq!(host["changed"], false);
        assert!(host["preview"].as_str().unwrap().contains("confirm"));
    }
    assert_eq!(read_file(&dest), "edited on the host\n");
    let mut confirmed = args.clone();
    confirmed["confirm"] = json!(true);
    let replaced = world.call("push", confirmed).await.unwrap();
    assert_eq!(replaced["summary"]["ok"], true, "{replaced}");
    assert!(hosts(&replaced).iter().all(|host| host["verified"] == true));
    assert_eq!(read_file(&dest), "port = 8080\n");
    assert_eq!(mode_of(&dest), 0o600);
}

#[tokio::test]
async fn push_dry_run_changes_nothing_and_failures_stay_per_host() {
    let (world, source, dest) =
        push_world("  roles:\n    - {name: locked, hosts: ['host:h3'], deny_paths: ['.*/dest']}\n");
    let dry = world
        .call(
            "push",
            json!({"target": "all", "source": source, "path": dest, "dry_run": true}),
        )
        .await
        .unwrap();
    assert!(!Path::new(&dest).exists());
    let dry_hosts = hosts(&dry);
    assert_eq!(dry_hosts[0]["action"], "created");
    assert!(
        dry_hosts[0]["preview"]
            .as_str()
            .unwrap()
            .starts_with("dry run")
    );
    assert_eq!(dry_hosts[2]["error"]["code"], "POLICY_DENIED");

    let pushed = world
        .call(
            "push",
            json!({"target": "all", "source": source, "path": dest}),
        )
        .await
        .unwrap();
    let results = hosts(&pushed);
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[1]["ok"], true);
    assert_eq!(results[2]["ok"], false);
    assert_eq!(results[2]["error"]["code"], "POLICY_DENIED");
    assert_eq!(results[2]["error"]["host_id"], "h3");
    assert_eq!(pushed["summary"]["fail_count"], 1);
    assert_eq!(read_file(&dest), "port = 8080\n");

    let nested = world
        .call(
            "push",
            json!({"target": "host:h1", "source": source, "path": format!("{}/no/such/dir/f", world.root)}),
        )
        .await
        .unwrap();
    assert_eq!(hosts(&nested)[0]["error"]["code"], "FILE_NOT_FOUND");
}

#[tokio::test]
async fn push_sources_must_be_allowed_readable_files() {
    let (world, _, dest) = push_world("");
    let refused = [
        (
            format!("{}/file", world.outside),
            ErrorCode::PathOutsideRoot,
        ),
        (
            format!("{}/file_link_out", world.root),
            ErrorCode::PathOutsideRoot,
        ),
        (format!("{}/secret", world.root), ErrorCode::PolicyDenied),
        (format!("{}/fifo", world.root), ErrorCode::InvalidInput),
        (format!("{}/data", world.root), ErrorCode::InvalidInput),
        (format!("{}/missing", world.root), ErrorCode::FileNotFound),
        (String::from("relative/file"), ErrorCode::InvalidInput),
    ];
    for (source, code) in refused {
        let got = world
            .code(
                "push",
                json!({"target": "all", "source": source, "path": dest}),
            )
            .await;
        assert_eq!(got, code, "{source}");
    }
    assert!(!Path::new(&dest).exists());
}

#[tokio::test]
async fn push_reads_local_without_allow_write_but_writing_local_needs_it() {
    let (world, source, dest) = push_world("");
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
    let caller = Caller::new("a");
    let call = |target: &str| {
        read_only.invoke(
            &caller,
            "push",
            json!({"target": target, "source": source, "path": dest}),
            CancellationToken::new(),
            None,
        )
    };
    let pushed = call("host:h1").await.unwrap();
    assert_eq!(pushed["summary"]["ok"], true, "{pushed}");
    std::fs::remove_file(&dest).unwrap();
    let error = call("host:local").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::LocalDisabled);
    assert!(!Path::new(&dest).exists());
}

/// `src/tree`: files with modes, nested directories, a link inside, a link out, a
/// denied file and a FIFO.
fn sync_world() -> (World, String, String) {
    let world = world(HOSTS);
    let root = Path::new(&world.root).to_path_buf();
    let tree = root.join("src/tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("sub/deep")).unwrap();
    std::fs::create_dir_all(root.join("dest")).unwrap();
    std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(tree.join("bin/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        tree.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(tree.join("sub/deep/x.txt"), "x\n").unwrap();
    std::fs::write(tree.join("secret"), "hidden").unwrap();
    symlink("a.txt", tree.join("link_in")).unwrap();
    symlink("../../../outside/file", tree.join("link_out")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(tree.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    (
        world,
        tree.display().to_string(),
        root.join("dest/tree").display().to_string(),
    )
}

fn count(host: &Value, kind: &str) -> u64 {
    host[kind]["count"].as_u64().unwrap()
}

#[tokio::test]
async fn sync_copies_what_changed_and_deletes_only_when_confirmed() {
    let (world, source, dest) = sync_world();
    let args = json!({"target": "host:h1", "source": source, "path": dest});
    let first = world.call("sync", args.clone()).await.unwrap();
    assert_eq!(first["entries"], 7, "{first}");
    let skipped: Vec<&str> = first["skipped"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|path| path.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    for name in ["link_out:", "pipe:", "secret:"] {
        assert!(skipped.iter().any(|path| path.starts_with(name)), "{name}");
    }
    let host = &hosts(&first)[0];
    assert_eq!(host["ok"], true, "{host}");
    assert_eq!(count(host, "created"), 7);
    let dest_path = Path::new(&dest);
    assert_eq!(read_file(dest_path.join("sub/deep/x.txt")), "x\n");
    assert_eq!(mode_of(dest_path.join("bin/run.sh")), 0o755);
    assert_eq!(
        std::fs::read_link(dest_path.join("link_in")).unwrap(),
        Path::new("a.txt")
    );
    assert!(!dest_path.join("link_out").exists() && !dest_path.join("secret").exists());

    let again = world.call("sync", args.clone()).await.unwrap();
    let host = &hosts(&again)[0];
    assert_eq!((count(host, "created"), count(host, "unchanged")), (0, 7));

    // Same size, new content; a mode change alone.
    let tree = Path::new(&source);
    std::fs::write(tree.join("a.txt"), "ALPHA\n").unwrap();
    std::fs::set_permissions(
        tree.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let updated = world.call("sync", args.clone()).await.unwrap();
    let host = &hosts(&updated)[0];
    assert_eq!(host["updated"]["paths"], json!(["a.txt", "bin/run.sh"]));
    assert_eq!(read_file(dest_path.join("a.txt")), "ALPHA\n");
    assert_eq!(mode_of(dest_path.join("bin/run.sh")), 0o700);

    std::fs::write(dest_path.join("extra.txt"), "extra").unwrap();
    std::fs::create_dir_all(dest_path.join("old")).unwrap();
    std::fs::write(dest_path.join("old/y"), "y").unwrap();
    let kept = world.call("sync", args.clone()).await.unwrap();
    assert_eq!(count(&hosts(&kept)[0], "deleted"), 0);
    let mut delete = args.clone();
    delete["delete"] = json!(true);
    let preview = world.call("sync", delete.clone()).await.unwrap();
    assert_eq!(preview["confirm_needed"], true);
    let host = &hosts(&preview)[0];
    assert!(host["preview"].as_str().unwrap().contains("confirm"));
    assert_eq!(
        host["deleted"]["paths"],
        json!(["extra.txt", "old/y", "old"])
    );
    assert!(dest_path.join("extra.txt").exists() && dest_path.join("old/y").exists());
    delete["confirm"] = json!(true);
    let deleted = world.call("sync", delete).await.unwrap();
    let host = &hosts(&deleted)[0];
    assert_eq!(count(host, "deleted"), 3, "{host}");
    assert!(host.get("preview").is_none());
    assert!(!dest_path.join("extra.txt").exists() && !dest_path.join("old").exists());
    assert_eq!(read_file(dest_path.join("a.txt")), "ALPHA\n");
}

#[tokio::test]
async fn sync_dry_run_changes_nothing_and_never_writes_through_host_links() {
    let (world, source, dest) = sync_world();
    let dry = world
        .call(
            "sync",
            json!({"target": "all", "source": source, "path": dest, "dry_run": true}),
        )
        .await
        .unwrap();
    for host in hosts(&dry) {
        assert_eq!(count(host, "created"), 7, "{host}");
    }
    assert!(!Path::new(&dest).exists(), "dry_run made the directory");

    // On the host, `bin` is a link out of the root: nothing is written through it.
    std::fs::create_dir_all(&dest).unwrap();
    symlink(&world.outside, Path::new(&dest).join("bin")).unwrap();
    let synced = world
        .call(
            "sync",
            json!({"target": "host:h2", "source": source, "path": dest}),
        )
        .await
        .unwrap();
    let host = &hosts(&synced)[0];
    assert_eq!(host["ok"], true, "{host}");
    assert_eq!(count(host, "created"), 5);
    assert_eq!(count(host, "skipped"), 2, "{host}");
    assert!(!Path::new(&world.outside).join("run.sh").exists());

    // A source that is not an allowed directory is refused before any host.
    for (bad, code) in [
        (world.outside.clone(), ErrorCode::PathOutsideRoot),
        (
            format!("{}/data/a.txt", world.root),
            ErrorCode::InvalidInput,
        ),
    ] {
        let got = world
            .code(
                "sync",
                json!({"target": "all", "source": bad, "path": dest}),
            )
            .await;
        assert_eq!(got, code, "{bad}");
    }
}

#[tokio::test]
async fn replaced_files_keep_their_owner() {
    use std::os::unix::fs::MetadataExt;
    let (world, source, dest) = push_world("");
    if std::fs::metadata(&source).unwrap().uid() != 0 {
        eprintln!("giving files away needs root: skipped");
        return;
    }
    let owned_by_service = |path: &str| {
        std::fs::write(path, "the service's own copy\n").unwrap();
        std::os::unix::fs::chown(path, Some(1000), Some(1001)).unwrap();
    };
    let owner = |path: &str| {
        let metadata = std::fs::metadata(path).unwrap();
        (metadata.uid(), metadata.gid())
    };

    owned_by_service(&dest);
    world
        .call(
            "push",
            json!({"target": "host:h1", "source": source, "path": dest, "confirm": true}),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "port = 8080\n");
    assert_eq!(owner(&dest), (1000, 1001));

    owned_by_service(&dest);
    let data = "uploaded\n";
    let sha256 = crate::fs::file_args::sha256_hex(data.as_bytes());
    world
        .call(
            "fs_stream_write",
            json!({"host_id": "h1", "path": dest, "confirm": true, "finish": true,
                   "sha256": sha256, "content_base64": data_encoding::BASE64.encode(data.as_bytes())}),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), data);
    assert_eq!(owner(&dest), (1000, 1001));

    // sync: an updated file keeps its owner; a new one is the login's.
    let tree = format!("{}/tree", world.root);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(format!("{tree}/app.conf"), "synced\n").unwrap();
    owned_by_service(&dest);
    world
        .call(
            "sync",
            json!({"target": "host:h1", "source": tree, "path": format!("{}/dest", world.root)}),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "synced\n");
    assert_eq!(owner(&dest), (1000, 1001));

    // An archive extracted over a file: the content is the archive's, the owner stays.
    let archive = format!("{}/tree.tar.gz", world.root);
    world
        .call(
            "fs_archive_create",
            json!({"host_id": "h1", "paths": [tree], "dest": archive}),
        )
        .await
        .unwrap();
    let packed = format!("{tree}/app.conf");
    owned_by_service(&packed);
    world
        .call(
            "fs_archive_extract",
            json!({"host_id": "h1", "path": archive, "dest": world.root, "confirm": true}),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&packed).unwrap(), "synced\n");
    assert_eq!(owner(&packed), (1000, 1001));
}
