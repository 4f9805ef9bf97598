//! The register's results inside the writer: each stored with the answer it makes (or kept for
//! a person, or held), and the answers sent to the tills after the commit.

use super::{InDevice, Writer};
use crate::buffer::device::{Done, Work};
use crate::buffer::{Admission, AdmitError, Answer, AnswerFn, PrintState, ReceiptState};
use crate::events::EventKind;
use crate::kkt::{Candidate, DeviceError, Fiscalized};
use crate::receipt::Receipt;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

/// What a register result makes of the waiting till's request.
pub(super) enum Outcome {
    /// The stored answer (status, bytes).
    Answer(u16, Vec<u8>),
    /// Not registered yet: the interim `202 awaiting_device`, never stored.
    Interim,
    /// Not taken while its till still waits (FN blocked, shift expired): nothing stored, the
    /// key is free again.
    Refusal(AdmitError),
    /// The register may hold it and cannot tell: kept for a person (`needs_review`); a till
    /// still waiting gets `202` with this reason.
    Review(String),
    /// Answered already and not taken now (§10.4): kept, and handed back to the device thread
    /// to be tried again, with this cause.
    Held(String),
}

impl Writer {
    /// Stores a register result with the answer it makes; returns the answer to send.
    pub(super) fn store_result(&mut self, done: &Done, now_ms: i64) -> rusqlite::Result<Outcome> {
        let id = &done.task.id;
        let r = &done.task.receipt;
        let (code, body) = match &done.result {
            Err(DeviceError::Unavailable(_) | DeviceError::Unexpected { .. }) => return Ok(Outcome::Interim),
            Err(DeviceError::NotTaken { reason, message }) => return self.not_taken(done, *reason, message, now_ms),
            Err(DeviceError::NeedsReview { reason, candidates }) => {
                self.put_in_review(id, r, reason, candidates, now_ms)?;
                return Ok(Outcome::Review(reason.clone()));
            }
            Ok(f) => {
                if let Some(other) = self.number_taken(id, &f.doc)? {
                    // The register's memory and this buffer disagree (a wiped or swapped FN
                    // memory, a document found that another receipt already has): a person
                    // must look. Nothing else of the batch suffers.
                    let reason = format!(
                        "ККТ сообщила для этого чека документ № {} ФН {}, но он уже записан за чеком {other}",
                        f.doc.fiscal_doc_number, f.doc.fn_number
                    );
                    tracing::error!(receipt_id = %id, %reason, "fiscal numbers disagree with the register");
                    let candidate = Candidate {
                        fiscal_doc_number: f.doc.fiscal_doc_number,
                        operation: Some(f.operation.as_str().into()),
                        total: Some(f.doc.total),
                        datetime: Some(f.doc.fiscal_datetime.clone()),
                        why: format!("этот номер уже записан за чеком {other}"),
                    };
                    self.put_in_review(id, r, &reason, std::slice::from_ref(&candidate), now_ms)?;
                    return Ok(Outcome::Review(reason));
                }
                self.answer_for(id, r, f)
            }
            Err(DeviceError::Refused { code, message }) if !self.till_waits(done) => {
                // Answered already (§10.4): the till was promised this sale, so a refusal now
                // is a person's decision (fix and register, or void), never a silent 422.
                let reason = format!(
                    "ККТ отказала в регистрации уже принятого чека (код {code}): {message}; исправьте причину и \
                     зарегистрируйте чек или аннулируйте его"
                );
                self.put_in_review(id, r, &reason, &[], now_ms)?;
                return Ok(Outcome::Review(reason));
            }
            Err(DeviceError::Refused { code, message }) => (self.answer)(&Answer::Refused {
                receipt_id: id,
                code,
                message,
            }),
        };
        let changed = match &done.result {
            Ok(f) => {
                let taken_ms = done.task.requested_at.timestamp_millis();
                let from = ReceiptState::Fiscalizing;
                self.store_registered(id, from, taken_ms, r.kind, f, code, &body, now_ms)?
            }
            Err(DeviceError::Refused { code: device_code, .. }) => self
                .conn
                .prepare_cached(
                    "UPDATE receipts SET status = ?5, last_error = ?2, response_status = ?3, response_body = ?4
                     WHERE id = ?1 AND status = ?6",
                )?
                .execute(params![
                    id,
                    done.result.as_ref().err().map(ToString::to_string),
                    code,
                    body,
                    ReceiptState::Refused,
                    ReceiptState::Fiscalizing
                ])
                .inspect(|n| {
                    tracing::warn!(receipt_id = %id, %device_code, "the fiscal register refused a receipt");
                    if *n > 0 {
                        self.tally
                            .moved(Some(ReceiptState::Fiscalizing), Some(ReceiptState::Refused), None);
                    }
                })?,
            Err(_) => 0,
        };
        if changed == 0 {
            // Stored before (a result retried after a failed commit, or a duplicate): the
            // stored answer stands.
            let stored: Option<(Option<u16>, Option<Vec<u8>>)> = self
                .conn
                .prepare_cached("SELECT response_status, response_body FROM receipts WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            return Ok(match stored {
                Some((s, Some(b))) => Outcome::Answer(s.unwrap_or(200), b),
                _ => Outcome::Answer(code, body),
            });
        }
        match &done.result {
            Ok(f) => self.registered_event(id, r, f, now_ms)?,
            Err(e) => {
                let details = json!({"pos_id": r.pos_id, "total": r.total.to_decimal_string(), "error": e.to_string()});
                self.event(EventKind::ReceiptRefused, Some(id), details, now_ms)?;
            }
        }
        Ok(Outcome::Answer(code, body))
    }

    /// Stores a registered receipt's fiscal attributes and answer (the row was `from`, the
    /// receipt taken at `taken_ms`); 0 if it was stored before.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store_registered(
        &mut self,
        id: &str,
        from: ReceiptState,
        taken_ms: i64,
        kind: crate::receipt::ReceiptType,
        f: &Fiscalized,
        code: u16,
        body: &[u8],
        now_ms: i64,
    ) -> rusqlite::Result<usize> {
        let doc = &f.doc;
        let registered_as = (f.operation != kind).then(|| f.operation.as_str());
        self.conn
            .prepare_cached(
                "UPDATE receipts SET status = ?16, fiscal_doc_number = ?2, fiscal_sign = ?3,
                 fiscal_datetime = ?4, fn_number = ?5, kkt_number = ?6, shift_number = ?7, receipt_number = ?8,
                 qr_code_data = ?9, print_status = ?10, print_error = ?11, response_status = ?12,
                 response_body = ?13, fiscalized_at = ?14, registered_as = ?15, review_json = NULL, last_error = NULL
                 WHERE id = ?1 AND status = ?17",
            )?
            .execute(params![
                id,
                doc.fiscal_doc_number,
                doc.fiscal_sign,
                doc.fiscal_datetime,
                doc.fn_number,
                doc.kkt_number,
                doc.shift_number,
                doc.receipt_number,
                doc.qr_code_data,
                if f.print_error.is_none() {
                    PrintState::Printed
                } else {
                    PrintState::PrintFailed
                },
                f.print_error,
                code,
                body,
                now_ms,
                registered_as,
                ReceiptState::Pending,
                from,
            ])
            .inspect(|n| {
                if *n > 0 {
                    self.tally.moved(
                        Some(from),
                        Some(ReceiptState::Pending),
                        Some((doc.fiscal_doc_number, taken_ms)),
                    );
                }
            })
    }

    pub(super) fn registered_event(
        &mut self,
        id: &str,
        r: &Receipt,
        f: &Fiscalized,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let mut details = json!({"fiscal_doc_number": f.doc.fiscal_doc_number, "pos_id": r.pos_id,
                             "total": r.total.to_decimal_string()});
        if f.operation != r.kind {
            details["registered_as"] = json!(f.operation.as_str());
        }
        self.event(EventKind::ReceiptAdded, Some(id), details, now_ms)
    }

    /// The register will not take a receipt now. Its till still waiting: nothing is stored and
    /// the key is free again (docs/contract.md §6). Answered already (a `202`, or resumed after
    /// a restart): kept, with its cause, until it goes through or a person decides (§10.4).
    fn not_taken(
        &mut self,
        done: &Done,
        reason: crate::kkt::NotTaken,
        message: &str,
        now_ms: i64,
    ) -> rusqlite::Result<Outcome> {
        let id = &done.task.id;
        if self.till_waits(done) {
            let deleted = self
                .conn
                .prepare_cached("DELETE FROM receipts WHERE id = ?1 AND status = ?2")?
                .execute(params![id, ReceiptState::Fiscalizing])?;
            if deleted > 0 {
                self.tally.moved(Some(ReceiptState::Fiscalizing), None, None);
            }
            tracing::warn!(receipt_id = %id, %message, "the fiscal register did not take a receipt");
            return Ok(Outcome::Refusal(AdmitError::NotTaken {
                reason,
                message: message.to_string(),
            }));
        }
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE receipts SET last_error = ?2 WHERE id = ?1 AND status = ?3 AND last_error IS NOT ?2",
            )?
            .execute(params![id, message, ReceiptState::Fiscalizing])?;
        if changed > 0 {
            let r = &done.task.receipt;
            tracing::warn!(receipt_id = %id, %message, "a receipt already answered waits until the register takes it");
            let details = json!({"pos_id": r.pos_id, "total": r.total.to_decimal_string(), "reason": message});
            self.event(EventKind::ReceiptHeld, Some(id), details, now_ms)?;
        }
        Ok(Outcome::Held(message.to_string()))
    }

    /// Whether the receipt's till still waits for its first answer (nothing promised yet).
    fn till_waits(&self, done: &Done) -> bool {
        done.reply.is_some() && self.in_device.get(&done.task.id) == Some(&InDevice::Waiting)
    }

    /// Puts a receipt in review: the register may hold it and cannot tell (§10.5).
    fn put_in_review(
        &mut self,
        id: &str,
        r: &Receipt,
        reason: &str,
        candidates: &[Candidate],
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let candidates_json =
            serde_json::to_string(candidates).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE receipts SET status = ?4, last_error = ?2, review_json = ?3 WHERE id = ?1 AND status = ?5",
            )?
            .execute(params![
                id,
                reason,
                candidates_json,
                ReceiptState::NeedsReview,
                ReceiptState::Fiscalizing
            ])?;
        if changed > 0 {
            self.tally
                .moved(Some(ReceiptState::Fiscalizing), Some(ReceiptState::NeedsReview), None);
            tracing::error!(receipt_id = %id, %reason, "a receipt needs a person's decision");
            let details = json!({"pos_id": r.pos_id, "total": r.total.to_decimal_string(), "reason": reason,
                                 "candidates": candidates});
            self.event(EventKind::ReceiptNeedsReview, Some(id), details, now_ms)?;
        }
        Ok(())
    }

    /// Another receipt that already has this FN's document number, if any.
    pub(super) fn number_taken(&self, id: &str, doc: &crate::kkt::FiscalDoc) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT id FROM receipts WHERE fn_number = ?1 AND fiscal_doc_number = ?2 AND id <> ?3")?
            .query_row(params![doc.fn_number, doc.fiscal_doc_number, id], |r| r.get(0))
            .optional()
    }

    pub(super) fn answer_for(&self, id: &str, receipt: &Receipt, f: &Fiscalized) -> (u16, Vec<u8>) {
        (self.answer)(&Answer::Fiscalized {
            receipt_id: id,
            receipt,
            doc: &f.doc,
            print_error: f.print_error.as_deref(),
            registered_as: (f.operation != receipt.kind).then_some(f.operation),
        })
    }

    /// After the commit: answers the tills whose receipts the register has dealt with.
    pub(super) fn answer_results(&mut self, results: Vec<(Done, Outcome)>) {
        let mut held = Vec::new();
        for (done, outcome) in results {
            let id = done.task.id.clone();
            let awaiting = |answer: AnswerFn, reason: &str| {
                let (http_status, body) = answer(&Answer::AwaitingDevice {
                    receipt_id: &id,
                    reason,
                });
                Ok(Admission {
                    receipt_id: id.clone(),
                    http_status,
                    body,
                    replayed: false,
                })
            };
            let answer = match outcome {
                Outcome::Review(reason) => {
                    self.in_device.remove(&id);
                    awaiting(self.answer, &reason)
                }
                Outcome::Held(cause) => {
                    // Still the device thread's: a replay gets `awaiting_device` meanwhile.
                    self.in_device.insert(id.clone(), InDevice::Answered);
                    let answer = awaiting(self.answer, &cause);
                    held.push((done.task, cause));
                    if let Some(reply) = done.reply {
                        self.waiting_tills = self.waiting_tills.saturating_sub(1);
                        let _ = reply.send(answer);
                    }
                    continue;
                }
                Outcome::Answer(http_status, body) => {
                    self.in_device.remove(&id);
                    Ok(Admission {
                        receipt_id: id,
                        http_status,
                        body,
                        replayed: false,
                    })
                }
                Outcome::Refusal(e) => {
                    self.in_device.remove(&id);
                    Err(e)
                }
                Outcome::Interim => {
                    // The register cannot take it now: the till is told to come back.
                    self.in_device.insert(id.clone(), InDevice::Answered);
                    let reason = match &done.result {
                        Err(e) => e.to_string(),
                        Ok(_) => String::new(),
                    };
                    awaiting(self.answer, &reason)
                }
            };
            if let Some(reply) = done.reply {
                self.waiting_tills = self.waiting_tills.saturating_sub(1);
                let _ = reply.send(answer);
            }
        }
        if !held.is_empty() {
            let _ = self.device.send(Work::Held(held));
        }
    }

    /// A batch with register results failed to commit: their tills get the storage error (a
    /// retry of the key gets the stored answer later), and the results are stored again with
    /// the next batch. The register has them; they are not lost.
    pub(super) fn keep_unstored(&mut self, results: Vec<(Done, Outcome)>, error: &str) {
        for (mut done, _) in results {
            // An unavailable register did nothing: the device thread tries that receipt again.
            let decided = !matches!(
                done.result,
                Err(DeviceError::Unavailable(_) | DeviceError::Unexpected { .. })
            );
            let printed = matches!(done.result, Ok(_) | Err(DeviceError::Refused { .. }));
            if let Some(reply) = done.reply.take() {
                self.waiting_tills = self.waiting_tills.saturating_sub(1);
                let _ = reply.send(Err(if printed {
                    AdmitError::ResultUnstored(error.to_string())
                } else {
                    AdmitError::Storage(error.to_string())
                }));
            }
            if decided {
                self.in_device.insert(done.task.id.clone(), InDevice::Unstored);
                self.unstored.push(done);
            }
        }
    }
}
