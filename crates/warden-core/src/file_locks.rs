//! Per-file async locks, keyed by host and resolved path.
//!
//! A read → check → write sequence (the `expected_sha256` precondition of `fs_write`
//! and `fs_patch`) holds its file's lock throughout, so two calls that read the same
//! content cannot both write: the second one reads the first one's result and answers
//! `CONFLICT`. This serializes the calls of this server only; a writer on the host
//! outside warden is still caught by the sha256 check unless it lands between our read
//! and our rename (ARCHITECTURE.md's check-to-use window).
//!
//! The map holds weak references: an entry lives while a call holds or awaits its
//! lock, and dead entries are swept on every acquisition, so it never outgrows the
//! number of files being written at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

type Key = (String, String);

#[derive(Default)]
pub struct FileLocks {
    held: Mutex<HashMap<Key, Weak<tokio::sync::Mutex<()>>>>,
}

/// Holds one file's lock until dropped.
pub struct FileLock {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl FileLocks {
    /// Waits for the lock of `path` on `host` (a resolved path: two spellings of one
    /// file share a lock only once the sandbox resolved them).
    pub async fn lock(&self, host: &str, path: &str) -> FileLock {
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
        FileLock {
            _guard: mutex.lock_owned().await,
        }
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
        let locks = FileLocks::default();
        let first = locks.lock("web-1", "/srv/a").await;
        // Another file, or the same path on another host, is independent.
        let other = locks.lock("web-1", "/srv/b").await;
        let other_host = locks.lock("web-2", "/srv/a").await;
        assert_eq!(locks.len(), 3);
        let waiting = locks.lock("web-1", "/srv/a");
        tokio::pin!(waiting);
        assert!(
            poll_once(waiting.as_mut()).await.is_none(),
            "a second holder got the lock"
        );
        drop(first);
        let second = waiting.await;
        drop((second, other, other_host));
        assert_eq!(locks.len(), 0, "entries outlive their locks");
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
