//! Chain tests: every kind of tampering is found and named.

use super::*;

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
        phase: Phase::Requested,
        outcome: None,
        error_code: None,
        duration_ms: None,
        job_id: "job".into(),
    }
}

fn log_with(records: usize) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit");
    let log = AuditLog::open(&dir).unwrap();
    for index in 0..records {
        let durability = if index % 2 == 0 {
            Durability::Sync
        } else {
            Durability::Group
        };
        log.append(&entry(&format!("tool{index}")), durability)
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
    let report = verify(dir).unwrap();
    assert!(!report.ok);
    let bad = report.first_bad.unwrap();
    (bad.seq.unwrap_or(0), bad.problem)
}

#[test]
fn intact_log_verifies_and_reopening_continues_the_chain() {
    let (_temp, dir) = log_with(4);
    let log = AuditLog::open(&dir).unwrap();
    assert_eq!(log.append(&entry("more"), Durability::Sync).unwrap(), 5);
    drop(log);
    let report = verify(&dir).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 5);
    assert_eq!(report.head_seq, Some(5));
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
    let error = AuditLog::open(&blocker.join("audit")).err().unwrap();
    assert_eq!(error.code, ErrorCode::AuditUnavailable);
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let time = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
    assert_eq!(rfc3339(time), "2023-11-14T22:13:20.123Z");
}
