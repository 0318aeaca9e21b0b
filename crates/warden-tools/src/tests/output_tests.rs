//! Cut output through the engine on the local transport: head and tail in the answer,
//! the whole masked in an artifact only its caller reads, and lean fleet answers.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::{Caller, Engine, ErrorCode};

use super::engine_over;

const HOSTS: &str =
    "hosts:\n  - {id: web-1, address: 127.0.0.1}\n  - {id: web-2, address: 127.0.0.2}\n";

async fn call(
    engine: &Engine,
    caller: &str,
    tool: &str,
    args: Value,
) -> warden_core::Result<Value> {
    engine
        .invoke(
            &Caller::new(caller),
            tool,
            args,
            CancellationToken::new(),
            None,
        )
        .await
}

/// `seq 1 N` as the host prints it.
fn seq(n: usize) -> Vec<u8> {
    (1..=n)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn a_cut_stream_keeps_head_and_tail_and_its_caller_reads_the_whole() {
    let state = tempfile::tempdir().unwrap();
    let engine = engine_over(HOSTS, state.path(), warden_core::local_transport());
    let answer = call(
        &engine,
        "agent",
        "exec",
        json!({"target": "web-1", "command": "seq 1 100000; echo done >&2", "max_output_bytes": 1000}),
    )
    .await
    .unwrap();
    let host = &answer["results"][0];
    let job = answer["summary"]["job_id"].as_str().unwrap();
    let whole = seq(100_000);
    let stdout = host["stdout"].as_str().unwrap();
    assert_eq!(host["truncated"], true, "{answer}");
    assert_eq!(host["stdout_bytes"], whole.len());
    let marker = format!(
        "\n…[{} bytes cut; all of it: artifacts_get job_id={job} stream=stdout and this host_id]…\n",
        whole.len() - 1000
    );
    let (head, tail) = stdout
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(head.as_bytes(), &whole[..500]);
    assert_eq!(tail.as_bytes(), &whole[whole.len() - 500..]);
    assert_eq!(host["stderr"], "done\n", "an uncut stream is whole");

    let listed = call(&engine, "agent", "artifacts_list", json!({}))
        .await
        .unwrap();
    let artifacts = listed["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1, "only the cut stream: {listed}");
    assert_eq!(artifacts[0]["bytes"], whole.len());
    assert_eq!(artifacts[0]["complete"], true);

    let got = call(
        &engine,
        "agent",
        "artifacts_get",
        json!({"job_id": job, "host_id": "web-1", "stream": "stdout", "offset": 12345, "length": 777}),
    )
    .await
    .unwrap();
    assert_eq!(
        got["data"].as_str().unwrap().as_bytes(),
        &whole[12345..12345 + 777]
    );
    assert_eq!(got["next_offset"], 12345 + 777);
    let tail = call(
        &engine,
        "agent",
        "artifacts_tail",
        json!({"job_id": job, "host_id": "web-1", "stream": "stdout", "lines": 2}),
    )
    .await
    .unwrap();
    assert_eq!(tail["data"], "99999\n100000\n");
    assert!(tail.get("next_offset").is_none(), "{tail}");

    // Another caller is told there is nothing, whatever it names.
    for (tool, args) in [
        (
            "artifacts_get",
            json!({"job_id": job, "host_id": "web-1", "stream": "stdout"}),
        ),
        (
            "artifacts_tail",
            json!({"job_id": job, "host_id": "web-1", "stream": "stdout"}),
        ),
    ] {
        let error = call(&engine, "intruder", tool, args).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::JobNotFound, "{error:?}");
    }
    let theirs = call(
        &engine,
        "intruder",
        "artifacts_list",
        json!({"job_id": job}),
    )
    .await
    .unwrap();
    assert_eq!(theirs["artifacts"], json!([]));

    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: std::path::PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = state.path().join("artifacts").join(job);
    assert_eq!(mode(dir.clone()), 0o700);
    assert_eq!(mode(dir.join("web-1.stdout")), 0o600);
    assert!(
        !dir.join("web-1.stderr").exists(),
        "nothing kept for what fits"
    );
}

#[tokio::test]
async fn output_that_fits_writes_no_artifact_and_fleet_answers_are_lean() {
    let state = tempfile::tempdir().unwrap();
    let engine = engine_over(HOSTS, state.path(), warden_core::local_transport());
    let answer = call(
        &engine,
        "agent",
        "exec",
        json!({"target": "all", "command": "true"}),
    )
    .await
    .unwrap();
    for host in answer["results"].as_array().unwrap() {
        for absent in ["stdout", "stderr", "truncated", "stdout_bytes", "same_as"] {
            assert!(host.get(absent).is_none(), "{absent} in {host}");
        }
    }
    assert!(!state.path().join("artifacts").exists());
    // Identical cut outputs still fold (the marker names no host).
    let answer = call(
        &engine,
        "agent",
        "exec",
        json!({"target": "all", "command": "seq 1 5000", "max_output_bytes": 100}),
    )
    .await
    .unwrap();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["truncated"], true, "{answer}");
    assert_eq!(results[1]["same_as"], "web-1", "{answer}");
    let job = answer["summary"]["job_id"].as_str().unwrap();
    let listed = call(&engine, "agent", "artifacts_list", json!({"job_id": job}))
        .await
        .unwrap();
    assert_eq!(
        listed["artifacts"].as_array().unwrap().len(),
        2,
        "one per host: {listed}"
    );
}

#[tokio::test]
async fn secrets_in_the_cut_and_at_the_seam_are_masked_in_the_answer_and_the_artifact() {
    let state = tempfile::tempdir().unwrap();
    let engine = engine_over(HOSTS, state.path(), warden_core::local_transport());
    let secret = "seam-secret-0123456789";
    // 1000 bytes kept: the head is 500. The secret starts 490 bytes in, so the cut
    // splits it; it is printed whole again in the middle, then 600 bytes of filler.
    let command = "printf '%490s' '' | tr ' ' a; printf '%s' \"$S\"; seq 1 3000; printf '%s\\n' \"$S\"; printf '%600s' '' | tr ' ' b";
    let answer = call(
        &engine,
        "agent",
        "exec",
        json!({"target": "web-1", "command": command, "env": {"S": secret}, "max_output_bytes": 1000}),
    )
    .await
    .unwrap();
    let text = answer.to_string();
    assert!(
        !text.contains(&secret[..8]),
        "a piece of the secret at the seam: {text}"
    );
    let job = answer["summary"]["job_id"].as_str().unwrap();
    let artifact =
        std::fs::read_to_string(state.path().join(format!("artifacts/{job}/web-1.stdout")))
            .unwrap();
    assert!(!artifact.contains(secret), "the artifact is masked");
    assert_eq!(artifact.matches("***").count(), 2, "both places");
    assert!(
        std::fs::read_dir(state.path().join(format!("artifacts/{job}")))
            .unwrap()
            .all(|entry| !entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".part")),
        "no raw part is left"
    );
}
