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
//! Its parts: the fiscal memory ([`memory`]), what shift reports add up ([`report`]), and the
//! faults tests switch on ([`faults`]) — so the core's exactly-once rules meet the same failure
//! orders a real register shows.

mod counter;
mod faults;
mod fiscal;
mod memory;
mod report;

pub use faults::MockFaults;

use super::slip::{self, Seller};
use super::{
    Candidate, DeviceError, DeviceInfo, FiscalDoc, Fiscalized, Kkt, KktCounters, NotTaken, OpResult, OpTask,
    ShiftState, ShiftStatus, Task, ZReport,
};
use crate::money::Kopecks;
use crate::time::Zone;
use chrono::{DateTime, TimeZone, Utc};
use faults::Next;
use memory::{FnState, load};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The line between two slips on the roll (where the printer cuts).
pub const CUT: &str = "✂ - - - - - - - - - - - - - - - - - - - -";

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
    /// Where the day's slip rolls are written (`<data dir>/receipts`); `None` prints nowhere.
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
    faults: Mutex<MockFaults>,
    /// Today's paper roll, open for appending: `<slip_dir>/YYYY-MM-DD.txt`.
    roll: Mutex<Option<(String, std::fs::File)>>,
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

impl MockKkt {
    /// Opens (or creates) the fiscal memory.
    pub fn open(config: MockKktConfig) -> Result<MockKkt, rusqlite::Error> {
        let conn = memory::open(config.state_path.as_deref())?;
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
            faults: Mutex::new(MockFaults::default()),
            roll: Mutex::new(None),
        })
    }

    /// Switches the register's faults (tests; the demo's test codes).
    pub fn set_faults(&self, faults: MockFaults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    pub fn faults(&self) -> MockFaults {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn next_fault(&self) -> Next {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).take()
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
    /// Prints the slip on the day's paper roll (`<slip_dir>/YYYY-MM-DD.txt`, slips one after
    /// another with a cut line between them, as a printer's roll holds them). One file a day,
    /// kept open: a file per receipt made the file system the mock's slowest part.
    fn print(&self, task: &Task, doc: &FiscalDoc) -> Option<String> {
        // An electronic receipt goes to the customer through the OFD: no paper.
        if task.receipt.electronic {
            return None;
        }
        if !self.config.print_latency.is_zero() {
            std::thread::sleep(self.config.print_latency);
        }
        let day = doc.fiscal_datetime.get(..10).unwrap_or("unknown");
        let text = slip::text(&self.config.seller, &self.config.zone, &task.id, &task.receipt, doc);
        self.roll_on(day, &format!("{text}\n{CUT}\n\n")).err()
    }

    /// Appends to today's roll (the register's local day).
    fn append_roll(&self, text: &str) -> Result<(), String> {
        let day = self.config.zone.local(Utc::now()).format("%Y-%m-%d").to_string();
        self.roll_on(&day, text)
    }

    /// Appends to the roll of `day`, opening it if need be; nowhere without a slip directory.
    fn roll_on(&self, day: &str, text: &str) -> Result<(), String> {
        use std::io::Write;
        let Some(dir) = self.config.slip_dir.as_ref() else {
            return Ok(());
        };
        let mut roll = self.roll.lock().unwrap_or_else(|p| p.into_inner());
        if roll.as_ref().is_none_or(|(d, _)| d != day) {
            *roll = None;
            let path = dir.join(format!("{day}.txt"));
            let opened = std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&path));
            match opened {
                Ok(f) => *roll = Some((day.to_string(), f)),
                Err(e) => return Err(format!("printer error: slip roll {}: {e}", path.display())),
            }
        }
        let Some((_, file)) = roll.as_mut() else {
            return Ok(());
        };
        file.write_all(text.as_bytes())
            .map_err(|e| format!("printer error: slip roll: {e}"))
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
        memory::save(&tx, &self.config.fn_number, &s).map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }
}

impl Kkt for MockKkt {
    fn fiscalize(&self, tasks: &[Task]) -> Vec<Result<Fiscalized, DeviceError>> {
        let faults: Vec<Next> = tasks.iter().map(|_| self.next_fault()).collect();
        // One transaction for the whole batch: the device's own commit is shared like the buffer's.
        let registered: Result<Vec<_>, DeviceError> = self.transaction(|tx, s| {
            tasks
                .iter()
                .zip(&faults)
                .map(|(t, fault)| {
                    memory::mark(tx, &t.id, &self.config.fn_number, s.last_doc_number)?;
                    Ok((t, fault))
                })
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|(t, fault)| match fault {
                    Next::PaperOut => Ok(Err(DeviceError::Unavailable("нет бумаги (эмулятор ККТ)".into()))),
                    Next::UnknownCode => Ok(Err(DeviceError::Unexpected {
                        code: "9999".into(),
                        message: "ошибка, которой нет в таблице кодов (эмулятор ККТ)".into(),
                    })),
                    Next::UntaggedAfterWrite => self.register(tx, s, t, false),
                    Next::Normal | Next::LoseAfterWrite => self.register(tx, s, t, true),
                })
                .collect()
        });
        match registered {
            Ok(results) => tasks
                .iter()
                .zip(results)
                .zip(faults)
                .map(|((task, result), fault)| {
                    let (mut f, new) = result?;
                    if matches!(fault, Next::LoseAfterWrite | Next::UntaggedAfterWrite) {
                        // The FN has it; the answer never reaches the adapter.
                        return Err(DeviceError::Unavailable(
                            "связь с ККТ потеряна при закрытии чека (эмулятор); чек будет проверен в ФН".into(),
                        ));
                    }
                    // A task registered before is not printed again.
                    if new {
                        f.print_error = self.print(task, &f.doc);
                    }
                    Ok(f)
                })
                .collect(),
            Err(e) => tasks.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn lookup(&self, task: &Task) -> Result<Option<Fiscalized>, DeviceError> {
        let conn = self.memory()?;
        if let Some(found) = memory::find(&conn, &task.id).map_err(unavailable)? {
            let operation = found.operation();
            return Ok(Some(Fiscalized {
                doc: found.doc,
                print_error: None,
                operation,
            }));
        }
        // Documents after this receipt's mark that belong to no receipt: the FN may hold this
        // one without its tag, and nothing here can tell (docs/contract.md §10.2).
        let candidates: Vec<Candidate> = memory::untagged_since_mark(&conn, &self.config.fn_number, &task.id)
            .map_err(unavailable)?
            .into_iter()
            .map(|d| Candidate {
                fiscal_doc_number: d.doc.fiscal_doc_number,
                operation: Some(d.operation().as_str().into()),
                total: Some(d.summary.total),
                datetime: Some(d.doc.fiscal_datetime.clone()),
                why: "документ в ФН без метки чека: может быть этим чеком".into(),
            })
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        Err(DeviceError::NeedsReview {
            reason: format!(
                "в ФН есть документ без метки чека (№ {}), который может быть этим чеком; ККТ не может сказать точно",
                candidates
                    .iter()
                    .map(|c| c.fiscal_doc_number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            candidates,
        })
    }

    fn attach(&self, task: &Task, number: i64) -> Result<Fiscalized, DeviceError> {
        let conn = self.memory()?;
        let mismatch = |why: String| DeviceError::Refused {
            code: "document_mismatch".into(),
            message: why,
        };
        let Some(found) = memory::receipt(&conn, &self.config.fn_number, number).map_err(unavailable)? else {
            return Err(mismatch(format!("в ФН нет кассового чека № {number}")));
        };
        let operation = found.operation();
        if found.task_id.as_deref().is_some_and(|t| t != task.id) {
            return Err(mismatch(format!("чек № {number} в ФН принадлежит другому чеку")));
        }
        if found.summary.total != task.receipt.total
            || (operation != task.receipt.kind && operation != task.receipt.kind.correction())
        {
            return Err(mismatch(format!(
                "чек № {number} в ФН — {} на {} ₽, а этот чек — {} на {} ₽",
                operation.as_str(),
                found.summary.total,
                task.receipt.kind.as_str(),
                task.receipt.total
            )));
        }
        memory::tag(&conn, &self.config.fn_number, number, &task.id).map_err(unavailable)?;
        Ok(Fiscalized {
            doc: found.doc,
            print_error: None,
            operation,
        })
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

    fn device_info(&self, now: DateTime<Utc>) -> Result<DeviceInfo, DeviceError> {
        let shift = self.shift(now)?;
        let fn_number = &self.config.fn_number;
        let conn = self.memory()?;
        let (unsent, first, first_at): (i64, Option<i64>, Option<i64>) = conn
            .prepare_cached(
                "SELECT count(*), min(doc_number), min(created_at) FROM documents
                 WHERE fn_number = ?1 AND kind = 'receipt' AND confirmed = 0",
            )
            .and_then(|mut s| s.query_row([fn_number], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
            .map_err(unavailable)?;
        let cash = counter::cash_in_drawer(&conn, fn_number).map_err(unavailable)?;
        Ok(DeviceInfo {
            model: "KKT Adapter mock register".into(),
            serial: self.config.kkt_number.clone(),
            firmware: Some(env!("CARGO_PKG_VERSION").into()),
            ffd_version: Some("1.2".into()),
            fn_number: fn_number.clone(),
            fn_valid_until: None,
            fn_phase: Some("fiscalMode".into()),
            shift: shift.state,
            shift_number: shift.number,
            paper_present: Some(!self.faults().paper_out),
            cover_open: Some(false),
            drawer_open: None,
            fn_unsent: unsent,
            fn_unsent_first: first,
            fn_unsent_first_at: first_at
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                .map(rfc3339),
            cash_in_drawer: Some(cash),
        })
    }

    /// The mock FN checks codes by the test codes of README "Marked goods": a serial starting
    /// with `FNREFUSE` has a tail the FN does not confirm; every other code is checked and
    /// correct (2106 = 15).
    fn check_marking(&self, code: &str, _refund: bool) -> Result<Option<super::marks::FnCheck>, DeviceError> {
        let serial = code.get(18..).unwrap_or_default();
        let tag_2106 = if serial.starts_with("FNREFUSE") { 1 } else { 15 };
        Ok(Some(super::marks::FnCheck { tag_2106 }))
    }

    fn operate(&self, task: &OpTask) -> Result<OpResult, DeviceError> {
        self.run_operation(task)
    }

    fn operation_lookup(&self, task: &OpTask) -> Result<Option<OpResult>, DeviceError> {
        self.operation_found(task)
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
