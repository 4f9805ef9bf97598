//! The single writer thread: groups every waiting command into one transaction.
//!
//! The loop, the batch and its replies live here; each operation is in a file of its own:
//! [`intake`] (intent rows, replays, the register's results and the answers), [`delivery`]
//! (claims, send results, leases, the DLQ, making receipts due) and [`purge`] (retention).
//!
//! Intake takes two commits per receipt so that nothing is fiscalized before its intent is
//! durable and nothing is answered before the register's result is (docs/contract.md §1, §7):
//! (1) idempotency check and the intent row, COMMIT; the device thread registers the receipt
//! meanwhile; (2) the register's fiscal attributes and the exact answer bytes come back as a
//! `Fiscalized` command and are committed with whatever else is waiting; only then does the
//! answer go back. Under load both commits are shared by whole batches.

mod delivery;
mod intake;
mod purge;

use super::device::{Done, Job, Work};
use super::{
    Admission, AdmitError, AnswerFn, Claimed, Command, Counts, Error, Purged, ReceiptStatus, ResolveError, WriterStats,
};
use crate::events::{Event, EventKind};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Commands taken into one transaction at most.
const MAX_BATCH: usize = 512;

/// How often register results that could not be stored (disk full) are tried again.
const UNSTORED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// What the writer is given besides its connection.
pub(crate) struct Setup {
    pub device: std::sync::mpsc::Sender<Work>,
    pub clock: crate::time::Clock,
    pub capacity: u64,
    pub answer: AnswerFn,
    pub broadcast: broadcast::Sender<Event>,
    pub stats: Arc<WriterStats>,
}

/// A receipt handed to the device and not registered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InDevice {
    /// Its till is still waiting for the answer: a replay gets 409.
    Waiting,
    /// Its till was told `202 awaiting_device` (or it was resumed after a restart): a replay
    /// gets that again until the register has registered it.
    Answered,
    /// Registered, but storing the result failed (disk full): a replay gets the storage error
    /// its till got, until the result is stored.
    Unstored,
}

pub(crate) struct Writer {
    conn: Connection,
    /// Intent rows go here to be registered; results come back as `Fiscalized`.
    device: std::sync::mpsc::Sender<Work>,
    /// The program's clock (tests move it forward: shifts, the FN's 30 days).
    clock: crate::time::Clock,
    /// Documents the OFD confirmed in the open transaction, for the register after the commit.
    confirmed: Vec<(String, i64)>,
    in_device: HashMap<String, InDevice>,
    /// Tills waiting for the first result of their receipt (shutdown waits for them).
    waiting_tills: usize,
    /// Register results whose commit failed (disk full): stored again with the next batch.
    unstored: Vec<Done>,
    /// Receipts to resume at start: intent rows an earlier run left without a result.
    resume: Vec<Job>,
    capacity: u64,
    answer: AnswerFn,
    broadcast: broadcast::Sender<Event>,
    /// Published after every commit, before the batch's replies go out.
    counts: watch::Sender<Counts>,
    /// When a receipt was last marked synced (kept here: no index serves `max(synced_at)`).
    last_synced_ms: Option<i64>,
    /// Events written in the open transaction; broadcast after it commits.
    written: Vec<Event>,
    stats: Arc<WriterStats>,
}

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
enum Reply {
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
        oneshot::Sender<Result<ReceiptStatus, ResolveError>>,
        Result<ReceiptStatus, ResolveError>,
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
struct Batch {
    replies: Vec<Reply>,
    /// Intent rows stored: (till's `stored` notice, job for the device).
    intents: Vec<(oneshot::Sender<String>, Job)>,
    /// Register results stored, with the answers they make (or to store again if the commit fails).
    results: Vec<(Done, intake::Outcome)>,
    /// Receipts whose register result this batch stores.
    registered: usize,
    /// Receipts a person sent to the register again, for the device thread after the commit.
    forced: Vec<Job>,
    /// Waiting receipts may go through now.
    wake: bool,
    stop: Option<oneshot::Sender<()>>,
}

impl Writer {
    pub(crate) fn new(conn: Connection, setup: Setup) -> Result<(Writer, watch::Receiver<Counts>), Error> {
        let mut w = Writer {
            conn,
            device: setup.device,
            clock: setup.clock,
            confirmed: Vec::new(),
            in_device: HashMap::new(),
            waiting_tills: 0,
            unstored: Vec::new(),
            resume: Vec::new(),
            capacity: setup.capacity,
            answer: setup.answer,
            broadcast: setup.broadcast,
            counts: watch::Sender::new(Counts::default()),
            last_synced_ms: None,
            written: Vec::new(),
            stats: setup.stats,
        };
        // One scan at start; from then on the writer, which marks receipts synced, keeps it.
        w.last_synced_ms =
            w.conn
                .query_row("SELECT max(synced_at) FROM receipts WHERE status = 'synced'", [], |r| {
                    r.get(0)
                })?;
        w.resume = w.interrupted_intents()?;
        for job in &w.resume {
            w.in_device.insert(job.task.id.clone(), InDevice::Answered);
        }
        w.counts.send_replace(w.read_counts()?);
        let rx = w.counts.subscribe();
        Ok((w, rx))
    }

    fn read_counts(&self) -> Result<Counts, Error> {
        let mut c = Counts::default();
        let mut stmt = self.conn.prepare_cached("SELECT status, n FROM status_counts")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, ReceiptStatus>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            let n = n.max(0) as u64;
            match status {
                ReceiptStatus::Fiscalizing => c.fiscalizing = n,
                ReceiptStatus::Pending => c.pending = n,
                ReceiptStatus::Syncing => c.syncing = n,
                ReceiptStatus::Synced => c.synced = n,
                ReceiptStatus::Failed => c.failed = n,
                ReceiptStatus::Refused => c.refused = n,
                ReceiptStatus::NeedsReview => c.needs_review = n,
                ReceiptStatus::Voided => c.voided = n,
            }
        }
        // Registered receipts are numbered in creation order, so the oldest receipt of a status
        // is its lowest number: one seek in the (status, fiscal_doc_number) index per status.
        let mut oldest = [None; 3];
        let statuses = [ReceiptStatus::Pending, ReceiptStatus::Syncing, ReceiptStatus::Failed];
        for (slot, status) in oldest.iter_mut().zip(statuses) {
            *slot = self
                .conn
                .prepare_cached(
                    "SELECT created_at FROM receipts INDEXED BY receipts_order
                     WHERE status = ?1 ORDER BY fiscal_doc_number LIMIT 1",
                )?
                .query_row([status], |r| r.get::<_, i64>(0))
                .optional()?;
        }
        let [pending, syncing, failed] = oldest;
        c.oldest_pending_ms = pending.into_iter().chain(syncing).min();
        c.oldest_unsynced_ms = pending.into_iter().chain(syncing).chain(failed).min();
        c.retrying = self
            .conn
            .prepare_cached("SELECT count(*) FROM receipts WHERE status = 'pending' AND retry_count > 0")?
            .query_row([], |r| r.get::<_, i64>(0))? as u64;
        c.last_synced_ms = self.last_synced_ms;
        Ok(c)
    }

    /// The writer loop: runs until a `Stop` command has been processed and every till waiting
    /// for the register has its answer, or until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let resume = std::mem::take(&mut self.resume);
        self.hand_to_device(resume);
        let mut stop: Option<oneshot::Sender<()>> = None;
        // A purge is committed in a transaction of its own: its failure must not roll back
        // receipts, and its deletes must not delay their commit.
        let mut carried: Option<Command> = None;
        let mut last_retry = std::time::Instant::now();
        while stop.is_none() || self.waiting_tills > 0 {
            let Some(first) = carried.take().or_else(|| rx.blocking_recv()) else {
                break;
            };
            let alone = matches!(first, Command::Purge { .. });
            let mut batch = vec![first];
            while !alone && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c @ Command::Purge { .. }) => {
                        carried = Some(c);
                        break;
                    }
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            // Register results a full disk kept out are tried again in a transaction of their
            // own, at most once a second: while storage fails they must not fail everything else.
            if !self.unstored.is_empty() && last_retry.elapsed() >= UNSTORED_RETRY {
                last_retry = std::time::Instant::now();
                let retried = std::mem::take(&mut self.unstored);
                if let Some(s) = self.process(vec![Command::Fiscalized(retried)]) {
                    stop = Some(s);
                }
            }
            if let Some(s) = self.process(batch) {
                stop = Some(s);
            }
        }
        if let Some(s) = stop {
            let _ = s.send(());
        }
        tracing::info!("buffer writer stopped");
    }

    fn publish_counts(&self) {
        match self.read_counts() {
            Ok(c) => {
                self.counts.send_replace(c);
            }
            Err(e) => tracing::error!(error = %e, "cannot read buffer counts"),
        }
    }

    fn event(
        &mut self,
        kind: EventKind,
        receipt_id: Option<&str>,
        details: serde_json::Value,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let text = details.to_string();
        self.conn
            .prepare_cached(
                "INSERT INTO buffer_events (receipt_id, event_type, created_at, details) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![receipt_id, kind.as_str(), now_ms, text])?;
        self.written.push(Event {
            id: self.conn.last_insert_rowid(),
            receipt_id: receipt_id.map(str::to_string),
            event_type: kind,
            created_at: crate::time::rfc3339(now_ms),
            details,
            fiscal_doc_number: None,
            total: None,
        });
        Ok(())
    }

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
            Command::Fiscalized(list) => {
                let mut stored = Ok(());
                for done in list {
                    let answer = match &stored {
                        Ok(()) => self.store_result(&done, now_ms).unwrap_or_else(|e| {
                            stored = Err(e);
                            intake::Outcome::Interim
                        }),
                        Err(_) => intake::Outcome::Interim,
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
                let purged = self.purge(cutoff_ms, limit);
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
            Command::Fiscalized(list) => b
                .results
                .extend(list.into_iter().map(|d| (d, intake::Outcome::Interim))),
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
    fn process(&mut self, batch: Vec<Command>) -> Option<oneshot::Sender<()>> {
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
