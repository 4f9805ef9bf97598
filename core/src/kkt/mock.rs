//! The mock register: a software KKT with a fiscal memory of its own, so it behaves like a
//! device behind the seam — it numbers documents itself, remembers every task it registered
//! (by task id, as ATOL's web server does), answers [`Kkt::lookup`] from that memory, keeps
//! shifts as numbered documents, and blocks as a fiscal drive does.
//!
//! Like a register (docs/contract.md §6):
//! - numbering is per FN: a new `fn_number` in the settings is a replaced fiscal drive and
//!   starts again at 1;
//! - opening and closing a shift are fiscal documents and take numbers; a shift lasts at most
//!   24 h (`shift_length`); with `auto_shift` an expired shift is closed and a new one opened
//!   before the next receipt, without it the receipt is not taken (`shift_expired`);
//! - once a receipt has waited 30 days for the OFD's confirmation ([`Kkt::ofd_confirmed`]) the
//!   FN takes no more receipts (`fn_blocked`) until it is confirmed;
//! - the fiscal sign is a decimal number of at most 10 digits; the QR code carries the local
//!   date and time of the register's time zone.
//!
//! The memory is an SQLite file beside the buffer (`<data>/mock-kkt.db`; in memory for unit
//! tests), in WAL mode with `synchronous=NORMAL`: it survives the process being killed at any
//! point — what a crash test needs of it — while an FN's survival of power loss is not modelled.

use super::slip::{self, Seller};
use super::{
    DeviceError, FiscalDoc, Fiscalized, Kkt, KktCounters, NotTaken, OperationSum, PaymentSum, ShiftState, ShiftStatus,
    Task, ZReport,
};
use crate::money::Kopecks;
use crate::receipt::{PaymentType, Receipt, VatSum};
use crate::time::Zone;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// 54-FZ: the FN blocks after this long without the OFD's confirmation.
pub const FN_BLOCK_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

/// Settings of the mock driver.
#[derive(Debug, Clone)]
pub struct MockKktConfig {
    pub fn_number: String,
    pub kkt_number: String,
    /// The fiscal memory's file; `None` keeps it in memory (lost at exit: tests only).
    pub state_path: Option<PathBuf>,
    /// Counters a new, empty memory starts from: the numbers an older version kept in the
    /// buffer, so an upgrade continues the numbering instead of starting again at 1.
    pub seed: KktCounters,
    /// Where slips are written (`<data dir>/receipts`); `None` prints nowhere.
    pub slip_dir: Option<PathBuf>,
    /// Simulated print time per receipt.
    pub print_latency: Duration,
    /// The longest a shift lasts (54-FZ: 24 h).
    pub shift_length: Duration,
    /// Close an expired shift and open the next one by itself before a receipt.
    pub auto_shift: bool,
    /// The slip's header.
    pub seller: Seller,
    /// The register's time zone (the QR code's and the slip's local time).
    pub zone: Zone,
}

impl MockKktConfig {
    /// Defaults for tests: FN 9999999999999999, a 24 h shift closed automatically, no slips.
    pub fn for_tests() -> MockKktConfig {
        MockKktConfig {
            fn_number: "9999999999999999".into(),
            kkt_number: "0000000000001234".into(),
            state_path: None,
            seed: KktCounters::default(),
            slip_dir: None,
            print_latency: Duration::ZERO,
            shift_length: Duration::from_secs(24 * 3600),
            auto_shift: true,
            seller: Seller::default(),
            zone: Zone::Utc,
        }
    }
}

/// A software KKT: real numbering, shifts, a deterministic fiscal sign, a QR string and a slip.
pub struct MockKkt {
    config: MockKktConfig,
    memory: Mutex<Connection>,
}

/// Each entry moves the memory's schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE fn_state (
        fn_number         TEXT PRIMARY KEY,
        last_doc_number   INTEGER NOT NULL,
        shift_number      INTEGER NOT NULL,
        shift_open        INTEGER NOT NULL,
        shift_opened_at   INTEGER NOT NULL,
        receipts_in_shift INTEGER NOT NULL
    );
    -- Every fiscal document: receipts (with their task id), shift openings and closings.
    CREATE TABLE documents (
        fn_number    TEXT NOT NULL,
        doc_number   INTEGER NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('receipt', 'open_shift', 'close_shift')),
        task_id      TEXT UNIQUE,
        shift_number INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        doc          TEXT NOT NULL,
        summary      TEXT,
        confirmed    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (fn_number, doc_number)
    );
    CREATE INDEX documents_unconfirmed ON documents (fn_number, created_at) WHERE kind = 'receipt' AND confirmed = 0;
"];

/// What a shift report needs of a receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Summary {
    kind: crate::receipt::ReceiptType,
    total: Kopecks,
    payments: Vec<PaymentSum>,
    vat: Vec<VatSum>,
}

impl Summary {
    fn of(r: &Receipt) -> Summary {
        let kinds = [
            PaymentType::Cash,
            PaymentType::Card,
            PaymentType::Prepaid,
            PaymentType::Credit,
            PaymentType::Other,
        ];
        Summary {
            kind: r.kind,
            total: r.total,
            payments: kinds
                .into_iter()
                .map(|k| PaymentSum {
                    kind: k,
                    amount: r.paid_by(k),
                })
                .filter(|p| p.amount.0 != 0)
                .collect(),
            vat: r.vat_sums(),
        }
    }
}

/// The state of one FN, as stored.
#[derive(Debug, Clone, Copy, Default)]
struct FnState {
    last_doc_number: i64,
    shift_number: i64,
    shift_open: bool,
    shift_opened_at_ms: i64,
    receipts_in_shift: i64,
}

/// The 10-digit fiscal sign: derived from the document's identity, so it is stable and unique.
fn fiscal_sign(fn_number: &str, number: i64, datetime: &str, total: Kopecks) -> String {
    let digest = Sha256::digest(format!("{fn_number}|{number}|{datetime}|{}", total.0));
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]).to_string()
}

fn unavailable(e: rusqlite::Error) -> DeviceError {
    DeviceError::Unavailable(format!("the mock register's memory failed: {e}"))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn to_json<T: Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

impl MockKkt {
    /// Opens (or creates) the fiscal memory.
    pub fn open(config: MockKktConfig) -> Result<MockKkt, rusqlite::Error> {
        let mut conn = match &config.state_path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        let empty: bool = conn.query_row("SELECT count(*) = 0 FROM fn_state", [], |r| r.get(0))?;
        let seed = if empty { config.seed } else { KktCounters::default() };
        // An older version rolled shifts silently: its last shift counts as closed.
        conn.execute(
            "INSERT OR IGNORE INTO fn_state VALUES (?1, ?2, ?3, 0, 0, 0)",
            params![config.fn_number, seed.last_fiscal_doc_number, seed.shift_number],
        )?;
        Ok(MockKkt {
            config,
            memory: Mutex::new(conn),
        })
    }

    fn memory(&self) -> Result<MutexGuard<'_, Connection>, DeviceError> {
        self.memory
            .lock()
            .map_err(|_| DeviceError::Unavailable("the mock register's memory is poisoned".into()))
    }

    /// The counters of the current FN.
    pub fn counters(&self) -> Result<KktCounters, DeviceError> {
        let s = load(&*self.memory()?, &self.config.fn_number).map_err(unavailable)?;
        Ok(KktCounters {
            last_fiscal_doc_number: s.last_doc_number,
            shift_number: s.shift_number,
            shift_opened_at_ms: s.shift_opened_at_ms,
            receipts_in_shift: s.receipts_in_shift,
        })
    }

    fn expired(&self, s: &FnState, now: DateTime<Utc>) -> bool {
        s.shift_open && now.timestamp_millis() - s.shift_opened_at_ms >= self.config.shift_length.as_millis() as i64
    }

    /// Writes one fiscal document and returns its number.
    fn document(
        &self,
        conn: &Connection,
        s: &mut FnState,
        kind: &str,
        now: DateTime<Utc>,
        build: impl FnOnce(i64) -> rusqlite::Result<(Option<String>, String, Option<String>)>,
    ) -> rusqlite::Result<i64> {
        s.last_doc_number += 1;
        let number = s.last_doc_number;
        let (task_id, doc, summary) = build(number)?;
        conn.prepare_cached(
            "INSERT INTO documents (fn_number, doc_number, kind, task_id, shift_number, created_at, doc, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            self.config.fn_number,
            number,
            kind,
            task_id,
            s.shift_number,
            now.timestamp_millis(),
            doc,
            summary
        ])?;
        Ok(number)
    }

    fn open_shift(&self, conn: &Connection, s: &mut FnState, now: DateTime<Utc>) -> rusqlite::Result<()> {
        s.shift_number += 1;
        s.shift_open = true;
        s.shift_opened_at_ms = now.timestamp_millis();
        s.receipts_in_shift = 0;
        let shift = s.shift_number;
        self.document(conn, s, "open_shift", now, |n| {
            let doc = serde_json::json!({"document": "open_shift", "fiscal_doc_number": n, "shift_number": shift,
                                         "opened_at": rfc3339(now)});
            Ok((None, doc.to_string(), None))
        })?;
        Ok(())
    }

    fn close(&self, conn: &Connection, s: &mut FnState, now: DateTime<Utc>) -> rusqlite::Result<ZReport> {
        let summaries: Vec<String> = conn
            .prepare_cached(
                "SELECT summary FROM documents WHERE fn_number = ?1 AND shift_number = ?2 AND kind = 'receipt'
                 ORDER BY doc_number",
            )?
            .query_map(params![self.config.fn_number, s.shift_number], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut report = ZReport {
            shift_number: s.shift_number,
            fiscal_doc_number: 0,
            fiscal_sign: String::new(),
            fn_number: self.config.fn_number.clone(),
            opened_at: rfc3339(Utc.timestamp_millis_opt(s.shift_opened_at_ms).single().unwrap_or(now)),
            closed_at: rfc3339(now),
            receipts: summaries.len() as i64,
            operations: Vec::new(),
        };
        for text in summaries {
            let sum: Summary = from_json(&text)?;
            let i = match report.operations.iter().position(|o| o.kind == sum.kind) {
                Some(i) => i,
                None => {
                    report.operations.push(OperationSum {
                        kind: sum.kind,
                        count: 0,
                        total: Kopecks(0),
                        payments: Vec::new(),
                        vat: Vec::new(),
                    });
                    report.operations.len() - 1
                }
            };
            let o = &mut report.operations[i];
            o.count += 1;
            o.total = Kopecks(o.total.0 + sum.total.0);
            for p in sum.payments {
                match o.payments.iter_mut().find(|q| q.kind == p.kind) {
                    Some(q) => q.amount = Kopecks(q.amount.0 + p.amount.0),
                    None => o.payments.push(p),
                }
            }
            for v in sum.vat {
                match o.vat.iter_mut().find(|w| w.vat == v.vat) {
                    Some(w) => w.amount = Kopecks(w.amount.0 + v.amount.0),
                    None => o.vat.push(v),
                }
            }
        }
        let mut built = report.clone();
        let number = self.document(conn, s, "close_shift", now, |n| {
            built.fiscal_doc_number = n;
            built.fiscal_sign = fiscal_sign(&self.config.fn_number, n, &built.closed_at, Kopecks(0));
            Ok((None, to_json(&built)?, None))
        })?;
        s.shift_open = false;
        report.fiscal_doc_number = number;
        report.fiscal_sign = built.fiscal_sign;
        Ok(report)
    }

    /// Why a receipt cannot be registered at `now`, if it cannot.
    fn refusal(&self, conn: &Connection, s: &FnState, now: DateTime<Utc>) -> rusqlite::Result<Option<DeviceError>> {
        let oldest: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT doc_number, created_at FROM documents INDEXED BY documents_unconfirmed
                 WHERE fn_number = ?1 AND kind = 'receipt' AND confirmed = 0 ORDER BY created_at LIMIT 1",
            )?
            .query_row([&self.config.fn_number], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((number, at)) = oldest
            && now.timestamp_millis() - at >= FN_BLOCK_AFTER.as_millis() as i64
        {
            let since = Utc.timestamp_millis_opt(at).single().unwrap_or(now).format("%Y-%m-%d");
            return Ok(Some(DeviceError::NotTaken {
                reason: NotTaken::FnBlocked,
                message: format!(
                    "the fiscal drive is blocked: document {number} has waited for the OFD's confirmation since \
                     {since}, 30 days or more (54-FZ); restore the OFD connection and deliver the waiting receipts"
                ),
            }));
        }
        if self.expired(s, now) && !self.config.auto_shift {
            return Ok(Some(DeviceError::NotTaken {
                reason: NotTaken::ShiftExpired,
                message: format!(
                    "shift {} is over 24 hours old: close it (POST /v1/kkt/shift/close) before the next receipt",
                    s.shift_number
                ),
            }));
        }
        Ok(None)
    }

    /// Registers one receipt: the shift first if needed, then the receipt document.
    fn register(
        &self,
        conn: &Connection,
        s: &mut FnState,
        task: &Task,
    ) -> rusqlite::Result<Result<(FiscalDoc, bool), DeviceError>> {
        if let Some(doc) = find(conn, &task.id)? {
            return Ok(Ok((doc, false)));
        }
        let now = task.requested_at;
        if let Some(refusal) = self.refusal(conn, s, now)? {
            return Ok(Err(refusal));
        }
        if self.expired(s, now) {
            self.close(conn, s, now)?;
        }
        if !s.shift_open {
            self.open_shift(conn, s, now)?;
        }
        s.receipts_in_shift += 1;
        let receipt = &task.receipt;
        let datetime = rfc3339(now);
        let (shift, in_shift) = (s.shift_number, s.receipts_in_shift);
        let local = self.config.zone.local(now);
        let mut made = None;
        self.document(conn, s, "receipt", now, |number| {
            let sign = fiscal_sign(&self.config.fn_number, number, &datetime, receipt.total);
            let qr = format!(
                "t={}&s={}&fn={}&i={}&fp={}&n={}",
                local.format("%Y%m%dT%H%M"),
                receipt.total,
                self.config.fn_number,
                number,
                sign,
                receipt.kind.qr_operation()
            );
            let doc = FiscalDoc {
                fiscal_doc_number: number,
                fiscal_sign: sign,
                fiscal_datetime: datetime.clone(),
                fn_number: self.config.fn_number.clone(),
                kkt_number: self.config.kkt_number.clone(),
                shift_number: shift,
                receipt_number: in_shift,
                total: receipt.total,
                qr_code_data: qr,
            };
            let text = to_json(&doc)?;
            made = Some(doc);
            Ok((Some(task.id.clone()), text, Some(to_json(&Summary::of(receipt))?)))
        })?;
        match made {
            Some(doc) => Ok(Ok((doc, true))),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    }

    fn save(&self, conn: &Connection, s: &FnState) -> rusqlite::Result<()> {
        conn.prepare_cached(
            "UPDATE fn_state SET last_doc_number = ?2, shift_number = ?3, shift_open = ?4, shift_opened_at = ?5,
             receipts_in_shift = ?6 WHERE fn_number = ?1",
        )?
        .execute(params![
            self.config.fn_number,
            s.last_doc_number,
            s.shift_number,
            s.shift_open,
            s.shift_opened_at_ms,
            s.receipts_in_shift
        ])?;
        Ok(())
    }

    fn print(&self, task: &Task, doc: &FiscalDoc) -> Option<String> {
        if !self.config.print_latency.is_zero() {
            std::thread::sleep(self.config.print_latency);
        }
        let dir = self.config.slip_dir.as_ref()?;
        let day = doc.fiscal_datetime.get(..10).unwrap_or("unknown");
        let dir = dir.join(day);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return Some(format!("printer error: slip folder: {e}"));
        }
        let path = dir.join(format!("{:08}.txt", doc.fiscal_doc_number));
        let text = slip::text(&self.config.seller, &self.config.zone, &task.id, &task.receipt, doc);
        std::fs::write(&path, text)
            .err()
            .map(|e| format!("printer error: slip {}: {e}", path.display()))
    }

    /// Runs `f` on the current FN's state in one transaction and saves the state if it succeeds.
    fn transaction<T>(
        &self,
        f: impl FnOnce(&Connection, &mut FnState) -> rusqlite::Result<T>,
    ) -> Result<T, DeviceError> {
        let mut conn = self.memory()?;
        let tx = conn.transaction().map_err(unavailable)?;
        let mut s = load(&tx, &self.config.fn_number).map_err(unavailable)?;
        let out = f(&tx, &mut s).map_err(unavailable)?;
        self.save(&tx, &s).map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }
}

fn load(conn: &Connection, fn_number: &str) -> rusqlite::Result<FnState> {
    conn.prepare_cached(
        "SELECT last_doc_number, shift_number, shift_open, shift_opened_at, receipts_in_shift
         FROM fn_state WHERE fn_number = ?1",
    )?
    .query_row([fn_number], |r| {
        Ok(FnState {
            last_doc_number: r.get(0)?,
            shift_number: r.get(1)?,
            shift_open: r.get(2)?,
            shift_opened_at_ms: r.get(3)?,
            receipts_in_shift: r.get(4)?,
        })
    })
}

fn find(conn: &Connection, task_id: &str) -> rusqlite::Result<Option<FiscalDoc>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT doc FROM documents WHERE task_id = ?1")?
        .query_row([task_id], |r| r.get(0))
        .optional()?;
    text.map(|t| from_json(&t)).transpose()
}

impl Kkt for MockKkt {
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
        // One transaction for the whole batch: the device's own commit is shared like the buffer's.
        let registered: Result<Vec<_>, DeviceError> =
            self.transaction(|tx, s| tasks.iter().map(|t| self.register(tx, s, t)).collect());
        match registered {
            Ok(results) => tasks
                .iter()
                .zip(results)
                .map(|(task, result)| {
                    let (doc, new) = result?;
                    // A task registered before is not printed again.
                    let print_error = if new { self.print(task, &doc) } else { None };
                    Ok(Fiscalized { doc, print_error })
                })
                .collect(),
            Err(e) => tasks.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError> {
        let doc = find(&*self.memory()?, &task.id).map_err(unavailable)?;
        Ok(doc.map(|doc| Fiscalized { doc, print_error: None }))
    }

    fn shift(&self, now: DateTime<Utc>) -> Result<ShiftStatus, DeviceError> {
        let s = load(&*self.memory()?, &self.config.fn_number).map_err(unavailable)?;
        let opened = Utc.timestamp_millis_opt(s.shift_opened_at_ms).single();
        let expires = opened.map(|o| o + self.config.shift_length);
        Ok(ShiftStatus {
            state: if !s.shift_open {
                ShiftState::Closed
            } else if self.expired(&s, now) {
                ShiftState::Expired
            } else {
                ShiftState::Open
            },
            number: s.shift_number,
            opened_at: opened.filter(|_| s.shift_open).map(rfc3339),
            expires_at: expires.filter(|_| s.shift_open).map(rfc3339),
            receipts: if s.shift_open { s.receipts_in_shift } else { 0 },
            fn_number: self.config.fn_number.clone(),
            last_fiscal_doc_number: s.last_doc_number,
        })
    }

    fn close_shift(&self, now: DateTime<Utc>) -> Result<ZReport, DeviceError> {
        let report = self.transaction(|tx, s| {
            if !s.shift_open {
                return Ok(None);
            }
            self.close(tx, s, now).map(Some)
        })?;
        report.ok_or_else(|| DeviceError::NotTaken {
            reason: NotTaken::NoOpenShift,
            message: "no shift is open: it opens by itself with the next receipt".into(),
        })
    }

    fn ofd_confirmed(&self, documents: &[(String, i64)]) {
        let confirmed = (|| -> Result<(), DeviceError> {
            let mut conn = self.memory()?;
            let tx = conn.transaction().map_err(unavailable)?;
            for (fn_number, number) in documents {
                tx.prepare_cached("UPDATE documents SET confirmed = 1 WHERE fn_number = ?1 AND doc_number = ?2")
                    .and_then(|mut s| s.execute(params![fn_number, number]))
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })();
        if let Err(e) = confirmed {
            tracing::error!(error = %e, "the mock register could not record OFD confirmations");
        }
    }

    fn describe(&self) -> String {
        format!("mock KKT, FN {}", self.config.fn_number)
    }
}

#[cfg(test)]
mod tests;
