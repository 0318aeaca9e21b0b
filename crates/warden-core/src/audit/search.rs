//! Searching the audit log: records newest first, read backwards through the segments,
//! filtered, with a bound on the work of one search (the log itself has none).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;

use serde_json::{Map, Value};

use super::verify::segments;

/// What a search keeps: a record passes when it meets every condition given.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Records at or after this time (milliseconds since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Records at or before this time.
    pub until_ms: Option<i64>,
    /// Record fields that must hold exactly this string (`tool`, `client`, …).
    pub equals: Vec<(&'static str, String)>,
    /// A host the record's `hosts` must name.
    pub host_id: Option<String>,
}

impl Query {
    /// Whether `record` meets every condition (a time condition needs a readable `ts`).
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        if self.since_ms.is_some() || self.until_ms.is_some() {
            let Some(ts) = record_ms(record) else {
                return false;
            };
            if self.since_ms.is_some_and(|since| ts < since)
                || self.until_ms.is_some_and(|until| ts > until)
            {
                return false;
            }
        }
        let fields = self
            .equals
            .iter()
            .all(|(key, want)| record.get(*key).and_then(Value::as_str) == Some(want.as_str()));
        let host = self.host_id.as_deref().is_none_or(|host| {
            record
                .get("hosts")
                .and_then(Value::as_array)
                .is_some_and(|hosts| hosts.iter().any(|id| id == host))
        });
        fields && host
    }
}

/// How much of the log one search may read.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub records: usize,
    pub bytes: u64,
}

/// What a search looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Records read (matching or not).
    pub records: usize,
    /// The search stopped at its [`Bound`] with older records unread.
    pub bounded: bool,
}

/// Records are written in time order, but a wall clock stepped back can put a record
/// written later before an earlier one: a search for `since` reads this far past it
/// before it concludes that nothing older can match.
const CLOCK_SLACK_MS: i64 = 5 * 60 * 1000;

/// Reads `dir`'s records newest first and hands each one that matches `query` to
/// `visit` (the parsed record and its line as written) until `visit` breaks, the log
/// starts, the records get older than `since`, or `bound` is reached. Unreadable lines
/// (a record being written, a damaged one: `verify` names those) are skipped.
pub fn search(
    dir: &Path,
    query: &Query,
    bound: Bound,
    mut visit: impl FnMut(&Map<String, Value>, &str) -> ControlFlow<()>,
) -> io::Result<Scanned> {
    let mut scanned = Scanned::default();
    let mut bytes_before = 0u64;
    let segments = segments(dir)?;
    for (index, (_, path)) in segments.iter().enumerate().rev() {
        let mut lines = ReverseLines::open(path)?;
        loop {
            let budget = bound.bytes.saturating_sub(bytes_before + lines.read_bytes);
            let line = if scanned.records < bound.records {
                lines.next_line(budget)?
            } else {
                None
            };
            let Some(line) = line else {
                if lines.has_more() {
                    scanned.bounded = true;
                    return Ok(scanned);
                }
                break;
            };
            let Ok(text) = std::str::from_utf8(&line) else {
                continue;
            };
            let Ok(Value::Object(record)) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            scanned.records += 1;
            if let (Some(since), Some(ts)) = (query.since_ms, record_ms(&record))
                && ts < since.saturating_sub(CLOCK_SLACK_MS)
            {
                return Ok(scanned);
            }
            if query.matches(&record) && visit(&record, text).is_break() {
                return Ok(scanned);
            }
        }
        bytes_before += lines.read_bytes;
        if index > 0 && (scanned.records >= bound.records || bytes_before >= bound.bytes) {
            // Older segments are left unread.
            scanned.bounded = true;
            return Ok(scanned);
        }
    }
    Ok(scanned)
}

/// Bytes read backwards at a time.
const CHUNK: u64 = 64 * 1024;

/// The lines of one file, last first, read backwards in chunks: a 64 MiB segment is not
/// loaded whole to reach its newest records.
struct ReverseLines {
    file: File,
    /// File offset of the first byte of `pending`.
    position: u64,
    /// Read but not yet returned: the start of a line, then whole lines.
    pending: Vec<u8>,
    /// Bytes of this file read so far.
    read_bytes: u64,
}

impl ReverseLines {
    fn open(path: &Path) -> io::Result<ReverseLines> {
        let file = File::open(path)?;
        // The length when the search starts: records appended meanwhile are newer than
        // anything it returns and are left to the next search.
        let position = file.metadata()?.len();
        Ok(ReverseLines {
            file,
            position,
            pending: Vec::new(),
            read_bytes: 0,
        })
    }

    fn has_more(&self) -> bool {
        self.position > 0 || !self.pending.is_empty()
    }

    /// The previous non-empty line, reading at most `budget` more bytes for it; `None`
    /// at the start of the file or when the budget runs out inside a line.
    fn next_line(&mut self, budget: u64) -> io::Result<Option<Vec<u8>>> {
        let mut budget = budget;
        loop {
            if let Some(index) = self.pending.iter().rposition(|&byte| byte == b'\n') {
                let line = self.pending.split_off(index + 1);
                self.pending.truncate(index);
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.position == 0 {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            if budget == 0 {
                return Ok(None);
            }
            let size = CHUNK.min(self.position).min(budget);
            self.position -= size;
            budget -= size;
            let mut chunk = vec![0; size as usize];
            self.file.seek(SeekFrom::Start(self.position))?;
            self.file.read_exact(&mut chunk)?;
            self.read_bytes += size;
            chunk.extend_from_slice(&self.pending);
            self.pending = chunk;
        }
    }
}

/// A record's `ts` in milliseconds since the epoch.
fn record_ms(record: &Map<String, Value>) -> Option<i64> {
    record
        .get("ts")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
}

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp
/// (`2026-12-01T10:00:00Z`, `2026-12-01T10:00:00.250+02:00`), or of a bare date
/// (`2026-12-01`, midnight UTC). Fractions past milliseconds are cut; `None` for
/// anything else, including impossible dates.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let digits = bytes.get(from..from + len)?;
        digits.iter().try_fold(0i64, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + i64::from(byte - b'0'))
        })
    };
    let year = number(0, 4)?;
    let month = number(5, 2)?;
    let day = number(8, 2)?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if bytes.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    // 60 is a leap second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut index = 19;
    let mut millis = 0;
    if bytes.get(index) == Some(&b'.') {
        index += 1;
        let start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            if index - start < 3 {
                millis = millis * 10 + i64::from(bytes[index] - b'0');
            }
            index += 1;
        }
        if index == start {
            return None;
        }
        for _ in (index - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match bytes.get(index..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (number(index + 1, 2)?, number(index + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's days-from-civil, the inverse of `rfc3339`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_parse_as_rfc3339_and_round_trip_with_the_log_format() {
        for millis in [0i64, 1_764_590_400_123, 951_782_400_000, 4_102_444_799_999] {
            let time = UNIX_EPOCH + Duration::from_millis(millis as u64);
            let text = crate::audit::rfc3339(time);
            assert_eq!(parse_rfc3339(&text), Some(millis), "{text}");
        }
        assert_eq!(parse_rfc3339("1970-01-01"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T02:00:00+02:00"), Some(0));
        assert_eq!(parse_rfc3339("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01t00:00:01.5z"), Some(1500));
        assert_eq!(parse_rfc3339("1970-01-01 00:00:00.123456789Z"), Some(123));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:00:00",
            "2026-12-01T10:00Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00+0200",
            "2026-12-01T10:00:00Zjunk",
            "+026-12-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    fn write_log(dir: &Path, segments: &[&[u64]]) {
        for (number, seqs) in segments.iter().enumerate() {
            let lines: String = seqs
                .iter()
                .map(|seq| {
                    let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seq * 60);
                    format!(
                        "{}\n",
                        serde_json::json!({
                            "seq": seq,
                            "ts": crate::audit::rfc3339(time),
                            "tool": if seq % 2 == 0 { "exec" } else { "status" },
                            "hosts": if seq % 3 == 0 { vec!["web-1"] } else { vec![] },
                        })
                    )
                })
                .collect();
            std::fs::write(dir.join(format!("audit-{:06}.jsonl", number + 1)), lines).unwrap();
        }
    }

    fn seqs(dir: &Path, query: &Query, bound: Bound) -> (Vec<u64>, Scanned) {
        let mut found = Vec::new();
        let scanned = search(dir, query, bound, |record, _| {
            found.push(record["seq"].as_u64().unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
        (found, scanned)
    }

    const WIDE: Bound = Bound {
        records: 1000,
        bytes: 1 << 30,
    };

    #[test]
    fn search_reads_newest_first_across_segments_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &[&[1, 2, 3, 4], &[5, 6, 7]]);
        let (all, scanned) = seqs(dir.path(), &Query::default(), WIDE);
        assert_eq!(all, [7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            scanned,
            Scanned {
                records: 7,
                bounded: false
            }
        );
        let exec_on_web = Query {
            equals: vec![("tool", "exec".into())],
            host_id: Some("web-1".into()),
            ..Query::default()
        };
        assert_eq!(seqs(dir.path(), &exec_on_web, WIDE).0, [6]);
        let window = Query {
            since_ms: parse_rfc3339(&crate::audit::rfc3339(
                UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 3 * 60),
            )),
            until_ms: parse_rfc3339(&crate::audit::rfc3339(
                UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 5 * 60),
            )),
            ..Query::default()
        };
        assert_eq!(seqs(dir.path(), &window, WIDE).0, [5, 4, 3]);
    }

    #[test]
    fn search_stops_at_its_bound_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &[&[1, 2, 3], &[4, 5, 6]]);
        let bound = Bound {
            records: 4,
            bytes: 1 << 30,
        };
        let (found, scanned) = seqs(dir.path(), &Query::default(), bound);
        assert_eq!(found, [6, 5, 4, 3]);
        assert!(scanned.bounded);
        // Exactly the whole log: nothing left unread, not bounded.
        let bound = Bound {
            records: 6,
            bytes: 1 << 30,
        };
        assert!(!seqs(dir.path(), &Query::default(), bound).1.bounded);
        // A byte bound inside the second-newest line stops before it.
        let newest = std::fs::read_to_string(dir.path().join("audit-000002.jsonl")).unwrap();
        let last_line = newest.lines().last().unwrap().len() as u64 + 1;
        let bound = Bound {
            records: 1000,
            bytes: last_line + 10,
        };
        let (found, scanned) = seqs(dir.path(), &Query::default(), bound);
        assert_eq!(found, [6]);
        assert!(scanned.bounded);
    }

    #[test]
    fn reverse_lines_cross_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines");
        let lines: Vec<String> = (0..50).map(|index| "x".repeat(index * 5000 + 1)).collect();
        std::fs::write(&path, format!("{}\n\n", lines.join("\n"))).unwrap();
        let mut reader = ReverseLines::open(&path).unwrap();
        let mut back = Vec::new();
        while let Some(line) = reader.next_line(u64::MAX).unwrap() {
            back.push(String::from_utf8(line).unwrap());
        }
        back.reverse();
        assert_eq!(back, lines);
    }
}
