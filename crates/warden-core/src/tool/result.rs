//! The fleet result shape of PRODUCT.md §6, shared by every tool that runs on hosts.

use std::time::Instant;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, ErrorCode};
use crate::tool::rollout::{Rolled, RolloutHost, RolloutReport};
use crate::transport::{CapturedStream, ExecOutput, ExitStatus};

/// One host's outcome.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostResult {
    pub host_id: String,
    /// Exit code 0 and no error.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal name when the command was killed by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Left out when empty. Cut output (truncated) is its head, a marker
    /// `…[N bytes cut; all of it: artifacts_get …]…`, and its tail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Set when stdout is not plain text (invalid UTF-8, a NUL byte, or more than 1 in
    /// 16 bytes control characters): stdout is then its bytes in base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_encoding: Option<StreamEncoding>,
    /// As stdout; left out when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// As stdout_encoding, for stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_encoding: Option<StreamEncoding>,
    pub duration_ms: u64,
    /// Output was cut at max_output_bytes (head and tail kept, the whole in an
    /// artifact); see the *_bytes totals. Left out when nothing was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_bytes: Option<u64>,
    /// Same output as this earlier host; stdout/stderr are left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
    /// Why this host failed (an error object as in PRODUCT.md §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub error: Option<Value>,
    /// Not run: the rollout stopped before this host's batch (why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
}

impl HostResult {
    pub fn from_output(host_id: &str, output: &ExecOutput, command: &str) -> HostResult {
        let (exit_code, signal, error) = match &output.status {
            ExitStatus::Code(code) => (Some(*code), None, None),
            ExitStatus::Signal(signal) => (None, Some(signal.clone()), None),
            ExitStatus::TimedOut => (
                None,
                None,
                Some(
                    Error::new(
                        ErrorCode::CmdTimeout,
                        if output.may_still_run {
                            format!(
                                "timed out after {} ms; warden sent INT, TERM and KILL but the host could not confirm that nothing of it is left: it may still be running",
                                output.duration.as_millis()
                            )
                        } else {
                            format!(
                                "stopped after {} ms; the remote process group was killed",
                                output.duration.as_millis()
                            )
                        },
                    )
                    .with_host(host_id)
                    .with_command(command),
                ),
            ),
            ExitStatus::Cancelled => (
                None,
                None,
                Some(
                    Error::new(
                        ErrorCode::Cancelled,
                        "cancelled; the remote process group was killed",
                    )
                    .with_host(host_id),
                ),
            ),
        };
        let truncated = output.stdout.truncated() || output.stderr.truncated();
        let (stdout, stdout_encoding) = encode_stream(&output.stdout);
        let (stderr, stderr_encoding) = encode_stream(&output.stderr);
        HostResult {
            host_id: host_id.to_owned(),
            ok: exit_code == Some(0) && error.is_none(),
            exit_code,
            signal,
            stdout: (!stdout.is_empty()).then_some(stdout),
            stdout_encoding,
            stderr: (!stderr.is_empty()).then_some(stderr),
            stderr_encoding,
            duration_ms: output.duration.as_millis() as u64,
            truncated,
            stdout_bytes: truncated.then_some(output.stdout.total_bytes),
            stderr_bytes: truncated.then_some(output.stderr.total_bytes),
            same_as: None,
            error: error.map(|error| error.to_json()["error"].clone()),
            not_run: None,
        }
    }

    pub fn from_error(host_id: &str, error: &Error, duration_ms: u64) -> HostResult {
        HostResult {
            duration_ms,
            error: Some(error.to_json()["error"].clone()),
            ..HostResult::without_output(host_id)
        }
    }

    /// A host that did not succeed and printed nothing: what an error or a skip fills in.
    fn without_output(host_id: &str) -> HostResult {
        HostResult {
            host_id: host_id.to_owned(),
            ok: false,
            exit_code: None,
            signal: None,
            stdout: None,
            stdout_encoding: None,
            stderr: None,
            stderr_encoding: None,
            duration_ms: 0,
            truncated: false,
            stdout_bytes: None,
            stderr_bytes: None,
            same_as: None,
            error: None,
            not_run: None,
        }
    }

    fn same_output(&self, other: &HostResult) -> bool {
        self.exit_code == other.exit_code
            && self.signal == other.signal
            && self.stdout == other.stdout
            && self.stdout_encoding == other.stdout_encoding
            && self.stderr == other.stderr
            && self.stderr_encoding == other.stderr_encoding
            && self.truncated == other.truncated
            && self.error.as_ref().map(|error| &error["code"])
                == other.error.as_ref().map(|error| &error["code"])
    }
}

/// How a stream that is not plain text is written in its string field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamEncoding {
    Base64,
}

/// A stream as a JSON string: the text when it reads as text, else its bytes in base64.
///
/// JSON writes each control byte as a six-byte `\u00XX` escape, so 1 MiB of NULs would
/// become 6 MiB of answer; base64 costs 4/3 of the bytes whatever they are, and is the
/// only exact form for bytes that are not UTF-8. Past 1 control byte in 16 the escapes
/// cost more than base64; a NUL means binary.
///
/// A cut stream is its head, the cut marker and its tail. As text, a character the cut
/// split is left out on both sides (the `*_bytes` totals say how much there really
/// was); as base64, the bytes are the head, the marker's UTF-8 and the tail, exactly.
pub fn encode_stream(stream: &CapturedStream) -> (String, Option<StreamEncoding>) {
    let head = stream.bytes.as_slice();
    let tail = stream.tail();
    let marker = stream.marker();
    let cut = marker.is_some();
    let kept = head.len() + tail.len();
    let binary = binary(head) || binary(&tail) || controls(head) + controls(&tail) > kept / 16;
    let text = match (as_text(head, false, cut), as_text(&tail, cut, false)) {
        (Some(head), Some(tail)) if !binary => Some(format!(
            "{head}{}{tail}",
            marker.as_deref().unwrap_or_default()
        )),
        _ => None,
    };
    match text {
        Some(text) => (text, None),
        None => {
            let mut bytes = Vec::with_capacity(kept + 128);
            bytes.extend_from_slice(head);
            bytes.extend_from_slice(marker.as_deref().unwrap_or_default().as_bytes());
            bytes.extend_from_slice(&tail);
            (
                data_encoding::BASE64.encode(&bytes),
                Some(StreamEncoding::Base64),
            )
        }
    }
}

/// Bytes as a JSON string, exactly: the text when they are UTF-8 that reads as text
/// (as [`encode_stream`] decides), else base64.
pub fn encode_bytes(bytes: &[u8]) -> (String, Option<StreamEncoding>) {
    match as_text(bytes, false, false) {
        Some(text) if !binary(bytes) && controls(bytes) <= bytes.len() / 16 => {
            (text.to_owned(), None)
        }
        _ => (
            data_encoding::BASE64.encode(bytes),
            Some(StreamEncoding::Base64),
        ),
    }
}

/// A NUL means binary.
fn binary(bytes: &[u8]) -> bool {
    bytes.contains(&0)
}

/// Control bytes JSON would escape (tab, newline and carriage return are text).
fn controls(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .filter(|&&byte| (byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r')) || byte == 0x7f)
        .count()
}

/// `bytes` as UTF-8, when they are: a piece of a character at a cut start (`cut_start`,
/// at most 3 continuation bytes) or end (`cut_end`) is left out.
fn as_text(bytes: &[u8], cut_start: bool, cut_end: bool) -> Option<&str> {
    let start = if cut_start {
        bytes
            .iter()
            .take(3)
            .take_while(|&&byte| byte & 0xC0 == 0x80)
            .count()
    } else {
        0
    };
    let bytes = &bytes[start..];
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        // `error_len() == None`: the input ends inside a character.
        Err(error) if cut_end && error.error_len().is_none() => {
            std::str::from_utf8(&bytes[..error.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Summary {
    /// Every host succeeded.
    pub ok: bool,
    pub success_count: usize,
    pub fail_count: usize,
    pub skipped_count: usize,
    pub job_id: String,
    pub duration_ms: u64,
}

impl Summary {
    pub fn count<'a>(
        oks: impl Iterator<Item = &'a bool>,
        job_id: &str,
        started: Instant,
    ) -> Summary {
        let (mut success_count, mut fail_count) = (0, 0);
        for ok in oks {
            if *ok {
                success_count += 1;
            } else {
                fail_count += 1;
            }
        }
        Summary {
            ok: fail_count == 0,
            success_count,
            fail_count,
            skipped_count: 0,
            job_id: job_id.to_owned(),
            duration_ms: started.elapsed().as_millis() as u64,
        }
    }
}

impl RolloutHost for HostResult {
    fn succeeded(&self) -> bool {
        self.ok
    }

    fn not_run(host_id: &str, reason: &str) -> HostResult {
        HostResult {
            not_run: Some(reason.to_owned()),
            ..HostResult::without_output(host_id)
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FleetResult {
    pub results: Vec<HostResult>,
    /// The batches and how they went (a rollout was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutReport>,
    pub summary: Summary,
}

impl FleetResult {
    pub fn new(
        mut results: Vec<HostResult>,
        job_id: &str,
        started: Instant,
        fold: bool,
    ) -> FleetResult {
        if fold {
            fold_identical(&mut results);
        }
        let summary = Summary::count(results.iter().map(|result| &result.ok), job_id, started);
        FleetResult {
            results,
            rollout: None,
            summary,
        }
    }

    /// The answer of a rollout: its results (hosts not run counted as skipped), and
    /// its report.
    pub fn rolled(
        mut rolled: Rolled<HostResult>,
        job_id: &str,
        started: Instant,
        fold: bool,
    ) -> FleetResult {
        if fold {
            fold_identical(&mut rolled.results);
        }
        let summary = rolled.summary(job_id, started);
        FleetResult {
            results: rolled.results,
            rollout: rolled.report,
            summary,
        }
    }
}

/// Replaces the output of a host that printed exactly what an earlier host printed by
/// `same_as`, to save tokens on large fleets.
fn fold_identical(results: &mut [HostResult]) {
    for index in 1..results.len() {
        let (earlier, rest) = results.split_at_mut(index);
        let current = &mut rest[0];
        let printed = current.stdout.as_deref().is_some_and(|out| !out.is_empty())
            || current.stderr.as_deref().is_some_and(|err| !err.is_empty());
        if !printed {
            continue;
        }
        if let Some(first) = earlier
            .iter()
            .find(|first| first.same_as.is_none() && first.same_output(current))
        {
            current.same_as = Some(first.host_id.clone());
            current.stdout = None;
            current.stdout_encoding = None;
            current.stderr = None;
            current.stderr_encoding = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(bytes: &[u8], limit: usize) -> CapturedStream {
        let mut stream = CapturedStream::with_limit(limit);
        stream.push(bytes);
        stream
    }

    fn decoded(text: &str) -> Vec<u8> {
        data_encoding::BASE64.decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn text_stays_text_and_bytes_that_are_not_become_base64() {
        for text in [
            "",
            "hello\n",
            "tabs\tand\r\nlines",
            "ünïcode ✓\n",
            "\u{1b}[1mbold\u{1b}[0m and then a long plain line",
        ] {
            assert_eq!(
                encode_stream(&stream(text.as_bytes(), 1000)),
                (text.to_owned(), None),
                "{text:?}"
            );
        }
        for bytes in [
            &b"\xff\xfe"[..],
            b"one NUL\0 is binary",
            b"\x1b[1m\x1b[0m\x1b[1m\x1b[0m",
            b"\x7f\x7f",
        ] {
            let (text, encoding) = encode_stream(&stream(bytes, 1000));
            assert_eq!(encoding, Some(StreamEncoding::Base64), "{bytes:?}");
            assert_eq!(decoded(&text), bytes);
        }
        let zeros = vec![0u8; 1 << 20];
        let (text, encoding) = encode_stream(&stream(&zeros, 1 << 20));
        assert_eq!(encoding, Some(StreamEncoding::Base64));
        assert_eq!(
            text.len(),
            (1 << 20) / 3 * 4 + 4,
            "4/3 of the bytes, not 6x"
        );
        assert_eq!(decoded(&text), zeros);
    }

    #[test]
    fn a_cut_inside_a_character_is_still_text_but_invalid_utf8_is_not() {
        // "é" is two bytes: a limit of 4 keeps 2 bytes of "aéxéb" at each end, "a"
        // and half an "é", then half an "é" and "b".
        let (text, encoding) = encode_stream(&stream("aéxéb".as_bytes(), 4));
        assert_eq!((text.as_str(), encoding), ("a\n…[3 bytes cut]…\nb", None));
        // Not cut, the same ending is invalid UTF-8.
        let (_, encoding) = encode_stream(&stream(&"aé".as_bytes()[..2], 100));
        assert_eq!(encoding, Some(StreamEncoding::Base64));
        // Cut, binary is base64 of exactly the head, the marker and the tail.
        let (text, encoding) = encode_stream(&stream(b"\xff\xfe\xfd", 2));
        assert_eq!(encoding, Some(StreamEncoding::Base64));
        let mut expected = b"\xff".to_vec();
        expected.extend_from_slice("\n…[1 bytes cut]…\n".as_bytes());
        expected.push(0xfd);
        assert_eq!(decoded(&text), expected);
    }
}
