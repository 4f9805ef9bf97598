//! Delivery inside the writer: claims, send results, leases, the dead-letter queue (a receipt in
//! status `failed`, its reason and time on the row) and making receipts due.

use super::Writer;
use crate::buffer::read::fiscal_from_row;
use crate::buffer::{Claimed, Disposition, ReceiptState};
use crate::events::EventKind;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

impl Writer {
    /// Marks up to `limit` due pending receipts `syncing` with a lease, in fiscal order.
    pub(super) fn claim(&mut self, limit: usize, now_ms: i64, lease_ms: i64) -> rusqlite::Result<Vec<Claimed>> {
        let claimed: Vec<Claimed> = self
            .conn
            .prepare_cached(
                "SELECT id, retry_count, pos_id, type, request_json, fiscal_doc_number, fiscal_sign, fiscal_datetime,
                        fn_number, kkt_number, shift_number, receipt_number, total_kopecks, qr_code_data
                 FROM receipts INDEXED BY receipts_order
                 WHERE status = ?3 AND next_attempt_at <= ?1
                 ORDER BY fiscal_doc_number LIMIT ?2",
            )?
            .query_map(params![now_ms, limit as i64, ReceiptState::Pending], |r| {
                Ok(Claimed {
                    receipt_id: r.get(0)?,
                    retry_count: r.get(1)?,
                    pos_id: r.get(2)?,
                    kind: r.get(3)?,
                    request_json: r.get(4)?,
                    fiscal: fiscal_from_row(r, 5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        for c in &claimed {
            self.conn
                .prepare_cached("UPDATE receipts SET status = ?3, lease_until = ?2 WHERE id = ?1")?
                .execute(params![c.receipt_id, now_ms + lease_ms, ReceiptState::Syncing])?;
            self.tally
                .moved(Some(ReceiptState::Pending), Some(ReceiptState::Syncing), None);
            if c.retry_count > 0 {
                self.tally.retrying(-1);
            }
            self.event(
                EventKind::SyncStarted,
                Some(&c.receipt_id),
                json!({"attempt": c.retry_count + 1}),
                now_ms,
            )?;
        }
        Ok(claimed)
    }

    /// Records one send result; only a receipt this worker holds (`syncing`) changes.
    pub(super) fn apply(&mut self, id: &str, d: Disposition, now_ms: i64) -> rusqlite::Result<()> {
        let held: Option<(u32, Option<String>, Option<i64>)> = self
            .conn
            .prepare_cached(
                "SELECT retry_count, fn_number, fiscal_doc_number FROM receipts WHERE id = ?1 AND status = ?2",
            )?
            .query_row(params![id, ReceiptState::Syncing], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((retry_count, fn_number, doc_number)) = held else {
            tracing::warn!(receipt_id = %id, "sync result for a receipt that is not syncing; ignored");
            return Ok(());
        };
        match d {
            Disposition::Synced {
                http_status,
                ofd_id,
                response,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = ?6, synced_at = ?2, lease_until = NULL, ofd_status = ?3,
                         ofd_response = ?4, ofd_id = ?5, last_error = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, now_ms, http_status, response, ofd_id, ReceiptState::Synced])?;
                self.tally
                    .moved(Some(ReceiptState::Syncing), Some(ReceiptState::Synced), None);
                self.last_synced_ms = Some(self.last_synced_ms.map_or(now_ms, |t| t.max(now_ms)));
                if let (Some(f), Some(n)) = (fn_number, doc_number) {
                    self.confirmed.push((f, n));
                }
                self.event(
                    EventKind::ReceiptSynced,
                    Some(id),
                    json!({"http_status": http_status, "ofd_id": ofd_id, "attempt": retry_count + 1}),
                    now_ms,
                )
            }
            Disposition::Retry {
                error,
                next_attempt_at_ms,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = ?4, retry_count = retry_count + 1, last_error = ?2,
                         next_attempt_at = ?3, lease_until = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, error, next_attempt_at_ms, ReceiptState::Pending])?;
                self.tally
                    .moved(Some(ReceiptState::Syncing), Some(ReceiptState::Pending), None);
                self.tally.retrying(1);
                let details = json!({"attempt": retry_count + 1, "error": error, "next_attempt_at": crate::time::rfc3339(next_attempt_at_ms)});
                self.event(EventKind::ReceiptFailed, Some(id), details, now_ms)
            }
            Disposition::Dead {
                reason,
                error,
                http_status,
            } => {
                let attempts = retry_count + 1;
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = ?2, retry_count = ?3, last_error = ?4, lease_until = NULL,
                         ofd_status = ?5, dlq_reason = ?6, dlq_moved_at = ?7 WHERE id = ?1",
                    )?
                    .execute(params![
                        id,
                        ReceiptState::Failed,
                        attempts,
                        error,
                        http_status,
                        reason,
                        now_ms
                    ])?;
                self.tally
                    .moved(Some(ReceiptState::Syncing), Some(ReceiptState::Failed), None);
                self.event(
                    EventKind::ReceiptFailed,
                    Some(id),
                    json!({"attempt": attempts, "error": error, "final": true}),
                    now_ms,
                )?;
                self.event(
                    EventKind::ReceiptDlq,
                    Some(id),
                    json!({"reason": reason, "retry_count": attempts}),
                    now_ms,
                )
            }
            Disposition::Postpone {
                reason,
                next_attempt_at_ms,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = ?4, last_error = ?2, next_attempt_at = ?3, lease_until = NULL
                         WHERE id = ?1",
                    )?
                    .execute(params![id, reason, next_attempt_at_ms, ReceiptState::Pending])?;
                self.back_to_pending(retry_count);
                self.event(EventKind::SyncReleased, Some(id), json!({"reason": reason}), now_ms)
            }
            Disposition::Release => {
                self.conn
                    .prepare_cached("UPDATE receipts SET status = ?2, lease_until = NULL WHERE id = ?1")?
                    .execute(params![id, ReceiptState::Pending])?;
                self.back_to_pending(retry_count);
                self.event(EventKind::SyncReleased, Some(id), json!({}), now_ms)
            }
        }
    }

    /// A syncing receipt went back to pending, its attempts unchanged.
    fn back_to_pending(&mut self, retry_count: u32) {
        self.tally
            .moved(Some(ReceiptState::Syncing), Some(ReceiptState::Pending), None);
        if retry_count > 0 {
            self.tally.retrying(1);
        }
    }

    /// Returns `syncing` receipts to `pending`: all (`None`, at start) or those whose lease expired.
    pub(super) fn recover(&mut self, expired_before: Option<i64>, now_ms: i64) -> rusqlite::Result<usize> {
        let ids: Vec<(String, u32)> = self
            .conn
            .prepare_cached(
                "SELECT id, retry_count FROM receipts WHERE status = ?2 AND (?1 IS NULL OR lease_until <= ?1)",
            )?
            .query_map(params![expired_before, ReceiptState::Syncing], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, retry_count) in &ids {
            self.conn
                .prepare_cached("UPDATE receipts SET status = ?2, lease_until = NULL WHERE id = ?1")?
                .execute(params![id, ReceiptState::Pending])?;
            self.back_to_pending(*retry_count);
            self.event(
                EventKind::LeaseRecovered,
                Some(id.as_str()),
                json!({"at_start": expired_before.is_none()}),
                now_ms,
            )?;
        }
        Ok(ids.len())
    }

    /// Makes every pending receipt whose next attempt lies in the future due now.
    pub(super) fn make_due(&mut self, now_ms: i64, reason: &str) -> rusqlite::Result<usize> {
        let n = self
            .conn
            .prepare_cached("UPDATE receipts SET next_attempt_at = 0 WHERE status = ?2 AND next_attempt_at > ?1")?
            .execute(params![now_ms, ReceiptState::Pending])?;
        if n > 0 {
            self.event(
                EventKind::BackoffCleared,
                None,
                json!({"receipts": n, "reason": reason}),
                now_ms,
            )?;
        }
        Ok(n)
    }

    /// Moves DLQ entries (one, or all) back to pending with attempts reset.
    pub(super) fn retry_dlq(&mut self, receipt_id: Option<&str>, now_ms: i64) -> rusqlite::Result<Vec<String>> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached(
                // The partial index `receipts_dlq` is for `status = 'failed'`: SQLite uses it only
                // for that very text, not a bound value (ReceiptState::Failed).
                "SELECT id FROM receipts INDEXED BY receipts_dlq
                 WHERE status = 'failed' AND (?1 IS NULL OR id = ?1) ORDER BY dlq_moved_at",
            )?
            .query_map([receipt_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            self.conn
                .prepare_cached(
                    "UPDATE receipts SET status = ?2, retry_count = 0, next_attempt_at = 0, lease_until = NULL,
                     dlq_reason = NULL, dlq_moved_at = NULL WHERE id = ?1",
                )?
                .execute(params![id, ReceiptState::Pending])?;
            self.tally
                .moved(Some(ReceiptState::Failed), Some(ReceiptState::Pending), None);
            self.event(EventKind::DlqRetried, Some(id), json!({}), now_ms)?;
        }
        Ok(ids)
    }
}
