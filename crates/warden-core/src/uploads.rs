//! Stream uploads in progress (`fs_stream_write`).
//!
//! The truth about an upload is its partial file on the host (`.NAME.warden-upload-ID.part`
//! beside the destination): its size is the offset the next chunk must start at. This
//! map only caches each upload's running SHA-256 so that chunks are hashed once, as they
//! pass. A cache entry that is missing (warden restarted, entry evicted) or disagrees
//! with the partial file's size is rebuilt by reading the partial file back, so losing
//! the cache costs time, never correctness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Cached uploads beyond this are evicted (only those no call is using).
const CACHED_UPLOADS: usize = 256;

/// What has been received so far, as last verified against the partial file.
#[derive(Clone)]
pub struct Received {
    pub bytes: u64,
    pub hasher: Sha256,
}

impl Received {
    pub fn empty() -> Received {
        Received {
            bytes: 0,
            hasher: Sha256::new(),
        }
    }

    pub fn add(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        self.hasher.update(data);
    }

    /// SHA-256 of everything received so far.
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

/// One upload's slot: its lock serializes chunks of the same upload.
pub type Slot = Arc<tokio::sync::Mutex<Option<Received>>>;

#[derive(Default)]
pub struct Uploads {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Uploads {
    /// The slot of the upload whose partial file is `part` on `host` (empty if unknown).
    pub fn slot(&self, host: &str, part: &str) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slots.len() >= CACHED_UPLOADS {
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        Arc::clone(slots.entry(key(host, part)).or_default())
    }

    /// Drops a finished or aborted upload.
    pub fn forget(&self, host: &str, part: &str) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.remove(&key(host, part));
    }
}

fn key(host: &str, part: &str) -> String {
    format!("{host}\0{part}")
}
