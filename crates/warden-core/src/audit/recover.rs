//! What a process finds when it opens the log, and leaves when it closes it.
//!
//! - A **torn tail** (a writer killed mid-write, or a power cut that left garbage after
//!   the last whole record) is cut back to the last valid record. The cut bytes are
//!   saved beside the log and a `recovered` record names them, so nothing vanishes
//!   silently. A bad record *followed* by good ones is not a torn tail: it is left for
//!   `verify` to name.
//! - **Calls that never completed.** Each process holds an exclusive `flock` on its live
//!   file (`<audit>/live/<instance>.json`) for as long as it runs. A live file whose lock
//!   can be taken belongs to a process that died: its `requested` records without a
//!   `completed` one get a `completed` record with outcome `outcome_unknown`. A process
//!   that closes cleanly does the same for its own open calls, then removes its file.
//! - A **missing head** while records exist is recorded (`head_missing`) before a new
//!   head is written, so a deleted head leaves a trace in the chain itself.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::log::{Shared, State, unavailable};
use super::{Durability, head};
use crate::error::Result;

/// The valid prefix of a segment's bytes and its last record.
pub(super) struct Tail {
    pub(super) valid_len: usize,
    pub(super) last: Option<(u64, String)>,
}

/// Finds the end of the last whole record (a line ending in `\n` that reads as a record
/// with `seq` and `hash`).
pub(super) fn last_valid(bytes: &[u8]) -> Tail {
    let mut tail = Tail {
        valid_len: 0,
        last: None,
    };
    let mut start = 0;
    while let Some(offset) = bytes[start..].iter().position(|&byte| byte == b'\n') {
        let end = start + offset + 1;
        if let Some(record) = read_record(&bytes[start..end - 1]) {
            tail.valid_len = end;
            tail.last = Some(record);
        }
        start = end;
    }
    tail
}

fn read_record(line: &[u8]) -> Option<(u64, String)> {
    let record: Value = serde_json::from_slice(line).ok()?;
    Some((
        record.get("seq")?.as_u64()?,
        record.get("hash")?.as_str()?.to_owned(),
    ))
}

/// Cuts the segment back to `valid_end`, keeps the cut bytes in a file beside it and
/// records what was cut. Caller holds the cross-process lock.
pub(super) fn cut_torn_tail(
    shared: &Shared,
    state: &mut State,
    valid_end: u64,
    cut: &[u8],
) -> Result<()> {
    let segment = super::verify::segment_path(&shared.dir, state.segment);
    let saved = shared
        .dir
        .join(format!("torn-{:06}-{valid_end}.bin", state.segment));
    std::fs::write(&saved, cut)
        .and_then(|()| state.file.set_len(valid_end))
        .and_then(|()| state.file.sync_data())
        .map_err(|error| unavailable(&segment, &error))?;
    state.size = valid_end;
    tracing::warn!(
        "audit log: cut {} bytes of an unfinished record from {} (kept in {})",
        cut.len(),
        segment.display(),
        saved.display()
    );
    let mut record = json!({
        "event": "recovered",
        "segment": file_name(&segment),
        "offset": valid_end,
        "cut_bytes": cut.len(),
        "cut_sha256": hex::encode(Sha256::digest(cut)),
        "saved_as": file_name(&saved),
        "reason": "an unfinished record from a writer that stopped mid-write was cut",
    });
    write_event(shared, state, &mut record)
}

fn write_event(shared: &Shared, state: &mut State, record: &mut Value) -> Result<()> {
    if let Value::Object(map) = record {
        shared.write_record(state, map)?;
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Loads the chain's tail, recovers, and registers this process (see the module docs).
pub(super) fn on_open(shared: &Shared) -> Result<()> {
    let mut state = shared.state()?;
    let locked = shared.lock()?;
    shared.catch_up(&mut state)?;
    if state.seq == 0 {
        load_earlier_tail(shared, &mut state)?;
    }
    let before = state.seq;
    if state.seq > 0 && head::read_head(&shared.dir).is_none() {
        let mut record = json!({
            "event": "head_missing",
            "reason": format!(
                "{} was missing when this process started: records up to seq {} were not vouched for by a head (compare with a saved anchor: `warden audit verify --anchor FILE`)",
                head::HEAD_FILE, state.seq
            ),
        });
        write_event(shared, &mut state, &mut record)?;
    }
    finish_dead_processes(shared, &mut state)?;
    register(shared, &mut state)?;
    let recorded = state.seq > before;
    if recorded {
        state
            .file
            .sync_data()
            .map_err(|error| unavailable(&shared.dir, &error))?;
    }
    drop(locked);
    state.head_due_now();
    shared.write_head(&mut state, true);
    Ok(())
}

/// The newest segment is empty (its writer died right after creating it): the chain
/// continues from the last record of an earlier one.
fn load_earlier_tail(shared: &Shared, state: &mut State) -> Result<()> {
    let segments =
        super::verify::segments(&shared.dir).map_err(|error| unavailable(&shared.dir, &error))?;
    for (number, path) in segments.iter().rev() {
        if *number >= state.segment {
            continue;
        }
        let bytes = std::fs::read(path).map_err(|error| unavailable(path, &error))?;
        if let Some((seq, hash)) = last_valid(&bytes).last {
            state.seq = seq;
            state.last_hash = hash;
            return Ok(());
        }
    }
    Ok(())
}

fn live_dir(shared: &Shared) -> std::path::PathBuf {
    shared.dir.join("live")
}

/// This process's live file, locked for as long as it runs.
fn register(shared: &Shared, state: &mut State) -> Result<()> {
    let dir = live_dir(shared);
    let path = dir.join(format!("{}.json", shared.instance));
    let file = std::fs::create_dir_all(&dir)
        .and_then(|()| {
            OpenOptions::new()
                .create_new(true)
                .write(true)
                .read(true)
                .open(&path)
        })
        .and_then(|mut file| {
            file.lock()?;
            let body = json!({
                "instance": shared.instance,
                "pid": std::process::id(),
                "segment": state.segment,
                "seq": state.seq,
            });
            file.write_all(body.to_string().as_bytes())?;
            Ok(file)
        })
        .map_err(|error| unavailable(&path, &error))?;
    state.live = Some((path, file));
    Ok(())
}

/// Whether the process with log id `instance` runs: it holds the lock on its live file
/// for as long as it does (a missing file is a process that ended, or whose end was
/// already recorded). `instance` is a 12-character hex id; anything else is no process.
pub(super) fn instance_alive(shared: &Shared, instance: &str) -> bool {
    if instance.is_empty() || !instance.chars().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    if instance == shared.instance {
        return true;
    }
    let path = live_dir(shared).join(format!("{instance}.json"));
    match File::open(&path) {
        Ok(file) => file.try_lock_shared().is_err(),
        Err(_) => false,
    }
}

/// Completes the open calls of every process whose live file is no longer locked.
fn finish_dead_processes(shared: &Shared, state: &mut State) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(live_dir(shared)) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // Alive (its process holds the lock) or being finished by another starter.
        if file.try_lock().is_err() {
            continue;
        }
        let Some(live) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        else {
            // Created but never written: its process died before it logged anything.
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let instance = live["instance"].as_str().unwrap_or_default().to_owned();
        let from = live["segment"].as_u64().unwrap_or(1) as u32;
        let open = open_calls_of(shared, &instance, from)?;
        let pid = live["pid"].as_u64().unwrap_or_default();
        let reason = format!(
            "warden process {pid} (instance {instance}) stopped before this call finished: whether it took effect is unknown; check the host"
        );
        for call in open.into_values() {
            write_unknown(shared, state, call, &reason)?;
        }
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!("cannot remove {}: {error}", path.display());
        }
    }
    Ok(())
}

/// `requested` records of `instance` with no `completed` one, by job id.
fn open_calls_of(
    shared: &Shared,
    instance: &str,
    from_segment: u32,
) -> Result<HashMap<String, Map<String, Value>>> {
    let mut open = HashMap::new();
    let segments =
        super::verify::segments(&shared.dir).map_err(|error| unavailable(&shared.dir, &error))?;
    for (number, path) in segments {
        if number < from_segment {
            continue;
        }
        let file = File::open(&path).map_err(|error| unavailable(&path, &error))?;
        for line in BufReader::new(file).lines().map_while(std::io::Result::ok) {
            // Cheap filter before parsing: most records are other processes'.
            if !line.contains(instance) {
                continue;
            }
            let Ok(Value::Object(record)) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if record.get("instance").and_then(Value::as_str) != Some(instance) {
                continue;
            }
            let Some(job) = record
                .get("job_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            match record.get("phase").and_then(Value::as_str) {
                Some("requested") => {
                    open.insert(job, record);
                }
                Some("completed") => {
                    open.remove(&job);
                }
                _ => {}
            }
        }
    }
    Ok(open)
}

/// The `completed` record of a call whose outcome nobody saw.
fn write_unknown(
    shared: &Shared,
    state: &mut State,
    requested: Map<String, Value>,
    reason: &str,
) -> Result<()> {
    shared
        .write_record(state, &mut unknown_outcome(requested, reason))
        .map(|_| ())
}

fn unknown_outcome(requested: Map<String, Value>, reason: &str) -> Map<String, Value> {
    let mut record: Map<String, Value> = requested
        .into_iter()
        .filter(|(key, _)| {
            !matches!(
                key.as_str(),
                "seq" | "ts" | "prev_hash" | "hash" | "instance"
            )
        })
        .collect();
    record.insert("phase".into(), json!("completed"));
    record.insert("outcome".into(), json!("outcome_unknown"));
    record.insert("error_code".into(), json!("OUTCOME_UNKNOWN"));
    record.insert("reason".into(), json!(reason));
    record
}

/// On a clean close: the calls still open get `outcome_unknown`, then the live file goes.
pub(super) fn on_close(shared: &Shared) {
    let Ok(mut state) = shared.state() else {
        return;
    };
    let open: Vec<Map<String, Value>> = state.open_calls.drain().map(|(_, call)| call).collect();
    for call in open {
        let mut record = unknown_outcome(
            call,
            "warden stopped before this call finished: whether it took effect is unknown; check the host",
        );
        if let Err(error) = shared.append_locked(&mut state, &mut record, Durability::Sync) {
            tracing::error!("cannot record an unfinished call: {error}");
        }
    }
    if let Some((path, _file)) = state.live.take()
        && let Err(error) = std::fs::remove_file(&path)
    {
        tracing::warn!("cannot remove {}: {error}", path.display());
    }
}
