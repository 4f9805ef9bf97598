//! Intake inside the writer: idempotency and replays, intent rows, handing them to the device
//! thread, and resuming the ones an earlier run left with the register.

use super::results::Outcome;
use super::{InDevice, Writer};
use crate::buffer::device::{Done, Job, Work};
use crate::buffer::{Admission, AdmitError, AdmitRequest, Answer, ReceiptState};
use crate::kkt::{DeviceError, Task};
use crate::receipt::Receipt;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;

/// What intake decided for one request inside the transaction.
pub(super) enum Step {
    /// Answer at once (replay, key reused, in progress, buffer full).
    Answer(Result<Admission, AdmitError>),
    /// The intent row is stored: register it after the commit.
    Register(Task),
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
        let id = self.ids.next();
        let r = &req.receipt;
        let request_json =
            serde_json::to_string(r).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        self.conn
            .prepare_cached(
                "INSERT INTO receipts (id, idempotency_key, body_hash, pos_id, type, total_kopecks, request_json,
                 status, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, 0, ?8)",
            )?
            .execute(params![
                id,
                req.idempotency_key,
                req.body_hash,
                r.pos_id,
                r.kind.as_str(),
                r.total.0,
                request_json,
                now.timestamp_millis(),
                ReceiptState::Fiscalizing
            ])?;
        *unsynced += 1;
        self.tally.moved(None, Some(ReceiptState::Fiscalizing), None);
        in_batch.insert(req.idempotency_key);
        Ok(Step::Register(Task::new(id, req.receipt, now)))
    }

    /// Receipts not yet confirmed by the OFD, as of the last commit (the capacity's measure).
    pub(super) fn unsynced(&self) -> rusqlite::Result<u64> {
        Ok(self.tally.unsynced())
    }

    /// The answer for a known key: the stored bytes, 422 when the body differs, 409 while its
    /// first request still waits for the register, `202 awaiting_device` after that.
    fn replay(&mut self, req: &AdmitRequest) -> rusqlite::Result<Option<Result<Admission, AdmitError>>> {
        type Row = (
            String,
            String,
            ReceiptState,
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
        if status == ReceiptState::Fiscalizing {
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
        if status == ReceiptState::NeedsReview {
            // Kept for a person (§10.5): the till keeps asking, and gets the final answer once
            // the manager has settled it; meanwhile it is told why (the review's reason).
            let reason = format!(
                "{}; the shop's manager decides (window, «Требуют решения»)",
                held.as_deref()
                    .unwrap_or("the register may already hold this receipt and cannot tell")
            );
            let (code, body) = (self.answer)(&Answer::AwaitingDevice {
                receipt_id: &id,
                reason: &reason,
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
                // The partial index is for this very text (a bound value would not use it).
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
