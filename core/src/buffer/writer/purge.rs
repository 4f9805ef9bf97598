//! Retention inside the writer: synced receipts (with their events), refused ones and old
//! events of no receipt still held are deleted in short steps.

use super::Writer;
use crate::buffer::Purged;
use crate::buffer::ReceiptState;
use rusqlite::{OptionalExtension, params};

impl Writer {
    /// Deletes up to `limit` receipts older than `cutoff_ms` that need nothing more — synced
    /// ones (by their sync time) and ones the register refused (by their intake time) — with
    /// their events, and up to `limit` older events that belong to no receipt still held.
    pub(super) fn purge(&mut self, cutoff_ms: i64, limit: usize, now_ms: i64) -> rusqlite::Result<Purged> {
        let mut ids: Vec<String> = self
            .conn
            .prepare_cached(
                // The partial index is for this very text (a bound value would not use it).
                "SELECT id FROM receipts INDEXED BY receipts_synced_at
                 WHERE status = 'synced' AND synced_at < ?1
                 ORDER BY synced_at LIMIT ?2",
            )?
            .query_map(params![cutoff_ms, limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let room = limit.saturating_sub(ids.len());
        if room > 0 {
            let refused: Vec<String> = self
                .conn
                .prepare_cached(
                    "SELECT id FROM receipts INDEXED BY receipts_order
                     WHERE status = ?3 AND created_at < ?1 LIMIT ?2",
                )?
                .query_map(params![cutoff_ms, room as i64, ReceiptState::Refused], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.extend(refused);
        }
        let mut events = 0;
        for id in &ids {
            events += self
                .conn
                .prepare_cached("DELETE FROM buffer_events WHERE receipt_id = ?1")?
                .execute([id])?;
            let gone: Option<ReceiptState> = self
                .conn
                .prepare_cached("DELETE FROM receipts WHERE id = ?1 AND status IN (?2, ?3) RETURNING status")?
                .query_row(params![id, ReceiptState::Synced, ReceiptState::Refused], |r| r.get(0))
                .optional()?;
            if let Some(status) = gone {
                self.tally.moved(Some(status), None, None);
            }
        }
        // Events of receipts still held (waiting, in the DLQ, recently synced) stay with them.
        events += self
            .conn
            .prepare_cached(
                "DELETE FROM buffer_events WHERE id IN (
                    SELECT e.id FROM buffer_events e INDEXED BY buffer_events_created
                    WHERE e.created_at < ?1
                      AND (e.receipt_id IS NULL OR NOT EXISTS (SELECT 1 FROM receipts r WHERE r.id = e.receipt_id))
                    ORDER BY e.created_at LIMIT ?2)",
            )?
            .execute(params![cutoff_ms, limit as i64])?;
        // The vendor fronts' jobs (§13) are kept as long as receipts are.
        crate::buffer::jobs::purge(&self.conn, cutoff_ms, limit)?;
        // DLQ entries stay (a person must settle them), but not the customer's contact or the
        // cashier's INN past the retention period (152-FZ: personal data no longer needed; the
        // FN and the OFD hold the fiscal document itself). SECURITY.md "Personal data".
        let scrubbed: Vec<String> = self
            .conn
            .prepare_cached(
                "UPDATE receipts SET request_json = json_remove(request_json, '$.customer', '$.cashier.inn')
                 WHERE id IN (SELECT id FROM receipts INDEXED BY receipts_dlq
                              WHERE status = 'failed' AND dlq_moved_at < ?1
                                AND (json_extract(request_json, '$.customer') IS NOT NULL
                                     OR json_extract(request_json, '$.cashier.inn') IS NOT NULL)
                              LIMIT ?2)
                 RETURNING id",
            )?
            .query_map(params![cutoff_ms, limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &scrubbed {
            self.event(
                crate::events::EventKind::PersonalDataRemoved,
                Some(id),
                serde_json::json!({"removed": ["customer", "cashier.inn"]}),
                now_ms,
            )?;
        }
        Ok(Purged {
            receipts: ids.len(),
            events,
            scrubbed: scrubbed.len(),
        })
    }
}
