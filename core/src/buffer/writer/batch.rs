//! One batch of the writer: every command waiting, applied in one transaction, committed once,
//! then answered — and, if the transaction fails, every caller told so.

use super::operations::OpStep;
use super::{InDevice, Writer, intake, results};
use crate::buffer::device::Done;
use crate::buffer::device::{Job, Work};
use crate::buffer::operations::OpJob;
use crate::buffer::{Admission, AdmitError, Claimed, Command, Error, Purged, ReceiptState, ResolveError};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

/// Registers the reply for `result` (a default value on error, replaced by the error when the
/// batch fails) and passes the error on.
fn settle<T: Default>(
    replies: &mut Vec<Reply>,
    result: rusqlite::Result<T>,
    reply: impl FnOnce(T) -> Reply,
) -> rusqlite::Result<()> {
    match result {
        Ok(v) => {
            replies.push(reply(v));
            Ok(())
        }
        Err(e) => {
            replies.push(reply(T::default()));
            Err(e)
        }
    }
}

/// A reply to send once the batch has committed.
pub(super) enum Reply {
    Admit(
        oneshot::Sender<Result<Admission, AdmitError>>,
        Result<Admission, AdmitError>,
    ),
    Claim(oneshot::Sender<Result<Vec<Claimed>, Error>>, Vec<Claimed>),
    Unit(oneshot::Sender<Result<(), Error>>),
    Count(oneshot::Sender<Result<usize, Error>>, usize),
    Ids(oneshot::Sender<Result<Vec<String>, Error>>, Vec<String>),
    Purged(oneshot::Sender<Result<Purged, Error>>, Purged),
    Resolved(
        oneshot::Sender<Result<ReceiptState, ResolveError>>,
        Result<ReceiptState, ResolveError>,
    ),
}

impl Reply {
    fn send(self) {
        match self {
            Reply::Admit(tx, r) => drop(tx.send(r)),
            Reply::Claim(tx, v) => drop(tx.send(Ok(v))),
            Reply::Unit(tx) => drop(tx.send(Ok(()))),
            Reply::Count(tx, n) => drop(tx.send(Ok(n))),
            Reply::Ids(tx, v) => drop(tx.send(Ok(v))),
            Reply::Purged(tx, p) => drop(tx.send(Ok(p))),
            Reply::Resolved(tx, r) => drop(tx.send(r)),
        }
    }

    fn fail(self, e: &str) {
        let err = || Error::Storage(e.to_string());
        match self {
            Reply::Admit(tx, _) => drop(tx.send(Err(AdmitError::Storage(e.to_string())))),
            Reply::Claim(tx, _) => drop(tx.send(Err(err()))),
            Reply::Unit(tx) => drop(tx.send(Err(err()))),
            Reply::Count(tx, _) => drop(tx.send(Err(err()))),
            Reply::Ids(tx, _) => drop(tx.send(Err(err()))),
            Reply::Purged(tx, _) => drop(tx.send(Err(err()))),
            Reply::Resolved(tx, _) => drop(tx.send(Err(ResolveError::Storage(e.to_string())))),
        }
    }
}

/// What one batch did, for what follows its commit.
#[derive(Default)]
pub(super) struct Batch {
    replies: Vec<Reply>,
    /// Intent rows stored: (till's `stored` notice, job for the device).
    intents: Vec<(oneshot::Sender<String>, Job)>,
    /// Register results stored, with the answers they make (or to store again if the commit fails).
    results: Vec<(Done, results::Outcome)>,
    /// Receipts whose register result this batch stores.
    registered: usize,
    /// Receipts a person sent to the register again, for the device thread after the commit.
    forced: Vec<Job>,
    /// Counter operations stored: (caller's `stored` notice, job for the device).
    op_intents: Vec<(oneshot::Sender<String>, OpJob)>,
    /// Operations whose result this batch stores (handed back to the device if it fails).
    op_results: Vec<OpJob>,
    /// Waiting receipts may go through now.
    wake: bool,
    stop: Option<oneshot::Sender<()>>,
}

impl Writer {
    /// Applies one command inside the open transaction.
    fn apply_command(
        &mut self,
        cmd: Command,
        b: &mut Batch,
        in_batch: &mut HashSet<String>,
        unsynced: &mut u64,
    ) -> rusqlite::Result<()> {
        let now = self.clock.utc();
        let now_ms = now.timestamp_millis();
        match cmd {
            Command::Admit { request, stored, done } => {
                match self.admit_one(*request, in_batch, unsynced, now) {
                    Ok(intake::Step::Answer(answer)) => b.replies.push(Reply::Admit(done, answer)),
                    Ok(intake::Step::Register(task)) => b.intents.push((
                        stored,
                        Job {
                            task,
                            reply: Some(done),
                            resume: false,
                        },
                    )),
                    Err(e) => {
                        b.replies
                            .push(Reply::Admit(done, Err(AdmitError::Storage(e.to_string()))));
                        return Err(e);
                    }
                }
                Ok(())
            }
            Command::AnsweredAwaiting(id, reply) => {
                self.answered_awaiting(&id, reply);
                Ok(())
            }
            Command::Operate { request, stored, done } => match self.op_admit(*request, now) {
                Ok(OpStep::Answer(answer)) => {
                    b.replies.push(Reply::Admit(done, answer));
                    Ok(())
                }
                Ok(OpStep::Run(task)) => {
                    let job = OpJob {
                        task,
                        reply: Some(done),
                        resume: false,
                    };
                    b.op_intents.push((stored, job));
                    Ok(())
                }
                Err(e) => {
                    b.replies
                        .push(Reply::Admit(done, Err(AdmitError::Storage(e.to_string()))));
                    Err(e)
                }
            },
            Command::Operated(list) => {
                let mut stored = Ok(());
                for done in list {
                    if done.reply.is_some() {
                        self.ops_waiting.remove(&done.task.id);
                    }
                    let outcome = match &stored {
                        Ok(()) => self.op_store(&done, now_ms),
                        Err(_) => Err(rusqlite::Error::InvalidQuery),
                    };
                    let outcome = outcome.unwrap_or_else(|e| {
                        if stored.is_ok() {
                            stored = Err(e);
                        }
                        Err(AdmitError::Storage("the operation's result was not stored".into()))
                    });
                    if let Some(reply) = done.reply {
                        b.replies.push(Reply::Admit(reply, outcome));
                    }
                    b.op_results.push(OpJob {
                        task: done.task,
                        reply: None,
                        resume: true,
                    });
                }
                stored
            }
            Command::StoreCheck { check, reply } => {
                let stored = crate::buffer::marking::store(&self.conn, &check);
                settle(&mut b.replies, stored, |()| Reply::Unit(reply))
            }
            Command::StoreJob { job, reply } => {
                let stored = crate::buffer::jobs::store(&self.conn, &job, now_ms);
                settle(&mut b.replies, stored, |n| Reply::Count(reply, n))
            }
            Command::JobResults {
                front,
                id,
                results,
                reply,
            } => {
                let stored = crate::buffer::jobs::set_results(&self.conn, front, &id, &results, now_ms);
                settle(&mut b.replies, stored, |()| Reply::Unit(reply))
            }
            Command::Fiscalized(list) => {
                let mut stored = Ok(());
                for done in list {
                    let answer = match &stored {
                        Ok(()) => self.store_result(&done, now_ms).unwrap_or_else(|e| {
                            stored = Err(e);
                            results::Outcome::Interim
                        }),
                        Err(_) => results::Outcome::Interim,
                    };
                    b.registered += 1;
                    b.results.push((done, answer));
                }
                stored
            }
            Command::Claim {
                limit,
                now_ms,
                lease_ms,
                reply,
            } => {
                let claimed = self.claim(limit, now_ms, lease_ms);
                settle(&mut b.replies, claimed, |v| Reply::Claim(reply, v))
            }
            Command::Record { results, now_ms, reply } => {
                let applied = results.into_iter().try_for_each(|(id, d)| self.apply(&id, d, now_ms));
                settle(&mut b.replies, applied, |()| Reply::Unit(reply))
            }
            Command::RecoverLeases { now_ms: at, reply } => {
                let n = self.recover(at, now_ms);
                settle(&mut b.replies, n, |n| Reply::Count(reply, n))
            }
            Command::MakeDue {
                now_ms: at,
                reason,
                reply,
            } => {
                let n = self.make_due(at, reason);
                settle(&mut b.replies, n, |n| Reply::Count(reply, n))
            }
            Command::RetryDlq { receipt_id, reply } => {
                let ids = self.retry_dlq(receipt_id.as_deref(), now_ms);
                settle(&mut b.replies, ids, |ids| Reply::Ids(reply, ids))
            }
            Command::Log(events, reply) => {
                let logged = events
                    .into_iter()
                    .try_for_each(|e| self.event(e.kind, e.receipt_id.as_deref(), e.details, now_ms));
                settle(&mut b.replies, logged, |()| Reply::Unit(reply))
            }
            Command::Purge {
                cutoff_ms,
                limit,
                reply,
            } => {
                let purged = self.purge(cutoff_ms, limit, now_ms);
                settle(&mut b.replies, purged, |p| Reply::Purged(reply, p))
            }
            Command::Resolve {
                receipt_id,
                resolution,
                comment,
                reply,
            } => match self.resolve(&receipt_id, *resolution, &comment, now_ms) {
                Ok((result, job)) => {
                    b.forced.extend(job);
                    b.replies.push(Reply::Resolved(reply, result));
                    Ok(())
                }
                Err(e) => {
                    b.replies.push(Reply::Resolved(reply, Err(ResolveError::NotFound)));
                    Err(e)
                }
            },
            Command::WakeDevice => {
                b.wake = true;
                Ok(())
            }
            Command::Stop(reply) => {
                b.stop = Some(reply);
                Ok(())
            }
        }
    }

    /// A till's bound passed: it may be told `202` only while its receipt is still with the
    /// register (its result is answered to it otherwise).
    fn answered_awaiting(&mut self, id: &str, reply: oneshot::Sender<bool>) {
        // A counter operation: from now on a replay is answered from its row (202 until done).
        if self.ops_waiting.remove(id) {
            let _ = reply.send(true);
            return;
        }
        let still_there = match self.in_device.get_mut(id) {
            Some(state @ InDevice::Waiting) => {
                *state = InDevice::Answered;
                true
            }
            Some(InDevice::Answered) => true,
            Some(InDevice::Unstored) | None => false,
        };
        let _ = reply.send(still_there);
    }

    /// Registers the failure of a command that a failed batch never got to.
    fn unapplied(&mut self, cmd: Command, b: &mut Batch) {
        match cmd {
            Command::Admit { done, .. } => b.replies.push(Reply::Admit(done, Err(AdmitError::InProgress))),
            Command::AnsweredAwaiting(id, reply) => self.answered_awaiting(&id, reply),
            Command::Operate { done, .. } => b.replies.push(Reply::Admit(done, Err(AdmitError::InProgress))),
            Command::StoreCheck { reply, .. } => b.replies.push(Reply::Unit(reply)),
            Command::StoreJob { reply, .. } => b.replies.push(Reply::Count(reply, 0)),
            Command::JobResults { reply, .. } => b.replies.push(Reply::Unit(reply)),
            Command::Operated(list) => {
                for done in list {
                    self.ops_waiting.remove(&done.task.id);
                    if let Some(reply) = done.reply {
                        let why = "the operation's result was not stored".to_string();
                        b.replies
                            .push(Reply::Admit(reply, Err(AdmitError::ResultUnstored(why))));
                    }
                    b.op_results.push(OpJob {
                        task: done.task,
                        reply: None,
                        resume: true,
                    });
                }
            }
            Command::Fiscalized(list) => b
                .results
                .extend(list.into_iter().map(|d| (d, results::Outcome::Interim))),
            Command::Claim { reply, .. } => b.replies.push(Reply::Claim(reply, Vec::new())),
            Command::Record { reply, .. } | Command::Log(_, reply) => b.replies.push(Reply::Unit(reply)),
            Command::RecoverLeases { reply, .. } | Command::MakeDue { reply, .. } => {
                b.replies.push(Reply::Count(reply, 0))
            }
            Command::RetryDlq { reply, .. } => b.replies.push(Reply::Ids(reply, Vec::new())),
            Command::Purge { reply, .. } => b.replies.push(Reply::Purged(reply, Purged::default())),
            Command::Resolve { reply, .. } => b.replies.push(Reply::Resolved(reply, Err(ResolveError::NotFound))),
            Command::WakeDevice => b.wake = true,
            Command::Stop(reply) => b.stop = Some(reply),
        }
    }

    /// Applies one batch in one transaction; returns the `Stop` reply if the batch asked to stop.
    pub(super) fn process(&mut self, batch: Vec<Command>) -> Option<oneshot::Sender<()>> {
        let commands = batch.len();
        let mut b = Batch::default();
        let mut queue = batch.into_iter();
        let result = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            let mut unsynced = self.unsynced()?;
            let mut in_batch: HashSet<String> = HashSet::new();
            for cmd in queue.by_ref() {
                // Each arm registers its reply before an error propagates, so a failed batch
                // answers every caller with the storage error instead of dropping the reply.
                self.apply_command(cmd, &mut b, &mut in_batch, &mut unsynced)?;
            }
            self.conn.execute_batch("COMMIT")
        })();
        if result.is_err() {
            // The commands after the failing one were never applied: they fail with the batch
            // too — their callers are answered, register results are kept to store again.
            for cmd in queue {
                self.unapplied(cmd, &mut b);
            }
        }
        if let Err(e) = result {
            // Nothing of this batch is durable: roll back and acknowledge nothing.
            tracing::error!(error = %e, "buffer transaction failed; batch rolled back");
            let _ = self.conn.execute_batch("ROLLBACK");
            self.tally.rollback();
            self.written.clear();
            self.confirmed.clear();
            let text = e.to_string();
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            self.stats.set_failing(Some(text.clone()));
            for r in b.replies {
                r.fail(&text);
            }
            for (_, job) in b.intents {
                if let Some(reply) = job.reply {
                    let _ = reply.send(Err(AdmitError::Storage(text.clone())));
                }
            }
            for (_, job) in b.op_intents {
                if let Some(reply) = job.reply {
                    let _ = reply.send(Err(AdmitError::Storage(text.clone())));
                }
            }
            // The register did them; their results are read back from it once storage works.
            if !b.op_results.is_empty() {
                let _ = self
                    .device
                    .send(Work::RetryOperations(std::mem::take(&mut b.op_results)));
            }
            self.keep_unstored(b.results, &text);
            return b.stop;
        }
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        // Only a committed receipt write proves storage works again: a claim or an event may fit
        // in pages that already exist while a new receipt does not.
        let stores_receipts = !b.intents.is_empty() || b.registered > 0;
        if stores_receipts && self.stats.failed.load(Ordering::Relaxed) > 0 {
            self.stats.set_failing(None);
        }
        self.stats.commands.fetch_add(commands as u64, Ordering::Relaxed);
        self.stats.receipts.fetch_add(b.intents.len() as u64, Ordering::Relaxed);
        if b.registered > 0 {
            crate::failpoint::hit("buffer.result_committed");
        }
        self.publish_counts();
        self.answer_results(b.results);
        let mut jobs = Vec::with_capacity(b.intents.len());
        for (stored, job) in b.intents {
            let _ = stored.send(job.task.id.clone());
            jobs.push(job);
        }
        self.hand_to_device(jobs);
        self.hand_to_device(std::mem::take(&mut b.forced));
        let mut op_jobs = Vec::with_capacity(b.op_intents.len());
        for (stored, job) in b.op_intents {
            let _ = stored.send(job.task.id.clone());
            op_jobs.push(job);
        }
        self.hand_ops_to_device(op_jobs);
        if b.wake {
            let _ = self.device.send(Work::Wake);
        }
        if !self.confirmed.is_empty() {
            let _ = self.device.send(Work::Confirmed(std::mem::take(&mut self.confirmed)));
        }
        for r in b.replies {
            r.send();
        }
        for e in self.written.drain(..) {
            let _ = self.broadcast.send(e);
        }
        b.stop
    }
}
