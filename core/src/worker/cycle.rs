//! One sync cycle: expired leases back, then due receipts claimed in batches (fiscal order),
//! sent with bounded concurrency through the breaker, and their outcomes recorded.

use super::{CycleReport, MAX_BATCHES_PER_CYCLE, Worker, lock};
use crate::breaker::{self, Permit};
use crate::buffer::{Claimed, DeadReason, Disposition};
use crate::events::{EventKind, NewEvent};
use crate::ofd::SendOutcome;
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

impl Worker {
    /// One cycle: batches of claims until nothing is due, the breaker refuses, a manual sync is
    /// asked for (an automatic cycle yields to it), or cancellation.
    pub(super) async fn cycle(&self, cancel: &CancellationToken) -> CycleReport {
        let started = self.clock.instant();
        let report = {
            let mut s = lock(&self.shared.state);
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
        let span = tracing::info_span!("cycle", n = report.cycle, manual = report.manual);
        self.batches(report, started, cancel).instrument(span).await
    }

    /// The cycle's work, inside its `cycle{n, manual}` span.
    async fn batches(
        &self,
        mut report: CycleReport,
        started: tokio::time::Instant,
        cancel: &CancellationToken,
    ) -> CycleReport {
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
            if cancel.is_cancelled() || (!report.manual && lock(&self.shared.state).manual_sync_queued.is_some()) {
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
                    reason: DeadReason::DocumentUnreadable,
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
}
