//! The single writer thread: groups every waiting command into one transaction.
//!
//! The loop lives here, one batch and its replies in [`batch`]; each operation is in a file of
//! its own: [`intake`] (intent rows, replays, resuming), [`results`] (the register's results and
//! the answers), [`review`] (a person's decisions), [`delivery`] (claims, send results, leases,
//! the DLQ, making receipts due) and [`purge`] (retention).
//!
//! Intake takes two commits per receipt so that nothing is fiscalized before its intent is
//! durable and nothing is answered before the register's result is (docs/contract.md §1, §7):
//! (1) idempotency check and the intent row, COMMIT; the device thread registers the receipt
//! meanwhile; (2) the register's fiscal attributes and the exact answer bytes come back as a
//! `Fiscalized` command and are committed with whatever else is waiting; only then does the
//! answer go back. Under load both commits are shared by whole batches.

mod batch;
mod delivery;
mod ids;
mod intake;
mod operations;
mod purge;
mod results;
mod review;
mod tally;

use super::device::{Done, Job, Work};
use super::{AnswerFn, Command, Counts, Error, ReceiptState, WriterStats};
use crate::events::{Event, EventKind};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::sync::Arc;
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
    /// The counts, kept as rows change (never re-read after a commit).
    tally: tally::Tally,
    /// When a receipt was last marked synced (kept here: no index serves `max(synced_at)`).
    last_synced_ms: Option<i64>,
    /// Events written in the open transaction; broadcast after it commits.
    written: Vec<Event>,
    stats: Arc<WriterStats>,
    /// Where new receipt ids come from (ascending, see [`ids`]).
    ids: ids::Ids,
    /// Counter operations whose first caller still waits for the register (a replay gets 409).
    ops_waiting: std::collections::HashSet<String>,
    /// Counter operations to resume at start (§11).
    resume_ops: Vec<crate::buffer::operations::OpJob>,
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
            tally: tally::Tally::new((Counts::default(), None, None)),
            last_synced_ms: None,
            written: Vec::new(),
            stats: setup.stats,
            ids: ids::Ids::new(0),
            ops_waiting: Default::default(),
            resume_ops: Vec::new(),
        };
        // One scan at start; from then on the writer, which marks receipts synced, keeps it.
        w.last_synced_ms = w.conn.query_row(
            "SELECT max(synced_at) FROM receipts WHERE status = ?1",
            [ReceiptState::Synced],
            |r| r.get(0),
        )?;
        w.ids = ids::Ids::after_newest(&w.conn)?;
        w.resume = w.interrupted_intents()?;
        w.resume_ops = w.interrupted_operations()?;
        for job in &w.resume {
            w.in_device.insert(job.task.id.clone(), InDevice::Answered);
        }
        let start = tally::recount(&w.conn, w.last_synced_ms)?;
        let counts = start.0;
        w.tally = tally::Tally::new(start);
        w.counts.send_replace(counts);
        let rx = w.counts.subscribe();
        Ok((w, rx))
    }

    /// The writer loop: runs until a `Stop` command has been processed and every till waiting
    /// for the register has its answer, or until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let resume = std::mem::take(&mut self.resume);
        self.hand_to_device(resume);
        let resume_ops = std::mem::take(&mut self.resume_ops);
        self.hand_ops_to_device(resume_ops);
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

    /// After a commit: the counts with its changes, to everyone who watches them.
    fn publish_counts(&mut self) {
        match self.tally.commit(&self.conn, self.last_synced_ms) {
            Ok(c) => {
                self.counts.send_replace(c);
            }
            Err(e) => tracing::error!(error = %e, "cannot read the oldest unsynced receipt"),
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
}

/// Every count read from the rows (tests compare the writer's tally with it).
#[cfg(test)]
pub(crate) fn recount(conn: &Connection) -> Result<Counts, Error> {
    Ok(tally::recount(conn, None)?.0)
}
