//! The writer: one chain shared by every warden process on the state dir.
//!
//! Across processes, an append takes an exclusive `flock` on `<audit>/.lock`, reads
//! whatever other processes appended since its last look (the tail re-read: usually
//! nothing, or a line or two), writes its record with O_APPEND, and lets go. The write
//! itself is one syscall of a few hundred bytes, so the lock is held for microseconds;
//! fsyncs happen outside it. Chosen over one chain per process with signed checkpoints
//! because one chain keeps `verify`, `search` and a saved anchor as simple as with one
//! process (ARCHITECTURE.md, "The audit log across processes").
//!
//! Durability (PRODUCT.md §9): every record is written before `append` returns. A
//! [`Durability::Sync`] record's [`Receipt`] resolves once an fsync covers it; the
//! flusher thread runs that fsync at once for sync records and after a short window for
//! read-only ones, so concurrent calls share one fsync (group commit). The signed head
//! is written from the flusher at most every [`HEAD_INTERVAL`], not per record.
//! A failed write or fsync poisons the log: later appends answer `AUDIT_UNAVAILABLE`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::SigningKey;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::head::{self, SignedHead};
use super::{
    AuditEntry, AuditSink, Durability, GENESIS_HASH, Phase, canonical, record_hash, rfc3339,
};
use crate::error::{Error, ErrorCode, Result};

/// A segment is closed and a new one started beyond this size; the chain continues.
const SEGMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// How long the group commit gathers read-only records before one fsync.
const GROUP_WINDOW: Duration = Duration::from_millis(10);
/// The signed head trails the durable tail by at most this much.
const HEAD_INTERVAL: Duration = Duration::from_millis(50);

/// The hash-chained log under the state dir: the [`AuditSink`] warden runs with.
/// Private to this crate: only the engine writes records.
pub(crate) struct AuditLog {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) dir: PathBuf,
    /// This process's id in its records (`instance`) and its live file.
    pub(super) instance: String,
    key: SigningKey,
    /// `<audit>/.lock`: held around every append and head write, across processes.
    lock: File,
    state: Mutex<State>,
    /// Wakes the flusher.
    wake: Condvar,
    /// Signals the end of a flusher round (`sync_now` must not return inside one).
    synced: Condvar,
    /// The last seq an fsync covered, or why the log failed.
    durable: watch::Sender<Durable>,
}

#[derive(Debug, Clone, Default)]
struct Durable {
    seq: u64,
    failed: Option<String>,
}

pub(super) struct State {
    pub(super) file: File,
    pub(super) segment: u32,
    /// Bytes of the segment this process has read or written (the tail re-read starts here).
    pub(super) size: u64,
    pub(super) seq: u64,
    pub(super) last_hash: String,
    /// Written since the last fsync.
    pending: bool,
    /// A sync record waits: fsync now, without the group window.
    urgent: bool,
    /// The flusher is in a round with the state lock released.
    syncing: bool,
    /// The durable record the head should name next, and when the head was last written.
    head_due: Option<(u64, String)>,
    head_written: Instant,
    /// Calls this process recorded as requested and not yet completed (by job id), to
    /// mark `outcome_unknown` if it stops before they finish.
    pub(super) open_calls: HashMap<String, Map<String, Value>>,
    /// This process's live file (see `recover`), locked while it runs.
    pub(super) live: Option<(PathBuf, File)>,
    failed: Option<String>,
    shutting_down: bool,
}

/// What an append answers: the record's seq, and for sync records a wait for its fsync.
#[must_use = "a sync record is durable only once its receipt resolves"]
pub struct Receipt {
    pub seq: u64,
    durable: Option<watch::Receiver<Durable>>,
}

impl Receipt {
    /// Resolves once the record is on disk (at once for group-commit records).
    pub async fn durable(self) -> Result<u64> {
        let Some(mut durable) = self.durable else {
            return Ok(self.seq);
        };
        let seq = self.seq;
        let state = durable
            .wait_for(|durable| durable.seq >= seq || durable.failed.is_some())
            .await
            .map_err(|_| Error::new(ErrorCode::AuditUnavailable, "the audit flusher stopped"))?;
        match &state.failed {
            Some(reason) if state.seq < seq => Err(Error::new(
                ErrorCode::AuditUnavailable,
                format!("audit record {seq} not made durable: {reason}"),
            )),
            _ => Ok(seq),
        }
    }
}

/// Holds the cross-process lock; released on drop.
pub(super) struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.0.unlock() {
            tracing::error!("cannot release the audit lock: {error}");
        }
    }
}

impl AuditSink for AuditLog {
    fn append(&self, entry: &AuditEntry, durability: Durability) -> Result<Receipt> {
        AuditLog::append(self, entry, durability)
    }

    fn append_event(&self, mut event: Map<String, Value>) -> Result<Receipt> {
        let mut state = self.shared.state()?;
        let seq = self
            .shared
            .append_locked(&mut state, &mut event, Durability::Sync)?;
        Ok(Receipt {
            seq,
            durable: Some(self.shared.durable.subscribe()),
        })
    }

    fn health(&self) -> std::result::Result<u64, String> {
        AuditLog::health(self)
    }

    fn flush(&self) {
        AuditLog::flush(self)
    }

    fn instance(&self) -> &str {
        &self.shared.instance
    }

    fn instance_alive(&self, instance: &str) -> bool {
        super::recover::instance_alive(&self.shared, instance)
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log in `dir`, signing its head with the key at
    /// `key_path`; recovers a torn tail and the calls of processes that died (see
    /// `recover`) and continues the chain.
    pub(crate) fn open(dir: &Path, key_path: &Path) -> Result<AuditLog> {
        std::fs::create_dir_all(dir).map_err(|error| unavailable(dir, &error))?;
        let key = head::signing_key(key_path).map_err(|error| unavailable(key_path, &error))?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| unavailable(&lock_path, &error))?;
        let segments = super::verify::segments(dir).map_err(|error| unavailable(dir, &error))?;
        let segment = segments.last().map_or(1, |(number, _)| *number);
        let (file, _) = open_segment(dir, segment)?;
        let (durable, _) = watch::channel(Durable::default());
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            key,
            lock,
            state: Mutex::new(State {
                file,
                segment,
                size: 0,
                seq: 0,
                last_hash: GENESIS_HASH.to_owned(),
                pending: false,
                urgent: false,
                syncing: false,
                head_due: None,
                head_written: Instant::now(),
                open_calls: HashMap::new(),
                live: None,
                failed: None,
                shutting_down: false,
            }),
            wake: Condvar::new(),
            synced: Condvar::new(),
            durable,
        });
        super::recover::on_open(&shared)?;
        let flusher = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("warden-audit-flush".into())
            .spawn(move || flush_loop(&flusher))
            .map_err(|error| unavailable(dir, &error))?;
        Ok(AuditLog { shared })
    }

    /// Appends one record and returns its seq (durable once the receipt resolves).
    pub fn append(&self, entry: &AuditEntry, durability: Durability) -> Result<Receipt> {
        let mut record = match serde_json::to_value(entry) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::internal("audit entry is not an object")),
        };
        // What an `outcome_unknown` record repeats if this call never completes.
        let call = (entry.phase == Phase::Requested).then(|| {
            [
                "client",
                "client_id",
                "identity",
                "tool",
                "hosts",
                "job_id",
                "decision",
            ]
            .iter()
            .filter_map(|key| {
                record
                    .get(*key)
                    .map(|value| ((*key).to_owned(), value.clone()))
            })
            .collect::<Map<String, Value>>()
        });
        let mut state = self.shared.state()?;
        let seq = self
            .shared
            .append_locked(&mut state, &mut record, durability)?;
        match call {
            Some(call) => {
                state.open_calls.insert(entry.job_id.clone(), call);
            }
            None => {
                state.open_calls.remove(&entry.job_id);
            }
        }
        Ok(Receipt {
            seq,
            durable: (durability == Durability::Sync).then(|| self.shared.durable.subscribe()),
        })
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

    /// Makes everything written durable and the head current; called on shutdown.
    pub fn flush(&self) {
        self.shared.sync_now();
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        super::recover::on_close(&self.shared);
        self.shared.sync_now();
        if let Ok(mut state) = self.shared.state.lock() {
            state.shutting_down = true;
        }
        self.shared.wake.notify_one();
    }
}

impl State {
    /// The head should name the current tail at the next chance.
    pub(super) fn head_due_now(&mut self) {
        self.head_due = Some((self.seq, self.last_hash.clone()));
    }
}

impl Shared {
    pub(super) fn state(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::new(ErrorCode::AuditUnavailable, "audit log lock poisoned"))
    }

    pub(super) fn lock(&self) -> Result<Locked<'_>> {
        self.lock
            .lock()
            .map_err(|error| unavailable(&self.dir, &error))?;
        Ok(Locked(&self.lock))
    }

    /// Appends `record` (a map without seq, ts and hashes) under the cross-process lock.
    pub(super) fn append_locked(
        &self,
        state: &mut State,
        record: &mut Map<String, Value>,
        durability: Durability,
    ) -> Result<u64> {
        if let Some(reason) = &state.failed {
            return Err(Error::new(
                ErrorCode::AuditUnavailable,
                format!("audit log unavailable since an earlier failure: {reason}"),
            ));
        }
        let locked = self.lock()?;
        let result = self.catch_up(state).and_then(|()| {
            if state.size >= SEGMENT_MAX_BYTES {
                self.switch_segment(state, state.segment + 1)?;
            }
            self.write_record(state, record)
        });
        drop(locked);
        let seq = result.inspect_err(|error| {
            state.failed = Some(error.message.clone());
            tracing::error!("{}", error.message);
        })?;
        state.pending = true;
        state.urgent |= durability == Durability::Sync;
        self.wake.notify_one();
        Ok(seq)
    }

    /// Seq, timestamps and hashes added, one line written. Caller holds the lock.
    pub(super) fn write_record(
        &self,
        state: &mut State,
        record: &mut Map<String, Value>,
    ) -> Result<u64> {
        let seq = state.seq + 1;
        record.insert("instance".into(), json!(self.instance));
        record.insert("seq".into(), json!(seq));
        record.insert("ts".into(), json!(rfc3339(SystemTime::now())));
        record.insert("prev_hash".into(), json!(state.last_hash));
        record.remove("hash");
        let hash = record_hash(record);
        record.insert("hash".into(), json!(hash));
        let mut line = canonical(&Value::Object(std::mem::take(record)));
        line.push('\n');
        state
            .file
            .write_all(line.as_bytes())
            .map_err(|error| write_failed(&self.dir, &error))?;
        state.size += line.len() as u64;
        state.seq = seq;
        state.last_hash = hash;
        Ok(seq)
    }

    /// Reads what other processes appended since this one last looked, following them
    /// into newer segments. Caller holds the lock, so any unfinished line belongs to a
    /// writer that died mid-write: it is cut and recorded (see `recover`).
    pub(super) fn catch_up(&self, state: &mut State) -> Result<()> {
        loop {
            self.read_unread(state)?;
            if !super::verify::segment_path(&self.dir, state.segment + 1).exists() {
                return Ok(());
            }
            self.switch_segment(state, state.segment + 1)?;
        }
    }

    fn read_unread(&self, state: &mut State) -> Result<()> {
        let length = state
            .file
            .metadata()
            .map_err(|error| unavailable(&self.dir, &error))?
            .len();
        if length == state.size {
            return Ok(());
        }
        let mut unread = vec![0; (length.saturating_sub(state.size)) as usize];
        state
            .file
            .read_exact_at(&mut unread, state.size)
            .map_err(|error| unavailable(&self.dir, &error))?;
        let tail = super::recover::last_valid(&unread);
        if let Some((seq, hash)) = tail.last {
            state.seq = seq;
            state.last_hash = hash;
        }
        let valid_end = state.size + tail.valid_len as u64;
        state.size = length;
        if valid_end < length {
            super::recover::cut_torn_tail(self, state, valid_end, &unread[tail.valid_len..])?;
        }
        Ok(())
    }

    /// Moves to segment `number` (another process rotated, or this one does), syncing
    /// what this process wrote to the old one first.
    fn switch_segment(&self, state: &mut State, number: u32) -> Result<()> {
        state
            .file
            .sync_data()
            .map_err(|error| write_failed(&self.dir, &error))?;
        let (file, _) = open_segment(&self.dir, number)?;
        state.file = file;
        state.segment = number;
        state.size = 0;
        Ok(())
    }

    /// fsyncs whatever is pending and writes the head, in this thread (shutdown).
    fn sync_now(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while state.syncing {
            state = match self.synced.wait(state) {
                Ok(state) => state,
                Err(_) => return,
            };
        }
        if state.pending {
            state.pending = false;
            state.urgent = false;
            let target = (state.seq, state.last_hash.clone());
            let synced = state.file.sync_data();
            self.finish_sync(&mut state, target, synced);
        }
        self.write_head(&mut state, true);
    }

    fn finish_sync(&self, state: &mut State, target: (u64, String), synced: std::io::Result<()>) {
        match synced {
            Ok(()) => {
                self.durable
                    .send_modify(|durable| durable.seq = durable.seq.max(target.0));
                state.head_due = Some(target);
            }
            Err(error) => {
                let reason = format!("fsync in {} failed: {error}", self.dir.display());
                tracing::error!("{reason}");
                state.failed = Some(reason.clone());
                self.durable
                    .send_modify(|durable| durable.failed = Some(reason));
            }
        }
    }

    /// Names the last durable record in the signed head, unless the head already names
    /// a later one (another process, or a sync round that overtook this one).
    pub(super) fn write_head(&self, state: &mut State, now: bool) {
        let Some((seq, hash)) = state.head_due.clone() else {
            return;
        };
        if !now && state.head_written.elapsed() < HEAD_INTERVAL {
            return;
        }
        state.head_due = None;
        state.head_written = Instant::now();
        let Ok(_locked) = self.lock() else {
            return;
        };
        if head::read_head(&self.dir).is_some_and(|current| current.seq >= seq) {
            return;
        }
        let signed = SignedHead::sign(&self.key, seq, &hash, rfc3339(SystemTime::now()));
        if let Err(error) = head::write_head(&self.dir, &self.instance, &signed) {
            tracing::warn!(
                "cannot update the audit head in {}: {error}",
                self.dir.display()
            );
        }
    }
}

/// Group commit: fsyncs whatever was written since the last round with the state lock
/// *released*, so appends never wait for the disk; records appended during an fsync
/// ride the next round. Sync records skip the gathering window.
fn flush_loop(shared: &Shared) {
    let Ok(mut state) = shared.state.lock() else {
        return;
    };
    loop {
        while !state.pending && !state.shutting_down {
            let timeout = if state.head_due.is_some() {
                HEAD_INTERVAL.saturating_sub(state.head_written.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            state = match shared.wake.wait_timeout(state, timeout) {
                Ok((state, _)) => state,
                Err(_) => return,
            };
            shared.write_head(&mut state, false);
        }
        if state.shutting_down {
            return;
        }
        state.syncing = true;
        if !state.urgent {
            drop(state);
            std::thread::sleep(GROUP_WINDOW);
            state = match shared.state.lock() {
                Ok(state) => state,
                Err(_) => return,
            };
        }
        state.pending = false;
        state.urgent = false;
        let target = (state.seq, state.last_hash.clone());
        // The same open file (a dup): an fsync reaches everything written to the
        // inode, by this process or any other.
        let file = state.file.try_clone();
        drop(state);
        let synced = file.and_then(|file| file.sync_data());
        state = match shared.state.lock() {
            Ok(state) => state,
            Err(_) => return,
        };
        shared.finish_sync(&mut state, target, synced);
        shared.write_head(&mut state, false);
        state.syncing = false;
        shared.synced.notify_all();
    }
}

fn open_segment(dir: &Path, number: u32) -> Result<(File, u64)> {
    let path = super::verify::segment_path(dir, number);
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(|error| unavailable(&path, &error))?;
    let size = file
        .metadata()
        .map_err(|error| unavailable(&path, &error))?
        .len();
    Ok((file, size))
}

pub(super) fn unavailable(path: &Path, error: &std::io::Error) -> Error {
    Error::new(
        ErrorCode::AuditUnavailable,
        format!("audit log at {} is not writable: {error}", path.display()),
    )
}

fn write_failed(dir: &Path, error: &std::io::Error) -> Error {
    Error::new(
        ErrorCode::AuditUnavailable,
        format!("write to {} failed: {error}", dir.display()),
    )
}
