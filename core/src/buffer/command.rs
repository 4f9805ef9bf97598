//! What the buffer's handle asks its writer thread, each with its reply channel, and the
//! writer's lifetime counters.

use super::{
    Admission, AdmitError, AdmitRequest, Claimed, Disposition, Error, ReceiptState, Resolution, ResolveError, device,
};
use crate::events::NewEvent;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use tokio::sync::oneshot;

pub(crate) enum Command {
    /// A new receipt. `stored` gets the receipt id once the intent row is durable; `done`
    /// gets the answer.
    Admit {
        request: Box<AdmitRequest>,
        stored: oneshot::Sender<String>,
        done: oneshot::Sender<Result<Admission, AdmitError>>,
    },
    /// The waiting till's bound passed: may it be answered `202 awaiting_device`? `true`
    /// while the register's result is not in (replays then get that, not 409); `false` when
    /// the result has come meanwhile — the till gets that instead. The writer decides, so a
    /// till is never told `202` about a receipt that was just dropped (§10.4).
    AnsweredAwaiting(String, oneshot::Sender<bool>),
    /// Results coming back from the device thread.
    Fiscalized(Vec<device::Done>),
    /// A counter operation (§11). `stored` gets its id once the intent row is durable; `done`
    /// gets the answer.
    Operate {
        request: Box<super::operations::OpRequest>,
        stored: oneshot::Sender<String>,
        done: oneshot::Sender<Result<Admission, AdmitError>>,
    },
    /// A marking code's check, kept (§12).
    StoreCheck {
        check: Box<super::marking::StoredCheck>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// A vendor front's job (§13), kept unless its id is taken: `1` if it was new.
    StoreJob {
        job: Box<super::jobs::NewJob>,
        reply: oneshot::Sender<Result<usize, Error>>,
    },
    /// A job's results so far, in the vendor's shape.
    JobResults {
        front: &'static str,
        id: String,
        results: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Counter operations coming back from the device thread.
    Operated(Vec<super::operations::OpDone>),
    Claim {
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
        reply: oneshot::Sender<Result<Vec<Claimed>, Error>>,
    },
    Record {
        results: Vec<(String, Disposition)>,
        now_ms: i64,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    RecoverLeases {
        now_ms: Option<i64>,
        reply: oneshot::Sender<Result<usize, Error>>,
    },
    /// Makes every pending receipt due now (manual sync, OFD recovered).
    MakeDue {
        now_ms: i64,
        reason: &'static str,
        reply: oneshot::Sender<Result<usize, Error>>,
    },
    RetryDlq {
        receipt_id: Option<String>,
        reply: oneshot::Sender<Result<Vec<String>, Error>>,
    },
    Log(Vec<NewEvent>, oneshot::Sender<Result<(), Error>>),
    /// A person's decision on a receipt in review.
    Resolve {
        receipt_id: String,
        resolution: Box<Resolution>,
        comment: String,
        reply: oneshot::Sender<Result<ReceiptState, ResolveError>>,
    },
    /// Something changed that may let waiting receipts through (a shift closed).
    WakeDevice,
    /// Retention: deletes up to `limit` synced receipts (with their events) and old events.
    Purge {
        cutoff_ms: i64,
        limit: usize,
        reply: oneshot::Sender<Result<Purged, Error>>,
    },
    /// Commit everything before it, then stop the writer thread.
    Stop(oneshot::Sender<()>),
}

/// What one purge step deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub receipts: usize,
    pub events: usize,
    /// DLQ entries whose customer contact and cashier INN were removed.
    pub scrubbed: usize,
}

/// Lifetime counters of the writer, for metrics: how well commits are grouped.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed (each is one fsync of the WAL).
    pub commits: AtomicU64,
    /// Commands applied (intake, print results, claims, records, …).
    pub commands: AtomicU64,
    /// New receipts stored.
    pub receipts: AtomicU64,
    /// Transactions rolled back because storage failed (disk full, I/O error, …).
    pub failed: AtomicU64,
    /// The last storage failure while it lasts: cleared by the next successful commit.
    pub failing: Mutex<Option<String>>,
}

impl WriterStats {
    /// The storage error of the last batch, if the last batch failed.
    pub fn failing(&self) -> Option<String> {
        self.failing.lock().ok().and_then(|f| f.clone())
    }

    pub(super) fn set_failing(&self, error: Option<String>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = error;
        }
    }
}
