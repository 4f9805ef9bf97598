//! Counter operations inside the writer (docs/contract.md §11): idempotency and replays, the
//! intent row, the register's result stored with the answer bytes, and resuming at start.

use super::Writer;
use crate::buffer::operations::{self, OpDone, OpJob, OpRequest};
use crate::buffer::{Admission, AdmitError};
use crate::events::EventKind;
use crate::kkt::{DeviceError, OpTask, Operation};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, params};

/// What the writer decided for one operation request.
pub(super) enum OpStep {
    Answer(Result<Admission, AdmitError>),
    /// The intent row is stored: run it after the commit.
    Run(OpTask),
}

/// What a stored result means for the waiting till.
pub(super) type OpOutcome = Result<Admission, AdmitError>;

fn admission(id: &str, http_status: u16, body: Vec<u8>, replayed: bool) -> Admission {
    Admission {
        receipt_id: id.to_string(),
        http_status,
        body,
        replayed,
    }
}

fn to_sql_error(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

impl Writer {
    pub(super) fn op_admit(&mut self, req: OpRequest, now: DateTime<Utc>) -> rusqlite::Result<OpStep> {
        type Row = (
            String,
            String,
            String,
            String,
            Option<u16>,
            Option<Vec<u8>>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT id, body_hash, status, request_json, response_status, response_body, last_error
                 FROM operations WHERE idempotency_key = ?1",
            )?
            .query_row([&req.idempotency_key], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .optional()?;
        if row.is_none() {
            // A receipt's key is not an operation's: the same key for both is another request.
            let receipt: Option<i64> = self
                .conn
                .prepare_cached("SELECT 1 FROM receipts WHERE idempotency_key = ?1")?
                .query_row([&req.idempotency_key], |r| r.get(0))
                .optional()?;
            if receipt.is_some() {
                return Ok(OpStep::Answer(Err(AdmitError::KeyReused)));
            }
        }
        if let Some((id, hash, status, request, http_status, body, last_error)) = row {
            if hash != req.body_hash {
                return Ok(OpStep::Answer(Err(AdmitError::KeyReused)));
            }
            if let Some(body) = body {
                return Ok(OpStep::Answer(Ok(admission(
                    &id,
                    http_status.unwrap_or(200),
                    body,
                    true,
                ))));
            }
            if self.ops_waiting.contains(&id) || status != "pending" {
                return Ok(OpStep::Answer(Err(AdmitError::InProgress)));
            }
            let op: Operation =
                serde_json::from_str(&request).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let task = OpTask {
                id: id.clone(),
                op,
                requested_at: now,
            };
            let reason = last_error.unwrap_or_else(|| "the fiscal register has not done it yet".into());
            let body = operations::awaiting_body(&task, &reason);
            return Ok(OpStep::Answer(Ok(admission(&id, 202, body, true))));
        }
        let id = self.ids.next();
        let request = serde_json::to_string(&req.op).map_err(to_sql_error)?;
        self.conn
            .prepare_cached(
                "INSERT INTO operations (id, idempotency_key, body_hash, kind, request_json, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
            )?
            .execute(params![
                id,
                req.idempotency_key,
                req.body_hash,
                req.op.name(),
                request,
                now.timestamp_millis()
            ])?;
        Ok(OpStep::Run(OpTask {
            id,
            op: req.op,
            requested_at: now,
        }))
    }

    /// Stores what the register did; the answer for a waiting till (`None`: nobody waits).
    pub(super) fn op_store(&mut self, done: &OpDone, now_ms: i64) -> rusqlite::Result<OpOutcome> {
        let task = &done.task;
        let store =
            |w: &mut Writer, status: &str, http: u16, body: &[u8], error: Option<&str>| -> rusqlite::Result<usize> {
                w.conn
                    .prepare_cached(
                        "UPDATE operations SET status = ?2, response_status = ?3, response_body = ?4, done_at = ?5,
                     last_error = ?6 WHERE id = ?1 AND status = 'pending'",
                    )?
                    .execute(params![task.id, status, http, body, now_ms, error])
            };
        let details = serde_json::json!({"operation": task.op.name(), "what": task.op.describe()});
        let outcome = match &done.result {
            Ok(result) => {
                let body = operations::done_body(task, result);
                if store(self, "done", 200, &body, None)? == 0 {
                    // Stored before (a result read back twice): the first one stands.
                    return self.stored_answer(task);
                }
                let mut details = details;
                details["operation_id"] = task.id.clone().into();
                details["result"] = serde_json::from_str(result).unwrap_or_default();
                self.event(EventKind::OperationDone, None, details, now_ms)?;
                Ok(admission(&task.id, 200, body, false))
            }
            Err(DeviceError::Refused { code, message }) => {
                let body = operations::refused_body(task, code, message);
                store(self, "refused", 422, &body, Some(message))?;
                Ok(admission(&task.id, 422, body, false))
            }
            Err(DeviceError::NeedsReview { reason, .. }) => {
                let body = operations::review_body(task, reason);
                store(self, "review", 409, &body, Some(reason))?;
                let mut details = details;
                details["operation_id"] = task.id.clone().into();
                details["reason"] = reason.clone().into();
                self.event(EventKind::OperationUnknown, None, details, now_ms)?;
                Ok(admission(&task.id, 409, body, false))
            }
            // Nothing happened and the register will not do it now: nothing is kept, the key
            // may be sent again once the cause is gone (as for a receipt, §10.4).
            Err(DeviceError::NotTaken { reason, message }) => {
                self.conn
                    .prepare_cached("DELETE FROM operations WHERE id = ?1 AND status = 'pending'")?
                    .execute([&task.id])?;
                Err(AdmitError::NotTaken {
                    reason: *reason,
                    message: message.clone(),
                })
            }
            Err(e) => {
                let reason = e.to_string();
                self.conn
                    .prepare_cached("UPDATE operations SET last_error = ?2 WHERE id = ?1")?
                    .execute(params![task.id, reason])?;
                Ok(admission(
                    &task.id,
                    202,
                    operations::awaiting_body(task, &reason),
                    false,
                ))
            }
        };
        Ok(outcome)
    }

    /// The answer stored for an operation.
    fn stored_answer(&self, task: &OpTask) -> rusqlite::Result<OpOutcome> {
        let (status, body): (Option<u16>, Option<Vec<u8>>) = self
            .conn
            .prepare_cached("SELECT response_status, response_body FROM operations WHERE id = ?1")?
            .query_row([&task.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((None, None));
        Ok(match body {
            Some(body) => Ok(admission(&task.id, status.unwrap_or(200), body, true)),
            None => Err(AdmitError::InProgress),
        })
    }

    /// Operations an earlier run left without a result: looked up on the register first.
    pub(super) fn interrupted_operations(&self) -> rusqlite::Result<Vec<OpJob>> {
        let rows: Vec<(String, String, i64)> = self
            .conn
            .prepare(
                "SELECT id, request_json, created_at FROM operations INDEXED BY operations_pending
                 WHERE status = 'pending' ORDER BY created_at",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut jobs = Vec::with_capacity(rows.len());
        for (id, request, created_at) in rows {
            match serde_json::from_str::<Operation>(&request) {
                Ok(op) => jobs.push(OpJob {
                    task: OpTask {
                        id,
                        op,
                        requested_at: Utc.timestamp_millis_opt(created_at).single().unwrap_or_else(Utc::now),
                    },
                    reply: None,
                    resume: true,
                }),
                Err(e) => {
                    tracing::error!(operation_id = %id, error = %e, "an operation's stored request is unreadable")
                }
            }
        }
        Ok(jobs)
    }

    /// Hands operations to the device thread, after their intent rows are committed.
    pub(super) fn hand_ops_to_device(&mut self, jobs: Vec<OpJob>) {
        if jobs.is_empty() {
            return;
        }
        for job in &jobs {
            if job.reply.is_some() {
                self.ops_waiting.insert(job.task.id.clone());
            }
        }
        if let Err(std::sync::mpsc::SendError(super::Work::Operate(jobs))) =
            self.device.send(super::Work::Operate(jobs))
        {
            tracing::error!("the device thread is gone; operations stay stored and are resumed at the next start");
            for job in jobs {
                self.ops_waiting.remove(&job.task.id);
                if let Some(reply) = job.reply {
                    let body = operations::awaiting_body(&job.task, "the device thread is not running");
                    let _ = reply.send(Ok(admission(&job.task.id, 202, body, false)));
                }
            }
        }
    }
}
