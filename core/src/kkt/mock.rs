//! The mock register: a software KKT with a fiscal memory of its own, so it behaves like a
//! device behind the seam — it numbers documents itself, remembers every task it registered
//! (by task id, as ATOL's web server does), answers [`Kkt::lookup`] from that memory, and prints
//! a text slip.
//!
//! The memory is an SQLite file beside the buffer (`<data>/mock-kkt.db`; in memory for unit
//! tests), in WAL mode with `synchronous=NORMAL`: it survives the process being killed at any
//! point — what a crash test needs of it — while an FN's survival of power loss is not modelled.
//! Numbering is per FN: a new `fn_number` in the settings is a replaced fiscal drive and starts
//! again at 1.

use super::{DeviceError, FiscalDoc, Fiscalized, Kkt, KktCounters, Task};
use crate::money::Kopecks;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

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
    /// A shift is closed and the next opened after this long (54-FZ: at most 24 h).
    pub shift_length: Duration,
}

/// A software KKT: real numbering, a deterministic fiscal sign, a QR string and a text slip.
pub struct MockKkt {
    config: MockKktConfig,
    memory: Mutex<Connection>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS fn_state (
        fn_number         TEXT PRIMARY KEY,
        last_doc_number   INTEGER NOT NULL,
        shift_number      INTEGER NOT NULL,
        shift_opened_at   INTEGER NOT NULL,
        receipts_in_shift INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS documents (
        task_id    TEXT PRIMARY KEY,
        fn_number  TEXT NOT NULL,
        doc_number INTEGER NOT NULL,
        doc        TEXT NOT NULL,
        UNIQUE (fn_number, doc_number)
    );
";

/// The 10-character fiscal sign: derived from the document's identity, so it is stable and unique.
fn fiscal_sign(fn_number: &str, number: i64, datetime: &str, total: Kopecks) -> String {
    let digest = Sha256::digest(format!("{fn_number}|{number}|{datetime}|{}", total.0));
    hex::encode_upper(&digest[..5])
}

fn unavailable(e: rusqlite::Error) -> DeviceError {
    DeviceError::Unavailable(format!("the mock register's memory failed: {e}"))
}

impl MockKkt {
    /// Opens (or creates) the fiscal memory.
    pub fn open(config: MockKktConfig) -> Result<MockKkt, rusqlite::Error> {
        let conn = match &config.state_path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let empty: bool = conn.query_row("SELECT count(*) = 0 FROM fn_state", [], |r| r.get(0))?;
        let seed = if empty { config.seed } else { KktCounters::default() };
        conn.execute(
            "INSERT OR IGNORE INTO fn_state VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                config.fn_number,
                seed.last_fiscal_doc_number,
                seed.shift_number,
                seed.shift_opened_at_ms,
                seed.receipts_in_shift
            ],
        )?;
        Ok(MockKkt {
            config,
            memory: Mutex::new(conn),
        })
    }

    /// The counters of the current FN.
    pub fn counters(&self) -> Result<KktCounters, DeviceError> {
        let conn = self
            .memory
            .lock()
            .map_err(|_| DeviceError::Unavailable("mock memory lock".into()))?;
        load(&conn, &self.config.fn_number).map_err(unavailable)
    }

    fn register(&self, conn: &Connection, c: &mut KktCounters, task: &Task) -> rusqlite::Result<(FiscalDoc, bool)> {
        if let Some(doc) = find(conn, &task.id)? {
            return Ok((doc, false));
        }
        let now = task.requested_at;
        let now_ms = now.timestamp_millis();
        let shift_ms = self.config.shift_length.as_millis() as i64;
        if c.shift_number == 0 || now_ms - c.shift_opened_at_ms >= shift_ms {
            c.shift_number += 1;
            c.shift_opened_at_ms = now_ms;
            c.receipts_in_shift = 0;
        }
        c.last_fiscal_doc_number += 1;
        c.receipts_in_shift += 1;
        let number = c.last_fiscal_doc_number;
        let receipt = &task.receipt;
        let datetime = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let sign = fiscal_sign(&self.config.fn_number, number, &datetime, receipt.total);
        let qr = format!(
            "t={}&s={}&fn={}&i={}&fp={}&n={}",
            now.format("%Y%m%dT%H%M"),
            receipt.total,
            self.config.fn_number,
            number,
            sign,
            receipt.kind.qr_operation()
        );
        let doc = FiscalDoc {
            fiscal_doc_number: number,
            fiscal_sign: sign,
            fiscal_datetime: datetime,
            fn_number: self.config.fn_number.clone(),
            kkt_number: self.config.kkt_number.clone(),
            shift_number: c.shift_number,
            receipt_number: c.receipts_in_shift,
            total: receipt.total,
            qr_code_data: qr,
        };
        let text = serde_json::to_string(&doc).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        conn.prepare_cached("INSERT INTO documents (task_id, fn_number, doc_number, doc) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![task.id, doc.fn_number, number, text])?;
        Ok((doc, true))
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
        std::fs::write(&path, super::slip::text(&task.id, &task.receipt, doc))
            .err()
            .map(|e| format!("printer error: slip {}: {e}", path.display()))
    }
}

fn load(conn: &Connection, fn_number: &str) -> rusqlite::Result<KktCounters> {
    conn.prepare_cached(
        "SELECT last_doc_number, shift_number, shift_opened_at, receipts_in_shift FROM fn_state WHERE fn_number = ?1",
    )?
    .query_row([fn_number], |r| {
        Ok(KktCounters {
            last_fiscal_doc_number: r.get(0)?,
            shift_number: r.get(1)?,
            shift_opened_at_ms: r.get(2)?,
            receipts_in_shift: r.get(3)?,
        })
    })
}

fn find(conn: &Connection, task_id: &str) -> rusqlite::Result<Option<FiscalDoc>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT doc FROM documents WHERE task_id = ?1")?
        .query_row([task_id], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
    })
    .transpose()
}

impl Kkt for MockKkt {
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
        // One transaction for the whole batch: the device's own "fsync" is shared like the buffer's.
        let registered = (|| -> Result<Vec<(FiscalDoc, bool)>, DeviceError> {
            let mut conn = self
                .memory
                .lock()
                .map_err(|_| DeviceError::Unavailable("mock memory lock".into()))?;
            let tx = conn.transaction().map_err(unavailable)?;
            let mut c = load(&tx, &self.config.fn_number).map_err(unavailable)?;
            let docs = tasks
                .iter()
                .map(|t| self.register(&tx, &mut c, t))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)?;
            tx.prepare_cached(
                "UPDATE fn_state SET last_doc_number = ?2, shift_number = ?3, shift_opened_at = ?4,
                 receipts_in_shift = ?5 WHERE fn_number = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.config.fn_number,
                    c.last_fiscal_doc_number,
                    c.shift_number,
                    c.shift_opened_at_ms,
                    c.receipts_in_shift
                ])
            })
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(docs)
        })();
        match registered {
            Ok(docs) => tasks
                .iter()
                .zip(docs)
                .map(|(task, (doc, new))| {
                    // A task registered before is not printed again.
                    let print_error = if new { self.print(task, &doc) } else { None };
                    Ok(Fiscalized { doc, print_error })
                })
                .collect(),
            Err(e) => tasks.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn lookup(&self, task_id: &str) -> Result<Option<Fiscalized>, DeviceError> {
        let conn = self
            .memory
            .lock()
            .map_err(|_| DeviceError::Unavailable("mock memory lock".into()))?;
        let doc = find(&conn, task_id).map_err(unavailable)?;
        Ok(doc.map(|doc| Fiscalized { doc, print_error: None }))
    }

    fn describe(&self) -> String {
        format!("mock KKT, FN {}", self.config.fn_number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn config(dir: Option<PathBuf>) -> MockKktConfig {
        MockKktConfig {
            fn_number: "9999999999999999".into(),
            kkt_number: "0000000000001234".into(),
            state_path: None,
            seed: KktCounters::default(),
            slip_dir: dir,
            print_latency: Duration::ZERO,
            shift_length: Duration::from_secs(24 * 3600),
        }
    }

    fn task(id: &str, kind: &str, at: chrono::DateTime<Utc>) -> Task {
        let body = format!(
            r#"{{"pos_id":"POS-001","type":"{kind}","items":[{{"name":"Test","price":100,"qty":1}}],"payments":[{{"type":"cash","amount":100}}]}}"#
        );
        Task {
            id: id.into(),
            receipt: crate::receipt::parse(body.as_bytes()).unwrap(),
            requested_at: at,
        }
    }

    fn one(k: &MockKkt, t: Task) -> FiscalDoc {
        k.fiscalize(&[t]).remove(0).unwrap().doc
    }

    #[test]
    fn numbers_continue_from_the_seed_and_the_qr_string_carries_them() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 0).unwrap();
        let k = MockKkt::open(MockKktConfig {
            seed: KktCounters {
                last_fiscal_doc_number: 16,
                shift_number: 1,
                shift_opened_at_ms: now.timestamp_millis(),
                receipts_in_shift: 16,
            },
            ..config(None)
        })
        .unwrap();
        let a = one(&k, task("a", "sale", now));
        let b = one(&k, task("b", "sale", now));
        assert_eq!((a.fiscal_doc_number, b.fiscal_doc_number), (17, 18));
        assert_eq!((a.receipt_number, a.shift_number), (17, 1));
        assert_eq!(a.fiscal_sign.len(), 10);
        assert_ne!(a.fiscal_sign, b.fiscal_sign);
        assert_eq!(
            a.qr_code_data,
            format!(
                "t=20261128T1015&s=100.00&fn=9999999999999999&i=17&fp={}&n=1",
                a.fiscal_sign
            )
        );
    }

    #[test]
    fn a_task_is_registered_once_and_looked_up_by_its_id() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 0).unwrap();
        let k = MockKkt::open(config(None)).unwrap();
        assert_eq!(k.lookup("t1").unwrap(), None, "never sent: safe to send");
        let first = one(&k, task("t1", "sale", now));
        let again = one(&k, task("t1", "sale", now));
        assert_eq!(first, again, "the same task id never makes a second document");
        assert_eq!(k.lookup("t1").unwrap().unwrap().doc, first);
        assert_eq!(k.counters().unwrap().last_fiscal_doc_number, 1);
    }

    #[test]
    fn a_refund_is_operation_two_and_a_new_shift_opens_after_a_day() {
        let day1 = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
        let k = MockKkt::open(config(None)).unwrap();
        let a = one(&k, task("a", "refund", day1));
        assert!(a.qr_code_data.ends_with("&n=2"));
        assert_eq!((a.shift_number, a.receipt_number), (1, 1));
        let b = one(&k, task("b", "sale", day1 + chrono::Duration::hours(25)));
        assert_eq!((b.shift_number, b.receipt_number, b.fiscal_doc_number), (2, 1, 2));
    }

    #[test]
    fn the_memory_survives_a_restart_and_a_new_fn_starts_at_one() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
        let cfg = MockKktConfig {
            state_path: Some(dir.path().join("mock-kkt.db")),
            ..config(None)
        };
        let k = MockKkt::open(cfg.clone()).unwrap();
        one(&k, task("a", "sale", now));
        drop(k);
        let k = MockKkt::open(MockKktConfig {
            seed: KktCounters {
                last_fiscal_doc_number: 500,
                ..KktCounters::default()
            },
            ..cfg.clone()
        })
        .unwrap();
        assert_eq!(
            one(&k, task("b", "sale", now)).fiscal_doc_number,
            2,
            "the seed only starts an empty memory"
        );
        assert!(k.lookup("a").unwrap().is_some());
        drop(k);
        let replaced = MockKkt::open(MockKktConfig {
            fn_number: "9999000000000002".into(),
            ..cfg
        })
        .unwrap();
        let c = one(&replaced, task("c", "sale", now));
        assert_eq!((c.fn_number.as_str(), c.fiscal_doc_number), ("9999000000000002", 1));
    }

    #[test]
    fn printing_writes_a_readable_slip() {
        let dir = tempfile::tempdir().unwrap();
        let k = MockKkt::open(config(Some(dir.path().to_path_buf()))).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 0).unwrap();
        let r = k.fiscalize(&[task("abc", "sale", now)]).remove(0).unwrap();
        assert_eq!(r.print_error, None);
        let slip = std::fs::read_to_string(dir.path().join("2026-11-28/00000001.txt")).unwrap();
        assert!(slip.contains("ИТОГ 100.00"), "{slip}");
        assert!(slip.contains(&r.doc.fiscal_sign));
    }

    #[test]
    fn a_slip_that_cannot_be_written_is_a_print_error_on_a_fiscal_document() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, "x").unwrap();
        let k = MockKkt::open(config(Some(file))).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 0).unwrap();
        let r = k.fiscalize(&[task("abc", "sale", now)]).remove(0).unwrap();
        assert!(r.print_error.unwrap().contains("printer error"));
        assert_eq!(r.doc.fiscal_doc_number, 1);
    }
}
