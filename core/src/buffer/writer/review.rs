//! A person's decision on a receipt in review, inside the writer (docs/contract.md §10.5).

use super::{InDevice, Writer};
use crate::buffer::device::Job;
use crate::buffer::{Answer, ReceiptState, Resolution, ResolveError};
use crate::events::EventKind;
use crate::kkt::Task;
use crate::receipt::Receipt;
use chrono::{TimeZone, Utc};
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

impl Writer {
    /// A person's decision on a receipt in review (docs/contract.md §10.5): the result, and
    /// for `register` the job to hand the device after the commit.
    pub(super) fn resolve(
        &mut self,
        id: &str,
        resolution: Resolution,
        comment: &str,
        now_ms: i64,
    ) -> rusqlite::Result<(Result<ReceiptState, ResolveError>, Option<Job>)> {
        let row: Option<(ReceiptState, String, i64)> = self
            .conn
            .prepare_cached("SELECT status, request_json, created_at FROM receipts WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((status, json, created)) = row else {
            return Ok((Err(ResolveError::NotFound), None));
        };
        if status != ReceiptState::NeedsReview {
            return Ok((Err(ResolveError::NotInReview(status)), None));
        }
        let receipt: Receipt = serde_json::from_str(&json)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(6, Type::Text, Box::new(e)))?;
        let mut details = json!({"action": resolution.action(), "comment": comment, "pos_id": receipt.pos_id,
                                 "total": receipt.total.to_decimal_string()});
        let (status, job) = match &resolution {
            Resolution::Attach(f) => {
                if let Some(other) = self.number_taken(id, &f.doc)? {
                    let taken = ResolveError::NumberTaken {
                        number: f.doc.fiscal_doc_number,
                        fn_number: f.doc.fn_number.clone(),
                        other,
                    };
                    return Ok((Err(taken), None));
                }
                let (code, body) = self.answer_for(id, &receipt, f);
                let from = ReceiptState::NeedsReview;
                self.store_registered(id, from, created, receipt.kind, f, code, &body, now_ms)?;
                self.registered_event(id, &receipt, f, now_ms)?;
                details["fiscal_doc_number"] = json!(f.doc.fiscal_doc_number);
                (ReceiptState::Pending, None)
            }
            Resolution::Register => {
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = ?2, last_error = NULL, review_json = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, ReceiptState::Fiscalizing])?;
                self.tally
                    .moved(Some(ReceiptState::NeedsReview), Some(ReceiptState::Fiscalizing), None);
                let at = Utc.timestamp_millis_opt(created).single().unwrap_or_else(Utc::now);
                let mut task = Task::new(id.to_string(), receipt.clone(), at);
                task.forced = true;
                self.in_device.insert(id.to_string(), InDevice::Answered);
                let job = Job {
                    task,
                    reply: None,
                    resume: false,
                };
                (ReceiptState::Fiscalizing, Some(job))
            }
            Resolution::Void => {
                let (code, body) = (self.answer)(&Answer::Voided {
                    receipt_id: id,
                    comment,
                });
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = ?2, response_status = ?3, response_body = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, ReceiptState::Voided, code, body])?;
                self.tally
                    .moved(Some(ReceiptState::NeedsReview), Some(ReceiptState::Voided), None);
                (ReceiptState::Voided, None)
            }
        };
        tracing::warn!(receipt_id = %id, action = resolution.action(), %comment, "a person settled a receipt in review");
        self.event(EventKind::ReceiptResolved, Some(id), details, now_ms)?;
        Ok((Ok(status), job))
    }
}
