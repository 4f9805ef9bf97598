//! The durable receipt buffer: one SQLite file, one writer thread that groups commits, a device
//! thread that talks to the fiscal register, and a small pool of read connections. Nothing here
//! runs on the async runtime.
//!
//! Every change goes through [`Buffer`]'s writer as a command with a reply channel; the writer
//! takes all commands waiting, applies them in one transaction, commits once (one fsync for the
//! batch), and only then replies. Reads use their own WAL connections and never wait on writes.
//!
//! A receipt's life (`buffer_status`): `fiscalizing` (the intent row: stored, not yet registered
//! by the register) → `pending` → `syncing` → `synced`; `failed` is the dead-letter queue;
//! `refused` is a receipt the register itself refused (answered 422, never sent anywhere).

mod browse;
mod checkpoint;
mod device;
mod read;
pub(crate) mod schema;
mod writer;

pub use browse::{Activity, Interval, Outage, ReceiptRow, Search};
pub use read::{DlqEntry, EventPage, ReceiptView, ReviewEntry};

use crate::events::{Event, NewEvent};
use crate::kkt::{FiscalDoc, Fiscalized, Kkt, Task};
use crate::receipt::Receipt;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Where a receipt is in its life, stored as text in `receipts.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Stored (the intent row); the register has not registered it yet.
    Fiscalizing,
    /// Registered; waiting to be sent to the OFD.
    Pending,
    /// Claimed by the worker, being sent (with a lease).
    Syncing,
    /// The OFD confirmed it.
    Synced,
    /// In the dead-letter queue: rejected by the OFD, or out of attempts.
    Failed,
    /// The register refused it (its own validation): answered 422, never fiscal.
    Refused,
    /// The register may or may not hold it, and it cannot tell which: a person decides
    /// (docs/contract.md §10.5) — attach a document, register it now, or void it.
    NeedsReview,
    /// A person decided it is not to be registered (it never was, or it was settled otherwise).
    Voided,
}

impl ReceiptStatus {
    pub const ALL: [ReceiptStatus; 8] = [
        ReceiptStatus::Fiscalizing,
        ReceiptStatus::Pending,
        ReceiptStatus::Syncing,
        ReceiptStatus::Synced,
        ReceiptStatus::Failed,
        ReceiptStatus::Refused,
        ReceiptStatus::NeedsReview,
        ReceiptStatus::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Fiscalizing => "fiscalizing",
            ReceiptStatus::Pending => "pending",
            ReceiptStatus::Syncing => "syncing",
            ReceiptStatus::Synced => "synced",
            ReceiptStatus::Failed => "failed",
            ReceiptStatus::Refused => "refused",
            ReceiptStatus::NeedsReview => "needs_review",
            ReceiptStatus::Voided => "voided",
        }
    }

    /// The status stored as `name`; parsed once, where a row is read.
    pub fn parse(name: &str) -> Option<ReceiptStatus> {
        ReceiptStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl rusqlite::types::FromSql for ReceiptStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let name = value.as_str()?;
        ReceiptStatus::parse(name)
            .ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("unknown receipt status {name:?}").into()))
    }
}

impl rusqlite::types::ToSql for ReceiptStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

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

/// A receipt to admit: validated, with its idempotency key and the hash of its exact body.
#[derive(Debug, Clone)]
pub struct AdmitRequest {
    pub idempotency_key: String,
    pub body_hash: String,
    pub receipt: Receipt,
}

/// The answer a till gets for its key: the exact bytes (stored for replays, except the interim
/// `202 awaiting_device`) and their HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub receipt_id: String,
    pub http_status: u16,
    pub body: Vec<u8>,
    /// True when this is the stored answer to an earlier request with the same key and body.
    pub replayed: bool,
}

/// Why a receipt was not admitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmitError {
    #[error("the idempotency key was already used with a different body")]
    KeyReused,
    #[error("a request with this idempotency key is still being processed")]
    InProgress,
    #[error("the buffer holds {unsynced} unsynced receipts (capacity {capacity})")]
    BufferFull { unsynced: u64, capacity: u64 },
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// The register has registered and printed it, but its result could not be stored yet: a
    /// retry of the key gets the answer once it is stored, and nothing is printed twice.
    #[error("printed, but the register's result is not stored yet: {0}")]
    ResultUnstored(String),
    /// The register will not take it now (FN blocked, shift expired): nothing is stored.
    #[error("{message}")]
    NotTaken {
        reason: crate::kkt::NotTaken,
        message: String,
    },
}

/// A person's decision on a receipt in review (docs/contract.md §10.5).
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// This FN document is the receipt's (read back from the register).
    Attach(Fiscalized),
    /// Register it now: a new attempt, though an earlier one's outcome is unknown.
    Register,
    /// It is not to be registered.
    Void,
}

impl Resolution {
    pub fn action(&self) -> &'static str {
        match self {
            Resolution::Attach(_) => "attach",
            Resolution::Register => "register",
            Resolution::Void => "void",
        }
    }
}

/// Why a decision was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("no such receipt")]
    NotFound,
    #[error("the receipt is {}, not waiting for a decision", .0.as_str())]
    NotInReview(ReceiptStatus),
    #[error("document {number} of FN {fn_number} is already receipt {other}'s")]
    NumberTaken {
        number: i64,
        fn_number: String,
        other: String,
    },
    #[error("storage unavailable: {0}")]
    Storage(String),
}

/// What a till is told about its receipt; the API layer turns it into bytes ([`AnswerFn`]).
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// Registered: 200 `printed`, or `buffered` with the print error.
    Fiscalized {
        receipt_id: &'a str,
        receipt: &'a Receipt,
        doc: &'a FiscalDoc,
        print_error: Option<&'a str>,
        /// The document's operation when it is not the receipt's own (a late sale's correction).
        registered_as: Option<crate::receipt::ReceiptType>,
    },
    /// The register refused it: 422 with its code and text.
    Refused {
        receipt_id: &'a str,
        code: &'a str,
        message: &'a str,
    },
    /// Stored, not registered yet: 202 `awaiting_device` with the cause.
    AwaitingDevice { receipt_id: &'a str, reason: &'a str },
    /// A person voided it (§10.5): 422 `receipt_voided` with their words.
    Voided { receipt_id: &'a str, comment: &'a str },
}

/// Builds the HTTP answer (status, body) for an [`Answer`]. The API decides what a till gets;
/// the buffer stores exactly those bytes with the receipt, so every replay is the same.
pub type AnswerFn = fn(&Answer<'_>) -> (u16, Vec<u8>);

/// Per-status counts and the age of the oldest unsynced receipt, refreshed after every commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub fiscalizing: u64,
    pub pending: u64,
    pub syncing: u64,
    pub synced: u64,
    /// The dead-letter queue.
    pub failed: u64,
    pub refused: u64,
    /// Receipts a person must settle (the register may hold them; §10.5).
    pub needs_review: u64,
    /// Receipts a person voided.
    pub voided: u64,
    /// Pending receipts that have failed at least one attempt (waiting past their first retry).
    pub retrying: u64,
    /// Unix ms of the oldest registered receipt not yet synced (pending, syncing or failed).
    pub oldest_unsynced_ms: Option<i64>,
    /// Unix ms of the oldest pending or syncing receipt.
    pub oldest_pending_ms: Option<i64>,
    /// Unix ms of the last receipt marked synced.
    pub last_synced_ms: Option<i64>,
}

impl Counts {
    /// Receipts taken (a refused or voided one was never a fiscal receipt).
    pub fn total(&self) -> u64 {
        self.fiscalizing + self.pending + self.syncing + self.synced + self.failed + self.needs_review
    }
    /// What counts against the capacity: everything not yet confirmed by the OFD.
    pub fn unsynced(&self) -> u64 {
        self.fiscalizing + self.pending + self.syncing + self.failed + self.needs_review
    }
}

/// A receipt claimed for delivery: what the OFD document is built from (`ofd::document`).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub receipt_id: String,
    /// Failed attempts before this one.
    pub retry_count: u32,
    pub pos_id: String,
    /// The receipt type as stored (`sale`, …).
    pub kind: String,
    /// The validated request as stored: its `items` and `payments` go to the OFD verbatim.
    pub request_json: String,
    /// Its fiscal attributes; `fiscal.total` is the receipt's total.
    pub fiscal: FiscalDoc,
}

/// What to do with a claimed receipt after a send.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// The OFD accepted it (2xx or 409).
    Synced {
        http_status: u16,
        ofd_id: Option<String>,
        response: String,
    },
    /// A failed attempt: back to pending until `next_attempt_at_ms`.
    Retry { error: String, next_attempt_at_ms: i64 },
    /// Final: into the dead-letter queue.
    Dead {
        reason: String,
        error: String,
        http_status: Option<u16>,
    },
    /// Not attempted (breaker open, shutting down): back to pending, no attempt counted.
    Release,
    /// Not delivered yet by someone else (the FN): back to pending until `next_attempt_at_ms`,
    /// no attempt counted.
    Postpone { reason: String, next_attempt_at_ms: i64 },
}

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
        reply: oneshot::Sender<Result<ReceiptStatus, ResolveError>>,
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

    fn set_failing(&self, error: Option<String>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = error;
        }
    }
}

/// What the writer needs to know besides the database.
#[derive(Debug, Clone)]
pub struct BufferConfig {
    pub path: PathBuf,
    pub capacity: u64,
    /// Upper bound of the database file in bytes (0: none); past it writes fail as storage errors.
    pub max_db_bytes: u64,
    /// How the answers a till gets are written (the API's `answers::receipt`).
    pub answer: AnswerFn,
    /// The longest a till waits for the register before it gets `202 awaiting_device`.
    pub answer_within: Duration,
    /// How often a receipt the register could not take is tried again.
    pub device_retry: Duration,
    /// A sale registered this long after it was taken goes on the register as a correction
    /// (docs/contract.md §10.7); `None`: never.
    pub late_sale_after: Option<Duration>,
    /// The register's time zone (the day a late sale was paid on).
    pub zone: crate::time::Zone,
    /// The program's clock: when receipts are taken (tests move it forward).
    pub clock: crate::time::Clock,
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

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::Open(format!("cannot open database {}: {e}", path.display())))?;
    schema::configure(&conn).map_err(|e| corrupt_or(path, e))?;
    Ok(conn)
}

fn corrupt_or(path: &Path, e: rusqlite::Error) -> Error {
    let text = e.to_string();
    if text.contains("not a database") || text.contains("malformed") {
        Error::Open(format!(
            "database {} is not a valid KKT Adapter buffer ({text}); it was left untouched — move it aside or restore a backup",
            path.display()
        ))
    } else {
        Error::Open(format!("database {}: {text}", path.display()))
    }
}

/// Waits for a writer reply on the blocking pool. Tokio then knows work is under way, so a
/// paused test clock does not jump to its next timer (the 10 s answer bound, the worker's tick)
/// while the writer commits: tests see the order of events production sees. It is the one path
/// in tests and production alike, at the cost of a blocking-pool hop per call.
fn wait_for_writer<T: Send + 'static>(rx: oneshot::Receiver<T>) -> tokio::task::JoinHandle<Option<T>> {
    tokio::task::spawn_blocking(move || rx.blocking_recv().ok())
}

/// The counters an older version kept for its KKT inside the buffer (`kkt_state`, and the
/// numbers its receipts carry for `fn_number`): the mock register's memory starts from them, so
/// an upgrade goes on numbering where it stopped. `None` when there is no database yet.
pub fn legacy_kkt_counters(path: &Path, fn_number: &str) -> Option<crate::kkt::KktCounters> {
    if !path.exists() {
        return None;
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let mut c = conn
        .query_row(
            "SELECT last_fiscal_doc_number, shift_number, shift_opened_at, receipts_in_shift FROM kkt_state WHERE id = 1",
            [],
            |r| {
                Ok(crate::kkt::KktCounters {
                    last_fiscal_doc_number: r.get(0)?,
                    shift_number: r.get(1)?,
                    shift_opened_at_ms: r.get(2)?,
                    receipts_in_shift: r.get(3)?,
                })
            },
        )
        .ok()?;
    let highest: Option<i64> = conn
        .query_row(
            "SELECT max(fiscal_doc_number) FROM receipts WHERE fn_number = ?1",
            [fn_number],
            |r| r.get(0),
        )
        .ok()
        .flatten();
    c.last_fiscal_doc_number = c.last_fiscal_doc_number.max(highest.unwrap_or(0));
    Some(c)
}

impl Buffer {
    /// Opens (creating and migrating if needed) the database and starts the writer thread.
    pub fn open(config: BufferConfig, kkt: Arc<dyn Kkt>) -> Result<Buffer, Error> {
        let mut conn = open_connection(
            &config.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        schema::migrate(&mut conn).map_err(|e| match e {
            schema::Error::Sqlite(s) => corrupt_or(&config.path, s),
            other => Error::Open(other.to_string()),
        })?;
        let integrity: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| corrupt_or(&config.path, e))?;
        if integrity != "ok" {
            return Err(Error::Open(format!(
                "database {} failed its integrity check ({integrity}); it was left untouched",
                config.path.display()
            )));
        }
        let checkpoint_conn = open_connection(
            &config.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let reads = read::Pool::new(&config.path, 4)?;
        let (commands, rx) = mpsc::channel(8192);
        let (events, _) = broadcast::channel(1024);
        let device_problem = Arc::new(Mutex::new(None));
        let device = device::spawn(
            kkt,
            device::DeviceSetup {
                results: commands.clone(),
                retry_every: config.device_retry,
                problem: device_problem.clone(),
                late_after: config.late_sale_after,
                clock: config.clock.clone(),
                zone: config.zone,
            },
        )
        .map_err(|e| Error::Open(format!("cannot start the device thread: {e}")))?;
        let stats = Arc::new(WriterStats::default());
        if config.max_db_bytes > 0 {
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages = (config.max_db_bytes as i64 / page.max(512)).max(1);
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let (state, counts) = writer::Writer::new(
            conn,
            writer::Setup {
                device,
                clock: config.clock.clone(),
                capacity: config.capacity,
                answer: config.answer,
                broadcast: events.clone(),
                stats: stats.clone(),
            },
        )?;
        let handle = std::thread::Builder::new()
            .name("buffer-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| Error::Open(format!("cannot start the writer thread: {e}")))?;
        let stop_checkpoints = Arc::new(AtomicBool::new(false));
        let checkpointer = checkpoint::spawn(checkpoint_conn, stop_checkpoints.clone())
            .map_err(|e| Error::Open(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Buffer {
            commands,
            device_problem,
            answer: config.answer,
            answer_within: config.answer_within,
            reads: Arc::new(reads),
            counts,
            events,
            stats,
            threads: Arc::new(Mutex::new(Some(Threads {
                writer: handle,
                checkpointer,
                stop_checkpoints,
            }))),
            path: config.path,
        })
    }

    /// Sends a command to the writer and waits for its reply.
    async fn call<T: Send + 'static>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Error::Closed)?;
        wait_for_writer(rx).await.ok().flatten().ok_or(Error::Closed)
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
        let closed = || AdmitError::Storage(Error::Closed.to_string());
        self.commands.send(command).await.map_err(|_| closed())?;
        let mut done = wait_for_writer(done_rx);
        tokio::select! {
            answer = &mut done => return answer.map_err(|_| closed())?.ok_or_else(closed)?,
            _ = tokio::time::sleep(self.answer_within) => {}
        }
        // Past the bound: once the intent is durable the till is told to come back; before
        // that (storage itself is slow) nothing is promised yet, so keep waiting.
        let Ok(receipt_id) = stored_rx.await else {
            return done.await.map_err(|_| closed())?.ok_or_else(closed)?;
        };
        if done.is_finished() {
            return done.await.map_err(|_| closed())?.ok_or_else(closed)?;
        }
        let (may_tx, may_rx) = oneshot::channel();
        let asked = self
            .commands
            .send(Command::AnsweredAwaiting(receipt_id.clone(), may_tx))
            .await;
        if asked.is_err() || !wait_for_writer(may_rx).await.ok().flatten().unwrap_or(false) {
            return done.await.map_err(|_| closed())?.ok_or_else(closed)?;
        }
        let reason = format!(
            "the fiscal register has not answered within {} s",
            self.answer_within.as_secs_f64()
        );
        let (http_status, body) = (self.answer)(&Answer::AwaitingDevice {
            receipt_id: &receipt_id,
            reason: &reason,
        });
        Ok(Admission {
            receipt_id,
            http_status,
            body,
            replayed: false,
        })
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
    ) -> Result<ReceiptStatus, ResolveError> {
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
    pub async fn task(&self, id: String) -> Result<Option<(Task, ReceiptStatus)>, Error> {
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
pub(crate) mod tests {
    use super::*;
    use crate::kkt::{DeviceError, Fiscalized, MockKkt, MockKktConfig, Task};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Defaults for a buffer under test: the API's real answers, a 10 s answer bound.
    pub(crate) fn config(path: PathBuf) -> BufferConfig {
        BufferConfig {
            path,
            capacity: 100_000,
            max_db_bytes: 0,
            answer: crate::api::answers::receipt,
            answer_within: Duration::from_secs(10),
            device_retry: Duration::from_millis(50),
            late_sale_after: None,
            zone: crate::time::Zone::Utc,
            clock: crate::time::Clock::new(),
        }
    }

    /// The mock register with an in-memory fiscal memory and no slips.
    pub(crate) fn mock_kkt() -> Arc<dyn Kkt> {
        Arc::new(MockKkt::open(MockKktConfig::for_tests()).unwrap())
    }

    fn request(key: &str, body: &str) -> AdmitRequest {
        AdmitRequest {
            idempotency_key: key.into(),
            body_hash: format!("{:x}", body.len()),
            receipt: crate::receipt::parse(body.as_bytes(), &Default::default()).unwrap(),
        }
    }

    const SEED: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

    #[tokio::test]
    async fn a_storage_failure_is_reported_until_a_receipt_is_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let config = BufferConfig {
            max_db_bytes: 256 * 1024,
            ..config(dir.path().join("buffer.db"))
        };
        let buffer = Buffer::open(config, mock_kkt()).unwrap();
        let item = format!(r#"{{"name":"{}","price":1,"qty":1}}"#, "x".repeat(128));
        let body = format!(
            r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"cash","amount":20}}]}}"#,
            vec![item; 20].join(",")
        );
        let mut refused = false;
        for i in 0..2000 {
            match buffer.admit(request(&format!("k{i}"), &body)).await {
                Ok(_) => assert!(buffer.writer_stats().failing().is_none()),
                // The full disk meets the intent row or, a commit later, the register's result.
                Err(AdmitError::Storage(_) | AdmitError::ResultUnstored(_)) => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(refused, "the cap was never reached");
        assert!(buffer.writer_stats().failing().is_some());
        // A commit that stores no receipt (an empty claim, an event that fits) proves nothing.
        buffer.log(Vec::new()).await.unwrap();
        assert!(
            buffer.writer_stats().failing().is_some(),
            "still failing until a receipt is stored"
        );
        buffer.close().await;
    }

    /// A register that is out of paper for its first `unavailable` calls, then registers
    /// through the mock; it can refuse receipts of one till.
    struct Flaky {
        inner: Arc<dyn Kkt>,
        unavailable: AtomicUsize,
        refuse_pos: &'static str,
        fiscalize_calls: AtomicUsize,
        lookups: AtomicUsize,
    }

    impl Kkt for Flaky {
        fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
            self.fiscalize_calls.fetch_add(1, Ordering::SeqCst);
            if self
                .unavailable
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return tasks
                    .iter()
                    .map(|_| Err(DeviceError::Unavailable("нет бумаги".into())))
                    .collect();
            }
            let (refuse, ok): (Vec<_>, Vec<_>) = tasks.iter().partition(|t| t.receipt.pos_id == self.refuse_pos);
            assert!(refuse.is_empty() || ok.is_empty(), "one kind per test call");
            if !refuse.is_empty() {
                return refuse
                    .iter()
                    .map(|_| {
                        Err(DeviceError::Refused {
                            code: "3926".into(),
                            message: "Неверная сумма".into(),
                        })
                    })
                    .collect();
            }
            self.inner.fiscalize(tasks)
        }
        fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.lookup(task)
        }
        fn shift(&self, now: chrono::DateTime<chrono::Utc>) -> Result<crate::kkt::ShiftStatus, DeviceError> {
            self.inner.shift(now)
        }
        fn close_shift(&self, now: chrono::DateTime<chrono::Utc>) -> Result<crate::kkt::ZReport, DeviceError> {
            self.inner.close_shift(now)
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    fn flaky(unavailable: usize) -> Arc<Flaky> {
        Arc::new(Flaky {
            inner: mock_kkt(),
            unavailable: AtomicUsize::new(unavailable),
            refuse_pos: "BAD",
            fiscalize_calls: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn a_register_out_of_paper_gets_the_till_a_202_and_the_receipt_is_registered_when_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let kkt = flaky(3);
        let buffer = Buffer::open(config(dir.path().join("buffer.db")), kkt.clone()).unwrap();
        let first = buffer.admit(request("paper", SEED)).await.unwrap();
        assert_eq!(first.http_status, 202);
        let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
        assert_eq!(
            (body["status"].as_str(), body["reason"].as_str()),
            (
                Some("awaiting_device"),
                Some("the fiscal register is not available: нет бумаги")
            )
        );
        assert_eq!(buffer.counts().fiscalizing, 1);
        // A replay meanwhile gets the same interim answer, not 409 and not a guess.
        let again = buffer.admit(request("paper", SEED)).await.unwrap();
        assert_eq!((again.http_status, again.replayed), (202, true));
        // Paper back: retried (looked up first each time) and registered.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while buffer.counts().pending == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "never registered: {:?}",
                buffer.counts()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            kkt.lookups.load(Ordering::SeqCst) >= 3,
            "every retry asks the register first"
        );
        let last = buffer.admit(request("paper", SEED)).await.unwrap();
        assert_eq!((last.http_status, last.replayed), (200, true));
        let done: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
        assert_eq!(done["fiscal_doc"]["fiscal_doc_number"], 2, "1 opened the shift");
        assert_eq!(buffer.admit(request("paper", SEED)).await.unwrap().body, last.body);
        buffer.close().await;
    }

    #[tokio::test]
    async fn a_receipt_the_register_refuses_is_a_422_with_its_code_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let kkt = flaky(0);
        let buffer = Buffer::open(config(dir.path().join("buffer.db")), kkt.clone()).unwrap();
        let body = SEED.replace("POS-001", "BAD");
        let first = buffer.admit(request("bad", &body)).await.unwrap();
        assert_eq!(first.http_status, 422);
        let v: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
        assert_eq!(
            (v["code"].as_str(), v["device_error"]["code"].as_str()),
            (Some("kkt_refused"), Some("3926"))
        );
        let replay = buffer.admit(request("bad", &body)).await.unwrap();
        assert_eq!(
            (replay.http_status, replay.replayed, &replay.body),
            (422, true, &first.body)
        );
        assert_eq!(kkt.fiscalize_calls.load(Ordering::SeqCst), 1, "never sent again");
        let c = buffer.counts();
        assert_eq!((c.refused, c.unsynced(), c.total()), (1, 0, 0));
        buffer.close().await;
    }

    #[tokio::test]
    async fn an_intent_left_by_a_crash_is_looked_up_on_the_register_and_never_registered_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buffer.db");
        let memory = dir.path().join("mock-kkt.db");
        let mock = |path: &PathBuf| -> Arc<dyn Kkt> {
            Arc::new(
                MockKkt::open(MockKktConfig {
                    state_path: Some(path.clone()),
                    ..MockKktConfig::for_tests()
                })
                .unwrap(),
            )
        };
        // A register that is never reached: the intent stays `fiscalizing`, as after a crash
        // between the intent's commit and the register's answer.
        let buffer = Buffer::open(config(path.clone()), flaky(usize::MAX)).unwrap();
        assert_eq!(buffer.admit(request("crash", SEED)).await.unwrap().http_status, 202);
        let receipt_id = buffer.counts();
        assert_eq!(receipt_id.fiscalizing, 1);
        buffer.close().await;
        // Meanwhile the register did register it (the answer was what got lost).
        let stored: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT request_json FROM receipts", [], |r| r.get(0))
            .unwrap();
        let id: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT id FROM receipts", [], |r| r.get(0))
            .unwrap();
        let register = mock(&memory);
        let task = Task::new(id.clone(), serde_json::from_str(&stored).unwrap(), chrono::Utc::now());
        let on_device = register.fiscalize(std::slice::from_ref(&task)).remove(0).unwrap();
        drop(register);
        // The restart resumes it: looked up, found, stored; the register has one document.
        let counting = Arc::new(Flaky {
            inner: mock(&memory),
            unavailable: AtomicUsize::new(0),
            refuse_pos: "BAD",
            fiscalize_calls: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
        });
        let buffer = Buffer::open(config(path), counting.clone()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while buffer.counts().pending == 0 {
            assert!(std::time::Instant::now() < deadline, "never resumed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counting.lookups.load(Ordering::SeqCst), 1);
        assert_eq!(
            counting.fiscalize_calls.load(Ordering::SeqCst),
            0,
            "found on the register: not sent again"
        );
        let replay = buffer.admit(request("crash", SEED)).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&replay.body).unwrap();
        assert_eq!(v["fiscal_doc"]["fiscal_doc_number"], on_device.doc.fiscal_doc_number);
        assert_eq!(
            v["fiscal_doc"]["fiscal_sign"].as_str(),
            Some(on_device.doc.fiscal_sign.as_str())
        );
        buffer.close().await;
    }
}
