//! `push` and `sync` through `warden mcp serve` over SFTP to three real sshds. The
//! sshds run on this machine, so every host writes the same destination: results are
//! checked per host and the files once on disk. Calls whose counts must be exact
//! target one host; calls over `all` check what holds whichever host writes first.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use serde_json::{Value, json};

use super::client::McpProcess;
use super::{fleet, mode_of, results};

fn set_mode(path: impl AsRef<Path>, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn count(host: &Value, kind: &str) -> u64 {
    host[kind]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("{kind} in {host}"))
}

/// A tree with an allowed root (`base`: sources in `src/`, destinations in `dest/`, a
/// denied key in `keys/`) and a file outside it.
struct Tree {
    _dir: tempfile::TempDir,
    base: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap().join("root");
    for sub in ["src", "dest", "keys"] {
        std::fs::create_dir_all(base.join(sub)).unwrap();
    }
    std::fs::write(base.join("keys/id_ed25519"), "PRIVATE KEY\n").unwrap();
    let outside = dir.path().canonicalize().unwrap().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("file"), "outside\n").unwrap();
    Tree {
        _dir: dir,
        base,
        outside,
    }
}

fn policy(tree: &Tree) -> String {
    format!(
        "policy:\n  allowed_roots: ['{}']\n  deny_paths: ['.*/id_ed25519']\n",
        tree.base.display()
    )
}

#[test]
fn push_verifies_every_host_and_reports_each_one() {
    let tree = tree();
    let (mut fleet, home, config) = fleet(3, &policy(&tree));
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let source = tree.base.join("src/app.conf");
    std::fs::write(&source, "listen = 443\n").unwrap();
    set_mode(&source, 0o640);
    let dest = tree.base.join("dest/app.conf");
    let push = json!({"target": "all", "source": source, "path": dest});

    // A dry run reports what each host would get and writes nothing.
    let mut dry = push.clone();
    dry["dry_run"] = json!(true);
    let (value, is_error) = mcp.call("push", dry);
    assert!(!is_error, "{value}");
    for host in results(&value) {
        assert_eq!(host["action"], "created", "{host}");
        assert_eq!(host["changed"], false);
    }
    assert!(!dest.exists());

    let (value, is_error) = mcp.call("push", push.clone());
    assert!(!is_error, "{value}");
    assert_eq!(value["summary"]["success_count"], 3, "{value}");
    let sha256 = value["sha256"].as_str().unwrap();
    for host in results(&value) {
        assert_eq!(host["verified"], true, "{host}");
        assert_eq!(host["sha256"], sha256);
        assert_eq!(host["bytes"], 13);
    }
    assert_eq!(read(&dest), "listen = 443\n");
    assert_eq!(mode_of(&dest), 0o640);

    let (value, _) = mcp.call("push", push.clone());
    for host in results(&value) {
        assert_eq!(host["action"], "unchanged", "{host}");
        assert_eq!(host["changed"], false);
    }

    // Replacing a different file needs confirm.
    std::fs::write(&dest, "edited by hand\n").unwrap();
    let (value, _) = mcp.call("push", push.clone());
    assert_eq!(value["confirm_needed"], true);
    for host in results(&value) {
        assert_eq!(host["action"], "replaced", "{host}");
        assert!(host["preview"].as_str().unwrap().contains("confirm"));
    }
    assert_eq!(read(&dest), "edited by hand\n");
    let mut confirmed = push.clone();
    confirmed["confirm"] = json!(true);
    let (value, _) = mcp.call("push", confirmed);
    assert_eq!(value["summary"]["ok"], true, "{value}");
    assert_eq!(read(&dest), "listen = 443\n");

    // More than one chunk, with a mode that forbids writing.
    let big = tree.base.join("src/big.bin");
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    let big_dest = tree.base.join("dest/big.bin");
    let (value, _) = mcp.call(
        "push",
        json!({"target": "all", "source": big, "path": big_dest, "mode": "0444"}),
    );
    assert_eq!(value["summary"]["success_count"], 3, "{value}");
    assert!(results(&value).iter().all(|host| host["verified"] == true));
    assert_eq!(std::fs::read(&big_dest).unwrap(), data);
    assert_eq!(mode_of(&big_dest), 0o444);

    // Sources outside allowed_roots or denied by deny_paths are refused before any host.
    for (source, code) in [
        (tree.outside.join("file"), "PATH_OUTSIDE_ROOT"),
        (tree.base.join("keys/id_ed25519"), "POLICY_DENIED"),
    ] {
        let (value, is_error) = mcp.call(
            "push",
            json!({"target": "all", "source": source, "path": tree.base.join("dest/stolen")}),
        );
        assert!(is_error, "{value}");
        assert_eq!(value["error"]["code"], code, "{source:?}");
    }
    assert!(!tree.base.join("dest/stolen").exists());

    // A dead host is reported; the others still get the file.
    fleet.hosts_mut()[1].kill();
    let late = tree.base.join("dest/late.conf");
    let (value, is_error) = mcp.call(
        "push",
        json!({"target": "all", "source": source, "path": late}),
    );
    assert!(!is_error, "{value}");
    let hosts = results(&value);
    assert_eq!(hosts[0]["ok"], true, "{value}");
    assert_eq!(hosts[1]["ok"], false);
    assert_eq!(hosts[1]["error"]["code"], "SSH_CONN_FAILED");
    assert_eq!(hosts[1]["error"]["host_id"], "fleet-02");
    assert_eq!(hosts[2]["verified"], true);
    assert_eq!(value["summary"]["fail_count"], 1);
    assert_eq!(read(&late), "listen = 443\n");
    assert!(mcp.close().success());
}

#[test]
fn sync_copies_changes_and_deletes_only_when_confirmed() {
    let tree = tree();
    let (_fleet, home, config) = fleet(3, &policy(&tree));
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let source = tree.base.join("src/site");
    std::fs::create_dir_all(source.join("bin")).unwrap();
    std::fs::create_dir_all(source.join("conf")).unwrap();
    std::fs::write(source.join("index.html"), "<h1>v1</h1>\n").unwrap();
    std::fs::write(source.join("bin/start"), "#!/bin/sh\n").unwrap();
    set_mode(source.join("bin/start"), 0o750);
    std::fs::write(source.join("conf/site.ini"), "a=1\n").unwrap();
    symlink("index.html", source.join("home.html")).unwrap();
    symlink(tree.outside.join("file"), source.join("escape")).unwrap();
    let dest = tree.base.join("dest/site");
    let sync = |target: &str| json!({"target": target, "source": source, "path": dest});

    let (value, is_error) = mcp.call("sync", sync("host:fleet-01"));
    assert!(!is_error, "{value}");
    assert_eq!(value["entries"], 6);
    assert_eq!(value["skipped"]["count"], 1, "the link out is left out");
    let host = &results(&value)[0];
    assert_eq!(count(host, "created"), 6, "{host}");
    assert_eq!(read(dest.join("conf/site.ini")), "a=1\n");
    assert_eq!(mode_of(dest.join("bin/start")), 0o750);
    assert_eq!(
        std::fs::read_link(dest.join("home.html")).unwrap(),
        Path::new("index.html")
    );
    assert!(std::fs::symlink_metadata(dest.join("escape")).is_err());

    let (value, _) = mcp.call("sync", sync("all"));
    assert_eq!(value["summary"]["success_count"], 3, "{value}");
    for host in results(&value) {
        assert_eq!(count(host, "unchanged"), 6, "{host}");
        assert_eq!(count(host, "created") + count(host, "updated"), 0);
    }

    std::fs::write(source.join("index.html"), "<h1>v2</h1>\n").unwrap();
    let (value, _) = mcp.call("sync", sync("host:fleet-02"));
    let host = &results(&value)[0];
    assert_eq!(host["updated"]["paths"], json!(["index.html"]), "{host}");
    assert_eq!(count(host, "unchanged"), 5);
    assert_eq!(read(dest.join("index.html")), "<h1>v2</h1>\n");

    // delete: a preview on every host without confirm, then done on one host.
    std::fs::write(dest.join("stale.txt"), "old").unwrap();
    let mut delete = sync("all");
    delete["delete"] = json!(true);
    let (value, _) = mcp.call("sync", delete);
    assert_eq!(value["confirm_needed"], true);
    for host in results(&value) {
        assert_eq!(host["deleted"]["paths"], json!(["stale.txt"]), "{host}");
        assert!(host["preview"].is_string());
    }
    assert!(dest.join("stale.txt").exists());
    let mut confirmed = sync("host:fleet-03");
    confirmed["delete"] = json!(true);
    confirmed["confirm"] = json!(true);
    let (value, _) = mcp.call("sync", confirmed);
    let host = &results(&value)[0];
    assert_eq!(count(host, "deleted"), 1, "{host}");
    assert!(!dest.join("stale.txt").exists());
    assert_eq!(read(dest.join("index.html")), "<h1>v2</h1>\n");
    assert!(mcp.close().success());
}
