//! What the worker reports: a cycle's progress and result, the ticket of a manual sync, and its
//! state for status pages and health.

use serde::Serialize;

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
pub struct WorkerState {
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
