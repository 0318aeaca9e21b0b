//! The connection pool: one authenticated [`Connection`] per key (an inventory host, or
//! a jump host chain), shared by concurrent callers who multiplex channels over it.
//!
//! Invariant: at most one connect per key runs at a time; callers that arrive during
//! it wait and then reuse its result (or its failure is theirs to retry).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use russh::Disconnect;
use warden_core::error::Result;
use warden_core::transport::TransportStats;

use crate::connect::SshHandle;
use crate::sftp::Session;

/// One authenticated SSH connection.
pub(crate) struct Connection {
    pub handle: SshHandle,
    /// `host web-1 (root@10.0.0.5:22)`, for messages.
    pub describe: String,
    /// The SFTP session file primitives share (`Inner::sftp`); it dies with the
    /// connection, so a replaced connection starts without one.
    pub sftp: tokio::sync::Mutex<Option<Arc<Session>>>,
    last_used: Mutex<Instant>,
    /// The host key's fingerprint when this connection learned it (`accept-new`).
    pub learned: Option<String>,
    // Invariant: declared after `handle`, so the target connection is dropped before the
    // jump connection its stream runs through (DEPENDENCIES.md gotcha 5).
    jump: Option<Arc<Connection>>,
}

impl Connection {
    pub fn new(
        handle: SshHandle,
        describe: String,
        jump: Option<Arc<Connection>>,
        learned: Option<String>,
    ) -> Connection {
        Connection {
            handle,
            describe,
            sftp: tokio::sync::Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            learned,
            jump,
        }
    }

    /// False once russh's session task has ended (peer closed, I/O error, keepalive
    /// timeout). A silently dead peer still looks alive until a request fails.
    pub fn is_alive(&self) -> bool {
        !self.handle.is_closed() && self.jump.as_ref().is_none_or(|jump| jump.is_alive())
    }

    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so concurrent callers share one connect.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn live(&self) -> Option<Arc<Connection>> {
        lock(&self.current)
            .as_ref()
            .filter(|connection| connection.is_alive())
            .cloned()
    }
}

#[derive(Default)]
pub(crate) struct Pool {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    connects: AtomicU64,
    reused: AtomicU64,
}

impl Pool {
    /// The live pooled connection for `key`, or a new one from `connect`.
    pub async fn get<F, Fut>(&self, key: &str, connect: F) -> Result<Arc<Connection>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Connection>>,
    {
        let slot = self.slot(key);
        if let Some(connection) = slot.live() {
            return Ok(self.reuse(connection));
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(connection) = slot.live() {
            return Ok(self.reuse(connection));
        }
        // A dead connection is replaced; its handle goes when the last user lets go.
        lock(&slot.current).take();
        let connection = Arc::new(connect().await?);
        self.connects.fetch_add(1, Ordering::Relaxed);
        *lock(&slot.current) = Some(Arc::clone(&connection));
        Ok(connection)
    }

    fn reuse(&self, connection: Arc<Connection>) -> Arc<Connection> {
        self.reused.fetch_add(1, Ordering::Relaxed);
        connection.touch();
        connection
    }

    /// Forgets `connection` if it is still the pooled one for `key` (it turned out dead).
    pub fn discard(&self, key: &str, connection: &Arc<Connection>) {
        let slot = lock(&self.slots).get(key).cloned();
        if let Some(slot) = slot {
            let mut current = lock(&slot.current);
            if current
                .as_ref()
                .is_some_and(|pooled| Arc::ptr_eq(pooled, connection))
            {
                *current = None;
            }
        }
    }

    /// Closes connections nobody holds that were unused for `idle`, and drops dead ones.
    pub async fn sweep(&self, idle: Duration) {
        let mut closing = Vec::new();
        for slot in self.all_slots() {
            let mut current = lock(&slot.current);
            let expired = current.as_ref().is_some_and(|connection| {
                // Only the pool holds it: no exec is running on it and no pooled
                // connection tunnels through it.
                let unused = Arc::strong_count(connection) == 1;
                !connection.is_alive() || (unused && connection.idle_for() >= idle)
            });
            if expired {
                closing.extend(current.take());
            }
        }
        for connection in closing {
            tracing::debug!(connection = %connection.describe, "closing idle or dead connection");
            connection.close().await;
        }
    }

    /// Disconnects everything.
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).drain().map(|(_, slot)| slot).collect();
        let connections: Vec<Arc<Connection>> = slots
            .iter()
            .filter_map(|slot| lock(&slot.current).take())
            .collect();
        for connection in connections {
            connection.close().await;
        }
    }

    pub fn stats(&self) -> TransportStats {
        let open_connections = self
            .all_slots()
            .iter()
            .filter(|slot| slot.live().is_some())
            .count();
        TransportStats {
            open_connections,
            connects: self.connects.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        Arc::clone(lock(&self.slots).entry(key.to_owned()).or_default())
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        lock(&self.slots).values().cloned().collect()
    }
}

/// These mutexes guard plain data with no invariant a panic could break mid-way.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
