//! `fs_stream_write` / `fs_stream_read` through the engine on real directories: chunks,
//! resume after a cut (a new engine, its cache empty), verification, all or nothing.

use std::path::Path;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fs::file_args::sha256_hex;
use crate::tests::file_tests::{World, entries_in, world};
use warden_core::error::ErrorCode;
use warden_core::{Caller, Engine};

fn pattern(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 7 % 251) as u8).collect()
}

fn base64(data: &[u8]) -> String {
    data_encoding::BASE64.encode(data)
}

async fn write(world: &World, args: Value) -> Value {
    world.call("fs_stream_write", args).await.unwrap()
}

#[tokio::test]
async fn uploads_in_chunks_and_appear_only_when_verified() {
    let world = world("");
    let data = pattern(3 * 100_000 + 17);
    let path = format!("{}/new/big.bin", world.root);
    let first = write(
        &world,
        json!({"host_id": "local", "path": path, "content_base64": base64(&data[..100_000]), "create_dirs": true}),
    )
    .await;
    let id = first["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(first["next_offset"], 100_000);
    assert_eq!(first["received_sha256"], sha256_hex(&data[..100_000]));
    for start in [100_000, 200_000] {
        write(
            &world,
            json!({"host_id": "local", "path": path, "upload_id": id, "offset": start, "content_base64": base64(&data[start..start + 100_000])}),
        )
        .await;
    }
    // Nothing at the destination yet: only the hidden partial file.
    assert!(!Path::new(&path).exists());
    let staged = entries_in(format!("{}/new", world.root));
    assert_eq!(staged.len(), 1);
    let name = staged[0].strip_prefix(".big.bin.warden-upload-").unwrap();
    assert_eq!(name.len(), 32 + ".part".len(), "{name}");
    assert!(
        !name.contains(&id),
        "the name binds the owner, not the bare id"
    );

    // Another caller holding the id can neither append to nor abort it.
    for foreign in [
        json!({"host_id": "local", "path": path, "upload_id": id, "offset": 300_000, "content_base64": base64(b"evil")}),
        json!({"host_id": "local", "path": path, "upload_id": id, "abort": true}),
    ] {
        let error = world
            .call_as("someone-else", "fs_stream_write", foreign)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::FileNotFound, "{error:?}");
    }
    assert_eq!(entries_in(format!("{}/new", world.root)), staged);

    let done = write(
        &world,
        json!({"host_id": "local", "path": path, "upload_id": id, "offset": 300_000, "content_base64": base64(&data[300_000..]), "finish": true, "sha256": sha256_hex(&data), "mode": "0640"}),
    )
    .await;
    assert_eq!(done["done"], true);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert_eq!(entries_in(format!("{}/new", world.root)), ["big.bin"]);

    // Read back in chunks: the pieces join to the file, the last one names its hash.
    let mut joined = Vec::new();
    loop {
        let chunk = world
            .call(
                "fs_stream_read",
                json!({"host_id": "local", "path": path, "offset": joined.len(), "length": 65_536}),
            )
            .await
            .unwrap();
        let piece = data_encoding::BASE64
            .decode(chunk["content_base64"].as_str().unwrap().as_bytes())
            .unwrap();
        assert_eq!(chunk["chunk_sha256"], sha256_hex(&piece));
        joined.extend(piece);
        if chunk["eof"] == true {
            assert_eq!(chunk["file_sha256"], sha256_hex(&data));
            break;
        }
        assert!(chunk.get("file_sha256").is_none());
    }
    assert_eq!(joined, data);
}

#[tokio::test]
async fn a_cut_upload_resumes_from_the_verified_offset() {
    let world = world("");
    let data = pattern(250_000);
    let path = format!("{}/data/resumed.bin", world.root);
    let first = write(
        &world,
        json!({"host_id": "local", "path": path, "content_base64": base64(&data[..120_000])}),
    )
    .await;
    let id = first["upload_id"].as_str().unwrap().to_owned();

    // The client and warden restart: a new engine knows nothing of the upload but
    // finds it on disk and verifies what arrived. Same client (identity and name), a
    // new connection: the upload is still its own.
    let restarted = Engine::new(
        world.engine.config().clone(),
        warden_core::local_transport(),
        std::sync::Arc::clone(crate::registry()),
        super::store_for(world.engine.config()),
    )
    .unwrap();
    let call = |args: Value| {
        let restarted = restarted.clone();
        async move {
            restarted
                .invoke(
                    &Caller::new("a"),
                    "fs_stream_write",
                    args,
                    CancellationToken::new(),
                    None,
                )
                .await
        }
    };
    let status = call(json!({"host_id": "local", "path": path, "upload_id": id}))
        .await
        .unwrap();
    assert_eq!(status["next_offset"], 120_000);
    assert_eq!(status["received_sha256"], sha256_hex(&data[..120_000]));
    let gap = call(json!({"host_id": "local", "path": path, "upload_id": id, "offset": 130_000, "content_base64": base64(&data[130_000..])}))
        .await
        .unwrap_err();
    assert_eq!(gap.code, ErrorCode::Conflict);
    assert!(gap.message.contains("offset 120000"), "{}", gap.message);
    let done = call(json!({"host_id": "local", "path": path, "upload_id": id, "offset": 120_000, "content_base64": base64(&data[120_000..]), "finish": true, "sha256": sha256_hex(&data)}))
        .await
        .unwrap();
    assert_eq!(done["done"], true);
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn bad_hashes_overwrites_and_escapes_change_nothing() {
    let world = world("");
    let existing = format!("{}/data/a.txt", world.root);

    // Replacing a file needs confirm; the preview starts nothing.
    let preview = write(
        &world,
        json!({"host_id": "local", "path": existing, "content_base64": base64(b"new")}),
    )
    .await;
    assert!(
        preview["preview"]
            .as_str()
            .unwrap()
            .contains("would replace")
    );
    assert!(preview.get("upload_id").is_none());
    assert_eq!(entries_in(format!("{}/data", world.root)), ["a.txt"]);

    // A wrong hash at finish drops the upload and leaves the old file.
    let started = write(
        &world,
        json!({"host_id": "local", "path": existing, "content_base64": base64(b"new"), "confirm": true}),
    )
    .await;
    let id = started["upload_id"].as_str().unwrap().to_owned();
    let wrong = world
        .code(
            "fs_stream_write",
            json!({"host_id": "local", "path": existing, "upload_id": id, "finish": true, "sha256": sha256_hex(b"other")}),
        )
        .await;
    assert_eq!(wrong, ErrorCode::Conflict);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "alpha\n");
    assert_eq!(entries_in(format!("{}/data", world.root)), ["a.txt"]);
    let gone = world
        .code(
            "fs_stream_write",
            json!({"host_id": "local", "path": existing, "upload_id": id}),
        )
        .await;
    assert_eq!(gone, ErrorCode::FileNotFound);

    // Confirmed at the start, the finish must confirm too while a file is there.
    let started = write(
        &world,
        json!({"host_id": "local", "path": existing, "content_base64": base64(b"new"), "confirm": true}),
    )
    .await;
    let id = started["upload_id"].as_str().unwrap().to_owned();
    let unconfirmed = world
        .code(
            "fs_stream_write",
            json!({"host_id": "local", "path": existing, "upload_id": id, "finish": true, "sha256": sha256_hex(b"new")}),
        )
        .await;
    assert_eq!(unconfirmed, ErrorCode::ConfirmRequired);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "alpha\n");
    write(
        &world,
        json!({"host_id": "local", "path": existing, "upload_id": id, "finish": true, "sha256": sha256_hex(b"new"), "confirm": true, "mode": "0444"}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "new");
    // Back to the fixture (the new file is read-only now).
    std::fs::remove_file(&existing).unwrap();
    std::fs::write(&existing, "alpha\n").unwrap();

    // A name near the 255-byte limit still gets a temp and a partial file.
    let long = format!("{}/data/{}", world.root, "n".repeat(250));
    let done = write(
        &world,
        json!({"host_id": "local", "path": long, "content_base64": base64(b"x"), "finish": true, "sha256": sha256_hex(b"x")}),
    )
    .await;
    assert_eq!(done["done"], true);
    std::fs::remove_file(&long).unwrap();
    world
        .call(
            "fs_write",
            json!({"host_id": "local", "path": long, "content": "y"}),
        )
        .await
        .unwrap();
    std::fs::remove_file(&long).unwrap();
    let through_file = world
        .code(
            "fs_read",
            json!({"host_id": "local", "path": format!("{existing}/x")}),
        )
        .await;
    assert_eq!(through_file, ErrorCode::InvalidInput);

    // Abort removes the partial file.
    let started = write(
        &world,
        json!({"host_id": "local", "path": existing, "content_base64": base64(b"x"), "confirm": true}),
    )
    .await;
    write(
        &world,
        json!({"host_id": "local", "path": existing, "upload_id": started["upload_id"], "abort": true}),
    )
    .await;
    assert_eq!(entries_in(format!("{}/data", world.root)), ["a.txt"]);

    // Escapes: through a link out, a forged upload id, a FIFO.
    let s = world.session().await;
    for (args, expected) in [
        (
            json!({"session_id": s, "path": "link_out/x", "content_base64": base64(b"x")}),
            ErrorCode::PathOutsideRoot,
        ),
        (
            json!({"session_id": s, "path": "file_link_out", "content_base64": base64(b"x"), "confirm": true}),
            ErrorCode::PathOutsideRoot,
        ),
        (
            json!({"session_id": s, "path": "data/x", "upload_id": "../../outside/file"}),
            ErrorCode::InvalidInput,
        ),
        (
            json!({"session_id": s, "path": "fifo", "content_base64": base64(b"x")}),
            ErrorCode::InvalidInput,
        ),
        (
            json!({"session_id": s, "path": "secret", "offset": 0}),
            ErrorCode::PolicyDenied,
        ),
    ] {
        assert_eq!(
            world.code("fs_stream_write", args.clone()).await,
            expected,
            "{args}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(format!("{}/file", world.outside)).unwrap(),
        "outside\n"
    );
    for (path, expected) in [
        ("link_out/file", ErrorCode::PathOutsideRoot),
        ("fifo", ErrorCode::InvalidInput),
        ("data", ErrorCode::InvalidInput),
    ] {
        let code = world
            .code("fs_stream_read", json!({"session_id": s, "path": path}))
            .await;
        assert_eq!(code, expected, "{path}");
    }
}
