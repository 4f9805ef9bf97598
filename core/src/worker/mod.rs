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

use crate::breaker::{self, Breaker, Permit};
use crate::buffer::{Buffer, Claimed, Disposition};
use crate::events::{EventKind, NewEvent};
use crate::metrics::Metrics;
use crate::ofd::{Ofd, SendOutcome};
use crate::settings::SyncPolicy;
use crate::time::Clock;
use futures::StreamExt;
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// Batches claimed in one cycle at most before the loop looks at its inbox again.
const MAX_BATCHES_PER_CYCLE: usize = 100;

/// One sync cycle: its progress while it runs, its result once finished (the body of
/// `POST /v1/kkt/buffer/sync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CycleReport {
    /// The cycle's number since start (1, 2, …).
    pub cycle: u64,
    /// Asked for by an operator (manual sync) rather than by a tick or a new receipt.
    pub manual: bool,
    /// Still running: the figures are the progress so far.
    pub running: bool,
    pub synced: u64,
    /// Attempts that failed (retried later or moved to the DLQ).
    pub failed: u64,
    /// Due receipts not attempted because the breaker was open (not attempts).
    pub skipped: u64,
    pub duration_seconds: f64,
}

/// The answer to a manual sync request: the cycle that will carry it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTicket {
    /// A new manual cycle with this number starts now (or as soon as the running batch is done).
    Started(u64),
    /// A manual cycle is already queued or running; it covers this request too.
    AlreadyRunning(u64),
}

impl SyncTicket {
    pub fn cycle(self) -> u64 {
        match self {
            SyncTicket::Started(n) | SyncTicket::AlreadyRunning(n) => n,
        }
    }
}

/// What the worker is doing, for status pages and health.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerStatus {
    pub running: bool,
    pub demo: bool,
    pub ofd: String,
    /// Cycles started since the program started.
    pub cycles: u64,
    pub last_cycle_at_ms: Option<i64>,
    pub heartbeat_ms: Option<i64>,
    /// The cycle running now, with its progress.
    pub current_cycle: Option<CycleReport>,
    pub last_cycle: Option<CycleReport>,
    /// The last finished manual sync.
    pub last_manual_sync: Option<CycleReport>,
    /// A manual sync asked for and not started yet: the number its cycle will have.
    pub manual_sync_queued: Option<u64>,
    pub in_flight: usize,
    /// Set while the OFD answers 401/403/404 (URL or token wrong): `(http status, since ms)`.
    pub misconfigured: Option<(u16, i64)>,
    pub last_error: Option<String>,
}

/// Where the loop stands, for callers waiting on a cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    /// The number of the last finished cycle.
    finished: u64,
    /// The loop has ended: no queued cycle will run.
    stopped: bool,
}

struct Shared {
    breaker: Mutex<Breaker>,
    status: Mutex<WorkerStatus>,
    progress: watch::Sender<Progress>,
}

/// Handle to the one worker: wake it, ask for a manual sync, read its state.
#[derive(Clone)]
pub struct WorkerHandle {
    wake: Arc<Notify>,
    ofd: Arc<dyn Ofd>,
    shared: Arc<Shared>,
    clock: Clock,
    policy: SyncPolicy,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WorkerHandle {
    /// Wakes the loop for an immediate cycle (no-op if one is running: it will look again).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the loop for a manual cycle and returns at once with its number; `None` when the
    /// worker has stopped.
    pub fn request_sync(&self) -> Option<SyncTicket> {
        let ticket = {
            let mut s = lock(&self.shared.status);
            if !s.running {
                return None;
            }
            if let Some(n) = s.manual_sync_queued {
                SyncTicket::AlreadyRunning(n)
            } else if let Some(c) = s.current_cycle.filter(|c| c.manual) {
                SyncTicket::AlreadyRunning(c.cycle)
            } else {
                // Only the loop starts cycles, and it takes this under the same lock.
                let n = s.cycles + 1;
                s.manual_sync_queued = Some(n);
                SyncTicket::Started(n)
            }
        };
        self.wake.notify_one();
        Some(ticket)
    }

    /// Waits up to `limit` for manual cycle `n` to finish and returns its report.
    pub async fn wait_for_cycle(&self, n: u64, limit: Duration) -> Option<CycleReport> {
        let mut rx = self.shared.progress.subscribe();
        let done = tokio::time::timeout(limit, rx.wait_for(|p| p.finished >= n || p.stopped)).await;
        match done {
            Ok(Ok(_)) => lock(&self.shared.status).last_manual_sync.filter(|r| r.cycle == n),
            _ => None,
        }
    }

    /// A manual cycle now, waiting for its report (the tray's "Sync now", tests).
    pub async fn sync_now(&self) -> Option<CycleReport> {
        let n = self.request_sync()?.cycle();
        self.wait_for_cycle(n, Duration::MAX).await
    }

    pub fn status(&self) -> WorkerStatus {
        lock(&self.shared.status).clone()
    }

    /// The breaker as the worker last left it. Reading never changes it: the open → half-open
    /// move happens in the worker's own cycle, where it is also written as an event.
    pub fn breaker(&self) -> breaker::Snapshot {
        lock(&self.shared.breaker).snapshot()
    }

    /// The FN's OFD exchange as last seen (with a register whose FN delivers itself).
    pub fn fn_exchange(&self) -> Option<crate::kkt::FnExchange> {
        self.ofd.fn_exchange()
    }

    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    pub fn policy(&self) -> SyncPolicy {
        self.policy
    }
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
    let status = WorkerStatus {
        demo: ofd.is_simulator(),
        ofd: ofd.describe(),
        running: true,
        heartbeat_ms: Some(clock.now_ms()),
        ..WorkerStatus::default()
    };
    let shared = Arc::new(Shared {
        breaker: Mutex::new(breaker),
        status: Mutex::new(status),
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

/// Exponential backoff with ±20 % jitter: base, 2×base, 4×base … capped at `max`.
pub fn backoff(policy: &SyncPolicy, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = policy.backoff_base.as_secs_f64() * 2f64.powi(exp as i32);
    let capped = raw.min(policy.backoff_max.as_secs_f64());
    Duration::from_secs_f64((capped * (1.0 + jitter.clamp(-0.2, 0.2))).min(policy.backoff_max.as_secs_f64()))
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

    fn set(&self, f: impl FnOnce(&mut WorkerStatus)) {
        f(&mut lock(&self.shared.status));
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

    /// One cycle: batches of claims until nothing is due, the breaker refuses, a manual sync is
    /// asked for (an automatic cycle yields to it), or cancellation.
    async fn cycle(&self, cancel: &CancellationToken) -> CycleReport {
        let started = self.clock.instant();
        let mut report = {
            let mut s = lock(&self.shared.status);
            s.cycles += 1;
            let manual = s.manual_sync_queued.take().is_some();
            let report = CycleReport {
                cycle: s.cycles,
                manual,
                running: true,
                ..CycleReport::default()
            };
            s.current_cycle = Some(report);
            report
        };
        // A manual sync ignores backoff and sends one probe through an open breaker.
        let mut force = report.manual;
        if report.manual {
            self.make_due("manual_sync").await;
        }
        if self.buffer.counts().syncing > 0 {
            // Nothing is in flight between cycles, so an expired lease means an interrupted send.
            if let Err(e) = self.buffer.recover_leases(Some(self.clock.now_ms())).await {
                tracing::error!(error = %e, "cannot recover expired leases");
            }
        }
        for _ in 0..MAX_BATCHES_PER_CYCLE {
            if cancel.is_cancelled() || (!report.manual && lock(&self.shared.status).manual_sync_queued.is_some()) {
                break;
            }
            let transition = lock(&self.shared.breaker).poll(self.clock.instant());
            self.log_transition(transition).await;
            let state = lock(&self.shared.breaker).state();
            if state == breaker::State::Open && !force {
                report.skipped += self.due_count().await;
                break;
            }
            // Half-open admits one probe at a time: claim just that one, and go on with the next
            // probe (or, once closed, a full batch) at once instead of claiming a batch only to
            // release all but one of it and wait for the next tick.
            let limit = if state == breaker::State::HalfOpen || (force && state == breaker::State::Open) {
                1
            } else {
                self.policy.batch_size
            };
            let claimed = match self
                .buffer
                .claim_due(limit, self.clock.now_ms(), self.policy.lease)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim receipts");
                    self.set(|s| s.last_error = Some(e.to_string()));
                    break;
                }
            };
            if claimed.is_empty() {
                break;
            }
            let full_batch = claimed.len() == limit;
            let skipped = self.send_batch(claimed, force, &mut report, cancel).await;
            force = false;
            self.beat();
            if !full_batch || skipped > 0 {
                break;
            }
        }
        report.running = false;
        report.duration_seconds = (self.clock.instant() - started).as_secs_f64();
        let now = self.clock.now_ms();
        self.set(|s| {
            s.current_cycle = None;
            s.last_cycle_at_ms = Some(now);
            s.last_cycle = Some(report);
            if report.manual {
                s.last_manual_sync = Some(report);
            }
        });
        if report.synced + report.failed > 0 || report.manual {
            let details = json!({"cycle": report.cycle, "manual": report.manual, "synced": report.synced,
                                 "failed": report.failed, "skipped": report.skipped,
                                 "duration_seconds": report.duration_seconds});
            self.log(vec![NewEvent::new(EventKind::SyncCycleCompleted, None, details)])
                .await;
            tracing::info!(
                cycle = report.cycle,
                manual = report.manual,
                synced = report.synced,
                failed = report.failed,
                skipped = report.skipped,
                "sync cycle completed"
            );
        }
        // Last: whoever waits for this cycle finds its report and its event written.
        self.shared.progress.send_modify(|p| p.finished = report.cycle);
        report
    }

    async fn due_count(&self) -> u64 {
        let c = self.buffer.counts();
        // Counting exactly would need a query per cycle while the OFD is down; pending is what waits.
        c.pending
    }

    /// Sends one claimed batch with bounded concurrency; records outcomes as they arrive and
    /// adds them to `report` (published as the cycle's progress). Returns how many were skipped.
    async fn send_batch(
        &self,
        claimed: Vec<Claimed>,
        force: bool,
        report: &mut CycleReport,
        cancel: &CancellationToken,
    ) -> u64 {
        let force_first = std::sync::atomic::AtomicBool::new(force);
        let mut results = futures::stream::iter(claimed)
            .map(|c| {
                let force = force_first.swap(false, std::sync::atomic::Ordering::Relaxed);
                self.attempt(c, force, cancel)
            })
            .buffer_unordered(self.policy.concurrency)
            .ready_chunks(self.policy.concurrency);
        let mut skipped = 0;
        while let Some(chunk) = results.next().await {
            let mut dispositions = Vec::with_capacity(chunk.len());
            let mut transitions = Vec::new();
            for (id, d, t) in chunk {
                match &d {
                    Disposition::Synced { .. } => report.synced += 1,
                    Disposition::Release | Disposition::Postpone { .. } => skipped += 1,
                    Disposition::Retry { .. } | Disposition::Dead { .. } => report.failed += 1,
                }
                transitions.extend(t);
                dispositions.push((id, d));
            }
            if let Err(e) = self.buffer.record(dispositions, self.clock.now_ms()).await {
                // Not recorded: the rows stay `syncing` and their leases bring them back; resending is safe.
                tracing::error!(error = %e, "cannot record sync results");
            }
            for t in transitions {
                self.log_transition(Some(t)).await;
            }
            let progress = CycleReport {
                skipped: report.skipped + skipped,
                ..*report
            };
            self.set(|s| s.current_cycle = Some(progress));
            self.beat();
        }
        report.skipped += skipped;
        skipped
    }

    /// One receipt: ask the breaker, send, classify into a disposition.
    async fn attempt(
        &self,
        c: Claimed,
        force: bool,
        cancel: &CancellationToken,
    ) -> (String, Disposition, Option<breaker::Transition>) {
        if cancel.is_cancelled() {
            return (c.receipt_id, Disposition::Release, None);
        }
        let document = match crate::ofd::document::render(&c) {
            Ok(d) => d,
            Err(e) => {
                // Cannot happen with a row this program wrote; if it does, a person must look.
                tracing::error!(receipt_id = %c.receipt_id, error = %e, "stored receipt cannot be turned into an OFD document");
                let dead = Disposition::Dead {
                    reason: "document_unreadable".into(),
                    error: format!("the stored receipt cannot be read: {e}"),
                    http_status: None,
                };
                return (c.receipt_id, dead, None);
            }
        };
        let (permit, t1) = lock(&self.shared.breaker).try_acquire(self.clock.instant(), force);
        if permit == Permit::Refused {
            return (c.receipt_id, Disposition::Release, t1);
        }
        self.set(|s| s.in_flight += 1);
        let sent_at = self.clock.instant();
        let outcome = self.ofd.send(&c.receipt_id, &document).await;
        let elapsed = self.clock.instant() - sent_at;
        self.set(|s| s.in_flight = s.in_flight.saturating_sub(1));
        self.metrics.record_send(outcome.label(), elapsed);
        let breaker_outcome = match &outcome {
            // A rejection is an answer: the OFD is up (the document goes to the DLQ all the same).
            SendOutcome::Delivered { .. } | SendOutcome::Rejected { .. } => breaker::Outcome::Success,
            SendOutcome::Misconfigured { .. } | SendOutcome::Transient { .. } => breaker::Outcome::TransientFailure,
            // The FN has not delivered it yet: its link failing is the OFD being unreachable.
            SendOutcome::Waiting { link_down: true, .. } => breaker::Outcome::TransientFailure,
            SendOutcome::Waiting { link_down: false, .. } => breaker::Outcome::Success,
        };
        let t2 = lock(&self.shared.breaker).record(breaker_outcome, self.clock.instant());
        let disposition = self.dispose(&c, outcome).await;
        (c.receipt_id, disposition, t2.or(t1))
    }

    async fn dispose(&self, c: &Claimed, outcome: SendOutcome) -> Disposition {
        let attempt = c.retry_count + 1;
        let now = self.clock.now_ms();
        let retry = |error: String, retry_after: Option<Duration>| {
            if attempt >= self.policy.max_attempts {
                tracing::error!(receipt_id = %c.receipt_id, attempts = attempt, %error, "receipt moved to the DLQ");
                return Disposition::Dead {
                    reason: "max_retries_exceeded".into(),
                    error,
                    http_status: None,
                };
            }
            let jitter = rand::rng().random_range(-0.2..=0.2);
            let delay = backoff(&self.policy, attempt, jitter).max(retry_after.unwrap_or_default());
            Disposition::Retry {
                error,
                next_attempt_at_ms: now + delay.as_millis() as i64,
            }
        };
        match outcome {
            SendOutcome::Delivered {
                http_status,
                ofd_id,
                body,
            } => {
                self.set(|s| {
                    s.misconfigured = None;
                    s.last_error = None;
                });
                Disposition::Synced {
                    http_status,
                    ofd_id,
                    response: body,
                }
            }
            SendOutcome::Rejected { http_status, body } => {
                let error = format!("HTTP {http_status}: {body}");
                tracing::error!(receipt_id = %c.receipt_id, %error, "OFD rejected the receipt; moved to the DLQ");
                Disposition::Dead {
                    reason: "rejected_by_ofd".into(),
                    error,
                    http_status: Some(http_status),
                }
            }
            SendOutcome::Misconfigured { http_status, body } => {
                let error = format!("HTTP {http_status} (check the OFD URL and token): {body}");
                let first = {
                    let mut s = lock(&self.shared.status);
                    s.last_error = Some(error.clone());
                    let first = s.misconfigured.is_none();
                    if first {
                        s.misconfigured = Some((http_status, now));
                    }
                    first
                };
                if first {
                    tracing::error!(http_status, "OFD refuses the adapter: misconfigured URL or token");
                    let details = json!({"http_status": http_status, "body": body});
                    self.log(vec![NewEvent::new(EventKind::OfdMisconfigured, None, details)])
                        .await;
                }
                retry(error, None)
            }
            SendOutcome::Waiting {
                reason, retry_after, ..
            } => Disposition::Postpone {
                reason,
                next_attempt_at_ms: now + retry_after.as_millis() as i64,
            },
            SendOutcome::Transient { error, retry_after, .. } => {
                self.set(|s| s.last_error = Some(error.clone()));
                retry(error, retry_after)
            }
        }
    }
}

#[cfg(test)]
mod tests;
