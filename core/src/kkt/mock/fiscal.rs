//! What the mock register writes in its FN: receipts (the shift opened first if need be),
//! shift openings and closings (with the Z-report's sums), and when it refuses a receipt (the
//! 30-day block, an expired shift without `auto_shift`).

use super::memory::{self, FnState, from_json, to_json};
use super::report::{self, Summary};
use super::{FN_BLOCK_AFTER, MockKkt, fiscal_sign, rfc3339};
use crate::kkt::{DeviceError, FiscalDoc, Fiscalized, NotTaken, Task, ZReport};
use crate::money::Kopecks;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};

impl MockKkt {
    pub(super) fn expired(&self, s: &FnState, now: DateTime<Utc>) -> bool {
        s.shift_open && now.timestamp_millis() - s.shift_opened_at_ms >= self.config.shift_length.as_millis() as i64
    }

    /// Writes one fiscal document and returns its number.
    pub(super) fn document(
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

    pub(super) fn open_shift(&self, conn: &Connection, s: &mut FnState, now: DateTime<Utc>) -> rusqlite::Result<()> {
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

    pub(super) fn close(&self, conn: &Connection, s: &mut FnState, now: DateTime<Utc>) -> rusqlite::Result<ZReport> {
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
            cash_in: None,
            cash_out: None,
            cash_in_drawer: None,
            cashier: None,
        };
        report.operations = report::sum(
            summaries
                .iter()
                .map(|t| from_json::<Summary>(t))
                .collect::<Result<Vec<_>, _>>()?,
        );
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
    pub(super) fn refusal(
        &self,
        conn: &Connection,
        s: &FnState,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Option<DeviceError>> {
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

    /// Registers one receipt: the shift first if needed, then the receipt document (without
    /// its task id when `tagged` is false: a fault).
    pub(super) fn register(
        &self,
        conn: &Connection,
        s: &mut FnState,
        task: &Task,
        tagged: bool,
    ) -> rusqlite::Result<Result<(Fiscalized, bool), DeviceError>> {
        if let Some(found) = memory::find(conn, &task.id)? {
            let operation = found.operation();
            return Ok(Ok((
                Fiscalized {
                    doc: found.doc,
                    print_error: None,
                    operation,
                },
                false,
            )));
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
        let receipt = &*task.document();
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
            Ok((
                tagged.then(|| task.id.clone()),
                text,
                Some(to_json(&Summary::of(receipt))?),
            ))
        })?;
        match made {
            Some(doc) => Ok(Ok((
                Fiscalized {
                    doc,
                    print_error: None,
                    operation: receipt.kind,
                },
                true,
            ))),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    }
}
