//! Review findings: flows the plan/grant checks break, through the engine on `local`.

use std::os::unix::fs::symlink;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use warden_core::{Caller, Engine};

/// An engine on `local` whose only allowed root is `<tmp>/www`, a symlink to
/// `<tmp>/data/www` (as `/var/www -> /data/www`, or macOS's `/tmp -> /private/tmp`).
fn symlinked_root() -> (tempfile::TempDir, String, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(base.join("data/www")).unwrap();
    std::fs::create_dir_all(base.join("state")).unwrap();
    std::fs::write(base.join("data/www/index.html"), "hello\n").unwrap();
    symlink(base.join("data/www"), base.join("www")).unwrap();
    let root = base.join("www").display().to_string();
    let yaml = format!(
        "local:\n  allow_write: true\npolicy:\n  allowed_roots: ['{root}']\n  deny_paths: []\n"
    );
    let engine = super::engine_over(&yaml, &base.join("state"), warden_core::local_transport());
    (dir, root, engine)
}

/// Before 8ccbeb1 `session_root` resolved the root and then looked for the allowed
/// root holding the *resolved* path; now `allowed_root_for` compares the resolved
/// allowed root with the root *as written*, so opening a session on the configured
/// root itself fails when that root is a symlink.
#[tokio::test]
async fn review_session_open_on_a_symlinked_allowed_root() {
    let (_dir, root, engine) = symlinked_root();
    let opened = engine
        .invoke(
            &Caller::new("a"),
            "session_open",
            json!({"host_id": "local", "root": root}),
            CancellationToken::new(),
            None,
        )
        .await;
    assert!(
        opened.is_ok(),
        "session_open on the allowed root: {opened:?}"
    );
}

/// The same comparison outside a session: a path written under the configured root.
#[tokio::test]
async fn review_fs_read_under_a_symlinked_allowed_root() {
    let (_dir, root, engine) = symlinked_root();
    let read = engine
        .invoke(
            &Caller::new("a"),
            "fs_read",
            json!({"host_id": "local", "path": format!("{root}/index.html")}),
            CancellationToken::new(),
            None,
        )
        .await;
    assert!(read.is_ok(), "fs_read under the allowed root: {read:?}");
}

/// A tar.gz of plain files built by the tar crate.
fn plain_tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gzip);
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// `dest/link` is a symlink to `data/`, inside the root: preflight resolves
/// `link/second.txt` to `data/second.txt` and passes it (no scope check there), the
/// writing pass then meets the confined view's scope (`data/` is not planned) after
/// `first.txt` is already written: a half-done extraction, where before 8ccbeb1 it
/// all went in, and where a refusal should leave nothing ("nothing was extracted").
#[tokio::test]
async fn review_extract_through_an_inside_symlink_fails_half_way() {
    let world = crate::tests::file_tests::world("");
    let session = world.session().await;
    let root = std::path::Path::new(&world.root);
    std::fs::create_dir(root.join("out")).unwrap();
    symlink(root.join("data"), root.join("out/link")).unwrap();
    let archive = plain_tar_gz(&[("first.txt", b"1\n"), ("link/second.txt", b"2\n")]);
    std::fs::write(root.join("a.tar.gz"), archive).unwrap();
    let extracted = world
        .call(
            "fs_archive_extract",
            json!({"session_id": session, "path": "a.tar.gz", "dest": "out", "confirm": true}),
        )
        .await;
    if extracted.is_err() {
        assert!(
            !root.join("out/first.txt").exists(),
            "refused half way, with first.txt already written: {extracted:?}"
        );
    }
}
