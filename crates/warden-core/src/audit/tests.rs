//! Chain tests: every kind of tampering is found and named.

use super::*;
use crate::error::ErrorCode;
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};

fn entry(tool: &str) -> AuditEntry {
    AuditEntry {
        client: "test".into(),
        client_id: "name:test".into(),
        identity: "local".into(),
        tool: tool.into(),
        args: json!({"command": "uptime", "env": {"TOKEN": "s3cret"}}),
        hosts: vec!["web-1".into()],
        decision: CallDecision::Allowed,
        commands: Vec::new(),
        probes: Vec::new(),
        paths: Vec::new(),
        class: None,
        opaque: Vec::new(),
        allow_opaque: false,
        rule: None,
        reason: None,
        // Completed: a requested record left open would get an `outcome_unknown` one.
        phase: Phase::Completed,
        outcome: None,
        error_code: None,
        duration_ms: None,
        job_id: "job".into(),
        approval_id: None,
    }
}

fn open(dir: &Path) -> AuditLog {
    AuditLog::open(dir, &key_path(dir)).unwrap()
}

fn key_path(dir: &Path) -> PathBuf {
    dir.parent().unwrap().join("audit.key")
}

fn options(dir: &Path) -> VerifyOptions {
    VerifyOptions {
        public_key: public_key(&key_path(dir)),
        anchor: None,
    }
}

fn log_with(records: usize) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit");
    let log = open(&dir);
    for index in 0..records {
        let durability = if index % 2 == 0 {
            Durability::Sync
        } else {
            Durability::Group
        };
        let _ = log
            .append(&entry(&format!("tool{index}")), durability)
            .unwrap();
    }
    drop(log);
    (temp, dir)
}

fn segment_lines(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(segment_path_for(dir)).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn segment_path_for(dir: &Path) -> PathBuf {
    verify::segment_path(dir, 1)
}

fn rewrite(dir: &Path, lines: &[String]) {
    std::fs::write(segment_path_for(dir), lines.join("\n") + "\n").unwrap();
}

fn first_bad(dir: &Path) -> (u64, String) {
    let report = verify(dir, &options(dir)).unwrap();
    assert!(!report.ok);
    let bad = report.first_bad.unwrap();
    (bad.seq.unwrap_or(0), bad.problem)
}

#[test]
fn intact_log_verifies_and_reopening_continues_the_chain() {
    let (_temp, dir) = log_with(4);
    let log = open(&dir);
    assert_eq!(log.append(&entry("more"), Durability::Sync).unwrap().seq, 5);
    drop(log);
    let report = verify(&dir, &options(&dir)).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 5);
    assert_eq!(report.head_seq, Some(5));
    assert!(report.head_signed);
}

#[test]
fn edited_record_is_named() {
    let (_temp, dir) = log_with(5);
    let mut lines = segment_lines(&dir);
    lines[2] = lines[2].replace("tool2", "tool9");
    rewrite(&dir, &lines);
    let (seq, problem) = first_bad(&dir);
    assert_eq!(seq, 3);
    assert!(problem.contains("edited"), "{problem}");
}

#[test]
fn deleted_record_is_named() {
    let (_temp, dir) = log_with(5);
    let mut lines = segment_lines(&dir);
    lines.remove(1);
    rewrite(&dir, &lines);
    let (seq, problem) = first_bad(&dir);
    assert_eq!(seq, 3);
    assert!(problem.contains("deleted"), "{problem}");
}

#[test]
fn reordered_records_are_named() {
    let (_temp, dir) = log_with(5);
    let mut lines = segment_lines(&dir);
    lines.swap(1, 2);
    rewrite(&dir, &lines);
    let (seq, problem) = first_bad(&dir);
    assert_eq!(seq, 3);
    assert!(
        problem.contains("deleted") || problem.contains("reordered"),
        "{problem}"
    );
}

#[test]
fn inserted_record_is_named() {
    let (_temp, dir) = log_with(3);
    let mut lines = segment_lines(&dir);
    let copy = lines[1].clone();
    lines.insert(2, copy);
    rewrite(&dir, &lines);
    let (seq, problem) = first_bad(&dir);
    assert_eq!(seq, 2);
    assert!(problem.contains("reordered or duplicated"), "{problem}");
}

#[test]
fn truncated_tail_is_found_through_the_head() {
    let (_temp, dir) = log_with(4);
    let mut lines = segment_lines(&dir);
    lines.pop();
    rewrite(&dir, &lines);
    let (seq, problem) = first_bad(&dir);
    assert_eq!(seq, 4);
    assert!(problem.contains("cut from the end"), "{problem}");
}

#[test]
fn env_values_and_stdin_never_reach_the_log() {
    let masked = mask_secrets(&json!({"env": {"TOKEN": "s3cret"}, "stdin": "password"}));
    assert_eq!(masked["env"]["TOKEN"], "***");
    assert_eq!(masked["stdin"], "<8 bytes>");
}

#[test]
fn file_content_is_logged_as_size_and_hash() {
    let long_diff = "x".repeat(20_000);
    let masked = mask_secrets(
        &json!({"path": "/etc/app.conf", "content": "password=1", "pattern": long_diff,
            "unified_diff": "+DB_PASSWORD=x\n"}),
    );
    assert_eq!(masked["path"], "/etc/app.conf");
    assert!(
        masked["unified_diff"]
            .as_str()
            .unwrap()
            .starts_with("<15 bytes, sha256 ")
    );
    let hash = hex::encode(sha2::Sha256::digest(b"password=1"));
    assert_eq!(masked["content"], format!("<10 bytes, sha256 {hash}>"));
    assert!(
        masked["pattern"]
            .as_str()
            .unwrap()
            .starts_with("<20000 bytes, sha256 ")
    );
}

#[test]
fn unwritable_dir_is_audit_unavailable() {
    let temp = tempfile::tempdir().unwrap();
    let blocker = temp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let error = AuditLog::open(&blocker.join("audit"), &temp.path().join("key"))
        .err()
        .unwrap();
    assert_eq!(error.code, ErrorCode::AuditUnavailable);
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let time = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
    assert_eq!(rfc3339(time), "2023-11-14T22:13:20.123Z");
}

fn requested(tool: &str, job: &str) -> AuditEntry {
    AuditEntry {
        job_id: job.into(),
        phase: Phase::Requested,
        ..entry(tool)
    }
}

fn records(dir: &Path) -> Vec<Value> {
    tail(dir, 1000).unwrap()
}

fn anchor_of(dir: &Path) -> SignedHead {
    read_head(dir).unwrap()
}

#[test]
fn two_writers_on_one_dir_keep_one_chain() {
    // Two opens of one dir lock like two processes: each has its own lock file
    // description, so the tail re-read is what keeps the chain whole.
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit");
    let first = std::sync::Arc::new(open(&dir));
    let second = std::sync::Arc::new(open(&dir));
    let threads: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .enumerate()
        .map(|(index, log)| {
            std::thread::spawn(move || {
                for round in 0..200 {
                    let durability = if round % 3 == 0 {
                        Durability::Sync
                    } else {
                        Durability::Group
                    };
                    let _ = log
                        .append(&entry(&format!("w{index}-{round}")), durability)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop((first, second));
    let report = verify(&dir, &options(&dir)).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 400);
    assert_eq!(report.head_seq, Some(400));
}

#[test]
fn a_torn_tail_is_cut_kept_and_recorded() {
    let (_temp, dir) = log_with(3);
    let mut text = std::fs::read_to_string(segment_path_for(&dir)).unwrap();
    text.push_str(r#"{"seq":4,"tool":"half"#);
    std::fs::write(segment_path_for(&dir), &text).unwrap();
    drop(open(&dir));
    let report = verify(&dir, &options(&dir)).unwrap();
    assert!(report.ok, "{report:?}");
    let all = records(&dir);
    let recovered = all
        .iter()
        .find(|record| record["event"] == "recovered")
        .unwrap();
    assert_eq!(recovered["cut_bytes"], 21);
    let saved = dir.join(recovered["saved_as"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(saved).unwrap(),
        r#"{"seq":4,"tool":"half"#
    );
}

#[test]
fn a_call_left_open_at_close_is_outcome_unknown() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit");
    let log = open(&dir);
    let _ = log
        .append(&requested("exec", "job-1"), Durability::Sync)
        .unwrap();
    let mut done = requested("exec", "job-2");
    let _ = log.append(&done, Durability::Sync).unwrap();
    done.phase = Phase::Completed;
    let _ = log.append(&done, Durability::Sync).unwrap();
    drop(log);
    let all = records(&dir);
    let unknown: Vec<_> = all
        .iter()
        .filter(|record| record["outcome"] == "outcome_unknown")
        .collect();
    assert_eq!(unknown.len(), 1, "{all:?}");
    assert_eq!(unknown[0]["job_id"], "job-1");
    assert_eq!(unknown[0]["phase"], "completed");
    assert_eq!(unknown[0]["error_code"], "OUTCOME_UNKNOWN");
    assert!(!dir.join("live").read_dir().unwrap().any(|_| true));
}

#[test]
fn a_forged_head_is_found() {
    let (_temp, dir) = log_with(3);
    let mut head = anchor_of(&dir);
    head.seq = 2;
    std::fs::write(dir.join("head.json"), serde_json::to_string(&head).unwrap()).unwrap();
    let (_, problem) = first_bad(&dir);
    assert!(problem.contains("forged"), "{problem}");
}

#[test]
fn a_deleted_head_is_found_and_recorded_on_the_next_open() {
    let (_temp, dir) = log_with(3);
    std::fs::remove_file(dir.join("head.json")).unwrap();
    let (_, problem) = first_bad(&dir);
    assert!(problem.contains("missing"), "{problem}");
    drop(open(&dir));
    assert!(
        records(&dir)
            .iter()
            .any(|record| record["event"] == "head_missing")
    );
}

/// The strongest local attacker: rewrites a record, recomputes the chain and re-signs
/// the head with the log's own key. Only a head kept elsewhere can tell.
fn rewrite_everything(dir: &Path, edit: impl Fn(&mut Map<String, Value>)) {
    let mut previous = GENESIS_HASH.to_owned();
    let mut lines = Vec::new();
    for line in segment_lines(dir) {
        let Value::Object(mut record) = serde_json::from_str(&line).unwrap() else {
            panic!()
        };
        edit(&mut record);
        record.insert("prev_hash".into(), json!(previous));
        let hash = record_hash(&record);
        record.insert("hash".into(), json!(hash));
        previous = hash;
        lines.push(canonical(&Value::Object(record)));
    }
    rewrite(dir, &lines);
    let key = head::signing_key(&key_path(dir)).unwrap();
    let seq = lines.len() as u64;
    let forged = SignedHead::sign(&key, seq, &previous, rfc3339(SystemTime::now()));
    std::fs::write(
        dir.join("head.json"),
        serde_json::to_string(&forged).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_full_rewrite_passes_alone_and_fails_against_a_saved_anchor() {
    let (_temp, dir) = log_with(4);
    let anchor = anchor_of(&dir);
    rewrite_everything(&dir, |record| {
        if record["tool"] == "tool1" {
            record.insert("tool".into(), json!("innocent"));
        }
    });
    assert!(verify(&dir, &options(&dir)).unwrap().ok);
    let report = verify(
        &dir,
        &VerifyOptions {
            anchor: Some(anchor),
            ..options(&dir)
        },
    )
    .unwrap();
    assert!(!report.ok);
    let problem = report.first_bad.unwrap().problem;
    assert!(
        problem.contains("differs from the saved anchor"),
        "{problem}"
    );
}

#[test]
fn a_cut_tail_with_the_head_deleted_fails_against_a_saved_anchor() {
    let (_temp, dir) = log_with(4);
    let anchor = anchor_of(&dir);
    let mut lines = segment_lines(&dir);
    lines.truncate(2);
    rewrite(&dir, &lines);
    std::fs::remove_file(dir.join("head.json")).unwrap();
    let report = verify(
        &dir,
        &VerifyOptions {
            anchor: Some(anchor),
            ..options(&dir)
        },
    )
    .unwrap();
    let problem = report.first_bad.unwrap().problem;
    assert!(problem.contains("cut from the end"), "{problem}");
}

#[test]
fn an_anchor_from_another_key_is_refused() {
    let (_temp, dir) = log_with(2);
    let stranger = SigningKey::from_bytes(&[7; 32]);
    let head = anchor_of(&dir);
    let anchor = SignedHead::sign(&stranger, head.seq, &head.hash, head.ts);
    let report = verify(
        &dir,
        &VerifyOptions {
            anchor: Some(anchor),
            ..options(&dir)
        },
    )
    .unwrap();
    let problem = report.first_bad.unwrap().problem;
    assert!(problem.contains("another key"), "{problem}");
}

#[test]
fn the_key_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let (_temp, dir) = log_with(1);
    let mode = std::fs::metadata(key_path(&dir))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
