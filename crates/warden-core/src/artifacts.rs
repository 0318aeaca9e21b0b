//! Artifacts: the whole output of a command whose answer was cut at
//! `max_output_bytes`, kept on warden's side as
//! `<state>/artifacts/<job_id>/<host_id>.<stream>` (0600, directories 0700) for
//! `artifacts_list`, `artifacts_get` and `artifacts_tail`.
//!
//! - **Only when needed.** A [`CapturedStream`] spills once it passes its cap: what it
//!   held so far, then every later byte, to `<host_id>.<stream>.part`. A command whose
//!   output fits writes nothing.
//! - **Transports know no files.** The engine (`RunContext::exec`) puts a [`Spill`] in
//!   the `ExecRequest`; transports only build their streams from the request
//!   (`ExecRequest::capture`), and the stream writes through the spill.
//! - **Masked before it is kept.** When the command ends, the engine masks the part
//!   file (resolved secrets, the call's `env` values, `secrets.patterns`, token shapes)
//!   into the artifact and deletes the part. Masking at read time was the other way:
//!   it would leave secrets on disk for the whole retention period, and a later call
//!   (another process, another call's `env` values) no longer knows every value the
//!   running call knew. Reads are masked again like every answer. The cost: the raw
//!   part exists while the command runs (0600 in a 0700 directory of warden's own state,
//!   out of reach of every tool), and offsets address the masked artifact.
//! - **One owner.** `<host_id>.json` beside the streams names the caller's owner
//!   (`RunContext::owner`: identity and client name); any other caller is told the
//!   artifact does not exist.
//! - **Bounded.** At most [`MAX_ARTIFACT_BYTES`] per stream (the rest is counted: the
//!   answer still has the stream's last bytes); kept `limits.artifact_retention_h`
//!   hours, pruned whenever an artifact is written or listed and refused when older.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, ErrorCode, Result};
use crate::transport::{CapturedStream, ExecOutput};

/// Most bytes one artifact keeps; loaded whole to be masked once, so it bounds memory.
pub const MAX_ARTIFACT_BYTES: u64 = 16 * 1024 * 1024;

/// One of a command's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamName {
    Stdout,
    Stderr,
}

impl StreamName {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamName::Stdout => "stdout",
            StreamName::Stderr => "stderr",
        }
    }
}

/// Where one host's streams of one call go once they pass their cap: built by the
/// engine, carried by the `ExecRequest`, written through by the stream.
#[derive(Debug, Clone)]
pub struct Spill {
    dir: PathBuf,
    job_id: String,
    host_id: String,
}

impl Spill {
    pub(crate) fn writer(&self, stream: StreamName) -> SpillWriter {
        SpillWriter {
            part: self
                .dir
                .join(format!("{}.{}.part", self.host_id, stream.as_str())),
            job_id: self.job_id.clone(),
            host_id: self.host_id.clone(),
            file: None,
            written: 0,
            failed: false,
        }
    }
}

/// One stream's part file, opened on the first write. Dropped unfinished (a transport
/// that gave up on the output), it deletes its part. Writes happen inline on the
/// transport's reading task: they land in the page cache through a 256 KiB buffer,
/// cheaper than handing each chunk to another thread.
#[derive(Debug)]
pub struct SpillWriter {
    part: PathBuf,
    job_id: String,
    host_id: String,
    file: Option<BufWriter<File>>,
    written: u64,
    failed: bool,
}

impl SpillWriter {
    /// Appends `data` up to [`MAX_ARTIFACT_BYTES`]. A failure (disk full) gives up on
    /// the artifact, never on the command: the answer then names no artifact.
    pub(crate) fn write(&mut self, data: &[u8]) {
        if self.failed {
            return;
        }
        let room = MAX_ARTIFACT_BYTES.saturating_sub(self.written);
        let data = &data[..data.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        if data.is_empty() {
            return;
        }
        let written = self.open().and_then(|file| file.write_all(data));
        match written {
            Ok(()) => self.written += data.len() as u64,
            Err(error) => {
                tracing::warn!(part = %self.part.display(), %error, "cannot keep the whole output as an artifact");
                self.failed = true;
                self.file = None;
                let _ = fs::remove_file(&self.part);
            }
        }
    }

    fn open(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        if self.file.is_none() {
            if let Some(dir) = self.part.parent() {
                private_dir(dir)?;
            }
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&self.part)?;
            self.file = Some(BufWriter::with_capacity(256 * 1024, file));
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("spill file not open"))
    }

    /// The flushed part file, or `None` when nothing (or not all) could be written.
    fn finish(mut self) -> Option<Spilled> {
        let mut file = self.file.take()?;
        if self.failed || file.flush().is_err() {
            let _ = fs::remove_file(&self.part);
            return None;
        }
        drop(file);
        Some(Spilled {
            part: std::mem::take(&mut self.part),
            job_id: self.job_id.clone(),
            host_id: self.host_id.clone(),
        })
    }
}

impl Drop for SpillWriter {
    fn drop(&mut self) {
        if !self.part.as_os_str().is_empty() && (self.file.is_some() || self.failed) {
            self.file = None;
            let _ = fs::remove_file(&self.part);
        }
    }
}

/// A finished part file, to be masked into its artifact.
struct Spilled {
    part: PathBuf,
    job_id: String,
    host_id: String,
}

/// The directory and rules of every artifact of one state dir.
pub(crate) struct Artifacts {
    root: PathBuf,
    retention: Duration,
}

/// The meta file beside a host's streams.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    owner: String,
    created_ms: u64,
    streams: Vec<MetaStream>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MetaStream {
    stream: StreamName,
    bytes: u64,
    total_bytes: u64,
}

/// One artifact, as `artifacts_list` shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ArtifactInfo {
    pub job_id: String,
    pub host_id: String,
    pub stream: StreamName,
    /// Bytes kept (secrets masked; at most 16 MiB).
    pub bytes: u64,
    /// Bytes the command printed on this stream.
    pub total_bytes: u64,
    /// Everything printed is kept (false: only the first 16 MiB).
    pub complete: bool,
    /// When it was kept (RFC 3339, UTC).
    pub created: String,
    /// When it is pruned (RFC 3339, UTC).
    pub expires: String,
}

/// A range of one artifact.
#[derive(Debug, Clone)]
pub struct ArtifactRange {
    pub info: ArtifactInfo,
    /// Where `data` starts in the artifact.
    pub offset: u64,
    pub data: Vec<u8>,
}

impl Artifacts {
    pub(crate) fn new(state_dir: &Path, retention_h: u64) -> Artifacts {
        Artifacts {
            root: state_dir.join("artifacts"),
            retention: Duration::from_secs(retention_h.saturating_mul(3600)),
        }
    }

    /// The spill of `host_id`'s streams in `job_id` (no file is made until one is cut).
    pub(crate) fn spill(&self, job_id: &str, host_id: &str) -> Spill {
        Spill {
            dir: self.root.join(job_id),
            job_id: job_id.to_owned(),
            host_id: host_id.to_owned(),
        }
    }

    /// The artifacts `owner` may read, of `job_id` or of every job, newest first.
    pub(crate) fn list(&self, owner: &str, job_id: Option<&str>) -> Result<Vec<ArtifactInfo>> {
        self.prune(SystemTime::now());
        let jobs = match job_id {
            Some(job_id) => vec![valid_job(job_id)?.to_owned()],
            None => match fs::read_dir(&self.root) {
                Ok(entries) => entries
                    .filter_map(|entry| entry.ok())
                    .filter_map(|entry| entry.file_name().into_string().ok())
                    .filter(|name| valid_job(name).is_ok())
                    .collect(),
                Err(_) => Vec::new(),
            },
        };
        let mut found = Vec::new();
        for job in jobs {
            let Ok(entries) = fs::read_dir(self.root.join(&job)) else {
                continue;
            };
            for entry in entries.filter_map(|entry| entry.ok()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(host) = name.strip_suffix(".json") else {
                    continue;
                };
                if let Some(meta) = self.meta(owner, &job, host) {
                    found.extend(
                        meta.streams
                            .iter()
                            .map(|stream| self.info(&job, host, &meta, stream)),
                    );
                }
            }
        }
        found.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then_with(|| a.host_id.cmp(&b.host_id))
                .then_with(|| a.stream.as_str().cmp(b.stream.as_str()))
        });
        Ok(found)
    }

    /// `length` bytes from `offset` of one of `owner`'s artifacts (fewer at its end).
    pub(crate) fn read(
        &self,
        owner: &str,
        job_id: &str,
        host_id: &str,
        stream: StreamName,
        offset: u64,
        length: u64,
    ) -> Result<ArtifactRange> {
        let info = self.find(owner, job_id, host_id, stream)?;
        if offset > info.bytes {
            return Err(Error::invalid_input(format!(
                "offset {offset} is past the end of the artifact ({} bytes)",
                info.bytes
            )));
        }
        let length = length.min(info.bytes - offset);
        let data = read_range(&self.stream_path(job_id, host_id, stream), offset, length)?;
        Ok(ArtifactRange { info, offset, data })
    }

    /// The last `bytes` bytes of one of `owner`'s artifacts, or, with `lines`, its
    /// last `lines` lines within those bytes.
    pub(crate) fn tail(
        &self,
        owner: &str,
        job_id: &str,
        host_id: &str,
        stream: StreamName,
        bytes: u64,
        lines: Option<usize>,
    ) -> Result<ArtifactRange> {
        let info = self.find(owner, job_id, host_id, stream)?;
        let offset = info.bytes.saturating_sub(bytes);
        let mut data = read_range(
            &self.stream_path(job_id, host_id, stream),
            offset,
            info.bytes - offset,
        )?;
        let mut offset = offset;
        if let Some(lines) = lines {
            let start = last_lines_start(&data, lines);
            data.drain(..start);
            offset += start as u64;
        }
        Ok(ArtifactRange { info, offset, data })
    }

    fn find(
        &self,
        owner: &str,
        job_id: &str,
        host_id: &str,
        stream: StreamName,
    ) -> Result<ArtifactInfo> {
        valid_job(job_id)?;
        valid_host(host_id)?;
        self.meta(owner, job_id, host_id)
            .and_then(|meta| {
                meta.streams
                    .iter()
                    .find(|kept| kept.stream == stream)
                    .map(|kept| self.info(job_id, host_id, &meta, kept))
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::JobNotFound,
                    format!(
                        "no artifact of yours for {} of job {job_id} on {host_id}",
                        stream.as_str()
                    ),
                )
                .with_hint(format!(
                    "Only output cut at max_output_bytes is kept, for the caller that ran the job, for {} h; artifacts_list shows yours.",
                    self.retention.as_secs() / 3600
                ))
                .with_recovery_tool("artifacts_list")
            })
    }

    /// The meta of a host's artifacts when `owner` owns it and it has not expired.
    fn meta(&self, owner: &str, job_id: &str, host_id: &str) -> Option<Meta> {
        let text = fs::read(self.root.join(job_id).join(format!("{host_id}.json"))).ok()?;
        let meta: Meta = serde_json::from_slice(&text).ok()?;
        let age = now_ms().saturating_sub(meta.created_ms);
        (meta.owner == owner && u128::from(age) < self.retention.as_millis()).then_some(meta)
    }

    fn info(&self, job_id: &str, host_id: &str, meta: &Meta, stream: &MetaStream) -> ArtifactInfo {
        let created = UNIX_EPOCH + Duration::from_millis(meta.created_ms);
        ArtifactInfo {
            job_id: job_id.to_owned(),
            host_id: host_id.to_owned(),
            stream: stream.stream,
            bytes: stream.bytes,
            total_bytes: stream.total_bytes,
            complete: stream.total_bytes <= MAX_ARTIFACT_BYTES,
            created: crate::audit::rfc3339(created),
            expires: crate::audit::rfc3339(created + self.retention),
        }
    }

    fn stream_path(&self, job_id: &str, host_id: &str, stream: StreamName) -> PathBuf {
        self.root
            .join(job_id)
            .join(format!("{host_id}.{}", stream.as_str()))
    }

    /// Removes every job directory nothing was written to for `retention` (the newest
    /// of the directory's and its files' times: a part still being written counts).
    fn prune(&self, now: SystemTime) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.filter_map(|entry| entry.ok()) {
            let dir = entry.path();
            let newest = fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .filter_map(|entry| entry.ok()?.metadata().ok()?.modified().ok())
                .chain(entry.metadata().ok().and_then(|meta| meta.modified().ok()))
                .max();
            let expired = newest.is_none_or(|newest| {
                now.duration_since(newest).unwrap_or_default() >= self.retention
            });
            if expired && let Err(error) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "cannot prune an expired artifact");
            }
        }
    }

    /// Masks a part file into its artifact; returns the bytes kept.
    fn keep_part(
        &self,
        part: &Path,
        masker: &crate::secrets::Masker,
        also: &[String],
    ) -> std::io::Result<u64> {
        let raw = fs::read(part)?;
        let masked = masker.mask_bytes(&raw, also);
        drop(raw);
        let kept = part.with_extension("");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&kept)?;
        file.write_all(&masked)?;
        file.sync_data()?;
        fs::remove_file(part)?;
        Ok(masked.len() as u64)
    }
}

impl Engine {
    /// After a command: a secret the cut split between the answer's head and tail is
    /// masked on both sides, and each spilled stream becomes its owner's masked
    /// artifact (named in the answer's cut marker).
    pub(crate) async fn keep_output(&self, owner: &str, also: &[String], output: &mut ExecOutput) {
        let masker = &self.inner.secrets;
        let mut spilled = Vec::new();
        for (name, stream) in [
            (StreamName::Stdout, &mut output.stdout),
            (StreamName::Stderr, &mut output.stderr),
        ] {
            if stream.truncated() {
                stream.mask_seam(|head, tail| masker.mask_seam(head, tail, also));
            }
            if let Some(done) = stream.take_spill().and_then(SpillWriter::finish) {
                spilled.push((name, stream.total_bytes, done));
            }
        }
        let Some((_, _, first)) = spilled.first() else {
            return;
        };
        let job_id = first.job_id.clone();
        let meta_path = first.part.with_file_name(format!("{}.json", first.host_id));
        let engine = self.clone();
        let owner = owner.to_owned();
        let also = also.to_vec();
        // Masking up to 16 MiB is CPU work: off the runtime's threads.
        let kept = tokio::task::spawn_blocking(move || {
            let artifacts = &engine.inner.artifacts;
            artifacts.prune(SystemTime::now());
            let mut streams = Vec::new();
            for (name, total_bytes, done) in spilled {
                match artifacts.keep_part(&done.part, &engine.inner.secrets, &also) {
                    Ok(bytes) => streams.push(MetaStream {
                        stream: name,
                        bytes,
                        total_bytes,
                    }),
                    Err(error) => {
                        tracing::warn!(part = %done.part.display(), %error, "cannot keep the whole output as an artifact");
                        let _ = fs::remove_file(&done.part);
                    }
                }
            }
            if streams.is_empty() {
                return Vec::new();
            }
            let names = streams.iter().map(|stream| stream.stream).collect();
            let meta = Meta {
                owner,
                created_ms: now_ms(),
                streams,
            };
            let written = serde_json::to_vec(&meta)
                .map_err(std::io::Error::other)
                .and_then(|text| write_private(&meta_path, &text));
            match written {
                Ok(()) => names,
                Err(error) => {
                    tracing::warn!(meta = %meta_path.display(), %error, "cannot record an artifact's owner");
                    Vec::new()
                }
            }
        })
        .await
        .unwrap_or_default();
        for name in kept {
            let stream: &mut CapturedStream = match name {
                StreamName::Stdout => &mut output.stdout,
                StreamName::Stderr => &mut output.stderr,
            };
            stream.kept_as(&job_id);
        }
    }
}

/// `job_` and hex, as the engine names jobs: nothing else can name a directory here.
fn valid_job(job_id: &str) -> Result<&str> {
    let valid = job_id
        .strip_prefix("job_")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()));
    if valid {
        Ok(job_id)
    } else {
        Err(Error::invalid_input(format!(
            "job_id {job_id:?} is not a job id (job_ and hex digits, from an answer's summary)"
        )))
    }
}

/// A host id as the config allows them (no `/`, so it stays one file name).
fn valid_host(host_id: &str) -> Result<&str> {
    let valid = !host_id.is_empty()
        && host_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(host_id)
    } else {
        Err(Error::invalid_input(format!(
            "host_id {host_id:?} is not a host id"
        )))
    }
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(data)?;
    file.sync_data()
}

fn read_range(path: &Path, offset: u64, length: u64) -> Result<Vec<u8>> {
    let failed =
        |error: std::io::Error| Error::internal(format!("cannot read {}: {error}", path.display()));
    let mut file = File::open(path).map_err(failed)?;
    file.seek(SeekFrom::Start(offset)).map_err(failed)?;
    let mut data = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.take(length).read_to_end(&mut data).map_err(failed)?;
    Ok(data)
}

/// Where the last `lines` lines of `data` start (a final newline ends a line, it does
/// not start an empty one).
fn last_lines_start(data: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return data.len();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (index, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == lines {
                return index + 1;
            }
        }
    }
    0
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_count_from_the_end() {
        assert_eq!(last_lines_start(b"a\nb\nc\n", 2), 2);
        assert_eq!(last_lines_start(b"a\nb\nc", 2), 2);
        assert_eq!(last_lines_start(b"a\nb\nc\n", 5), 0);
        assert_eq!(last_lines_start(b"a\nb\n", 0), 4);
    }

    #[test]
    fn job_and_host_ids_cannot_name_another_directory() {
        for bad in ["../x", "job_", "job_../", "job_12/..", "", "JOB_12"] {
            assert!(valid_job(bad).is_err(), "{bad}");
        }
        assert!(valid_job("job_0123abcd").is_ok());
        for bad in ["a/b", "", "..\0"] {
            assert!(valid_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_spill_writes_its_part_only_when_written_and_removes_it_when_dropped() {
        let temp = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(temp.path(), 24);
        let spill = artifacts.spill("job_ab", "web-1");
        let writer = spill.writer(StreamName::Stdout);
        drop(writer);
        assert!(!temp.path().join("artifacts").exists(), "nothing written");
        let mut writer = spill.writer(StreamName::Stdout);
        writer.write(b"abc");
        let part = temp.path().join("artifacts/job_ab/web-1.stdout.part");
        writer.file.as_mut().unwrap().flush().unwrap();
        assert_eq!(fs::read(&part).unwrap(), b"abc");
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&part), 0o600);
        assert_eq!(mode(&temp.path().join("artifacts/job_ab")), 0o700);
        drop(writer);
        assert!(!part.exists(), "an unfinished part is removed");
    }

    #[test]
    fn pruning_removes_jobs_older_than_the_retention() {
        let temp = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(temp.path(), 1);
        private_dir(&temp.path().join("artifacts/job_01")).unwrap();
        write_private(&temp.path().join("artifacts/job_01/h.json"), b"{}").unwrap();
        artifacts.prune(SystemTime::now() + Duration::from_secs(1800));
        assert!(temp.path().join("artifacts/job_01").exists(), "young");
        artifacts.prune(SystemTime::now() + Duration::from_secs(3601));
        assert!(!temp.path().join("artifacts/job_01").exists(), "expired");
    }
}
