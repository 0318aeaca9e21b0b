//! Per-caller limits (PRODUCT.md §7): a token bucket of `limits.rate` calls per second
//! with `limits.burst` in reserve, and at most `limits.max_concurrent` calls in flight.
//! A call over the rate waits for its token when that is a short wait (a burst
//! queues); beyond that, and for a caller whose calls are all in flight for that long,
//! the answer is `RATE_LIMITED` with `retry_after_ms`. Keyed by [`ClientId`]: one MCP
//! connection cannot spend another's budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// tokio's clock: tests pause and advance it.
use tokio::time::Instant;

use super::ClientId;
use crate::config::Limits;
use crate::error::{Error, ErrorCode, Result};

/// Callers kept before idle ones (full bucket, nothing in flight) are forgotten.
const FORGET_ABOVE: usize = 1024;

/// The longest a call waits for a token or a slot before it is refused.
const MAX_QUEUE_WAIT: Duration = Duration::from_millis(1000);

pub(super) struct CallerLimits {
    rate: f64,
    burst: f64,
    max_concurrent: usize,
    callers: Mutex<HashMap<ClientId, Caller>>,
}

struct Caller {
    tokens: f64,
    refilled: Instant,
    in_flight: Arc<Semaphore>,
}

/// Held while a call runs: its slot among the caller's `max_concurrent`.
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl CallerLimits {
    pub fn new(limits: &Limits) -> CallerLimits {
        CallerLimits {
            rate: f64::from(limits.rate),
            burst: f64::from(limits.burst.max(1)),
            max_concurrent: limits.max_concurrent,
            callers: Mutex::new(HashMap::new()),
        }
    }

    /// Waits (briefly) for a token and a slot, or refuses the call.
    pub async fn admit(&self, client: &ClientId) -> Result<Slot> {
        let (wait, in_flight) = self.take_token(client)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match tokio::time::timeout(MAX_QUEUE_WAIT, in_flight.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot { _permit: permit }),
            _ => Err(limited(
                format!(
                    "{} calls of this client are already in flight (limits.max_concurrent)",
                    self.max_concurrent
                ),
                250,
            )),
        }
    }

    /// Takes a token now or reserves the next one: the wait until it is there.
    fn take_token(&self, client: &ClientId) -> Result<(Duration, Arc<Semaphore>)> {
        let mut callers = self
            .callers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if callers.len() >= FORGET_ABOVE {
            // Callers whose bucket has refilled and who have nothing in flight carry
            // no state worth keeping: one connection each must not grow without bound.
            callers.retain(|_, caller| {
                let refilled =
                    caller.tokens + now.duration_since(caller.refilled).as_secs_f64() * self.rate;
                refilled < self.burst || caller.in_flight.available_permits() < self.max_concurrent
            });
        }
        let caller = callers.entry(client.clone()).or_insert_with(|| Caller {
            tokens: self.burst,
            refilled: now,
            in_flight: Arc::new(Semaphore::new(self.max_concurrent)),
        });
        let elapsed = now.duration_since(caller.refilled).as_secs_f64();
        caller.tokens = (caller.tokens + elapsed * self.rate).min(self.burst);
        caller.refilled = now;
        // A token short: the wait until it refills, if that is short enough to queue.
        let wait = if caller.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - caller.tokens) / self.rate)
        };
        if wait > MAX_QUEUE_WAIT {
            return Err(limited(
                format!(
                    "more than {} calls per second with a burst of {} (limits.rate, limits.burst)",
                    self.rate, self.burst
                ),
                wait.as_millis() as u64,
            ));
        }
        caller.tokens -= 1.0;
        Ok((wait, Arc::clone(&caller.in_flight)))
    }
}

fn limited(why: String, retry_after_ms: u64) -> Error {
    Error::new(ErrorCode::RateLimited, format!("rate limited: {why}"))
        .with_retry_after_ms(retry_after_ms.max(1))
        .with_hint("Wait retry_after_ms, then retry; batch work into fewer calls (exec takes a target of many hosts).")
}

/// At most `limits.max_per_host` commands at once on one host, whoever runs them:
/// sshd refuses session channels beyond its `MaxSessions` (10 by default), and a host
/// should not feel a fleet of agents as a flood. Commands over the bound wait their
/// turn (cancellable) rather than fail.
pub(super) struct HostLimits {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    pub(super) fn new(per_host: usize) -> HostLimits {
        HostLimits {
            per_host,
            hosts: Mutex::default(),
        }
    }

    /// Waits for a turn on `host`; `None` if the wait was cancelled.
    pub(super) async fn turn(
        &self,
        host: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut hosts = self
                .hosts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(
                hosts
                    .entry(host.to_owned())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_host))),
            )
        };
        tokio::select! {
            permit = semaphore.acquire_owned() => permit.ok(),
            () = cancel.cancelled() => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, max_concurrent: usize) -> CallerLimits {
        CallerLimits::new(&Limits {
            rate,
            burst,
            max_concurrent,
            ..Limits::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_spent_then_calls_queue_then_are_refused_with_a_retry_time() {
        let limits = limits(1, 3, 100);
        let client = ClientId::new("a");
        for _ in 0..3 {
            let (wait, _) = limits.take_token(&client).unwrap();
            assert!(wait.is_zero());
        }
        // The fourth waits for the refill (one per second), queued, not refused.
        let (wait, _) = limits.take_token(&client).unwrap();
        assert!(wait > Duration::ZERO && wait <= MAX_QUEUE_WAIT, "{wait:?}");
        // The fifth would wait two seconds: refused, saying when to come back.
        let error = limits.take_token(&client).unwrap_err();
        assert_eq!(error.code, ErrorCode::RateLimited);
        assert!(
            error.retry_after_ms.is_some_and(|ms| ms > 1000),
            "{error:?}"
        );
        // Another caller has its own bucket.
        assert!(limits.take_token(&ClientId::new("b")).unwrap().0.is_zero());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(limits.take_token(&client).unwrap().0.is_zero());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_max_concurrent_wait_for_a_slot_then_are_refused() {
        let limits = limits(1000, 1000, 2);
        let client = ClientId::new("a");
        let first = limits.admit(&client).await.unwrap();
        let _second = limits.admit(&client).await.unwrap();
        let error = limits.admit(&client).await.err().unwrap();
        assert_eq!(error.code, ErrorCode::RateLimited, "{error:?}");
        drop(first);
        assert!(limits.admit(&client).await.is_ok(), "a freed slot is used");
    }

    /// One bucket per `ClientId` is kept forever: a long-lived server that sees many
    /// connections (HTTP next, or a CLI caller name per run) holds every caller it
    /// ever met, each with its own semaphore. Idle, full buckets carry no state worth
    /// keeping and could be dropped.
    #[tokio::test(start_paused = true)]
    async fn review2_idle_callers_are_forgotten() {
        let limits = limits(100, 200, 50);
        for n in 0..10_000 {
            let _ = limits
                .take_token(&ClientId::new(format!("conn_{n}")))
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        let _ = limits.take_token(&ClientId::new("fresh")).unwrap();
        let kept = limits.callers.lock().unwrap().len();
        assert!(kept < 100, "{kept} caller buckets kept after an hour idle");
    }
}
