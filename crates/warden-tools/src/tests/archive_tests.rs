//! `fs_archive_create` and `fs_archive_extract` through the engine on `local`, with
//! hostile archives built for real by the tar and zip crates: zip-slip, absolute
//! names, symlinks out and writes through them, hardlinks, devices, bombs.

use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use serde_json::{Value, json};

use crate::tests::file_tests::{World, mode_of, read_file, world};
use warden_core::error::{Error, ErrorCode};

fn sha256_of(path: impl AsRef<Path>) -> String {
    crate::fs::file_args::sha256_hex(&std::fs::read(path).unwrap())
}

/// What a hostile (or plain) entry holds.
#[derive(Clone, Copy)]
enum Raw<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
    Hardlink(&'a str),
    Fifo,
}

/// A tar.gz whose names and link targets are written into the headers as given: the
/// tar crate's own builder would refuse `..` and absolute names.
fn tar_gz(entries: &[(&str, Raw)]) -> Vec<u8> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gzip);
    for (name, raw) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o644);
        let (kind, data, link): (_, &[u8], _) = match raw {
            Raw::File(data) => (tar::EntryType::Regular, data, None),
            Raw::Dir => (tar::EntryType::Directory, &[], None),
            Raw::Symlink(target) => (tar::EntryType::Symlink, &[], Some(target)),
            Raw::Hardlink(target) => (tar::EntryType::Link, &[], Some(target)),
            Raw::Fifo => (tar::EntryType::Fifo, &[], None),
        };
        if let Some(target) = link {
            header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A tar.gz written header by header, as a hostile one would be: each header declares
/// whatever size it is given, whatever content follows.
struct RawTar(flate2::write::GzEncoder<Vec<u8>>);

impl RawTar {
    fn new() -> RawTar {
        RawTar(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ))
    }

    /// One GNU header of type `kind` declaring `declared` bytes, then `content`
    /// padded to a whole block.
    fn entry(mut self, kind: u8, name: &str, declared: u64, mut content: impl Read) -> RawTar {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..108].copy_from_slice(b"0000644\0");
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        header[124..136].copy_from_slice(format!("{declared:011o}\0").as_bytes());
        header[136..148].copy_from_slice(b"00000000000\0");
        header[156] = kind;
        header[257..265].copy_from_slice(b"ustar  \0");
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|byte| u32::from(*byte)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.write_all(&header).unwrap();
        let written = std::io::copy(&mut content, &mut self.0).unwrap();
        let padding = (512 - written % 512) % 512;
        self.0.write_all(&vec![0; padding as usize]).unwrap();
        self
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.write_all(&[0; 1024]).unwrap();
        self.0.finish().unwrap()
    }
}

fn zeros(count: u64) -> impl Read {
    std::io::repeat(0).take(count)
}

fn zip(entries: &[(&str, Raw)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, raw) in entries {
        match raw {
            Raw::File(data) => {
                zip.start_file(*name, options).unwrap();
                zip.write_all(data).unwrap();
            }
            Raw::Dir => zip.add_directory(*name, options).unwrap(),
            Raw::Symlink(target) => zip.add_symlink(*name, *target, options).unwrap(),
            Raw::Hardlink(_) | Raw::Fifo => unreachable!("zip has no such entries"),
        }
    }
    zip.finish().unwrap().into_inner()
}

impl World {
    fn put(&self, name: &str, bytes: &[u8]) {
        std::fs::write(Path::new(&self.root).join(name), bytes).unwrap();
    }

    async fn extract(&self, session: &str, archive: &str, dest: &str, confirm: bool) -> Value {
        self.call(
            "fs_archive_extract",
            json!({"session_id": session, "path": archive, "dest": dest, "confirm": confirm}),
        )
        .await
        .unwrap()
    }

    /// The code an extraction fails with; it must have written nothing at all.
    async fn refused(&self, session: &str, archive: &str) -> ErrorCode {
        self.refusal(session, archive).await.code
    }

    /// The error an extraction fails with; it must have written nothing at all.
    async fn refusal(&self, session: &str, archive: &str) -> Error {
        let error = self
            .call(
                "fs_archive_extract",
                json!({"session_id": session, "path": archive, "dest": "out", "confirm": true}),
            )
            .await
            .unwrap_err();
        assert!(
            !Path::new(&self.root).join("out").exists(),
            "{archive}: something was extracted"
        );
        let outside: Vec<_> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(outside, ["file"], "{archive}: outside was written");
        assert_eq!(read_file(format!("{}/file", self.outside)), "outside\n");
        error
    }
}

/// `src/` with modes, an empty dir, an inside symlink and what must be skipped.
fn source_tree(world: &World) {
    let src = Path::new(&world.root).join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::write(src.join("bin/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(src.join("app.ini"), "port=80\n").unwrap();
    std::fs::write(src.join("setuid"), "s").unwrap();
    std::fs::write(src.join("secret"), "hidden").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    for (path, mode) in [
        ("bin", 0o750),
        ("bin/run.sh", 0o755),
        ("app.ini", 0o640),
        ("empty", 0o700),
        ("setuid", 0o4755),
    ] {
        std::fs::set_permissions(src.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    symlink("app.ini", src.join("app.link")).unwrap();
    symlink(format!("{}/file", world.outside), src.join("out.link")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(src.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn both_formats_round_trip_contents_modes_and_links() {
    let world = world("");
    source_tree(&world);
    let s = world.session().await;
    for (archive, format) in [("pack.tar.gz", "tar.gz"), ("pack.zip", "zip")] {
        let created = world
            .call(
                "fs_archive_create",
                json!({"session_id": s, "paths": ["src"], "dest": archive}),
            )
            .await
            .unwrap();
        assert_eq!(created["created"], true, "{created}");
        assert_eq!(created["format"], format);
        // src, bin, bin/run.sh, app.ini, setuid, big.bin, empty, app.link.
        assert_eq!(created["entries"], 8, "{created}");
        let packed = format!("{}/{archive}", world.root);
        assert_eq!(created["sha256"], sha256_of(&packed));
        assert_eq!(created["bytes"], std::fs::metadata(&packed).unwrap().len());
        let mut skipped: Vec<&str> = created["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["path"].as_str().unwrap().rsplit('/').next().unwrap())
            .collect();
        skipped.sort_unstable();
        assert_eq!(skipped, ["out.link", "pipe", "secret"], "{created}");

        let dest = format!("restored-{format}");
        let extracted = world.extract(&s, archive, &dest, false).await;
        assert_eq!(extracted["extracted"], true, "{extracted}");
        assert_eq!(extracted["entries"], 8);
        assert_eq!(extracted["files"], 4);
        assert_eq!(extracted["dirs"], 3);
        assert_eq!(extracted["links"], 1);
        let from = Path::new(&world.root).join("src");
        let to = Path::new(&world.root).join(&dest).join("src");
        for file in ["bin/run.sh", "app.ini", "big.bin", "setuid"] {
            assert_eq!(
                sha256_of(from.join(file)),
                sha256_of(to.join(file)),
                "{file}"
            );
        }
        for path in ["bin", "bin/run.sh", "app.ini", "empty"] {
            assert_eq!(
                mode_of(from.join(path)),
                mode_of(to.join(path)),
                "{format} {path}"
            );
        }
        assert_eq!(
            mode_of(to.join("setuid")),
            0o755,
            "setuid is never restored"
        );
        assert_eq!(
            std::fs::read_link(to.join("app.link")).unwrap(),
            Path::new("app.ini")
        );
        for absent in ["secret", "out.link", "pipe"] {
            assert!(!to.join(absent).exists(), "{absent}");
        }
    }

    // Other readers agree on what was written.
    let packed = std::fs::File::open(format!("{}/pack.tar.gz", world.root)).unwrap();
    let mut names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(packed))
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names[0], "src");
    assert!(names.contains(&"src/bin/run.sh".to_owned()), "{names:?}");
    let packed = std::fs::File::open(format!("{}/pack.zip", world.root)).unwrap();
    let mut zip = zip::ZipArchive::new(packed).unwrap();
    assert_eq!(zip.len(), 8);
    let mut ini = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("src/app.ini").unwrap(), &mut ini).unwrap();
    assert_eq!(ini, "port=80\n");
}

#[tokio::test]
async fn the_root_itself_packs_what_stays_inside() {
    let world = world("");
    let s = world.session().await;
    let created = world
        .call(
            "fs_archive_create",
            json!({"session_id": s, "paths": ["."], "dest": "all.tgz"}),
        )
        .await
        .unwrap();
    // data, data/a.txt and inside_link; the links out, the loop, the FIFO and the
    // denied secret are skipped.
    assert_eq!(created["entries"], 3, "{created}");
    assert_eq!(created["skipped_count"], 7, "{created}");
    let outside_host = world
        .code(
            "fs_archive_create",
            json!({"host_id": "local", "paths": [format!("{}/file", world.outside)], "dest": format!("{}/x.zip", world.root)}),
        )
        .await;
    assert_eq!(outside_host, ErrorCode::PathOutsideRoot);
    let nameless = world
        .code(
            "fs_archive_create",
            json!({"session_id": s, "paths": ["data"], "dest": "data.rar"}),
        )
        .await;
    assert_eq!(nameless, ErrorCode::InvalidInput);
}

#[tokio::test]
async fn replacing_or_overwriting_needs_confirm() {
    let world = world("");
    let s = world.session().await;
    world.put("old.zip", b"old archive");
    let preview = world
        .call(
            "fs_archive_create",
            json!({"session_id": s, "paths": ["data"], "dest": "old.zip"}),
        )
        .await
        .unwrap();
    assert_eq!(preview["created"], false);
    assert!(preview["preview"].as_str().unwrap().contains("old.zip"));
    assert_eq!(read_file(format!("{}/old.zip", world.root)), "old archive");
    let replaced = world
        .call(
            "fs_archive_create",
            json!({"session_id": s, "paths": ["data"], "dest": "old.zip", "confirm": true}),
        )
        .await
        .unwrap();
    assert_eq!(replaced["created"], true);
    assert_eq!(
        replaced["sha256"],
        sha256_of(format!("{}/old.zip", world.root))
    );

    // Into the root itself: data/a.txt exists, and so does the symlink file_link_out.
    world.put(
        "over.tar.gz",
        &tar_gz(&[
            ("data/a.txt", Raw::File(b"new\n")),
            ("data/b.txt", Raw::File(b"b\n")),
            (
                "file_link_out",
                Raw::File(b"replaces the link, not its target\n"),
            ),
        ]),
    );
    let preview = world.extract(&s, "over.tar.gz", ".", false).await;
    assert_eq!(preview["extracted"], false);
    assert_eq!(preview["overwritten_count"], 2, "{preview}");
    assert_eq!(
        preview["overwritten"][0],
        format!("{}/data/a.txt", world.root)
    );
    assert_eq!(read_file(format!("{}/data/a.txt", world.root)), "alpha\n");
    assert!(!Path::new(&world.root).join("data/b.txt").exists());

    let done = world.extract(&s, "over.tar.gz", ".", true).await;
    assert_eq!(done["extracted"], true);
    assert_eq!(read_file(format!("{}/data/a.txt", world.root)), "new\n");
    assert_eq!(read_file(format!("{}/data/b.txt", world.root)), "b\n");
    assert!(
        std::fs::symlink_metadata(format!("{}/file_link_out", world.root))
            .unwrap()
            .is_file()
    );
    assert_eq!(read_file(format!("{}/file", world.outside)), "outside\n");
    let leftovers = std::fs::read_dir(format!("{}/data", world.root))
        .unwrap()
        .count();
    assert_eq!(leftovers, 2, "temp files left behind");
}

#[tokio::test]
async fn hostile_archives_are_refused_whole_before_anything_is_written() {
    let world = world("");
    let s = world.session().await;
    let absolute = format!("{}/abs", world.outside);
    let harmless = ("first.txt", Raw::File(b"written only if all is well\n"));
    let cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
        (
            "slip.tar.gz",
            tar_gz(&[harmless, ("../../outside/x", Raw::File(b"x"))]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            "slip.zip",
            zip(&[
                ("first.txt", Raw::File(b"ok")),
                ("../../outside/x", Raw::File(b"x")),
            ]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            "absolute.tar.gz",
            tar_gz(&[(absolute.as_str(), Raw::File(b"x"))]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            "absolute.zip",
            zip(&[(absolute.as_str(), Raw::File(b"x"))]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            "link-then-write.tar.gz",
            tar_gz(&[
                ("first.txt", Raw::File(b"ok")),
                ("a", Raw::Symlink(&world.outside)),
                ("a/x", Raw::File(b"pwned")),
            ]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            "relative-link-out.zip",
            zip(&[("up", Raw::Symlink("../../outside"))]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            // Both links point inside, but the second climbs through the first.
            "link-chain.tar.gz",
            tar_gz(&[
                ("d/up", Raw::Symlink("..")),
                ("d/far", Raw::Symlink("up/../..")),
            ]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            "write-through-inside-link.tar.gz",
            tar_gz(&[("b", Raw::Symlink("data")), ("b/x", Raw::File(b"x"))]),
            ErrorCode::PathOutsideRoot,
        ),
        (
            "hardlink.tar.gz",
            tar_gz(&[harmless, ("h", Raw::Hardlink("../outside/file"))]),
            ErrorCode::InvalidInput,
        ),
        (
            "fifo.tar.gz",
            tar_gz(&[("p", Raw::Fifo)]),
            ErrorCode::InvalidInput,
        ),
        (
            "denied.tar.gz",
            tar_gz(&[("secret", Raw::File(b"x"))]),
            ErrorCode::PolicyDenied,
        ),
    ];
    for (name, bytes, expected) in cases {
        world.put(name, &bytes);
        let code = world.refused(&s, name).await;
        assert_eq!(code, expected, "{name}");
    }
    // Into the root itself: through a symlink already there (link_out -> outside), and
    // a directory entry where a file is.
    world.put(
        "via-host-link.tar.gz",
        &tar_gz(&[harmless, ("link_out/x", Raw::File(b"x"))]),
    );
    world.put(
        "dir-over-file.tar.gz",
        &tar_gz(&[harmless, ("data/a.txt/", Raw::Dir)]),
    );
    for (archive, expected) in [
        ("via-host-link.tar.gz", ErrorCode::PathOutsideRoot),
        ("dir-over-file.tar.gz", ErrorCode::InvalidInput),
    ] {
        let code = world
            .code(
                "fs_archive_extract",
                json!({"session_id": s, "path": archive, "dest": ".", "confirm": true}),
            )
            .await;
        assert_eq!(code, expected, "{archive}");
        assert!(!Path::new(&world.root).join("first.txt").exists());
    }
    assert!(!Path::new(&world.outside).join("x").exists());
    world.put("not-an-archive.zip", b"plain text");
    assert_eq!(
        world.refused(&s, "not-an-archive.zip").await,
        ErrorCode::InvalidInput
    );
}

#[tokio::test]
async fn bombs_stop_at_the_configured_caps() {
    let capped = world("limits:\n  max_unpacked_bytes: 100000\n  max_archive_entries: 5\n");
    let s = capped.session().await;
    let zeros = vec![0u8; 200_000];
    capped.put("bomb.zip", &zip(&[("zeros", Raw::File(&zeros))]));
    capped.put("bomb.tar.gz", &tar_gz(&[("zeros", Raw::File(&zeros))]));
    assert!(
        std::fs::metadata(format!("{}/bomb.zip", capped.root))
            .unwrap()
            .len()
            < 2000
    );
    let many: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
    let entries: Vec<(&str, Raw)> = many
        .iter()
        .map(|name| (name.as_str(), Raw::File(b"x")))
        .collect();
    capped.put("many.tar.gz", &tar_gz(&entries));
    for archive in ["bomb.zip", "bomb.tar.gz", "many.tar.gz"] {
        assert_eq!(
            capped.refused(&s, archive).await,
            ErrorCode::InvalidInput,
            "{archive}"
        );
    }
    let tight = world("limits:\n  max_archive_bytes: 100\n");
    let s = tight.session().await;
    tight.put("big.zip", &zip(&[("a", Raw::File(&zeros))]));
    assert!(
        std::fs::metadata(format!("{}/big.zip", tight.root))
            .unwrap()
            .len()
            > 100
    );
    assert_eq!(tight.refused(&s, "big.zip").await, ErrorCode::InvalidInput);
}

#[tokio::test]
async fn tar_long_names_and_pax_records_are_capped_before_they_are_read() {
    let capped = world("limits:\n  max_unpacked_bytes: 100000\n  max_archive_entries: 5\n");
    let s = capped.session().await;
    // A GNU long name declaring 50 MB of zeros: the tar crate alone would read it whole
    // into memory (16 GiB in the reported attack).
    let long_name = RawTar::new()
        .entry(b'L', "././@LongLink", 50_000_000, zeros(50_000_000))
        .entry(b'0', "x", 1, &b"x"[..])
        .finish();
    assert!(long_name.len() < 500_000, "{} bytes", long_name.len());
    capped.put("long-name.tar.gz", &long_name);
    let error = capped.refusal(&s, "long-name.tar.gz").await;
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error}");
    assert!(error.message.contains("declares 50000000 bytes"), "{error}");

    // The same for long links and pax records, local or global.
    for (kind, name) in [(b'K', "long-link"), (b'x', "pax"), (b'g', "pax-global")] {
        let archive = format!("{name}.tar.gz");
        capped.put(
            &archive,
            &RawTar::new()
                .entry(kind, "././@LongLink", 1_000_000, zeros(1_000_000))
                .entry(b'0', "x", 1, &b"x"[..])
                .finish(),
        );
        let error = capped.refusal(&s, &archive).await;
        assert_eq!(error.code, ErrorCode::InvalidInput, "{archive}: {error}");
        assert!(error.message.contains("declares 1000000 bytes"), "{error}");
    }

    // Content declared by a directory is never extracted, but decompressing it is
    // bounded too: by max_unpacked_bytes plus room for the headers.
    capped.put(
        "dir-content.tar.gz",
        &RawTar::new()
            .entry(b'5', "d/", 50_000_000, zeros(50_000_000))
            .finish(),
    );
    let error = capped.refusal(&s, "dir-content.tar.gz").await;
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error}");
    assert!(error.message.contains("expands beyond"), "{error}");

    // A long name describing no entry, and a pax size the header contradicts.
    capped.put(
        "dangling.tar.gz",
        &RawTar::new()
            .entry(b'L', "././@LongLink", 6, &b"name\0\0"[..])
            .finish(),
    );
    let record = b"12 size=999\n";
    capped.put(
        "pax-size.tar.gz",
        &RawTar::new()
            .entry(b'x', "pax", record.len() as u64, &record[..])
            .entry(b'0', "x", 1, &b"x"[..])
            .finish(),
    );
    for archive in ["dangling.tar.gz", "pax-size.tar.gz"] {
        let error = capped.refusal(&s, archive).await;
        assert_eq!(error.code, ErrorCode::InvalidInput, "{archive}: {error}");
    }
}

#[tokio::test]
async fn tar_long_names_links_and_pax_paths_still_extract() {
    let world = world("");
    let s = world.session().await;
    let deep = format!("{}/file.txt", ["long-directory-name"; 8].join("/"));
    let target = format!("../{deep}");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    // Over 100 bytes: the builder writes GNU long name and long link entries.
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o600);
    builder
        .append_data(&mut header, &deep, &b"deep"[..])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder
        .append_link(&mut header, "long-directory-name/link", &target)
        .unwrap();
    // A pax path (and a size agreeing with the header) overrides the header's name.
    builder
        .append_pax_extensions([("path", &b"pax/named.txt"[..]), ("size", &b"3"[..])])
        .unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_size(3);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "short", &b"pax"[..])
        .unwrap();
    world.put(
        "long.tar.gz",
        &builder.into_inner().unwrap().finish().unwrap(),
    );

    let extracted = world.extract(&s, "long.tar.gz", "out", false).await;
    assert_eq!(extracted["extracted"], true, "{extracted}");
    assert_eq!(extracted["files"], 2, "{extracted}");
    assert_eq!(extracted["links"], 1, "{extracted}");
    let out = Path::new(&world.root).join("out");
    assert_eq!(read_file(out.join(&deep)), "deep");
    assert_eq!(read_file(out.join("pax/named.txt")), "pax");
    assert!(!out.join("short").exists());
    assert_eq!(
        std::fs::read_link(out.join("long-directory-name/link")).unwrap(),
        Path::new(&target)
    );
}
