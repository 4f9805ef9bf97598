//! Intake inside the writer: idempotency and replays, intent rows, the register's results and
//! the answers a till gets.

use super::{InDevice, Writer};
use crate::buffer::device::{Done, Job, Work};
use crate::buffer::{Admission, AdmitError, AdmitRequest, Answer, AnswerFn, ReceiptStatus, Resolution, ResolveError};
use crate::events::EventKind;
use crate::kkt::{Candidate, DeviceError, Fiscalized, Task};
use crate::receipt::Receipt;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Type;
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
        Ok(Step::Register(Task::new(id, req.receipt, now)))
    }

    pub(super) fn unsynced(&self) -> rusqlite::Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT coalesce(sum(n), 0) FROM status_counts WHERE status NOT IN ('synced', 'refused', 'voided')",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// The answer for a known key: the stored bytes, 422 when the body differs, 409 while its
    /// first request still waits for the register, `202 awaiting_device` after that.
    fn replay(&mut self, req: &AdmitRequest) -> rusqlite::Result<Option<Result<Admission, AdmitError>>> {
        type Row = (
            String,
            String,
            ReceiptStatus,
            Option<u16>,
            Option<Vec<u8>>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT id, body_hash, status, response_status, response_body, last_error FROM receipts
                 WHERE idempotency_key = ?1",
            )?
            .query_row([&req.idempotency_key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .optional()?;
        let Some((id, hash, status, http_status, body, held)) = row else {
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
            // Held (§10.4): the register's own reason; else it simply has not got to it yet.
            let reason = held
                .as_deref()
                .unwrap_or("the fiscal register has not registered this receipt yet");
            let (code, body) = (self.answer)(&Answer::AwaitingDevice {
                receipt_id: &id,
                reason,
            });
            return Ok(Some(Ok(admission(code, body))));
        }
        if status == ReceiptStatus::NeedsReview {
            // Kept for a person (§10.5): the till keeps asking, and gets the final answer once
            // the manager has settled it.
            let reason = "the register may already hold this receipt and cannot tell: the shop's manager decides \
                          (window, «Требуют решения»)";
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
            registered_as: None,
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
            Err(DeviceError::Refused { code, message }) => (self.answer)(&Answer::Refused {
                receipt_id: id,
                code,
                message,
            }),
        };
        let changed = match &done.result {
            Ok(f) => self.store_registered(id, r.kind, f, code, &body, now_ms)?,
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
                    ReceiptStatus::Refused,
                    ReceiptStatus::Fiscalizing
                ])
                .inspect(|_| {
                    tracing::warn!(receipt_id = %id, %device_code, "the fiscal register refused a receipt");
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

    /// Stores a registered receipt's fiscal attributes and answer; 0 if it was stored before.
    pub(super) fn store_registered(
        &mut self,
        id: &str,
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
                 WHERE id = ?1 AND status IN (?17, ?18)",
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
                    "printed"
                } else {
                    "print_failed"
                },
                f.print_error,
                code,
                body,
                now_ms,
                registered_as,
                ReceiptStatus::Pending,
                ReceiptStatus::Fiscalizing,
                ReceiptStatus::NeedsReview,
            ])
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
        let till_waits = done.reply.is_some() && self.in_device.get(id) == Some(&InDevice::Waiting);
        if till_waits {
            self.conn
                .prepare_cached("DELETE FROM receipts WHERE id = ?1 AND status = ?2")?
                .execute(params![id, ReceiptStatus::Fiscalizing])?;
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
            .execute(params![id, message, ReceiptStatus::Fiscalizing])?;
        if changed > 0 {
            let r = &done.task.receipt;
            tracing::warn!(receipt_id = %id, %message, "a receipt already answered waits until the register takes it");
            let details = json!({"pos_id": r.pos_id, "total": r.total.to_decimal_string(), "reason": message});
            self.event(EventKind::ReceiptHeld, Some(id), details, now_ms)?;
        }
        Ok(Outcome::Held(message.to_string()))
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
                ReceiptStatus::NeedsReview,
                ReceiptStatus::Fiscalizing
            ])?;
        if changed > 0 {
            tracing::error!(receipt_id = %id, %reason, "a receipt needs a person's decision");
            let details = json!({"pos_id": r.pos_id, "total": r.total.to_decimal_string(), "reason": reason,
                                 "candidates": candidates});
            self.event(EventKind::ReceiptNeedsReview, Some(id), details, now_ms)?;
        }
        Ok(())
    }

    /// Another receipt that already has this FN's document number, if any.
    fn number_taken(&self, id: &str, doc: &crate::kkt::FiscalDoc) -> rusqlite::Result<Option<String>> {
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
                    task: Task::new(
                        id,
                        receipt,
                        Utc.timestamp_millis_opt(created).single().unwrap_or_else(Utc::now),
                    ),
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

impl Writer {
    /// A person's decision on a receipt in review (docs/contract.md §10.5): the result, and
    /// for `register` the job to hand the device after the commit.
    pub(super) fn resolve(
        &mut self,
        id: &str,
        resolution: Resolution,
        comment: &str,
        now_ms: i64,
    ) -> rusqlite::Result<(Result<ReceiptStatus, ResolveError>, Option<Job>)> {
        let row: Option<(ReceiptStatus, String, i64)> = self
            .conn
            .prepare_cached("SELECT status, request_json, created_at FROM receipts WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((status, json, created)) = row else {
            return Ok((Err(ResolveError::NotFound), None));
        };
        if status != ReceiptStatus::NeedsReview {
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
                self.store_registered(id, receipt.kind, f, code, &body, now_ms)?;
                self.registered_event(id, &receipt, f, now_ms)?;
                details["fiscal_doc_number"] = json!(f.doc.fiscal_doc_number);
                (ReceiptStatus::Pending, None)
            }
            Resolution::Register => {
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = ?2, last_error = NULL, review_json = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, ReceiptStatus::Fiscalizing])?;
                let at = Utc.timestamp_millis_opt(created).single().unwrap_or_else(Utc::now);
                let mut task = Task::new(id.to_string(), receipt.clone(), at);
                task.forced = true;
                self.in_device.insert(id.to_string(), InDevice::Answered);
                let job = Job {
                    task,
                    reply: None,
                    resume: false,
                };
                (ReceiptStatus::Fiscalizing, Some(job))
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
                    .execute(params![id, ReceiptStatus::Voided, code, body])?;
                (ReceiptStatus::Voided, None)
            }
        };
        tracing::warn!(receipt_id = %id, action = resolution.action(), %comment, "a person settled a receipt in review");
        self.event(EventKind::ReceiptResolved, Some(id), details, now_ms)?;
        Ok((Ok(status), job))
    }
}
