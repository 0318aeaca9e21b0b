//! Per-file locks, keyed by host and resolved path, held across warden processes.
//!
//! A read → check → write sequence (the `expected_sha256` precondition of `fs_write`
//! and `fs_patch`) holds its file's lock throughout, so two calls that read the same
//! content cannot both write: the second one reads the first one's result and answers
//! `CONFLICT`. Within a process an async mutex orders the calls; across the processes
//! on one state dir an `flock` on `<state>/locks/<digest of host and path>` does (a
//! file per path ever edited, empty, never removed: removing a lock file someone waits
//! on would let two holders in). A writer on the host outside warden is still caught by
//! the sha256 check unless it lands between our read and our rename (ARCHITECTURE.md's
//! check-to-use window).
//!
//! The map holds weak references: an entry lives while a call holds or awaits its
//! lock, and dead entries are swept on every acquisition, so it never outgrows the
//! number of files being written at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

type Key = (String, String);

pub struct FileLocks {
    /// Where the cross-process lock files live.
    dir: PathBuf,
    held: Mutex<HashMap<Key, Weak<tokio::sync::Mutex<()>>>>,
}

/// Holds one file's lock until dropped (the `flock` goes with the file).
pub struct FileLock {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    _across: std::fs::File,
}

impl FileLocks {
    pub fn new(dir: PathBuf) -> FileLocks {
        FileLocks {
            dir,
            held: Mutex::default(),
        }
    }

    /// Waits for the lock of `path` on `host` (a resolved path: two spellings of one
    /// file share a lock only once the sandbox resolved them).
    pub async fn lock(&self, host: &str, path: &str) -> Result<FileLock> {
        let mutex = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            held.retain(|_, lock| lock.strong_count() > 0);
            let key = (host.to_owned(), path.to_owned());
            match held.get(&key).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    held.insert(key, Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        // This process's turn first, so only one of its tasks waits on the flock.
        let guard = mutex.lock_owned().await;
        let digest = hex::encode(Sha256::digest(format!("{host}\0{path}").as_bytes()));
        let file = self.dir.join(format!("{}.lock", &digest[..32]));
        let across = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(file.parent().unwrap_or(&file))?;
            let handle = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&file)?;
            handle.lock()?;
            Ok::<_, std::io::Error>(handle)
        })
        .await
        .map_err(|error| Error::internal(format!("file lock task failed: {error}")))?
        .map_err(|error| {
            Error::internal(format!(
                "cannot lock {path} across warden processes (in {}): {error}",
                self.dir.display()
            ))
        })?;
        Ok(FileLock {
            _guard: guard,
            _across: across,
        })
    }

    /// Files with a lock held or awaited (for tests of the sweep).
    #[cfg(test)]
    fn len(&self) -> usize {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|_, lock| lock.strong_count() > 0);
        held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_file_and_no_leftover_entries() {
        let temp = tempfile::tempdir().unwrap();
        let locks = FileLocks::new(temp.path().join("locks"));
        let first = locks.lock("web-1", "/srv/a").await.unwrap();
        // Another file, or the same path on another host, is independent.
        let other = locks.lock("web-1", "/srv/b").await.unwrap();
        let other_host = locks.lock("web-2", "/srv/a").await.unwrap();
        assert_eq!(locks.len(), 3);
        let waiting = locks.lock("web-1", "/srv/a");
        tokio::pin!(waiting);
        assert!(
            poll_once(waiting.as_mut()).await.is_none(),
            "a second holder got the lock"
        );
        drop(first);
        let second = waiting.await.unwrap();
        drop((second, other, other_host));
        assert_eq!(locks.len(), 0, "entries outlive their locks");
    }

    /// Two processes are two lock tables on one dir: the flock keeps them apart.
    #[tokio::test]
    async fn another_process_waits_for_the_holder() {
        let temp = tempfile::tempdir().unwrap();
        let (ours, theirs) = (
            FileLocks::new(temp.path().join("locks")),
            FileLocks::new(temp.path().join("locks")),
        );
        let held = ours.lock("web-1", "/srv/a").await.unwrap();
        let waiting = theirs.lock("web-1", "/srv/a");
        tokio::pin!(waiting);
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(200), waiting.as_mut()).await;
        assert!(
            early.is_err(),
            "the other process got the lock while it was held"
        );
        drop(held);
        waiting.await.unwrap();
    }

    /// Polls a future once: `Some` if it completed.
    async fn poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(value) => Some(value),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
