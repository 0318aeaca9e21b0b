//! Archives over SFTP through `warden mcp serve`: a tree packed as tar.gz and zip and
//! unpacked again with its contents and modes, and a hostile tar.gz (zip-slip and a
//! symlink out with a write through it) refused whole with nothing written.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::{McpProcess, app_tree, fleet_allowing, mode_of, open_session};

/// A tar.gz with names written into the headers as given (the tar crate's builder
/// would refuse them).
fn hostile_tar_gz(outside: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let entries: [(&str, tar::EntryType, &str, &[u8]); 4] = [
        ("harmless.txt", tar::EntryType::Regular, "", b"fine\n"),
        ("../../outside/slip", tar::EntryType::Regular, "", b"x"),
        ("a", tar::EntryType::Symlink, outside, b""),
        ("a/through", tar::EntryType::Regular, "", b"x"),
    ];
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn archives_over_sftp_round_trip_and_refuse_hostile_entries() {
    let (_tree, base, root) = app_tree();
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("conf/bin")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("conf/app.ini"), "port=80\n").unwrap();
    std::fs::write(root.join("conf/bin/start"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        root.join("conf/bin/start"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    // Over a chunk, so reads and writes go out in several SFTP requests.
    let big: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(root.join("conf/big.bin"), &big).unwrap();
    let (_fleet, home, config) = fleet_allowing(&root, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let session = open_session(&mut mcp, &root);

    for archive in ["conf.tar.gz", "conf.zip"] {
        let (created, is_error) = mcp.call(
            "fs_archive_create",
            json!({"session_id": session, "paths": ["conf"], "dest": archive}),
        );
        assert!(!is_error, "{created}");
        assert_eq!(created["entries"], 5, "{created}");
        let dest = format!("copy-{archive}");
        let (extracted, is_error) = mcp.call(
            "fs_archive_extract",
            json!({"session_id": session, "path": archive, "dest": dest}),
        );
        assert!(!is_error, "{extracted}");
        assert_eq!(extracted["files"], 3, "{extracted}");
        let copy = root.join(&dest).join("conf");
        assert_eq!(std::fs::read(copy.join("big.bin")).unwrap(), big);
        assert_eq!(
            std::fs::read_to_string(copy.join("app.ini")).unwrap(),
            "port=80\n"
        );
        assert_eq!(mode_of(copy.join("bin/start")), 0o750, "{archive}");

        let (again, is_error) = mcp.call(
            "fs_archive_extract",
            json!({"session_id": session, "path": archive, "dest": dest}),
        );
        assert!(!is_error, "{again}");
        assert_eq!(again["extracted"], false, "overwriting needs confirm");
        assert_eq!(again["overwritten_count"], 3);
    }

    std::fs::write(
        root.join("hostile.tar.gz"),
        hostile_tar_gz(&outside.display().to_string()),
    )
    .unwrap();
    let (refused, is_error) = mcp.call(
        "fs_archive_extract",
        json!({"session_id": session, "path": "hostile.tar.gz", "dest": "unpacked", "confirm": true}),
    );
    assert!(is_error, "{refused}");
    assert_eq!(refused["error"]["code"], "PATH_OUTSIDE_ROOT", "{refused}");
    assert!(!root.join("unpacked").exists(), "nothing is written");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}
