//! Opening the buffer: the file (created, migrated, checked), its threads (writer, device,
//! checkpoints) and its read pool; and the counters an older version kept for its register.

use super::{AnswerFn, Buffer, Error, Threads, WriterStats, checkpoint, device, read, schema, writer};
use crate::kkt::Kkt;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

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

pub(super) fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::Open(format!("cannot open database {}: {e}", path.display())))?;
    schema::configure(&conn).map_err(|e| corrupt_or(path, e))?;
    Ok(conn)
}

pub(super) fn corrupt_or(path: &Path, e: rusqlite::Error) -> Error {
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
}
