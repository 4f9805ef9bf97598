//! The durable receipt buffer: one SQLite file, one writer thread that groups commits, a device
//! thread that talks to the fiscal register, and a small pool of read connections. Nothing here
//! runs on the async runtime.
//!
//! Every change goes through [`Buffer`]'s writer as a command with a reply channel; the writer
//! takes all commands waiting, applies them in one transaction, commits once (one fsync for the
//! batch), and only then replies. Reads use their own WAL connections and never wait on writes.
//!
//! A receipt's life ([`ReceiptState`]): `fiscalizing` (the intent row: stored, not yet
//! registered by the register) → `pending` → `syncing` → `synced`; `failed` is the dead-letter
//! queue; `refused` is a receipt the register itself refused (answered 422, never sent
//! anywhere); `needs_review` waits for a person, `voided` is what a person voided.
//!
//! Its rooms: the states ([`state`]), what goes in and comes out ([`model`]), the writer's
//! commands ([`command`]), opening and migrating the file ([`open`], [`schema`]), the writer
//! ([`writer`]), the device thread ([`device`]), reads ([`read`], [`browse`]), checkpoints.

mod browse;
mod checkpoint;
mod command;
mod device;
pub mod jobs;
pub mod marking;
mod model;
mod open;
pub(crate) mod operations;
mod read;
pub(crate) mod schema;
mod state;
mod writer;

pub use browse::{Activity, Interval, Outage, ReceiptRow, Search};
pub(crate) use command::Command;
pub use command::{Purged, WriterStats};
pub use model::{
    Admission, AdmitError, AdmitRequest, Answer, AnswerFn, Claimed, Counts, Disposition, Resolution, ResolveError,
};
pub use open::{BufferConfig, legacy_kkt_counters};
pub use operations::OpRequest;
pub use read::{DlqEntry, EventPage, ReceiptView, ReviewEntry};
pub use state::{DeadReason, PrintState, ReceiptState};

use crate::events::{Event, NewEvent};
use crate::kkt::{FiscalDoc, Task};
use crate::receipt::Receipt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage unavailable: {0}")]
    Storage(String),
    #[error("the buffer is shut down")]
    Closed,
    #[error("{0}")]
    Open(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Handle to the buffer: cheap to clone; all clones talk to the same writer thread.
#[derive(Clone)]
pub struct Buffer {
    commands: mpsc::Sender<Command>,
    /// The register's trouble while it lasts (no paper, not connected …), as the driver words it.
    device_problem: Arc<Mutex<Option<String>>>,
    answer: AnswerFn,
    answer_within: Duration,
    reads: Arc<read::Pool>,
    counts: watch::Receiver<Counts>,
    events: broadcast::Sender<Event>,
    stats: Arc<WriterStats>,
    threads: Arc<Mutex<Option<Threads>>>,
    path: PathBuf,
}

/// The buffer's own threads, joined by [`Buffer::close`] (the device thread ends by itself when
/// the writer drops its job channel).
struct Threads {
    writer: std::thread::JoinHandle<()>,
    checkpointer: std::thread::JoinHandle<()>,
    stop_checkpoints: Arc<AtomicBool>,
}

/// Waits for a writer reply. In production that is a plain await of the oneshot.
///
/// The crate's own unit tests run the worker under tokio's paused clock, which jumps to the next
/// timer (the 10 s answer bound, the worker's tick) as soon as every task waits — including
/// while the writer thread, outside the runtime, is committing. There the wait goes through the
/// blocking pool, so tokio knows work is under way and the tests see the order production sees.
/// (That hop cost a blocking-pool thread and two context switches per request: issue 18
/// measured it at ~15 % of intake's CPU.)
async fn wait_for_writer<T: Send + 'static>(rx: oneshot::Receiver<T>) -> Option<T> {
    #[cfg(test)]
    {
        tokio::task::spawn_blocking(move || rx.blocking_recv().ok())
            .await
            .ok()
            .flatten()
    }
    #[cfg(not(test))]
    {
        rx.await.ok()
    }
}

impl Buffer {
    /// Sends a command to the writer and waits for its reply.
    async fn call<T: Send + 'static>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Error::Closed)?;
        wait_for_writer(rx).await.ok_or(Error::Closed)
    }

    /// Sends an intent to the writer and waits for its answer up to `answer_within`. Past it,
    /// once the intent is durable and the writer agrees its result is not in (after that a
    /// replay is answered from the row, never 409), `Err(id)`: the caller is told to come back
    /// (`202 awaiting_device`). Before the intent is durable (storage itself is slow) nothing
    /// is promised yet, so it keeps waiting; a result that raced the timer stands.
    async fn within_bound(
        &self,
        command: Command,
        stored_rx: oneshot::Receiver<String>,
        done_rx: oneshot::Receiver<Result<Admission, AdmitError>>,
    ) -> Result<Result<Admission, AdmitError>, String> {
        let closed = || AdmitError::Storage(Error::Closed.to_string());
        if self.commands.send(command).await.is_err() {
            return Ok(Err(closed()));
        }
        let mut done = Box::pin(wait_for_writer(done_rx));
        tokio::select! {
            answer = &mut done => return Ok(answer.unwrap_or_else(|| Err(closed()))),
            _ = tokio::time::sleep(self.answer_within) => {}
        }
        let Ok(id) = stored_rx.await else {
            return Ok(done.await.unwrap_or_else(|| Err(closed())));
        };
        if let Some(answer) = futures::FutureExt::now_or_never(&mut done) {
            return Ok(answer.unwrap_or_else(|| Err(closed())));
        }
        let (may_tx, may_rx) = oneshot::channel();
        let asked = self.commands.send(Command::AnsweredAwaiting(id.clone(), may_tx)).await;
        if asked.is_err() || !wait_for_writer(may_rx).await.unwrap_or(false) {
            return Ok(done.await.unwrap_or_else(|| Err(closed())));
        }
        Err(id)
    }

    fn bound_reason(&self) -> String {
        format!(
            "the fiscal register has not answered within {} s",
            self.answer_within.as_secs_f64()
        )
    }

    /// Phase 1: store the intent durably, have the register fiscalize and print it, and answer;
    /// or replay the stored answer. When the register takes longer than `answer_within`, the
    /// till gets `202 awaiting_device` and the receipt is registered as soon as it can be.
    pub async fn admit(&self, request: AdmitRequest) -> Result<Admission, AdmitError> {
        let (stored_tx, stored_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let command = Command::Admit {
            request: Box::new(request),
            stored: stored_tx,
            done: done_tx,
        };
        let receipt_id = match self.within_bound(command, stored_rx, done_rx).await {
            Ok(answer) => return answer,
            Err(id) => id,
        };
        let (http_status, body) = (self.answer)(&Answer::AwaitingDevice {
            receipt_id: &receipt_id,
            reason: &self.bound_reason(),
        });
        Ok(Admission {
            receipt_id,
            http_status,
            body,
            replayed: false,
        })
    }

    /// A counter operation (§11), exactly once under its key: the intent row made durable, the
    /// register's result stored with the answer, then the answer; or the stored answer replayed.
    /// Past `answer_within` the caller gets `202 awaiting_device` and the operation goes on.
    pub async fn operate(&self, request: OpRequest) -> Result<Admission, AdmitError> {
        let (stored_tx, stored_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let command = Command::Operate {
            request: Box::new(request),
            stored: stored_tx,
            done: done_tx,
        };
        let operation_id = match self.within_bound(command, stored_rx, done_rx).await {
            Ok(answer) => return answer,
            Err(id) => id,
        };
        let body = serde_json::json!({
            "status": "awaiting_device",
            "operation_id": operation_id,
            "reason": self.bound_reason(),
            "message": "The operation is stored and will be done on the fiscal register as soon as it is ready; \
                        repeat the request with the same Idempotency-Key for its result",
        });
        Ok(Admission {
            receipt_id: operation_id,
            http_status: 202,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            replayed: false,
        })
    }

    /// Keeps a marking code's check (§12).
    pub async fn store_marking_check(&self, check: marking::StoredCheck) -> Result<(), Error> {
        self.call(|reply| Command::StoreCheck {
            check: Box::new(check),
            reply,
        })
        .await?
    }

    /// A kept check by its id: (its code's hash, its JSON).
    pub async fn marking_check(&self, id: String) -> Result<Option<(String, String)>, Error> {
        self.reads.run(move |c| marking::by_id(c, &id)).await
    }

    /// The newest check of a code for an operation since `since_ms`, as JSON.
    pub async fn recent_marking_check(
        &self,
        code_hash: String,
        operation: String,
        since_ms: i64,
    ) -> Result<Option<String>, Error> {
        self.reads
            .run(move |c| marking::recent(c, &code_hash, &operation, since_ms))
            .await
    }

    /// The checks made between two times (ms), oldest first, as JSON.
    pub async fn marking_checks_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<String>, Error> {
        self.reads.run(move |c| marking::between(c, from_ms, to_ms)).await
    }

    /// Keeps a vendor front's job (§13) unless its id is taken; `true` if it was new.
    pub async fn store_job(&self, job: jobs::NewJob) -> Result<bool, Error> {
        let n = self
            .call(|reply| Command::StoreJob {
                job: Box::new(job),
                reply,
            })
            .await??;
        Ok(n == 1)
    }

    /// A kept job by its front and id.
    pub async fn job(&self, front: &'static str, id: String) -> Result<Option<jobs::StoredJob>, Error> {
        self.reads.run(move |c| jobs::by_id(c, front, &id)).await
    }

    /// A job's results so far (JSON in the vendor's shape).
    pub async fn set_job_results(&self, front: &'static str, id: String, results: String) -> Result<(), Error> {
        self.call(|reply| Command::JobResults {
            front,
            id,
            results,
            reply,
        })
        .await?
    }

    /// Whether a receipt was already taken under this key (its replay needs no new check).
    pub async fn knows_receipt_key(&self, key: String) -> Result<bool, Error> {
        self.reads.run(move |c| marking::knows_key(c, &key)).await
    }

    /// Marks up to `limit` due pending receipts as `syncing` (in fiscal-number order) and returns them.
    pub async fn claim_due(&self, limit: usize, now_ms: i64, lease: Duration) -> Result<Vec<Claimed>, Error> {
        let lease_ms = lease.as_millis() as i64;
        self.call(|reply| Command::Claim {
            limit,
            now_ms,
            lease_ms,
            reply,
        })
        .await?
    }

    /// Applies send results (status, attempts, DLQ, events) in one transaction.
    pub async fn record(&self, results: Vec<(String, Disposition)>, now_ms: i64) -> Result<(), Error> {
        self.call(|reply| Command::Record { results, now_ms, reply }).await?
    }

    /// Returns `syncing` receipts to `pending`: all of them (`None`, at start) or those whose lease expired.
    pub async fn recover_leases(&self, now_ms: Option<i64>) -> Result<usize, Error> {
        self.call(|reply| Command::RecoverLeases { now_ms, reply }).await?
    }

    /// Makes every pending receipt whose next attempt lies in the future due now; returns how
    /// many. `reason` goes into the `backoff_cleared` event.
    pub async fn make_due(&self, now_ms: i64, reason: &'static str) -> Result<usize, Error> {
        self.call(|reply| Command::MakeDue { now_ms, reason, reply }).await?
    }

    /// Moves one DLQ entry (or all) back to pending with attempts reset; returns the ids moved.
    pub async fn retry_dlq(&self, receipt_id: Option<String>) -> Result<Vec<String>, Error> {
        self.call(|reply| Command::RetryDlq { receipt_id, reply }).await?
    }

    /// Applies a person's decision on a receipt in review (§10.5), with their words as its event.
    pub async fn resolve(
        &self,
        receipt_id: String,
        resolution: Resolution,
        comment: String,
    ) -> Result<ReceiptState, ResolveError> {
        self.call(|reply| Command::Resolve {
            receipt_id,
            resolution: Box::new(resolution),
            comment,
            reply,
        })
        .await
        .map_err(|e| ResolveError::Storage(e.to_string()))?
    }

    /// A receipt as the register would get it, and where it stands (for a decision on it).
    pub async fn task(&self, id: String) -> Result<Option<(Task, ReceiptState)>, Error> {
        self.reads.run(move |c| read::task(c, &id)).await
    }

    /// Lets the receipts waiting for the register try again now (a shift was closed).
    pub async fn wake_device(&self) {
        let _ = self.commands.send(Command::WakeDevice).await;
    }

    /// Writes events that belong to no receipt change (breaker transitions, cycle summaries).
    pub async fn log(&self, events: Vec<NewEvent>) -> Result<(), Error> {
        self.call(|reply| Command::Log(events, reply)).await?
    }

    /// Deletes up to `limit` synced receipts whose sync is older than `cutoff_ms` (with their
    /// events) and up to `limit` older events that belong to no receipt still held, in one
    /// short transaction; call again while it reports a full step.
    pub async fn purge(&self, cutoff_ms: i64, limit: usize) -> Result<Purged, Error> {
        self.call(|reply| Command::Purge {
            cutoff_ms,
            limit,
            reply,
        })
        .await?
    }

    /// Sizes of the database file and its WAL in bytes (0 when a file is missing).
    pub fn file_sizes(&self) -> (u64, u64) {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        (size(&self.path), size(Path::new(&wal)))
    }

    /// The register's trouble while it lasts: `None` when it registers receipts.
    pub fn device_problem(&self) -> Option<String> {
        self.device_problem.lock().ok().and_then(|p| p.clone())
    }

    /// The latest counts (updated after every commit).
    pub fn counts(&self) -> Counts {
        *self.counts.borrow()
    }

    /// How the writer has grouped its work so far.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Events as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub async fn receipt(&self, id: String) -> Result<Option<ReceiptView>, Error> {
        self.reads.run(move |c| read::receipt(c, &id)).await
    }

    pub async fn events(&self, after: i64, limit: u32) -> Result<EventPage, Error> {
        self.reads.run(move |c| read::events(c, after, limit)).await
    }

    /// The newest `n` events, oldest first.
    pub async fn latest_events(&self, n: u32) -> Result<EventPage, Error> {
        self.reads.run(move |c| read::latest_events(c, n)).await
    }

    /// The receipts waiting for a person's decision (§10.5), oldest first.
    pub async fn review(&self) -> Result<Vec<ReviewEntry>, Error> {
        self.reads.run(read::review).await
    }

    pub async fn dlq(&self) -> Result<Vec<DlqEntry>, Error> {
        self.reads.run(read::dlq).await
    }

    /// Receipts found by number, id or key, narrowed by time, till and amount (newest first).
    pub async fn search(&self, search: Search) -> Result<Vec<ReceiptRow>, Error> {
        self.reads.run(move |c| browse::search(c, &search)).await
    }

    /// Every receipt taken in `[from_ms, to_ms)`, oldest first.
    pub async fn taken_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ReceiptRow>, Error> {
        self.reads.run(move |c| browse::taken_between(c, from_ms, to_ms)).await
    }

    /// Receipts taken, delivered and failed per interval over the last `hours`, and the outages.
    pub async fn activity(&self, to_ms: i64, hours: u32, minutes: u32) -> Result<Activity, Error> {
        self.reads
            .run(move |c| browse::activity(c, to_ms, hours, minutes))
            .await
    }

    /// A registered receipt's request and fiscal attributes (for its slip), if it has them.
    pub async fn printed(&self, id: String) -> Result<Option<(Receipt, FiscalDoc)>, Error> {
        self.reads
            .run(move |c| {
                let doc = match read::fiscal_doc(c, &id) {
                    Ok((Some(doc), _, _)) => doc,
                    Ok(_) | Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let request: String =
                    c.query_row("SELECT request_json FROM receipts WHERE id = ?1", [&id], |r| r.get(0))?;
                Ok(serde_json::from_str::<Receipt>(&request).ok().map(|r| (r, doc)))
            })
            .await
    }

    /// True when a trivial query succeeds on a read connection.
    pub async fn ping(&self) -> Result<(), Error> {
        self.reads
            .run(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(Error::from))
            .await
    }

    /// Stops the writer after it has committed every command sent before this call and every
    /// till waiting for the register has its answer (the device thread then ends by itself).
    pub async fn close(&self) {
        let threads = self.threads.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = threads {
            let (tx, rx) = oneshot::channel();
            if self.commands.send(Command::Stop(tx)).await.is_ok() {
                let _ = rx.await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                let _ = t.writer.join();
                t.stop_checkpoints.store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = t.checkpointer.join();
            })
            .await;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
