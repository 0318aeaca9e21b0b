//! Reads the audit log back: segment listing, the chain check behind
//! `warden audit verify`, and the tail for `warden audit tail`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{GENESIS_HASH, record_hash};

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    pub segments: usize,
    /// The last seq the head file vouches for.
    pub head_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<BadRecord>,
}

/// The first record that breaks the chain, named so a person can open it.
#[derive(Debug, Clone, Serialize)]
pub struct BadRecord {
    pub segment: String,
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub problem: String,
}

pub(super) fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("audit-{number:06}.jsonl"))
}

/// Segment files in chain order.
pub(super) fn segments(dir: &Path) -> std::io::Result<Vec<(u32, PathBuf)>> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("audit-"))
            .and_then(|name| name.strip_suffix(".jsonl"))
            .and_then(|number| number.parse::<u32>().ok());
        if let Some(number) = number {
            found.push((number, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The seq and hash of a segment's last record, to continue the chain.
pub(super) fn last_record(path: &Path) -> std::io::Result<Option<(u64, String)>> {
    let file = std::fs::File::open(path)?;
    let mut last = None;
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(&line).map_err(|error| {
            std::io::Error::other(format!(
                "unreadable record in {} ({error}); run `warden audit verify`",
                path.display()
            ))
        })?;
        let seq = record.get("seq").and_then(Value::as_u64);
        let hash = record.get("hash").and_then(Value::as_str);
        if let (Some(seq), Some(hash)) = (seq, hash) {
            last = Some((seq, hash.to_owned()));
        }
    }
    Ok(last)
}

/// Checks every record of every segment and the head; names the first bad record.
pub fn verify(dir: &Path) -> std::io::Result<VerifyReport> {
    let segments = segments(dir)?;
    let mut expected_seq = 1;
    let mut previous_hash = GENESIS_HASH.to_owned();
    let head = read_head(dir);
    let mut head_hash_seen = None;
    let mut report = VerifyReport {
        ok: true,
        records: 0,
        segments: segments.len(),
        head_seq: head.as_ref().map(|(seq, _)| *seq),
        first_bad: None,
    };
    for (_, path) in &segments {
        let segment = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = std::fs::File::open(path)?;
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            let bad = |seq: Option<u64>, problem: String| BadRecord {
                segment: segment.clone(),
                line: index as u64 + 1,
                seq,
                problem,
            };
            let record: Map<String, Value> = match serde_json::from_str(&line) {
                Ok(Value::Object(record)) => record,
                _ => {
                    return Ok(fail(report, bad(None, "not a JSON record".into())));
                }
            };
            let seq = record.get("seq").and_then(Value::as_u64);
            let stored_hash = record
                .get("hash")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if record_hash(&record) != stored_hash {
                return Ok(fail(
                    report,
                    bad(
                        seq,
                        "content does not match its hash: the record was edited".into(),
                    ),
                ));
            }
            match seq {
                Some(seq) if seq == expected_seq => {}
                Some(seq) if seq < expected_seq => {
                    return Ok(fail(
                        report,
                        bad(
                            Some(seq),
                            format!(
                                "seq {seq} after {}: records reordered or duplicated",
                                expected_seq - 1
                            ),
                        ),
                    ));
                }
                Some(seq) => {
                    return Ok(fail(
                        report,
                        bad(
                            Some(seq),
                            format!(
                                "seq jumps from {} to {seq}: records deleted",
                                expected_seq - 1
                            ),
                        ),
                    ));
                }
                None => return Ok(fail(report, bad(None, "record has no seq".into()))),
            }
            if record.get("prev_hash").and_then(Value::as_str) != Some(previous_hash.as_str()) {
                return Ok(fail(
                    report,
                    bad(seq, "prev_hash does not match the previous record: a record was inserted, deleted or replaced".into()),
                ));
            }
            if head
                .as_ref()
                .is_some_and(|(head_seq, _)| Some(*head_seq) == seq)
            {
                head_hash_seen = Some(stored_hash.to_owned());
            }
            previous_hash = stored_hash.to_owned();
            expected_seq += 1;
            report.records += 1;
        }
    }
    if let Some((head_seq, head_hash)) = head {
        let problem = if head_seq > report.records {
            Some(format!(
                "the log ends at seq {} but the head vouches for seq {head_seq}: records were cut from the end",
                report.records
            ))
        } else if head_hash_seen.as_deref() != Some(head_hash.as_str()) && head_seq > 0 {
            Some(format!(
                "record seq {head_seq} differs from the head: the log was rewritten"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            let segment = segments
                .last()
                .and_then(|(_, path)| path.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Ok(fail(
                report,
                BadRecord {
                    segment,
                    line: 0,
                    seq: Some(head_seq),
                    problem,
                },
            ));
        }
    }
    Ok(report)
}

fn fail(mut report: VerifyReport, bad: BadRecord) -> VerifyReport {
    report.ok = false;
    report.first_bad = Some(bad);
    report
}

fn read_head(dir: &Path) -> Option<(u64, String)> {
    let text = std::fs::read_to_string(dir.join("head.json")).ok()?;
    let head: Value = serde_json::from_str(&text).ok()?;
    Some((
        head.get("seq")?.as_u64()?,
        head.get("hash")?.as_str()?.to_owned(),
    ))
}

/// The last `count` records, oldest first.
pub fn tail(dir: &Path, count: usize) -> std::io::Result<Vec<Value>> {
    let mut records = std::collections::VecDeque::with_capacity(count);
    for (_, path) in segments(dir)?.iter().rev() {
        let file = std::fs::File::open(path)?;
        let mut lines: Vec<Value> = BufReader::new(file)
            .lines()
            .map_while(|line| line.ok())
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect();
        while let Some(record) = lines.pop() {
            if records.len() == count {
                return Ok(records.into());
            }
            records.push_front(record);
        }
    }
    Ok(records.into())
}
