//! The signed head: which record is the last durable one, signed with the log's
//! Ed25519 key so that a head copied elsewhere (an anchor) proves later what the log
//! held. Anyone who can write the state dir can also read the key and re-sign a
//! rewritten log; a saved anchor cannot be re-signed after the fact, which is why
//! `verify` checks one (`warden audit anchor` prints it for keeping elsewhere).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The file in the audit dir that names the last durable record.
pub(super) const HEAD_FILE: &str = "head.json";

/// A head as written to `head.json` and kept as an anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    pub seq: u64,
    pub hash: String,
    pub ts: String,
    /// Hex of the Ed25519 public key that signed it.
    pub public_key: String,
    /// Hex of the signature over the seq, hash and ts (with a domain tag).
    pub signature: String,
}

impl SignedHead {
    pub(super) fn sign(key: &SigningKey, seq: u64, hash: &str, ts: String) -> SignedHead {
        let signature = key.sign(&message(seq, hash, &ts));
        SignedHead {
            seq,
            hash: hash.to_owned(),
            ts,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Whether the signature holds under the key the head names.
    pub fn signature_holds(&self) -> bool {
        let key =
            decode::<32>(&self.public_key).and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok());
        let signature = decode::<64>(&self.signature).map(|bytes| Signature::from_bytes(&bytes));
        match (key, signature) {
            (Some(key), Some(signature)) => key
                .verify_strict(&message(self.seq, &self.hash, &self.ts), &signature)
                .is_ok(),
            _ => false,
        }
    }
}

/// What is signed: a domain tag so the signature means nothing elsewhere.
fn message(seq: u64, hash: &str, ts: &str) -> Vec<u8> {
    format!("warden audit head v1\n{seq}\n{hash}\n{ts}\n").into_bytes()
}

fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// The head in `dir`, when there is a readable one.
pub fn read_head(dir: &Path) -> Option<SignedHead> {
    let text = std::fs::read_to_string(dir.join(HEAD_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Replaces the head (temp file and rename: a reader sees the old or the new one).
/// Advisory for durability, so not fsynced: it lets `verify` detect a log cut shorter
/// than it.
pub(super) fn write_head(dir: &Path, instance: &str, head: &SignedHead) -> std::io::Result<()> {
    let temp = dir.join(format!("{HEAD_FILE}.{instance}.tmp"));
    let body = serde_json::to_string(head).map_err(std::io::Error::other)?;
    std::fs::write(&temp, body)?;
    std::fs::rename(&temp, dir.join(HEAD_FILE))
}

/// The log's signing key, created on first use (0600). Several processes may start at
/// once: the key is written under a temp name and linked into place, so exactly one
/// key wins and everyone reads that one.
pub(super) fn signing_key(path: &Path) -> std::io::Result<SigningKey> {
    if let Some(key) = read_key(path)? {
        return Ok(key);
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| std::io::Error::other(error.to_string()))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(hex::encode(seed).as_bytes())?;
    file.sync_all()?;
    let linked = std::fs::hard_link(&temp, path);
    std::fs::remove_file(&temp)?;
    match linked {
        Ok(()) => Ok(SigningKey::from_bytes(&seed)),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_key(path)?
            .ok_or_else(|| std::io::Error::other(format!("{} is empty", path.display()))),
        Err(error) => Err(error),
    }
}

fn read_key(path: &Path) -> std::io::Result<Option<SigningKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} was readable by others (mode {:o}); set to 0600",
            path.display(),
            mode & 0o777
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    let seed = decode::<32>(text.trim()).ok_or_else(|| {
        std::io::Error::other(format!(
            "{} is not a warden audit key (64 hex digits)",
            path.display()
        ))
    })?;
    Ok(Some(SigningKey::from_bytes(&seed)))
}

/// The public half of the key at `path`, for `verify` (none before the first log).
pub fn public_key(path: &Path) -> Option<String> {
    let key = read_key(path).ok()??;
    Some(hex::encode(key.verifying_key().to_bytes()))
}
