//! The connection pool: one authenticated [`Connection`] per key (an inventory host, or
//! a jump host chain), shared by concurrent callers who multiplex channels over it.
//!
//! Invariant: at most one connect per key runs at a time; callers that arrive during
//! it wait and then share its result, its failure included (a host that does not
//! answer costs every waiting caller one connect deadline, not one each in turn).
//! A connection that stops answering (a channel open past its deadline, keepalives
//! unanswered) is never handed out again: the next caller dials anew (docs/ssh.md).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::{Channel, Disconnect};
use warden_core::error::{Error, Result};
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
    /// The channel-open deadline (`ssh.connect_timeout_ms`).
    open_limit: Duration,
    /// Set when a channel open went unanswered: the peer is frozen or gone without a
    /// FIN, and russh's keepalives would take several intervals to notice.
    condemned: AtomicBool,
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
        open_limit: Duration,
    ) -> Connection {
        Connection {
            handle,
            describe,
            sftp: tokio::sync::Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            learned,
            open_limit,
            condemned: AtomicBool::new(false),
            jump,
        }
    }

    /// False once russh's session task has ended (peer closed, I/O error, keepalive
    /// timeout) or a channel open went unanswered, here or on the jump connection
    /// carrying this one. A silently dead peer looks alive until one of those happens.
    pub fn is_alive(&self) -> bool {
        !self.handle.is_closed()
            && !self.condemned.load(Ordering::Relaxed)
            && self.jump.as_ref().is_none_or(|jump| jump.is_alive())
    }

    /// A new session channel, within the channel-open deadline. No answer in time
    /// condemns the connection: every caller after this one dials again.
    pub async fn open_session(&self) -> std::result::Result<Channel<Msg>, OpenError> {
        match tokio::time::timeout(self.open_limit, self.handle.channel_open_session()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(error)) => Err(OpenError {
                refused: matches!(error, russh::Error::ChannelOpenFailure(_)),
                message: error.to_string(),
            }),
            Err(_) => {
                self.condemned.store(true, Ordering::Relaxed);
                tracing::debug!(connection = %self.describe, "a channel open went unanswered; the connection is dropped from the pool");
                Err(OpenError {
                    refused: false,
                    message: format!(
                        "no answer to a channel open within {} ms (ssh.connect_timeout_ms)",
                        self.open_limit.as_millis()
                    ),
                })
            }
        }
    }

    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    /// Says goodbye. Bounded: the goodbye queues behind whatever the session task is
    /// still writing, and a stuck peer must not hold up the call that sweeps it.
    async fn close(&self) {
        let _ = tokio::time::timeout(
            CLOSE_WAIT,
            self.handle.disconnect(Disconnect::ByApplication, "", "en"),
        )
        .await;
    }
}

/// How long closing one connection may take (see [`Connection::close`]).
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Why a channel did not open.
pub(crate) struct OpenError {
    /// The server answered with a channel open failure (the connection itself works).
    pub refused: bool,
    pub message: String,
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so concurrent callers share one connect; holds the last
    /// connect's failure, for the callers that waited on it.
    connecting: tokio::sync::Mutex<Option<Error>>,
    /// Connects finished (either way) so far.
    attempts: AtomicU64,
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
        let seen = slot.attempts.load(Ordering::SeqCst);
        let mut failure = slot.connecting.lock().await;
        if let Some(connection) = slot.live() {
            return Ok(self.reuse(connection));
        }
        // The connect we waited for failed: that is our answer too.
        if slot.attempts.load(Ordering::SeqCst) != seen
            && let Some(error) = failure.as_ref()
        {
            return Err(error.clone());
        }
        // A dead connection is replaced; its handle goes when the last user lets go.
        lock(&slot.current).take();
        let result = connect().await;
        slot.attempts.fetch_add(1, Ordering::SeqCst);
        let connection = match result {
            Ok(connection) => Arc::new(connection),
            Err(error) => {
                *failure = Some(error.clone());
                return Err(error);
            }
        };
        *failure = None;
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

    /// Closes connections nobody holds that were unused for `idle`, and drops dead or
    /// condemned ones (closed by their last user: a command may still be running on a
    /// condemned one, and it ends by its own deadlines).
    pub async fn sweep(&self, idle: Duration) {
        let mut closing = Vec::new();
        for slot in self.all_slots() {
            let mut current = lock(&slot.current);
            // Only the pool holds it: no exec is running on it and no pooled
            // connection tunnels through it.
            let unused = current
                .as_ref()
                .is_some_and(|connection| Arc::strong_count(connection) == 1);
            let expired = current.as_ref().is_some_and(|connection| {
                !connection.is_alive() || (unused && connection.idle_for() >= idle)
            });
            if expired {
                let connection = current.take();
                if unused {
                    closing.extend(connection);
                }
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
