//! The mock register's counter operations (docs/contract.md §11), each remembered by its task
//! id with its result, as ATOL's web server remembers a job by its uuid: an operation run
//! twice under one id runs once, and a lookup answers from that memory.
//!
//! As on an ATOL register (docs/research/atol-counter-operations.md §2–§9): opening and closing
//! the shift are FN documents; cash in and out move the drawer's counter and the shift's
//! income/outcome counters, not the FN; a cash operation on a closed shift opens one first; a
//! cash-out above the drawer is refused (ATOL error 80); the X-report, the drawer, a slip and a
//! copy print and change nothing.

use super::faults::Next;
use super::memory::{self, FnState, from_json};
use super::report::{self, Summary};
use super::{CUT, MockKkt, rfc3339, unavailable};
use crate::kkt::ops::{
    CashDirection, CashMoved, Movement, OpTask, Operation, Printed, ShiftOpened, ShiftTotals, XReport, to_result,
};
use crate::kkt::{DeviceError, NotTaken, OpResult};
use crate::money::Kopecks;
use crate::receipt::PaymentType;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};

fn refused(code: &str, message: impl Into<String>) -> DeviceError {
    DeviceError::Refused {
        code: code.into(),
        message: message.into(),
    }
}

/// The drawer's counter: every receipt's cash on this FN, in or out by its operation, and every
/// cash in and out.
pub(super) fn cash_in_drawer(conn: &Connection, fn_number: &str) -> rusqlite::Result<Kopecks> {
    let summaries: Vec<String> = conn
        .prepare_cached("SELECT summary FROM documents WHERE fn_number = ?1 AND kind = 'receipt'")?
        .query_map([fn_number], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut cash = 0i64;
    for text in summaries {
        let summary: Summary = from_json(&text)?;
        let paid: i64 = summary
            .payments
            .iter()
            .filter(|p| p.kind == PaymentType::Cash)
            .map(|p| p.amount.0)
            .sum();
        cash += if summary.kind.money_in() { paid } else { -paid };
    }
    let moved: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(CASE kind WHEN 'cash_in' THEN amount ELSE -amount END), 0) FROM operations
             WHERE fn_number = ?1 AND kind IN ('cash_in', 'cash_out')",
        )?
        .query_row([fn_number], |r| r.get(0))?;
    Ok(Kopecks(cash + moved))
}

/// Cash in or out of one shift.
fn movement(conn: &Connection, fn_number: &str, shift: i64, kind: &str) -> rusqlite::Result<Movement> {
    conn.prepare_cached(
        "SELECT count(*), coalesce(sum(amount), 0) FROM operations
         WHERE fn_number = ?1 AND shift_number = ?2 AND kind = ?3",
    )?
    .query_row(params![fn_number, shift, kind], |r| {
        Ok(Movement {
            count: r.get(0)?,
            sum: Kopecks(r.get(1)?),
        })
    })
}

impl MockKkt {
    /// The shift's totals now: receipts per operation, cash in and out, the drawer.
    pub(super) fn totals(&self, conn: &Connection, s: &FnState) -> rusqlite::Result<ShiftTotals> {
        let fn_number = &self.config.fn_number;
        let summaries: Vec<String> = conn
            .prepare_cached(
                "SELECT summary FROM documents WHERE fn_number = ?1 AND shift_number = ?2 AND kind = 'receipt'
                 ORDER BY doc_number",
            )?
            .query_map(params![fn_number, s.shift_number], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let receipts = summaries.len() as i64;
        let summaries = summaries
            .iter()
            .map(|t| from_json::<Summary>(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ShiftTotals {
            shift_number: s.shift_number,
            receipts,
            operations: report::sum(summaries),
            cash_in: movement(conn, fn_number, s.shift_number, "cash_in")?,
            cash_out: movement(conn, fn_number, s.shift_number, "cash_out")?,
            cash_in_drawer: Some(cash_in_drawer(conn, fn_number)?),
        })
    }

    /// The result stored for an operation id, if it ran.
    fn ran(conn: &Connection, task_id: &str) -> rusqlite::Result<Option<OpResult>> {
        conn.prepare_cached("SELECT result FROM operations WHERE task_id = ?1")?
            .query_row([task_id], |r| r.get(0))
            .optional()
    }

    pub(super) fn operation_found(&self, task: &OpTask) -> Result<Option<OpResult>, DeviceError> {
        let conn = self.memory()?;
        Self::ran(&conn, &task.id).map_err(unavailable)
    }

    /// Runs an operation once: the faults first (as a receipt meets them), then the operation
    /// and its memory row in one transaction, then the paper.
    pub(super) fn run_operation(&self, task: &OpTask) -> Result<OpResult, DeviceError> {
        let fault = self.next_fault();
        match fault {
            Next::PaperOut if !matches!(task.op, Operation::DrawerOpen) => {
                return Err(DeviceError::Unavailable("нет бумаги (эмулятор ККТ)".into()));
            }
            Next::UnknownCode => {
                return Err(DeviceError::Unexpected {
                    code: "9999".into(),
                    message: "ошибка, которой нет в таблице кодов (эмулятор ККТ)".into(),
                });
            }
            _ => {}
        }
        let now = task.requested_at;
        let (result, new, paper) = self.transaction(|tx, s| {
            if let Some(result) = Self::ran(tx, &task.id)? {
                return Ok(Ok((result, false, None)));
            }
            let (result, amount, paper) = match self.apply(tx, s, task, now)? {
                Ok(done) => done,
                Err(e) => return Ok(Err(e)),
            };
            let kind = match &task.op {
                Operation::Cash {
                    direction: CashDirection::In,
                    ..
                } => "cash_in",
                Operation::Cash { .. } => "cash_out",
                op => op.name(),
            };
            tx.prepare_cached(
                "INSERT INTO operations (task_id, fn_number, shift_number, kind, amount, created_at, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                task.id,
                self.config.fn_number,
                s.shift_number,
                kind,
                amount,
                now.timestamp_millis(),
                result
            ])?;
            Ok(Ok((result, true, paper)))
        })??;
        if fault == Next::LoseAfterWrite {
            return Err(DeviceError::Unavailable(
                "связь с ККТ потеряна во время операции (эмулятор); операция будет проверена".into(),
            ));
        }
        if new && let Some(text) = paper {
            self.print_text(&text);
        }
        Ok(result)
    }

    /// The operation itself, inside the memory's transaction: its result, the cash it moved,
    /// and what comes out on paper.
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        tx: &Connection,
        s: &mut FnState,
        task: &OpTask,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Result<(OpResult, i64, Option<String>), DeviceError>> {
        let fn_number = self.config.fn_number.clone();
        let cashier = task.op.cashier().cloned();
        let who = cashier
            .as_ref()
            .map(|c| format!("\nКассир: {}", c.name))
            .unwrap_or_default();
        let opened_at = |s: &FnState| {
            Utc.timestamp_millis_opt(s.shift_opened_at_ms)
                .single()
                .filter(|_| s.shift_open)
                .map(rfc3339)
        };
        Ok(Ok(match &task.op {
            Operation::ShiftOpen { .. } => {
                if s.shift_open {
                    let why = if self.expired(s, now) {
                        "смена открыта более 24 часов: закройте её"
                    } else {
                        "смена уже открыта"
                    };
                    return Ok(Err(refused("83", format!("{why} (смена {})", s.shift_number))));
                }
                if let Some(e) = self.refusal(tx, s, now)? {
                    return Ok(Err(e));
                }
                self.open_shift(tx, s, now)?;
                let opened = ShiftOpened {
                    shift_number: s.shift_number,
                    opened_at: rfc3339(now),
                    fiscal_doc_number: Some(s.last_doc_number),
                    fiscal_sign: None,
                    fn_number,
                    cashier,
                };
                let paper = format!(
                    "ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ\nСмена № {}\nФД № {}{who}",
                    s.shift_number, s.last_doc_number
                );
                (to_result(&opened), 0, Some(paper))
            }
            Operation::ShiftClose { .. } => {
                if !s.shift_open {
                    return Ok(Err(DeviceError::NotTaken {
                        reason: NotTaken::NoOpenShift,
                        message: "смена не открыта".into(),
                    }));
                }
                let totals = self.totals(tx, s)?;
                let mut z = self.close(tx, s, now)?;
                z.cash_in = Some(totals.cash_in);
                z.cash_out = Some(totals.cash_out);
                z.cash_in_drawer = totals.cash_in_drawer;
                z.cashier = cashier;
                let paper = format!(
                    "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ\nСмена № {}\nФД № {}\nЧеков: {}{who}",
                    z.shift_number, z.fiscal_doc_number, z.receipts
                );
                (to_result(&z), 0, Some(paper))
            }
            Operation::ReportX { .. } => {
                if !s.shift_open {
                    return Ok(Err(DeviceError::NotTaken {
                        reason: NotTaken::NoOpenShift,
                        message: "смена не открыта: X-отчёту нечего показать".into(),
                    }));
                }
                let x = XReport {
                    totals: self.totals(tx, s)?,
                    opened_at: opened_at(s),
                    printed_at: rfc3339(now),
                    cashier,
                };
                let paper = format!(
                    "X-ОТЧЁТ\nСмена № {}\nЧеков: {}\nВнесено: {}\nВыплачено: {}{who}",
                    s.shift_number, x.totals.receipts, x.totals.cash_in.sum, x.totals.cash_out.sum
                );
                (to_result(&x), 0, Some(paper))
            }
            Operation::Cash { direction, amount, .. } => {
                if let Some(e) = self.refusal(tx, s, now)? {
                    return Ok(Err(e));
                }
                if self.expired(s, now) {
                    return Ok(Err(DeviceError::NotTaken {
                        reason: NotTaken::ShiftExpired,
                        message: format!("смена {} превысила 24 часа: закройте её", s.shift_number),
                    }));
                }
                let drawer = cash_in_drawer(tx, &fn_number)?;
                if *direction == CashDirection::Out && amount.0 > drawer.0 {
                    return Ok(Err(refused(
                        "80",
                        format!("в ККТ нет денег для выплаты: в ящике {drawer} ₽, выплата {amount} ₽"),
                    )));
                }
                if !s.shift_open {
                    self.open_shift(tx, s, now)?;
                }
                let after = match direction {
                    CashDirection::In => drawer.0 + amount.0,
                    CashDirection::Out => drawer.0 - amount.0,
                };
                let moved = CashMoved {
                    direction: *direction,
                    amount: *amount,
                    cash_in_drawer: Some(Kopecks(after)),
                    shift_number: s.shift_number,
                    cashier,
                };
                let title = if *direction == CashDirection::In {
                    "ВНЕСЕНИЕ"
                } else {
                    "ВЫПЛАТА"
                };
                let paper = format!("{title}\nСумма: {amount}\nВ ящике: {}{who}", Kopecks(after));
                (to_result(&moved), amount.0, Some(paper))
            }
            Operation::DrawerOpen => {
                let done = Printed {
                    done: "drawer_opened".into(),
                    lines: None,
                    fiscal_doc_number: None,
                };
                (to_result(&done), 0, None)
            }
            Operation::Print { lines } => {
                let done = Printed {
                    done: "printed".into(),
                    lines: Some(lines.len()),
                    fiscal_doc_number: None,
                };
                (to_result(&done), 0, Some(lines.join("\n")))
            }
            Operation::Copy { fiscal_doc_number, .. } => {
                let Some(found) = memory::receipt(tx, &fn_number, *fiscal_doc_number)? else {
                    return Ok(Err(refused(
                        "123",
                        format!("в ФН нет кассового чека ФД № {fiscal_doc_number}"),
                    )));
                };
                let d = &found.doc;
                let paper = format!(
                    "КОПИЯ\nКАССОВЫЙ ЧЕК № {} (смена {})\nИТОГ {}\nФН {} ФД {} ФП {}\n{}",
                    d.receipt_number,
                    d.shift_number,
                    d.total,
                    d.fn_number,
                    d.fiscal_doc_number,
                    d.fiscal_sign,
                    d.fiscal_datetime
                );
                let done = Printed {
                    done: "copy_printed".into(),
                    lines: None,
                    fiscal_doc_number: Some(*fiscal_doc_number),
                };
                (to_result(&done), 0, Some(paper))
            }
        }))
    }

    /// Prints a report or a slip on the day's roll, as a receipt's slip is printed.
    fn print_text(&self, text: &str) {
        if let Err(e) = self.append_roll(&format!("{text}\n{CUT}\n\n")) {
            tracing::warn!(error = %e, "the mock register could not print");
        }
    }
}
