//! The audit log (PRODUCT.md §9): append-only JSON lines in segments under the audit
//! dir, each record chained to the previous one by SHA-256, one chain for every warden
//! process on the state dir (`log`), with a signed head (`head`), recovery of torn
//! tails and unfinished calls on open (`recover`), and the checks behind
//! `warden audit verify` (`verify`).

mod head;
mod log;
mod recover;
mod search;
mod verify;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::Result;

pub use head::{SignedHead, public_key, read_head};
pub(crate) use log::AuditLog;
pub use log::Receipt;
pub use search::{Bound, Query, Scanned, parse_rfc3339, search};
pub use verify::{BadRecord, VerifyOptions, VerifyReport, tail, verify};

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
    /// The approval the call waits for or used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
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
    /// Waiting for a human (`APPROVAL_PENDING`).
    Pending,
    /// A human approved it (`approval_id`), and it ran.
    Approved,
}

/// Where the engine's records go (the port a shared store implements later). The
/// engine is the only writer: tools get no handle to it.
pub trait AuditSink: Send + Sync {
    /// Appends one record (written when this returns); a [`Durability::Sync`]
    /// record is on disk once its receipt resolves.
    fn append(&self, entry: &AuditEntry, durability: Durability) -> Result<Receipt>;
    /// Appends a record that is not a call (`event`: an approval requested, decided or
    /// expired), durable once its receipt resolves.
    fn append_event(&self, event: Map<String, Value>) -> Result<Receipt>;
    /// The last seq written, or why the sink cannot take records.
    fn health(&self) -> std::result::Result<u64, String>;
    /// Makes every record written so far durable (on shutdown).
    fn flush(&self);
    /// This process's id in the log (`instance`): what jobs it watches carry.
    fn instance(&self) -> &str;
    /// Whether the process with log id `instance` still runs (holds its live file).
    fn instance_alive(&self, instance: &str) -> bool;
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

/// Replaces what must never reach the log, at any depth and whatever its type (a call
/// rejected for a malformed `env` still must not store it): `env` values (often
/// secrets), `stdin` (only its size is kept), literal `password`s, and file content. Built field by field:
/// a multi-MiB upload chunk is hashed where it lies, never copied.
pub fn mask_secrets(args: &Value) -> Value {
    match args {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), mask_field(name, value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_secrets).collect()),
        Value::String(text) if text.len() > LONGEST_LOGGED_ARG => summary(text),
        other => other.clone(),
    }
}

fn mask_field(name: &str, value: &Value) -> Value {
    match (name, value) {
        // A secret reference names where the value comes from, not the value: kept.
        ("env", Value::Object(env)) => Value::Object(
            env.iter()
                .map(|(key, value)| {
                    let reference = value
                        .as_str()
                        .filter(|text| crate::secrets::is_reference(text));
                    let shown = reference.map_or_else(|| json!("***"), |text| json!(text));
                    (key.clone(), shown)
                })
                .collect(),
        ),
        ("stdin", Value::String(text)) => json!(format!("<{} bytes>", text.len())),
        // `exec_sudo`'s password must be a reference; a literal one (refused) is not kept.
        ("password", Value::String(text)) if !crate::secrets::is_reference(text) => json!("***"),
        // An approval token's secret half is the caller's alone: the log keeps the id.
        ("approval_id", Value::String(token)) => json!(crate::store::public_id(token)),
        ("env" | "stdin", Value::Null) => Value::Null,
        ("env" | "stdin", _) => json!("***"),
        // File content (a diff's lines are content too) may hold secrets and can be
        // huge: the log keeps its size and hash (enough to prove what was written),
        // never the bytes.
        ("content" | "content_base64" | "unified_diff", Value::String(text)) => summary(text),
        (_, other) => mask_secrets(other),
    }
}

fn summary(text: &str) -> Value {
    json!(format!(
        "<{} bytes, sha256 {}>",
        text.len(),
        hex::encode(Sha256::digest(text.as_bytes()))
    ))
}

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
