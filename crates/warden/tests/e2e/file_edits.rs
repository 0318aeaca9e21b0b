//! The editing file tools over SFTP through `warden mcp serve` against a real sshd:
//! each tool's happy path, the escapes each must refuse, and two concurrent patches of
//! one file (one wins, the other gets CONFLICT).

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use serde_json::{Value, json};

use super::{app_tree, fleet_allowing, mode_of, open_session};
use crate::client::McpProcess;

const CONFIG: &str = "listen 80\nworkers 4\nlog info\n";

struct Session {
    mcp: McpProcess,
    id: String,
}

impl Session {
    fn ok(&mut self, tool: &str, mut args: Value) -> Value {
        args["session_id"] = json!(self.id);
        let (value, is_error) = self.mcp.call(tool, args.clone());
        assert!(!is_error, "{tool} {args}: {value}");
        value
    }

    /// The error code of a call that must fail.
    fn refused(&mut self, tool: &str, mut args: Value) -> String {
        args["session_id"] = json!(self.id);
        let (value, is_error) = self.mcp.call(tool, args.clone());
        assert!(is_error, "{tool} {args} succeeded: {value}");
        value["error"]["code"].as_str().unwrap().to_owned()
    }
}

#[test]
fn edit_tools_over_sftp_work_inside_the_root_and_refuse_escapes() {
    let (_tree, base, root) = app_tree();
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("conf")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "outside\n").unwrap();
    symlink(&outside, root.join("escape")).unwrap();
    let app_ini = root.join("conf/app.ini");
    std::fs::write(&app_ini, CONFIG).unwrap();
    std::fs::set_permissions(&app_ini, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&app_ini, Some(1000), Some(1000)).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let id = open_session(&mut mcp, &root);
    let mut s = Session { mcp, id };

    // fs_diff → fs_patch: the diff applies, mode and owner are kept.
    let wanted = CONFIG.replace("workers 4", "workers 8");
    std::fs::write(root.join("conf/wanted.ini"), &wanted).unwrap();
    let diff = s.ok(
        "fs_diff",
        json!({"path_a": "conf/app.ini", "path_b": "conf/wanted.ini"}),
    );
    assert_eq!(diff["identical"], false);
    let unified = diff["diff"].as_str().unwrap().to_owned();
    let patched = s.ok(
        "fs_patch",
        json!({"path": "conf/app.ini", "unified_diff": unified}),
    );
    assert_eq!(patched["hunks_applied"], 1);
    assert_eq!(std::fs::read_to_string(&app_ini).unwrap(), wanted);
    let meta = std::fs::metadata(&app_ini).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o640, 1000, 1000)
    );
    assert_eq!(
        s.refused(
            "fs_patch",
            json!({"path": "conf/app.ini", "unified_diff": unified})
        ),
        "PATCH_FAILED",
        "already applied: its removed line is gone"
    );
    assert_eq!(
        s.refused(
            "fs_patch",
            json!({"path": "escape/secret", "unified_diff": "@@ -1 +1 @@\n-outside\n+pwned\n"})
        ),
        "PATH_OUTSIDE_ROOT"
    );

    // Two patches against the same content at once: exactly one wins.
    let sha = patched["sha256_after"].clone();
    let mut ids = Vec::new();
    for (from, to) in [("listen 80", "listen 81"), ("log info", "log debug")] {
        let diff = format!(
            "@@ -{line} +{line} @@\n-{from}\n+{to}\n",
            line = if from.starts_with("listen") { 1 } else { 3 }
        );
        ids.push(s.mcp.send_request(
            "tools/call",
            json!({"name": "fs_patch", "arguments": {"session_id": s.id, "path": "conf/app.ini",
                   "unified_diff": diff, "expected_sha256": sha}}),
        ));
    }
    let answers = s.mcp.answers(&ids);
    let failed: Vec<&Value> = answers
        .iter()
        .filter(|answer| answer["result"]["isError"] == json!(true))
        .collect();
    assert_eq!(failed.len(), 1, "{answers:?}");
    assert_eq!(
        failed[0]["result"]["structuredContent"]["error"]["code"],
        "CONFLICT"
    );
    let content = std::fs::read_to_string(&app_ini).unwrap();
    assert!(
        content.contains("listen 81") != content.contains("log debug"),
        "{content}"
    );

    // fs_copy: a tree, a preview before replacing, a file bigger than one chunk.
    std::fs::write(root.join("conf/big.bin"), vec![7u8; 5 * 1024 * 1024 + 3]).unwrap();
    symlink("app.ini", root.join("conf/current")).unwrap();
    let copied = s.ok(
        "fs_copy",
        json!({"from": "conf", "to": "conf.bak", "recursive": true}),
    );
    assert_eq!(
        (copied["files"].clone(), copied["symlinks"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(
        std::fs::read(root.join("conf.bak/big.bin")).unwrap(),
        std::fs::read(root.join("conf/big.bin")).unwrap()
    );
    assert_eq!(mode_of(root.join("conf.bak/app.ini")), 0o640);
    assert_eq!(
        std::fs::read_link(root.join("conf.bak/current")).unwrap(),
        Path::new("app.ini")
    );
    let preview = s.ok(
        "fs_copy",
        json!({"from": "conf/wanted.ini", "to": "conf.bak/app.ini"}),
    );
    assert_eq!(preview["copied"], false);
    assert_eq!(
        std::fs::read_to_string(root.join("conf.bak/app.ini")).unwrap(),
        content
    );
    s.ok(
        "fs_copy",
        json!({"from": "conf/wanted.ini", "to": "conf.bak/app.ini", "confirm": true}),
    );
    assert_eq!(
        std::fs::read_to_string(root.join("conf.bak/app.ini")).unwrap(),
        wanted
    );
    assert_eq!(
        s.refused("fs_copy", json!({"from": "escape/secret", "to": "stolen"})),
        "PATH_OUTSIDE_ROOT"
    );
    assert_eq!(
        s.refused(
            "fs_copy",
            json!({"from": "conf/app.ini", "to": "escape/planted"})
        ),
        "PATH_OUTSIDE_ROOT"
    );
    std::fs::create_dir_all(root.join("links")).unwrap();
    symlink("../../outside/secret", root.join("links/out")).unwrap();
    assert_eq!(
        s.refused(
            "fs_copy",
            json!({"from": "links", "to": "links2", "recursive": true})
        ),
        "PATH_OUTSIDE_ROOT"
    );
    assert!(!root.join("links2").exists());

    // fs_move: a rename; replacing needs confirm; the root and escapes are refused.
    s.ok(
        "fs_move",
        json!({"from": "conf.bak/big.bin", "to": "big.bin"}),
    );
    assert!(root.join("big.bin").exists() && !root.join("conf.bak/big.bin").exists());
    let preview = s.ok(
        "fs_move",
        json!({"from": "big.bin", "to": "conf.bak/app.ini"}),
    );
    assert_eq!(preview["moved"], false);
    assert!(root.join("big.bin").exists());
    assert_eq!(
        s.refused(
            "fs_move",
            json!({"from": "big.bin", "to": "escape/big.bin", "confirm": true})
        ),
        "PATH_OUTSIDE_ROOT"
    );
    assert_eq!(
        s.refused("fs_move", json!({"from": ".", "to": "../moved"})),
        "INVALID_INPUT"
    );

    // fs_chmod and fs_chown: the real bits and ids change; links are never followed.
    let chmod = s.ok(
        "fs_chmod",
        json!({"path": "big.bin", "mode": "u=rwx,g=rx,o="}),
    );
    assert_eq!(chmod["mode"], "0750");
    assert_eq!(mode_of(root.join("big.bin")), 0o750);
    s.ok("fs_chmod", json!({"path": "big.bin", "mode": "go-x"}));
    assert_eq!(mode_of(root.join("big.bin")), 0o740);
    assert_eq!(
        s.refused("fs_chmod", json!({"path": "escape", "mode": "0777"})),
        "INVALID_INPUT"
    );
    let outside_mode = mode_of(&outside);
    s.ok(
        "fs_chmod",
        json!({"path": "links", "mode": "0700", "recursive": true}),
    );
    assert_eq!(mode_of(&outside), outside_mode);
    s.ok(
        "fs_chown",
        json!({"path": "big.bin", "owner": "daemon:root"}),
    );
    let meta = std::fs::metadata(root.join("big.bin")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (daemon_uid(), 0));
    s.ok(
        "fs_chown",
        json!({"path": "conf.bak", "owner": "4242:4343", "recursive": true}),
    );
    let meta = std::fs::metadata(root.join("conf.bak/app.ini")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert_eq!(
        std::fs::symlink_metadata(root.join("conf.bak/current"))
            .unwrap()
            .uid(),
        0,
        "a link in the walk is skipped"
    );
    assert_eq!(
        s.refused("fs_chown", json!({"path": "escape/secret", "owner": "1:1"})),
        "PATH_OUTSIDE_ROOT"
    );

    // fs_symlink and fs_readlink: targets inside only; outside targets never resolved.
    let made = s.ok(
        "fs_symlink",
        json!({"target": "conf/app.ini", "link_path": "app.link"}),
    );
    assert_eq!(made["target_exists"], true);
    assert_eq!(
        std::fs::read_link(root.join("app.link")).unwrap(),
        Path::new("conf/app.ini")
    );
    let read = s.ok("fs_readlink", json!({"path": "app.link"}));
    assert_eq!(read["inside_root"], true);
    assert_eq!(
        read["resolved_target"],
        root.join("conf/app.ini").display().to_string()
    );
    for target in ["../outside/secret", "escape/secret", "/etc/passwd"] {
        assert_eq!(
            s.refused("fs_symlink", json!({"target": target, "link_path": "evil"})),
            "PATH_OUTSIDE_ROOT",
            "{target}"
        );
    }
    assert!(!root.join("evil").exists());
    let escape = s.ok("fs_readlink", json!({"path": "escape"}));
    assert_eq!(escape["inside_root"], false);
    assert_eq!(escape["target"], outside.display().to_string());
    assert!(escape.get("resolved_target").is_none());

    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "outside\n"
    );
    let names: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing was written outside the root");
}

fn daemon_uid() -> u32 {
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields[0] == "daemon").then(|| fields[2].parse().unwrap())
        })
        .unwrap()
}

#[test]
fn moves_and_links_cannot_slip_past_policy_over_sftp() {
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(root.join("config/secrets")).unwrap();
    std::fs::write(root.join("config/secrets/db.key"), "key\n").unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "  deny_paths: ['.*/config/secrets']\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let id = open_session(&mut mcp, &root);
    let mut s = Session { mcp, id };

    // Moving the parent of a denied directory would expose it under a new name.
    let code = s.refused(
        "fs_move",
        json!({"from": "config", "to": "cfg", "confirm": true}),
    );
    assert_eq!(code, "POLICY_DENIED");
    assert!(root.join("config/secrets/db.key").exists());
    assert!(!root.join("cfg").exists());

    // A link whose `..` climbs back through names that do not exist yet could be
    // turned outward later by creating those names: refused up front.
    let code = s.refused(
        "fs_symlink",
        json!({"target": "m1/m2/../../etc/shadow", "link_path": "l"}),
    );
    assert_eq!(code, "PATH_OUTSIDE_ROOT");
    assert!(std::fs::symlink_metadata(root.join("l")).is_err());
}

/// Two `warden mcp serve` processes on one state dir replace one file with the same
/// `expected_sha256` at the same moment, over SFTP and on `local`: every round exactly
/// one wins, the other gets CONFLICT, and the file holds the winner's content.
#[test]
fn expected_sha256_holds_across_processes() {
    use sha2::Digest;
    let (_tree, _base, root) = app_tree();
    std::fs::create_dir_all(&root).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let yaml = std::fs::read_to_string(&config).unwrap() + "local:\n  allow_write: true\n";
    std::fs::write(&config, yaml).unwrap();
    let mut servers: Vec<McpProcess> = (0..2)
        .map(|_| McpProcess::start(home.path(), Some(&config)))
        .collect();
    for host in ["fleet-01", "local"] {
        let file = root.join(format!("shared-{host}.conf"));
        std::fs::write(&file, "v0\n").unwrap();
        for round in 0..8 {
            let current = std::fs::read(&file).unwrap();
            let sha = hex::encode(sha2::Sha256::digest(&current));
            let ids: Vec<u64> = servers
                .iter_mut()
                .enumerate()
                .map(|(index, mcp)| {
                    mcp.send_request(
                        "tools/call",
                        json!({"name": "fs_write", "arguments": {
                            "host_id": host, "path": file.display().to_string(),
                            "content": format!("round {round} from {index}\n"),
                            "expected_sha256": sha, "confirm": true}}),
                    )
                })
                .collect();
            let answers: Vec<Value> = servers
                .iter_mut()
                .zip(&ids)
                .map(|(mcp, id)| mcp.answer(*id))
                .collect();
            let won: Vec<usize> = (0..2)
                .filter(|index| answers[*index]["result"]["isError"] == json!(false))
                .collect();
            assert_eq!(won.len(), 1, "{host} round {round}: {answers:?}");
            let lost = &answers[1 - won[0]]["result"]["structuredContent"]["error"]["code"];
            assert_eq!(lost, "CONFLICT", "{answers:?}");
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                format!("round {round} from {}\n", won[0])
            );
        }
    }
}
