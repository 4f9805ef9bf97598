//! Intake inside the writer: idempotency and replays, intent rows, the register's results and
//! the answers a till gets.

use super::{InDevice, Writer};
use crate::buffer::device::{Done, Job, Work};
use crate::buffer::{Admission, AdmitError, AdmitRequest, Answer, ReceiptStatus};
use crate::events::EventKind;
use crate::kkt::{DeviceError, Fiscalized, Task};
use crate::receipt::Receipt;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, params};
use serde_json::json;
use std::collections::HashSet;

/// What intake decided for one request inside the transaction.
pub(super) enum Step {
    /// Answer at once (replay, key reused, in progress, buffer full).
    Answer(Result<Admission, AdmitError>),
    /// The intent row is stored: register it after the commit.
    Register(Task),
}

/// What a register result makes of the waiting till's request.
pub(super) enum Outcome {
    /// The stored answer (status, bytes).
    Answer(u16, Vec<u8>),
    /// Not registered yet: the interim `202 awaiting_device`, never stored.
    Interim,
    /// Not taken (FN blocked, shift expired): nothing stored, the key is free again.
    Refusal(AdmitError),
}

impl Writer {
    pub(super) fn admit_one(
        &mut self,
        req: AdmitRequest,
        in_batch: &mut HashSet<String>,
        unsynced: &mut u64,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Step> {
        if in_batch.contains(&req.idempotency_key) {
            return Ok(Step::Answer(Err(AdmitError::InProgress)));
        }
        if let Some(answer) = self.replay(&req)? {
            return Ok(Step::Answer(answer));
        }
        if *unsynced >= self.capacity {
            let full = AdmitError::BufferFull {
                unsynced: *unsynced,
                capacity: self.capacity,
            };
            return Ok(Step::Answer(Err(full)));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let r = &req.receipt;
        let request_json =
            serde_json::to_string(r).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        self.conn
            .prepare_cached(
                "INSERT INTO receipts (id, idempotency_key, body_hash, pos_id, type, total_kopecks, request_json,
                 status, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'fiscalizing', 0, ?8)",
            )?
            .execute(params![
                id,
                req.idempotency_key,
                req.body_hash,
                r.pos_id,
                r.kind.as_str(),
                r.total.0,
                request_json,
                now.timestamp_millis()
            ])?;
        *unsynced += 1;
        in_batch.insert(req.idempotency_key);
        Ok(Step::Register(Task {
            id,
            receipt: req.receipt,
            requested_at: now,
        }))
    }

    pub(super) fn unsynced(&self) -> rusqlite::Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(sum(n), 0) FROM status_counts WHERE status NOT IN ('synced', 'refused')")?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// The answer for a known key: the stored bytes, 422 when the body differs, 409 while its
    /// first request still waits for the register, `202 awaiting_device` after that.
    fn replay(&mut self, req: &AdmitRequest) -> rusqlite::Result<Option<Result<Admission, AdmitError>>> {
        type Row = (String, String, ReceiptStatus, Option<u16>, Option<Vec<u8>>);
        let row: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT id, body_hash, status, response_status, response_body FROM receipts WHERE idempotency_key = ?1",
            )?
            .query_row([&req.idempotency_key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let Some((id, hash, status, http_status, body)) = row else {
            return Ok(None);
        };
        if hash != req.body_hash {
            return Ok(Some(Err(AdmitError::KeyReused)));
        }
        let admission = |http_status: u16, body: Vec<u8>| Admission {
            receipt_id: id.clone(),
            http_status,
            body,
            replayed: true,
        };
        if let Some(body) = body {
            return Ok(Some(Ok(admission(http_status.unwrap_or(200), body))));
        }
        if status == ReceiptStatus::Fiscalizing {
            match self.in_device.get(&id) {
                Some(InDevice::Waiting) => return Ok(Some(Err(AdmitError::InProgress))),
                Some(InDevice::Unstored) => {
                    let why = "the disk refused the last write";
                    return Ok(Some(Err(AdmitError::ResultUnstored(why.into()))));
                }
                Some(InDevice::Answered) | None => {}
            }
            let reason = "the fiscal register has not registered this receipt yet";
            let (code, body) = (self.answer)(&Answer::AwaitingDevice {
                receipt_id: &id,
                reason,
            });
            return Ok(Some(Ok(admission(code, body))));
        }
        // A row of an older version stored before its answer was (it was never sent): answer
        // from the row, and keep that answer for every later replay.
        let (doc, _, print_error) = crate::buffer::read::fiscal_doc(&self.conn, &id)?;
        let stored: String = self
            .conn
            .prepare_cached("SELECT request_json FROM receipts WHERE id = ?1")?
            .query_row([&id], |r| r.get(0))?;
        let (Some(doc), Ok(receipt)) = (doc, serde_json::from_str::<Receipt>(&stored)) else {
            return Ok(Some(Err(AdmitError::InProgress)));
        };
        let (code, body) = (self.answer)(&Answer::Fiscalized {
            receipt_id: &id,
            receipt: &receipt,
            doc: &doc,
            print_error: print_error.as_deref(),
        });
        self.conn
            .prepare_cached("UPDATE receipts SET response_status = ?2, response_body = ?3 WHERE id = ?1")?
            .execute(params![id, code, body])?;
        Ok(Some(Ok(admission(code, body))))
    }

    /// Stores a register result with the answer it makes; returns the answer to send.
    pub(super) fn store_result(&mut self, done: &Done, now_ms: i64) -> rusqlite::Result<Outcome> {
        let id = &done.task.id;
        let r = &done.task.receipt;
        let (code, body) = match &done.result {
            Err(DeviceError::Unavailable(_)) => return Ok(Outcome::Interim),
            Err(DeviceError::NotTaken { reason, message }) => {
                // As if it never came: the intent goes, and the till may send its key again.
                self.conn
                    .prepare_cached("DELETE FROM receipts WHERE id = ?1 AND status = 'fiscalizing'")?
                    .execute([id])?;
                tracing::warn!(receipt_id = %id, %message, "the fiscal register did not take a receipt");
                return Ok(Outcome::Refusal(AdmitError::NotTaken {
                    reason: *reason,
                    message: message.clone(),
                }));
            }
            Ok(f) => self.answer_for(id, r, f),
            Err(DeviceError::Refused { code, message }) => (self.answer)(&Answer::Refused {
                receipt_id: id,
                code,
                message,
            }),
        };
        if let Ok(f) = &done.result
            && let Some(other) = self.number_taken(id, &f.doc)?
        {
            // The register's memory and this buffer disagree (a wiped or swapped FN memory):
            // a person must look. The row keeps waiting; nothing else of the batch suffers.
            let error = format!(
                "the register reported document {} of FN {} for this receipt, but receipt {other} already has it",
                f.doc.fiscal_doc_number, f.doc.fn_number
            );
            tracing::error!(receipt_id = %id, %error, "fiscal numbers disagree with the register");
            self.conn
                .prepare_cached("UPDATE receipts SET last_error = ?2 WHERE id = ?1")?
                .execute(params![id, error])?;
            let (code, body) = self.conflict_answer(id, &error);
            return Ok(Outcome::Answer(code, body));
        }
        let changed = match &done.result {
            Ok(Fiscalized { doc, print_error }) => self
                .conn
                .prepare_cached(
                    "UPDATE receipts SET status = 'pending', fiscal_doc_number = ?2, fiscal_sign = ?3,
                     fiscal_datetime = ?4, fn_number = ?5, kkt_number = ?6, shift_number = ?7, receipt_number = ?8,
                     qr_code_data = ?9, print_status = ?10, print_error = ?11, response_status = ?12,
                     response_body = ?13
                     WHERE id = ?1 AND status = 'fiscalizing'",
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
                    if print_error.is_none() {
                        "printed"
                    } else {
                        "print_failed"
                    },
                    print_error,
                    code,
                    body
                ])?,
            Err(DeviceError::Refused { code: device_code, .. }) => self
                .conn
                .prepare_cached(
                    "UPDATE receipts SET status = 'refused', last_error = ?2, response_status = ?3, response_body = ?4
                     WHERE id = ?1 AND status = 'fiscalizing'",
                )?
                .execute(params![
                    id,
                    done.result.as_ref().err().map(ToString::to_string),
                    code,
                    body
                ])
                .inspect(|_| {
                    tracing::warn!(receipt_id = %id, %device_code, "the fiscal register refused a receipt");
                })?,
            Err(DeviceError::Unavailable(_) | DeviceError::NotTaken { .. }) => 0,
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
            Ok(f) => {
                let details = json!({"fiscal_doc_number": f.doc.fiscal_doc_number, "pos_id": r.pos_id,
                                     "total": r.total.to_decimal_string()});
                self.event(EventKind::ReceiptAdded, Some(id), details, now_ms)?;
            }
            Err(e) => {
                let details = json!({"pos_id": r.pos_id, "total": r.total.to_decimal_string(), "error": e.to_string()});
                self.event(EventKind::ReceiptRefused, Some(id), details, now_ms)?;
            }
        }
        Ok(Outcome::Answer(code, body))
    }

    /// Another receipt that already has this FN's document number, if any.
    fn number_taken(&self, id: &str, doc: &crate::kkt::FiscalDoc) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT id FROM receipts WHERE fn_number = ?1 AND fiscal_doc_number = ?2 AND id <> ?3")?
            .query_row(params![doc.fn_number, doc.fiscal_doc_number, id], |r| r.get(0))
            .optional()
    }

    /// The answer for a receipt whose number conflicts: the till is told to come back later
    /// (`202`), never handed a number that another receipt has.
    fn conflict_answer(&self, id: &str, error: &str) -> (u16, Vec<u8>) {
        (self.answer)(&Answer::AwaitingDevice {
            receipt_id: id,
            reason: error,
        })
    }

    fn answer_for(&self, id: &str, receipt: &Receipt, f: &Fiscalized) -> (u16, Vec<u8>) {
        (self.answer)(&Answer::Fiscalized {
            receipt_id: id,
            receipt,
            doc: &f.doc,
            print_error: f.print_error.as_deref(),
        })
    }

    /// After the commit: answers the tills whose receipts the register has dealt with.
    pub(super) fn answer_results(&mut self, results: Vec<(Done, Outcome)>) {
        for (done, outcome) in results {
            let id = done.task.id;
            let answer = match outcome {
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
                    let (http_status, body) = (self.answer)(&Answer::AwaitingDevice {
                        receipt_id: &id,
                        reason: &reason,
                    });
                    Ok(Admission {
                        receipt_id: id,
                        http_status,
                        body,
                        replayed: false,
                    })
                }
            };
            if let Some(reply) = done.reply {
                self.waiting_tills = self.waiting_tills.saturating_sub(1);
                let _ = reply.send(answer);
            }
        }
    }

    /// A batch with register results failed to commit: their tills get the storage error (a
    /// retry of the key gets the stored answer later), and the results are stored again with
    /// the next batch. The register has them; they are not lost.
    pub(super) fn keep_unstored(&mut self, results: Vec<(Done, Outcome)>, error: &str) {
        for (mut done, _) in results {
            // An unavailable register did nothing: that receipt is simply tried again later.
            let registered = !matches!(done.result, Err(DeviceError::Unavailable(_)));
            if let Some(reply) = done.reply.take() {
                self.waiting_tills = self.waiting_tills.saturating_sub(1);
                let _ = reply.send(Err(if registered {
                    AdmitError::ResultUnstored(error.to_string())
                } else {
                    AdmitError::Storage(error.to_string())
                }));
            }
            if registered {
                self.in_device.insert(done.task.id.clone(), InDevice::Unstored);
                self.unstored.push(done);
            }
        }
    }

    /// Hands stored intents to the device thread.
    pub(super) fn hand_to_device(&mut self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        for job in &jobs {
            let state = if job.reply.is_some() {
                self.waiting_tills += 1;
                InDevice::Waiting
            } else {
                InDevice::Answered
            };
            self.in_device.insert(job.task.id.clone(), state);
        }
        if let Err(std::sync::mpsc::SendError(Work::Register(jobs))) = self.device.send(Work::Register(jobs)) {
            tracing::error!("the device thread is gone; receipts stay stored and are resumed at the next start");
            let results = jobs
                .into_iter()
                .map(|job| {
                    let done = Done {
                        task: job.task,
                        result: Err(DeviceError::Unavailable("the device thread is not running".into())),
                        reply: job.reply,
                    };
                    (done, Outcome::Interim)
                })
                .collect();
            self.answer_results(results);
        }
    }

    /// Intent rows an earlier run left without the register's result: each is resumed by asking
    /// the register first, never sent blindly.
    pub(super) fn interrupted_intents(&self) -> rusqlite::Result<Vec<Job>> {
        let rows: Vec<(String, String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT id, request_json, created_at FROM receipts INDEXED BY receipts_fiscalizing
                 WHERE status = 'fiscalizing' ORDER BY created_at",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut jobs = Vec::with_capacity(rows.len());
        for (id, json, created) in rows {
            match serde_json::from_str(&json) {
                Ok(receipt) => jobs.push(Job {
                    task: Task {
                        id,
                        receipt,
                        requested_at: Utc.timestamp_millis_opt(created).single().unwrap_or_else(Utc::now),
                    },
                    reply: None,
                    resume: true,
                }),
                Err(e) => {
                    tracing::error!(receipt_id = %id, error = %e, "a stored intent cannot be read; it stays unregistered")
                }
            }
        }
        if !jobs.is_empty() {
            tracing::warn!(
                receipts = jobs.len(),
                "resuming receipts an earlier run left with the register"
            );
        }
        Ok(jobs)
    }
}
