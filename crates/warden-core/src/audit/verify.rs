//! Reads the audit log back: segment listing, the chain check behind
//! `warden audit verify`, and the tail for `warden audit tail`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::head::{self, SignedHead};
use super::{GENESIS_HASH, record_hash};

/// What `verify` compares the log with besides itself.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Hex of the log's public key (from its key file): the head must be signed by it.
    pub public_key: Option<String>,
    /// A head saved earlier: the log must still hold that record, unchanged.
    pub anchor: Option<SignedHead>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    pub segments: usize,
    /// The last seq the head file vouches for.
    pub head_seq: Option<u64>,
    /// The head's Ed25519 signature holds under the log's key.
    pub head_signed: bool,
    /// The seq of the saved anchor checked, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor_seq: Option<u64>,
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

/// Checks every record of every segment, the signed head and a saved anchor; names
/// the first bad record.
pub fn verify(dir: &Path, options: &VerifyOptions) -> std::io::Result<VerifyReport> {
    let segments = segments(dir)?;
    let mut expected_seq = 1;
    let mut previous_hash = GENESIS_HASH.to_owned();
    let head_present = dir.join(head::HEAD_FILE).exists();
    let head = head::read_head(dir);
    let mut head_hash_seen = None;
    let mut anchor_hash_seen = None;
    let mut report = VerifyReport {
        ok: true,
        records: 0,
        segments: segments.len(),
        head_seq: head.as_ref().map(|head| head.seq),
        head_signed: head.as_ref().is_some_and(|head| {
            head.signature_holds()
                && options
                    .public_key
                    .as_ref()
                    .is_none_or(|key| *key == head.public_key)
        }),
        anchor_seq: options.anchor.as_ref().map(|anchor| anchor.seq),
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
            if head.as_ref().is_some_and(|head| Some(head.seq) == seq) {
                head_hash_seen = Some(stored_hash.to_owned());
            }
            if options
                .anchor
                .as_ref()
                .is_some_and(|anchor| Some(anchor.seq) == seq)
            {
                anchor_hash_seen = Some(stored_hash.to_owned());
            }
            previous_hash = stored_hash.to_owned();
            expected_seq += 1;
            report.records += 1;
        }
    }
    let last_segment = segments
        .last()
        .and_then(|(_, path)| path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let problem =
        anchor_problem(options, report.records, anchor_hash_seen.as_deref()).or_else(|| {
            head_problem(
                &report,
                head.as_ref(),
                head_present,
                head_hash_seen.as_deref(),
            )
        });
    if let Some((seq, problem)) = problem {
        return Ok(fail(
            report,
            BadRecord {
                segment: last_segment,
                line: 0,
                seq,
                problem,
            },
        ));
    }
    Ok(report)
}

/// A saved anchor must be genuine, from this log's key, and still in the log unchanged.
fn anchor_problem(
    options: &VerifyOptions,
    records: u64,
    seen: Option<&str>,
) -> Option<(Option<u64>, String)> {
    let anchor = options.anchor.as_ref()?;
    let problem = if !anchor.signature_holds() {
        "the anchor's signature does not hold: it is not a head this log signed".to_owned()
    } else if options
        .public_key
        .as_ref()
        .is_some_and(|key| *key != anchor.public_key)
    {
        "the anchor was signed by another key than this log's: the key (and likely the log) was replaced".to_owned()
    } else if anchor.seq > records {
        format!(
            "the log ends at seq {records} but the anchor saved seq {}: records were cut from the end",
            anchor.seq
        )
    } else if anchor.seq > 0 && seen != Some(anchor.hash.as_str()) {
        format!(
            "record seq {} differs from the saved anchor: the log was rewritten",
            anchor.seq
        )
    } else {
        return None;
    };
    Some((Some(anchor.seq), problem))
}

/// The head must exist once there are records, be signed by the log's key, and name a
/// record the log still holds.
fn head_problem(
    report: &VerifyReport,
    head: Option<&SignedHead>,
    present: bool,
    seen: Option<&str>,
) -> Option<(Option<u64>, String)> {
    let Some(head) = head else {
        if present {
            return Some((None, format!("{} is unreadable", head::HEAD_FILE)));
        }
        return (report.records > 0).then(|| {
            (None, format!(
                "{} is missing: a deleted head hides a cut tail; verify against a saved anchor (`warden audit verify --anchor FILE`)",
                head::HEAD_FILE
            ))
        });
    };
    let problem = if !report.head_signed {
        "the head's signature does not hold under this log's key: the head was forged".to_owned()
    } else if head.seq > report.records {
        format!(
            "the log ends at seq {} but the head vouches for seq {}: records were cut from the end",
            report.records, head.seq
        )
    } else if head.seq > 0 && seen != Some(head.hash.as_str()) {
        format!(
            "record seq {} differs from the head: the log was rewritten",
            head.seq
        )
    } else {
        return None;
    };
    Some((Some(head.seq), problem))
}

fn fail(mut report: VerifyReport, bad: BadRecord) -> VerifyReport {
    report.ok = false;
    report.first_bad = Some(bad);
    report
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
