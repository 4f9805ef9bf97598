//! The handle the rest of the program holds: wake the worker, ask for a manual sync and wait for
//! it, read its state, its breaker and its clock.

use super::{CycleReport, Shared, SyncPolicy, SyncTicket, WorkerState, lock};
use crate::breaker;
use crate::ofd::Ofd;
use crate::time::Clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Handle to the one worker: wake it, ask for a manual sync, read its state.
#[derive(Clone)]
pub struct WorkerHandle {
    pub(super) wake: Arc<Notify>,
    pub(super) ofd: Arc<dyn Ofd>,
    pub(super) shared: Arc<Shared>,
    pub(super) clock: Clock,
    pub(super) policy: SyncPolicy,
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
            let mut s = lock(&self.shared.state);
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
            Ok(Ok(_)) => lock(&self.shared.state).last_manual_sync.filter(|r| r.cycle == n),
            _ => None,
        }
    }

    /// A manual cycle now, waiting for its report (the tray's "Sync now", tests).
    pub async fn sync_now(&self) -> Option<CycleReport> {
        let n = self.request_sync()?.cycle();
        self.wait_for_cycle(n, Duration::MAX).await
    }

    pub fn status(&self) -> WorkerState {
        lock(&self.shared.state).clone()
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
