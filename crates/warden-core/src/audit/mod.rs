//! The audit log (PRODUCT.md §9): append-only JSON lines in segments under the audit
//! dir, each record chained to the previous one by SHA-256.
//!
//! Durability: [`Durability::Sync`] records are written and fsynced before `append`
//! returns (a mutating call's `requested` record, before its side effect; its outcome,
//! before the answer). [`Durability::Group`] records are written before `append`
//! returns and fsynced by a flusher thread right after (group commit): a killed process
//! loses nothing, a power cut can lose that short window. After each fsync the head
//! (`head.json`: last durable seq and hash) is rewritten so a truncated tail is
//! detected by [`verify`]. A failed write or fsync poisons the log: every later append
//! answers `AUDIT_UNAVAILABLE` rather than pretending the record was kept.
//!
//! Not yet here (milestone 3): the Ed25519 signature over the head.

mod search;
mod verify;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

pub use search::{Bound, Query, Scanned, parse_rfc3339, search};
pub use verify::{BadRecord, VerifyReport, tail, verify};

/// A segment is closed and a new one started beyond this size; the chain continues.
const SEGMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;
const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Requested,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before returning.
    Sync,
    /// Written before returning, fsynced by group commit.
    Group,
}

/// The fields a caller supplies; `seq`, `ts`, `prev_hash` and `hash` are added here.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// The name the client gave (shown, not trusted).
    pub client: String,
    /// The connection the call came on (see `engine::ClientId`).
    pub client_id: String,
    pub identity: String,
    pub tool: String,
    pub args: Value,
    pub hosts: Vec<String>,
    /// The caller's commands as policy checked them (a shell reading of an argv).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// warden's own probes that ran: label and the exact script.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<crate::tool::Probe>,
    /// The planned paths and where each resolved (file tools).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<crate::engine::PathRecord>,
    /// The highest command class of the call's commands (see `policy::classes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<crate::policy::Class>,
    /// What policy could not see in the commands, when anything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub opaque: Vec<String>,
    /// `policy.allow_opaque` was on: opaque commands were not denied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_opaque: bool,
    pub decision: CallDecision,
    /// The policy rule that decided a denial, and where it is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why a call was refused or failed, as the caller was told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub phase: Phase,
    pub outcome: Option<String>,
    pub error_code: Option<String>,
    pub duration_ms: Option<u64>,
    pub job_id: String,
}

/// What the pipeline decided about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDecision {
    /// Refused before policy: unknown tool, bad arguments, a foreign session.
    Rejected,
    /// Refused by the local gate, policy or path checks.
    Denied,
    /// Policy in warn mode would have denied it; it ran.
    Warned,
    Allowed,
}

/// The hash-chained log under the state dir: the [`AuditSink`] warden runs with.
/// Private to this crate: only the engine writes records.
pub(crate) struct AuditLog {
    dir: PathBuf,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the flusher: records await a group fsync.
    wake: Condvar,
    /// Signals the end of a group fsync (for `flush`, which must not return before it).
    synced: Condvar,
}

struct State {
    file: File,
    segment: u32,
    size: u64,
    seq: u64,
    last_hash: String,
    /// Highest seq written but not yet fsynced.
    unsynced: Option<u64>,
    /// Seq the head file names (never moves back).
    head_seq: u64,
    /// The flusher is fsyncing with the lock released.
    syncing: bool,
    /// Set on the first failed write or fsync; the log stays closed after that.
    failed: Option<String>,
    shutting_down: bool,
}

/// Where the engine's records go (the port a shared store implements later). The
/// engine is the only writer: tools get no handle to it.
pub trait AuditSink: Send + Sync {
    /// Appends one record; [`Durability::Sync`] returns only once it is on disk.
    fn append(&self, entry: &AuditEntry, durability: Durability) -> Result<u64>;
    /// The last seq written, or why the sink cannot take records.
    fn health(&self) -> std::result::Result<u64, String>;
    /// Makes every record written so far durable (on shutdown).
    fn flush(&self);
}

impl AuditSink for AuditLog {
    fn append(&self, entry: &AuditEntry, durability: Durability) -> Result<u64> {
        AuditLog::append(self, entry, durability)
    }

    fn health(&self) -> std::result::Result<u64, String> {
        AuditLog::health(self)
    }

    fn flush(&self) {
        AuditLog::flush(self)
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log in `dir` and continues its chain.
    pub(crate) fn open(dir: &Path) -> Result<AuditLog> {
        std::fs::create_dir_all(dir).map_err(|error| unavailable(dir, &error))?;
        let segments = verify::segments(dir).map_err(|error| unavailable(dir, &error))?;
        let (segment, seq, last_hash) = match segments.last() {
            Some((number, path)) => {
                let tail = verify::last_record(path).map_err(|error| unavailable(path, &error))?;
                match tail {
                    Some((seq, hash)) => (*number, seq, hash),
                    None => (*number, 0, GENESIS_HASH.to_owned()),
                }
            }
            None => (1, 0, GENESIS_HASH.to_owned()),
        };
        let (file, size) = open_segment(dir, segment)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                file,
                segment,
                size,
                seq,
                last_hash,
                unsynced: None,
                head_seq: seq,
                syncing: false,
                failed: None,
                shutting_down: false,
            }),
            wake: Condvar::new(),
            synced: Condvar::new(),
        });
        let flusher = Arc::clone(&shared);
        let flusher_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("warden-audit-flush".into())
            .spawn(move || flush_loop(&flusher, &flusher_dir))
            .map_err(|error| unavailable(dir, &error))?;
        Ok(AuditLog {
            dir: dir.to_path_buf(),
            shared,
        })
    }

    /// Appends one record and returns its seq.
    pub fn append(&self, entry: &AuditEntry, durability: Durability) -> Result<u64> {
        let mut state = self
            .shared
            .state
            .lock()
            .map_err(|_| Error::new(ErrorCode::AuditUnavailable, "audit log lock poisoned"))?;
        if let Some(reason) = &state.failed {
            return Err(Error::new(
                ErrorCode::AuditUnavailable,
                format!("audit log unavailable since an earlier failure: {reason}"),
            ));
        }
        if state.size >= SEGMENT_MAX_BYTES {
            self.rotate(&mut state)?;
        }
        let seq = state.seq + 1;
        let mut record = match serde_json::to_value(entry) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::internal("audit entry is not an object")),
        };
        record.insert("seq".into(), json!(seq));
        record.insert("ts".into(), json!(rfc3339(SystemTime::now())));
        record.insert("prev_hash".into(), json!(state.last_hash));
        let hash = record_hash(&record);
        record.insert("hash".into(), json!(hash));
        let mut line = canonical(&Value::Object(record));
        line.push('\n');
        let written = state.file.write_all(line.as_bytes()).and_then(|()| {
            if durability == Durability::Sync {
                state.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(error) = written {
            let reason = format!("write to {} failed: {error}", self.dir.display());
            state.failed = Some(reason.clone());
            tracing::error!("{reason}");
            return Err(Error::new(ErrorCode::AuditUnavailable, reason));
        }
        state.size += line.len() as u64;
        state.seq = seq;
        state.last_hash = hash.clone();
        match durability {
            Durability::Sync => {
                state.unsynced = None;
                advance_head(&mut state, &self.dir, seq, &hash);
            }
            Durability::Group => {
                state.unsynced = Some(seq);
                self.shared.wake.notify_one();
            }
        }
        Ok(seq)
    }

    fn rotate(&self, state: &mut State) -> Result<()> {
        if let Err(error) = state.file.sync_data() {
            state.failed = Some(error.to_string());
            return Err(unavailable(&self.dir, &error));
        }
        let (file, size) = open_segment(&self.dir, state.segment + 1)?;
        state.file = file;
        state.segment += 1;
        state.size = size;
        Ok(())
    }

    /// Whether appends still work (for `status` and `doctor`).
    pub fn health(&self) -> std::result::Result<u64, String> {
        match self.shared.state.lock() {
            Ok(state) => match &state.failed {
                Some(reason) => Err(reason.clone()),
                None => Ok(state.seq),
            },
            Err(_) => Err("audit log lock poisoned".into()),
        }
    }

    /// fsyncs anything pending; called on shutdown.
    pub fn flush(&self) {
        let Ok(mut state) = self.shared.state.lock() else {
            return;
        };
        while state.syncing {
            state = match self.shared.synced.wait(state) {
                Ok(state) => state,
                Err(_) => return,
            };
        }
        sync_pending(&mut state, &self.dir);
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.flush();
        if let Ok(mut state) = self.shared.state.lock() {
            state.shutting_down = true;
        }
        self.shared.wake.notify_one();
    }
}

/// Group commit for read-only records: fsyncs whatever was written since the last
/// round with the lock *released*, so appends never wait for the disk; records appended
/// during an fsync ride the next round.
fn flush_loop(shared: &Shared, dir: &Path) {
    loop {
        let (file, seq, hash) = {
            let Ok(mut state) = shared.state.lock() else {
                return;
            };
            while state.unsynced.is_none() && !state.shutting_down {
                state = match shared.wake.wait(state) {
                    Ok(state) => state,
                    Err(_) => return,
                };
            }
            if state.shutting_down {
                return;
            }
            // Let a burst of calls share one fsync: wait a little (well inside the
            // contract's 50 ms) with the lock released, then sync all they wrote.
            state.syncing = true;
            drop(state);
            std::thread::sleep(GROUP_WINDOW);
            let Ok(mut state) = shared.state.lock() else {
                return;
            };
            state.unsynced = None;
            // The same open file (a dup): fsync reaches everything written to it.
            let file = state.file.try_clone();
            (file, state.seq, state.last_hash.clone())
        };
        let synced = file.and_then(|file| file.sync_data());
        let Ok(mut state) = shared.state.lock() else {
            return;
        };
        state.syncing = false;
        shared.synced.notify_all();
        match synced {
            Ok(()) => advance_head(&mut state, dir, seq, &hash),
            Err(error) => {
                let reason = format!("fsync in {} failed: {error}", dir.display());
                tracing::error!("{reason}");
                state.failed = Some(reason);
            }
        }
    }
}

fn sync_pending(state: &mut State, dir: &Path) {
    if state.unsynced.take().is_none() {
        return;
    }
    match state.file.sync_data() {
        Ok(()) => {
            let (seq, hash) = (state.seq, state.last_hash.clone());
            advance_head(state, dir, seq, &hash);
        }
        Err(error) => {
            let reason = format!("fsync in {} failed: {error}", dir.display());
            tracing::error!("{reason}");
            state.failed = Some(reason);
        }
    }
}

/// Names `seq` in the head file unless a later record is named already (a group
/// commit can finish after a synchronous append overtook it).
fn advance_head(state: &mut State, dir: &Path, seq: u64, hash: &str) {
    if seq > state.head_seq {
        write_head(dir, seq, hash);
        state.head_seq = seq;
    }
}

/// The head names the last durable record. It is advisory for durability (written by
/// rename, not fsynced) but lets `verify` detect a log cut shorter than it.
fn write_head(dir: &Path, seq: u64, hash: &str) {
    let temp = dir.join("head.json.tmp");
    let body = json!({ "seq": seq, "hash": hash }).to_string();
    let result =
        std::fs::write(&temp, body).and_then(|()| std::fs::rename(&temp, dir.join("head.json")));
    if let Err(error) = result {
        tracing::warn!("cannot update audit head in {}: {error}", dir.display());
    }
}

fn open_segment(dir: &Path, number: u32) -> Result<(File, u64)> {
    let path = verify::segment_path(dir, number);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|error| unavailable(&path, &error))?;
    let size = file
        .metadata()
        .map_err(|error| unavailable(&path, &error))?
        .len();
    Ok((file, size))
}

fn unavailable(path: &Path, error: &std::io::Error) -> Error {
    Error::new(
        ErrorCode::AuditUnavailable,
        format!("audit log at {} is not writable: {error}", path.display()),
    )
}

/// SHA-256 over the record without its `hash`, in canonical form (the previous hash is
/// one of its fields, which makes the chain).
fn record_hash(record: &Map<String, Value>) -> String {
    let mut without_hash = record.clone();
    without_hash.remove("hash");
    hex::encode(Sha256::digest(
        canonical(&Value::Object(without_hash)).as_bytes(),
    ))
}

/// JSON with object keys sorted at every level, whatever serde_json's map order is.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Replaces what must never reach the log: `env` values (often secrets), `stdin` (only
/// its size is kept), and file content. Built field by field: a multi-MiB upload chunk
/// is hashed where it lies, never copied.
pub fn mask_secrets(args: &Value) -> Value {
    let Value::Object(fields) = args else {
        return args.clone();
    };
    let masked = fields.iter().map(|(name, value)| {
        let value = match (name.as_str(), value) {
            ("env", Value::Object(env)) => {
                Value::Object(env.keys().map(|key| (key.clone(), json!("***"))).collect())
            }
            ("stdin", Value::String(text)) => json!(format!("<{} bytes>", text.len())),
            // File content (a diff's lines are content too) may hold secrets and can be
            // huge: the log keeps its size and hash (enough to prove what was written),
            // never the bytes. Other long strings are summarized past a bound.
            ("content" | "content_base64" | "unified_diff", Value::String(text)) => summary(text),
            (_, Value::String(text)) if text.len() > LONGEST_LOGGED_ARG => summary(text),
            (_, other) => other.clone(),
        };
        (name.clone(), value)
    });
    Value::Object(masked.collect())
}

fn summary(text: &str) -> Value {
    json!(format!(
        "<{} bytes, sha256 {}>",
        text.len(),
        hex::encode(Sha256::digest(text.as_bytes()))
    ))
}

/// How long the group commit gathers read-only records before one fsync.
const GROUP_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

/// Longest string argument recorded as is.
const LONGEST_LOGGED_ARG: usize = 16 * 1024;

/// UTC timestamp as RFC 3339 with milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests;
