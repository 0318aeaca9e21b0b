//! A bound on answers waiting for the client to read them.
//!
//! A client that stops reading stdout while large calls finish would otherwise make
//! the server hold every serialized answer (the transport queues them): 60 reads of
//! 1 MiB drove RSS past 440 MB. Each answer is counted (an estimate of its bytes on
//! the wire) before it is handed to the transport and uncounted as stdout takes bytes.
//! Over [`BUDGET`], new calls wait before they start and finished ones wait before
//! they hand their answer over: the client that stops reading stalls its own calls,
//! not the server's memory. One answer always passes, however large, so nothing
//! deadlocks.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::Notify;

/// Bytes of answers that may wait for the client at once.
pub const BUDGET: usize = 32 * 1024 * 1024;

#[derive(Default)]
pub struct Outgoing {
    pending: AtomicUsize,
    drained: Notify,
}

impl Outgoing {
    /// Waits until the backlog is under the budget (before a call starts).
    pub async fn room(&self) {
        self.reserve(0).await;
    }

    /// Waits until `bytes` more fit (or nothing waits), then counts them.
    pub async fn reserve(&self, bytes: usize) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            // Registered before the check, so a drain in between is not missed.
            notified.as_mut().enable();
            let pending = self.pending.load(Ordering::SeqCst);
            if pending == 0 || pending + bytes <= BUDGET {
                self.pending.fetch_add(bytes, Ordering::SeqCst);
                return;
            }
            notified.await;
        }
    }

    fn sent(&self, bytes: usize) {
        let _ = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |pending| {
                Some(pending.saturating_sub(bytes))
            });
        self.drained.notify_waiters();
    }
}

/// stdout, uncounting what it writes.
pub struct CountingWriter<W> {
    inner: W,
    outgoing: Arc<Outgoing>,
}

impl<W> CountingWriter<W> {
    pub fn new(inner: W, outgoing: Arc<Outgoing>) -> CountingWriter<W> {
        CountingWriter { inner, outgoing }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(bytes)) = &written {
            self.outgoing.sent(*bytes);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_budget_waits_until_the_client_reads() {
        let outgoing = Arc::new(Outgoing::default());
        outgoing.reserve(BUDGET).await;
        let waiting = {
            let outgoing = Arc::clone(&outgoing);
            tokio::spawn(async move { outgoing.reserve(1024).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the budget let another answer in");
        outgoing.sent(BUDGET);
        waiting.await.unwrap_or_default();
        assert_eq!(outgoing.pending.load(Ordering::SeqCst), 1024);
    }
}
