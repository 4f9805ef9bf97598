//! The durable receipt buffer: one SQLite file, one writer thread that groups commits, and a
//! small pool of read connections. Nothing here runs on the async runtime.
//!
//! Every change goes through [`Buffer`]'s writer as a command with a reply channel; the writer
//! takes all commands waiting, applies them in one transaction, commits once (one fsync for the
//! batch), and only then replies. Reads use their own WAL connections and never wait on writes.

mod checkpoint;
mod printer;
mod read;
pub(crate) mod schema;
mod writer;

pub use read::{DlqEntry, EventPage, ReceiptView};

use crate::events::{Event, NewEvent};
use crate::kkt::Kkt;
use crate::receipt::Receipt;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
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

/// A receipt to admit: validated, with its idempotency key and the hash of its exact body.
#[derive(Debug, Clone)]
pub struct AdmitRequest {
    pub idempotency_key: String,
    pub body_hash: String,
    pub receipt: Receipt,
}

/// A 200 answer: the exact bytes to send (stored for replays).
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub receipt_id: String,
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
}

/// Per-status counts and the age of the oldest unsynced receipt, refreshed after every commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: u64,
    pub syncing: u64,
    pub synced: u64,
    pub failed: u64,
    pub dlq: u64,
    /// Pending receipts that have failed at least one attempt (waiting past their first retry).
    pub retrying: u64,
    /// Unix ms of the oldest receipt not yet synced (pending, syncing or failed).
    pub oldest_unsynced_ms: Option<i64>,
    /// Unix ms of the oldest pending or syncing receipt.
    pub oldest_pending_ms: Option<i64>,
    /// Unix ms of the last receipt marked synced.
    pub last_synced_ms: Option<i64>,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.pending + self.syncing + self.synced + self.failed
    }
    pub fn unsynced(&self) -> u64 {
        self.pending + self.syncing + self.failed
    }
}

/// A receipt claimed for delivery: everything the OFD document needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub receipt_id: String,
    pub fiscal_doc_number: i64,
    /// Failed attempts before this one.
    pub retry_count: u32,
    /// The OFD document body (docs/contract.md §2) as JSON text, amounts with two decimals.
    pub document: String,
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
}

pub(crate) enum Command {
    Admit(AdmitRequest, oneshot::Sender<Result<Admission, AdmitError>>),
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
    /// Print results coming back from the printer thread.
    Printed(Vec<printer::Printed>),
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
}

/// Handle to the buffer: cheap to clone; all clones talk to the same writer thread.
#[derive(Clone)]
pub struct Buffer {
    commands: mpsc::Sender<Command>,
    reads: Arc<read::Pool>,
    counts: watch::Receiver<Counts>,
    events: broadcast::Sender<Event>,
    stats: Arc<WriterStats>,
    threads: Arc<Mutex<Option<Threads>>>,
    path: PathBuf,
}

/// The buffer's own threads, joined by [`Buffer::close`].
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

impl Buffer {
    /// Opens (creating and migrating if needed) the database and starts the writer thread.
    pub fn open(config: BufferConfig, kkt: impl Kkt + 'static) -> Result<Buffer, Error> {
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
        let kkt: Arc<dyn Kkt> = Arc::new(kkt);
        let printer = printer::spawn(kkt.clone(), commands.clone())
            .map_err(|e| Error::Open(format!("cannot start the printer thread: {e}")))?;
        let stats = Arc::new(WriterStats::default());
        if config.max_db_bytes > 0 {
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages = (config.max_db_bytes as i64 / page.max(512)).max(1);
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let (state, counts) = writer::Writer::new(conn, kkt, printer, config.capacity, events.clone(), stats.clone())?;
        let handle = std::thread::Builder::new()
            .name("buffer-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| Error::Open(format!("cannot start the writer thread: {e}")))?;
        let stop_checkpoints = Arc::new(AtomicBool::new(false));
        let checkpointer = checkpoint::spawn(checkpoint_conn, stop_checkpoints.clone())
            .map_err(|e| Error::Open(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Buffer {
            commands,
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

    async fn call<T: Send + 'static>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Error::Closed)?;
        // Under paused tokio time an idle runtime jumps to its next timer; waiting on the blocking
        // pool tells tokio that work is under way, so tests see real ordering, not skipped time.
        #[cfg(test)]
        let reply = tokio::task::spawn_blocking(move || rx.blocking_recv().ok())
            .await
            .map_err(|_| Error::Closed)?;
        #[cfg(not(test))]
        let reply = rx.await.ok();
        reply.ok_or(Error::Closed)
    }

    /// Phase 1: store (durably), number and print a receipt; or replay the stored answer.
    pub async fn admit(&self, request: AdmitRequest) -> Result<Admission, AdmitError> {
        self.call(|tx| Command::Admit(request, tx))
            .await
            .map_err(|e| AdmitError::Storage(e.to_string()))?
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

    pub async fn dlq(&self) -> Result<Vec<DlqEntry>, Error> {
        self.reads.run(read::dlq).await
    }

    /// True when a trivial query succeeds on a read connection.
    pub async fn ping(&self) -> Result<(), Error> {
        self.reads
            .run(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(Error::from))
            .await
    }

    /// Stops the writer after it has committed every command sent before this call and every
    /// receipt handed to the printer has come back.
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
mod tests {
    use super::*;
    use crate::kkt::{MockKkt, MockKktConfig};

    #[tokio::test]
    async fn a_storage_failure_is_reported_until_a_receipt_is_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let kkt = MockKkt::new(MockKktConfig {
            fn_number: "9999999999999999".into(),
            kkt_number: "1".into(),
            slip_dir: None,
            print_latency: std::time::Duration::ZERO,
            shift_length: std::time::Duration::from_secs(86400),
        });
        let config = BufferConfig {
            path: dir.path().join("buffer.db"),
            capacity: 100_000,
            max_db_bytes: 256 * 1024,
        };
        let buffer = Buffer::open(config, kkt).unwrap();
        let item = format!(r#"{{"name":"{}","price":1,"qty":1}}"#, "x".repeat(250));
        let body = format!(
            r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"cash","amount":20}}]}}"#,
            vec![item; 20].join(",")
        );
        let mut refused = false;
        for i in 0..2000 {
            let request = AdmitRequest {
                idempotency_key: format!("k{i}"),
                body_hash: "h".into(),
                receipt: crate::receipt::parse(body.as_bytes()).unwrap(),
            };
            match buffer.admit(request).await {
                Ok(_) => assert!(buffer.writer_stats().failing().is_none()),
                Err(AdmitError::Storage(_)) => {
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
}
