//! The sync worker: exactly one loop that delivers buffered receipts to the OFD.
//!
//! It wakes on a new receipt, on a manual sync, when the breaker's open period ends, or every
//! `interval`; a cycle returns expired leases, then claims due receipts in batches
//! (fiscal-number order, `syncing` with a lease), sends up to `concurrency` at once through the
//! circuit breaker, and records each outcome through the buffer's writer.
//!
//! A manual sync (docs/contract.md §1a) is a request to this same loop, never a second loop: it
//! gets the next cycle's number at once, the running automatic cycle yields at its next batch
//! boundary, and the manual cycle makes every pending receipt due now and sends one probe through
//! an open breaker. Callers wait for that cycle's report as long as they like (the HTTP handler:
//! under a second, then it answers `202` with the cycle number and the progress so far). When the
//! breaker closes after an outage, everything waiting is made due at once as well: backoff is
//! there to spare a failing OFD, not to delay a recovered one.
//!
//! Its rooms: the loop ([`Worker::run`], here), one cycle ([`cycle`]), what a send's outcome
//! does to its receipt ([`disposition`]), the handle the rest of the program holds ([`handle`]),
//! what it reports ([`report`]), and its policy ([`policy`]).

mod cycle;
mod disposition;
mod handle;
mod policy;
mod report;

pub use handle::WorkerHandle;
pub use policy::{SyncPolicy, backoff};
pub use report::{CycleReport, SyncTicket, WorkerState};

use crate::breaker::{self, Breaker};
use crate::buffer::Buffer;
use crate::counters::Metrics;
use crate::events::{EventKind, NewEvent};
use crate::ofd::Ofd;

use crate::time::Clock;
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// Batches claimed in one cycle at most before the loop looks at its inbox again.
const MAX_BATCHES_PER_CYCLE: usize = 100;

/// Where the loop stands, for callers waiting on a cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The number of the last finished cycle.
    finished: u64,
    /// The loop has ended: no queued cycle will run.
    stopped: bool,
}

pub(crate) struct Shared {
    breaker: Mutex<Breaker>,
    state: Mutex<WorkerState>,
    progress: watch::Sender<Progress>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Worker {
    buffer: Buffer,
    ofd: Arc<dyn Ofd>,
    policy: SyncPolicy,
    clock: Clock,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
}

/// Creates the worker and its handle; run it with [`Worker::run`].
pub fn new(
    buffer: Buffer,
    ofd: Arc<dyn Ofd>,
    policy: SyncPolicy,
    breaker: Breaker,
    clock: Clock,
    metrics: Arc<Metrics>,
) -> (Worker, WorkerHandle) {
    // The heartbeat starts now: if the loop never runs, it goes stale and health says so.
    let status = WorkerState {
        demo: ofd.is_simulator(),
        ofd: ofd.describe(),
        running: true,
        heartbeat_ms: Some(clock.now_ms()),
        ..WorkerState::default()
    };
    let shared = Arc::new(Shared {
        breaker: Mutex::new(breaker),
        state: Mutex::new(status),
        progress: watch::Sender::new(Progress::default()),
    });
    let wake = Arc::new(Notify::new());
    let handle = WorkerHandle {
        wake: wake.clone(),
        ofd: ofd.clone(),
        shared: shared.clone(),
        clock: clock.clone(),
        policy,
    };
    let worker = Worker {
        buffer,
        ofd,
        policy,
        clock,
        metrics,
        shared,
        wake,
    };
    (worker, handle)
}

impl Worker {
    /// The loop. Returns when `cancel` fires, after in-flight sends are finished and recorded.
    pub async fn run(self, cancel: CancellationToken) {
        self.set(|s| {
            s.running = true;
        });
        match self.buffer.recover_leases(None).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                receipts = n,
                "returned receipts left in `syncing` by an earlier stop to pending"
            ),
            Err(e) => tracing::error!(error = %e, "cannot recover leases at start"),
        }
        tracing::info!(ofd = %self.ofd.describe(), demo = self.ofd.is_simulator(), "sync worker started");
        // Receipts left from before a restart are due now: the first cycle runs at once.
        self.wake.notify_one();
        loop {
            self.beat();
            let tick = self.next_tick();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep_until(tick) => {}
            }
            self.cycle(&cancel).await;
        }
        self.set(|s| {
            s.running = false;
            s.manual_sync_queued = None;
        });
        self.shared.progress.send_modify(|p| p.stopped = true);
        tracing::info!("sync worker stopped");
    }

    /// When to run the next cycle unasked: after `interval`, or as soon as an open breaker
    /// admits its probe if that is sooner (recovery must not wait for the tick).
    fn next_tick(&self) -> tokio::time::Instant {
        let tick = self.clock.instant() + self.policy.interval;
        match lock(&self.shared.breaker).snapshot().next_probe_at {
            Some(probe) => tick.min(probe),
            None => tick,
        }
    }

    fn set(&self, f: impl FnOnce(&mut WorkerState)) {
        f(&mut lock(&self.shared.state));
    }

    fn beat(&self) {
        let now = self.clock.now_ms();
        self.set(|s| s.heartbeat_ms = Some(now));
    }

    async fn log(&self, events: Vec<NewEvent>) {
        if !events.is_empty()
            && let Err(e) = self.buffer.log(events).await
        {
            tracing::error!(error = %e, "cannot write worker events");
        }
    }

    async fn log_transition(&self, t: Option<breaker::Transition>) {
        let Some(t) = t else { return };
        let kind = match t.to {
            breaker::State::Open => EventKind::CircuitOpened,
            breaker::State::HalfOpen => EventKind::CircuitHalfOpen,
            breaker::State::Closed => EventKind::CircuitClosed,
        };
        tracing::warn!(
            from = t.from.as_str(),
            to = t.to.as_str(),
            "OFD circuit breaker changed state"
        );
        let b = lock(&self.shared.breaker).snapshot();
        let details = json!({"from": t.from.as_str(), "to": t.to.as_str(), "consecutive_failures": b.consecutive_failures,
                             "open_seconds": b.open_period.as_secs_f64()});
        self.log(vec![NewEvent::new(kind, None, details)]).await;
        if t.to == breaker::State::Closed {
            // The OFD is back: what waited out the outage in backoff is due now.
            self.make_due("ofd_recovered").await;
        }
    }

    /// Makes every pending receipt due now (manual sync, recovery).
    async fn make_due(&self, reason: &'static str) {
        match self.buffer.make_due(self.clock.now_ms(), reason).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(receipts = n, reason, "receipts waiting in backoff are due now"),
            Err(e) => tracing::error!(error = %e, "cannot make receipts due"),
        }
    }
}

#[cfg(test)]
mod tests;
