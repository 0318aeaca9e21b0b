//! Stopping without losing answers (SIGTERM/SIGINT): new calls are refused, calls in
//! flight get a grace period to finish, then are cancelled, and the drain waits a
//! bounded time for their `completed` records and answers. Tools see only the
//! cancellation token they always had: one token that the client's cancel or the
//! drain trips.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long cancelled calls get to stop and record their outcome.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

pub(super) struct Drain {
    draining: AtomicBool,
    /// Tripped when the grace runs out: every call's token is its child.
    stop: CancellationToken,
    in_flight: watch::Sender<usize>,
}

impl Default for Drain {
    fn default() -> Drain {
        Drain {
            draining: AtomicBool::new(false),
            stop: CancellationToken::new(),
            in_flight: watch::channel(0).0,
        }
    }
}

/// One call in flight; leaving drops the count and the watcher of the client's token.
pub(super) struct InFlight<'a> {
    count: &'a watch::Sender<usize>,
    _watcher: DropGuard,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.send_modify(|count| *count -= 1);
    }
}

impl Drain {
    pub(super) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Counts a call and gives it a token that the client's `cancel` or the drain trips.
    pub(super) fn enter(&self, client: CancellationToken) -> (CancellationToken, InFlight<'_>) {
        self.in_flight.send_modify(|count| *count += 1);
        let merged = self.stop.child_token();
        let done = CancellationToken::new();
        let (watch, finished) = (merged.clone(), done.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = client.cancelled() => watch.cancel(),
                () = finished.cancelled() => {}
            }
        });
        let guard = InFlight {
            count: &self.in_flight,
            _watcher: done.drop_guard(),
        };
        (merged, guard)
    }

    pub(super) async fn run(&self, grace: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        let mut count = self.in_flight.subscribe();
        let running = *count.borrow();
        if running == 0 {
            return;
        }
        tracing::info!("draining: {running} call(s) in flight, {grace:?} to finish");
        if tokio::time::timeout(grace, count.wait_for(|count| *count == 0))
            .await
            .is_ok()
        {
            return;
        }
        let left = *count.borrow();
        tracing::warn!("{left} call(s) still running after {grace:?}: cancelling them");
        self.stop.cancel();
        if tokio::time::timeout(CANCEL_GRACE, count.wait_for(|count| *count == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                "{} call(s) did not stop within {CANCEL_GRACE:?}; their outcome will be recorded as unknown",
                *count.borrow()
            );
        }
    }
}
