//! Cut output on a real sshd host through `warden mcp serve`: head and tail in the
//! answer, the whole in an artifact its caller reads exactly (and no one else), a
//! secret in the cut masked in both, and fleet answers without empty fields.

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::McpProcess;
use crate::fleet;

const SECRET: &str = "artifact-canary-8642-secret";

/// An MCP server whose client says it is `name` (artifacts belong to identity and
/// client name).
fn start_named(home: &Path, config: &Path, name: &str, env: &[(&str, &str)]) -> McpProcess {
    let mut mcp = McpProcess::spawn(
        home,
        &["mcp", "serve", "--config", &config.display().to_string()],
        env,
    );
    let answer = mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": name, "version": "1"}}),
    );
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
    mcp.notify("notifications/initialized", json!({}));
    mcp
}

/// `seq 1 N`, as the host prints it.
fn seq(n: usize) -> Vec<u8> {
    (1..=n)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The bytes of an artifact range, decoded when it came as base64.
fn data_of(slice: &Value) -> Vec<u8> {
    let data = slice["data"].as_str().unwrap_or_else(|| panic!("{slice}"));
    match slice.get("data_encoding") {
        Some(_) => data_encoding::BASE64.decode(data.as_bytes()).unwrap(),
        None => data.as_bytes().to_vec(),
    }
}

#[test]
fn five_megabytes_keep_head_and_tail_and_the_artifact_is_exact_and_private() {
    let (_fleet, home, config) = fleet(
        1,
        "secrets:\n  env: [ARTIFACT_CANARY]\nlimits:\n  max_output_bytes: 4096\n",
    );
    let env = [("ARTIFACT_CANARY", SECRET)];
    let mut agent = start_named(home.path(), &config, "agent-a", &env);
    // ~5.9 MB: the secret is printed in the middle, where the cut leaves it out.
    let command = "seq 1 400000; printf 'key=%s\\n' \"$S\"; seq 400001 800000";
    let (answer, is_error) = agent.call(
        "exec",
        json!({"target": "fleet-01", "command": command, "env": {"S": "${env:ARTIFACT_CANARY}"}}),
    );
    assert!(!is_error, "{answer}");
    let mut whole = seq(400_000);
    whole.extend_from_slice(format!("key={SECRET}\n").as_bytes());
    whole.extend_from_slice(&seq(800_000)[seq(400_000).len()..]);
    assert!(whole.len() > 5_000_000);
    let host = &answer["results"][0];
    let job = answer["summary"]["job_id"].as_str().unwrap();
    assert_eq!(host["truncated"], true, "{host}");
    assert_eq!(host["stdout_bytes"], whole.len(), "the total printed");
    let stdout = host["stdout"].as_str().unwrap();
    let marker = format!(
        "\n…[{} bytes cut; all of it: artifacts_get job_id={job} stream=stdout and this host_id]…\n",
        whole.len() - 4096
    );
    let (head, tail) = stdout
        .split_once(&marker)
        .unwrap_or_else(|| panic!("no marker in {stdout:.200}"));
    assert_eq!(head.as_bytes(), &whole[..2048], "the head");
    assert_eq!(tail.as_bytes(), &whole[whole.len() - 2048..], "the tail");
    assert!(host.get("stderr").is_none(), "no empty stderr: {host}");

    // The artifact: the whole stream, the secret masked; ranges are exact.
    let masked: Vec<u8> = String::from_utf8(whole.clone())
        .unwrap()
        .replace(SECRET, "***")
        .into_bytes();
    let (listed, _) = agent.call("artifacts_list", json!({"job_id": job}));
    let artifacts = listed["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1, "{listed}");
    assert_eq!(artifacts[0]["host_id"], "fleet-01");
    assert_eq!(artifacts[0]["stream"], "stdout");
    assert_eq!(artifacts[0]["bytes"], masked.len());
    assert_eq!(artifacts[0]["total_bytes"], whole.len());
    let mut read = Vec::new();
    let mut offset = 0u64;
    loop {
        let (slice, is_error) = agent.call(
            "artifacts_get",
            json!({"job_id": job, "host_id": "fleet-01", "stream": "stdout", "offset": offset, "length": 1_000_000}),
        );
        assert!(!is_error, "{slice}");
        assert_eq!(slice["offset"], offset);
        read.extend(data_of(&slice));
        match slice["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(
        sha256(&read),
        sha256(&masked),
        "the artifact, read in ranges"
    );
    let (middle, _) = agent.call(
        "artifacts_get",
        json!({"job_id": job, "host_id": "fleet-01", "stream": "stdout", "offset": 3_000_001, "length": 12_345}),
    );
    assert_eq!(
        sha256(&data_of(&middle)),
        sha256(&masked[3_000_001..3_000_001 + 12_345])
    );
    let (last, _) = agent.call(
        "artifacts_tail",
        json!({"job_id": job, "host_id": "fleet-01", "stream": "stdout", "lines": 3}),
    );
    assert_eq!(data_of(&last), b"799998\n799999\n800000\n");
    let (end, _) = agent.call(
        "artifacts_tail",
        json!({"job_id": job, "host_id": "fleet-01", "stream": "stdout", "bytes": 100}),
    );
    assert_eq!(data_of(&end), &masked[masked.len() - 100..]);
    assert_eq!(end["offset"], masked.len() - 100);

    let artifact = home
        .path()
        .join(format!("state/artifacts/{job}/fleet-01.stdout"));
    let kept = std::fs::read(&artifact).unwrap();
    assert_eq!(sha256(&kept), sha256(&masked), "on disk, masked");
    assert!(!String::from_utf8_lossy(&kept).contains(SECRET));
    assert!(!answer.to_string().contains(SECRET));
    assert!(agent.close().success());

    // Another caller on the same state dir: nothing there, whatever it names.
    let mut other = start_named(home.path(), &config, "agent-b", &env);
    for (tool, args) in [
        (
            "artifacts_get",
            json!({"job_id": job, "host_id": "fleet-01", "stream": "stdout"}),
        ),
        (
            "artifacts_tail",
            json!({"job_id": job, "host_id": "fleet-01", "stream": "stdout", "lines": 1}),
        ),
    ] {
        let (refused, is_error) = other.call(tool, args);
        assert!(is_error, "{tool}: {refused}");
        assert_eq!(refused["error"]["code"], "JOB_NOT_FOUND", "{refused}");
    }
    let (theirs, _) = other.call("artifacts_list", json!({}));
    assert_eq!(theirs["artifacts"], json!([]), "{theirs}");
    let (bad, is_error) = other.call(
        "artifacts_get",
        json!({"job_id": "../../audit", "host_id": "fleet-01", "stream": "stdout"}),
    );
    assert!(is_error);
    assert_eq!(bad["error"]["code"], "INVALID_INPUT", "{bad}");
    assert!(other.close().success());
}

#[test]
fn a_secret_split_by_the_cut_is_masked_in_the_answer_and_the_artifact() {
    let (_fleet, home, config) = fleet(1, "secrets:\n  env: [ARTIFACT_CANARY]\n");
    let env = [("ARTIFACT_CANARY", SECRET)];
    let mut agent = start_named(home.path(), &config, "agent-a", &env);
    // 1000 bytes kept, 500 of them the head: the secret starts 490 bytes in.
    let command = "printf '%490s' '' | tr ' ' a; printf '%s' \"$S\"; seq 1 2000; printf '%s' \"$S\"; printf '%490s' '' | tr ' ' b";
    let (answer, is_error) = agent.call(
        "exec",
        json!({"target": "fleet-01", "command": command, "env": {"S": "${env:ARTIFACT_CANARY}"}, "max_output_bytes": 1000}),
    );
    assert!(!is_error, "{answer}");
    let host = &answer["results"][0];
    assert_eq!(host["truncated"], true);
    let stdout = host["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with(&format!("{}***\n…[", "a".repeat(490))),
        "the head ends inside the secret: {stdout}"
    );
    assert!(
        stdout.ends_with(&format!("]…\n***{}", "b".repeat(490))),
        "the tail starts inside it: {stdout}"
    );
    let job = answer["summary"]["job_id"].as_str().unwrap();
    let (whole, _) = agent.call(
        "artifacts_get",
        json!({"job_id": job, "host_id": "fleet-01", "stream": "stdout"}),
    );
    let data = String::from_utf8(data_of(&whole)).unwrap();
    assert!(!data.contains(&SECRET[..6]), "{data}");
    assert_eq!(data.matches("***").count(), 2);
    assert!(agent.close().success());
}

#[test]
fn fleet_answers_leave_out_empty_streams_and_truncated_false_and_still_fold() {
    let (_fleet, home, config) = fleet(3, "");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (quiet, _) = mcp.call("exec", json!({"target": "all", "command": "true"}));
    for host in quiet["results"].as_array().unwrap() {
        assert_eq!(host["ok"], true, "{host}");
        for absent in [
            "stdout",
            "stderr",
            "truncated",
            "stdout_bytes",
            "stderr_bytes",
        ] {
            assert!(host.get(absent).is_none(), "{absent} in {host}");
        }
    }
    let (loud, _) = mcp.call(
        "exec",
        json!({"target": "all", "command": "echo same; seq 1 10000 >&2", "max_output_bytes": 200}),
    );
    let results = loud["results"].as_array().unwrap();
    assert_eq!(results[0]["stdout"], "same\n");
    assert_eq!(results[0]["truncated"], true, "{loud}");
    assert!(results[0]["stderr"].as_str().unwrap().contains("bytes cut"));
    for folded in &results[1..] {
        assert_eq!(folded["same_as"], "fleet-01", "{loud}");
        assert_eq!(folded["truncated"], true);
        assert!(folded.get("stdout").is_none() && folded.get("stderr").is_none());
    }
    // Each host's stream is its own artifact.
    let job = loud["summary"]["job_id"].as_str().unwrap();
    let (listed, _) = mcp.call("artifacts_list", json!({"job_id": job}));
    assert_eq!(listed["artifacts"].as_array().unwrap().len(), 3, "{listed}");
    assert!(mcp.close().success());
}
