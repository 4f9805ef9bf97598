//! The single writer thread: groups every waiting command into one transaction.
//!
//! Intake takes two commits per receipt so that printing happens only after the row is durable
//! (docs/contract.md §1): (1) idempotency check, fiscal numbering, row + `receipt_added` event, COMMIT;
//! the printer thread prints meanwhile; (2) the print result and the exact answer bytes come back
//! as a `Printed` command and are committed with whatever else is waiting; only then does the
//! answer go back. Under load both commits are shared by whole batches.

use super::printer::{Job, Printed, admit_body};
use super::{Admission, AdmitError, AdmitRequest, Claimed, Command, Counts, Disposition, Error, Purged, WriterStats};
use crate::events::{Event, EventKind};
use crate::kkt::{FiscalDoc, Kkt, KktCounters};
use crate::money::Kopecks;
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Commands taken into one transaction at most.
const MAX_BATCH: usize = 512;

pub(crate) struct Writer {
    conn: Connection,
    kkt: Arc<dyn Kkt>,
    /// Receipts stored and numbered go here to be printed; results come back as `Printed`.
    printer: std::sync::mpsc::Sender<Vec<Job>>,
    /// Receipts handed to the printer whose results have not come back yet. A replay of one of
    /// their keys gets 409: an interim answer could contradict the final one.
    printing: HashSet<String>,
    counters: KktCounters,
    capacity: u64,
    broadcast: broadcast::Sender<Event>,
    /// Published after every commit, before the batch's replies go out.
    counts: watch::Sender<Counts>,
    /// When a receipt was last marked synced (kept here: no index serves `max(synced_at)`).
    last_synced_ms: Option<i64>,
    /// Events written in the open transaction; broadcast after it commits.
    written: Vec<Event>,
    stats: Arc<WriterStats>,
}

/// What intake decided for one request inside the transaction.
#[allow(clippy::large_enum_variant)] // one short-lived value per request; boxing would only add an allocation
enum AdmitStep {
    /// Answer at once (replay, key reused, in progress, buffer full).
    Answer(Result<Admission, AdmitError>),
    /// Stored and numbered: print after the commit.
    Print(String, Receipt, FiscalDoc),
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
        }
    }
}

/// The parts of the stored request the OFD document reuses verbatim.
#[derive(Deserialize)]
struct StoredRequest<'a> {
    #[serde(borrow)]
    items: &'a RawValue,
    #[serde(borrow)]
    payments: &'a RawValue,
}

#[derive(Serialize)]
struct OfdDocument<'a> {
    receipt_id: &'a str,
    pos_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    items: &'a RawValue,
    payments: &'a RawValue,
    total: Kopecks,
    #[serde(flatten)]
    fiscal: FiscalColumns,
}

/// A due receipt as read for a claim.
struct ClaimRow {
    id: String,
    retry_count: u32,
    pos_id: String,
    kind: String,
    request_json: String,
    total: i64,
    fiscal: FiscalColumns,
}

#[derive(Serialize)]
struct FiscalColumns {
    fiscal_doc_number: i64,
    fiscal_sign: String,
    fiscal_datetime: String,
    fn_number: String,
    kkt_number: String,
    shift_number: i64,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        kkt: Arc<dyn Kkt>,
        printer: std::sync::mpsc::Sender<Vec<Job>>,
        capacity: u64,
        broadcast: broadcast::Sender<Event>,
        stats: Arc<WriterStats>,
    ) -> Result<(Writer, watch::Receiver<Counts>), Error> {
        let mut w = Writer {
            conn,
            kkt,
            printer,
            printing: HashSet::new(),
            counters: KktCounters::default(),
            capacity,
            broadcast,
            counts: watch::Sender::new(Counts::default()),
            last_synced_ms: None,
            written: Vec::new(),
            stats,
        };
        w.counters = w.load_counters()?;
        // One scan at start; from then on the writer, which marks receipts synced, keeps it.
        w.last_synced_ms =
            w.conn
                .query_row("SELECT max(synced_at) FROM receipts WHERE status = 'synced'", [], |r| {
                    r.get(0)
                })?;
        w.counts.send_replace(w.read_counts()?);
        let rx = w.counts.subscribe();
        Ok((w, rx))
    }

    fn load_counters(&self) -> Result<KktCounters, Error> {
        Ok(self.conn.query_row(
            "SELECT last_fiscal_doc_number, shift_number, shift_opened_at, receipts_in_shift FROM kkt_state WHERE id = 1",
            [],
            |r| {
                Ok(KktCounters {
                    last_fiscal_doc_number: r.get(0)?,
                    shift_number: r.get(1)?,
                    shift_opened_at_ms: r.get(2)?,
                    receipts_in_shift: r.get(3)?,
                })
            },
        )?)
    }

    fn read_counts(&self) -> Result<Counts, Error> {
        let mut c = Counts::default();
        let mut stmt = self.conn.prepare_cached("SELECT status, n FROM status_counts")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            let n = n.max(0) as u64;
            match status.as_str() {
                "pending" => c.pending = n,
                "syncing" => c.syncing = n,
                "synced" => c.synced = n,
                _ => c.failed = n,
            }
        }
        // Fiscal numbers follow creation order, so the oldest receipt of a status is its lowest
        // number: one seek in the (status, fiscal_doc_number) index per status.
        let mut oldest = [None; 3];
        for (slot, status) in oldest.iter_mut().zip(["pending", "syncing", "failed"]) {
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
        c.dlq = self
            .conn
            .prepare_cached("SELECT count(*) FROM dlq")?
            .query_row([], |r| r.get::<_, i64>(0))? as u64;
        c.last_synced_ms = self.last_synced_ms;
        Ok(c)
    }

    /// The writer loop: runs until a `Stop` command has been processed and every receipt handed
    /// to the printer has come back and been committed, or until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut stop: Option<oneshot::Sender<()>> = None;
        // A purge is committed in a transaction of its own: its failure must not roll back
        // receipts, and its deletes must not delay their commit.
        let mut carried: Option<Command> = None;
        while stop.is_none() || !self.printing.is_empty() {
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
        });
        Ok(())
    }

    /// Applies one batch in one transaction; returns the `Stop` reply if the batch asked to stop.
    fn process(&mut self, batch: Vec<Command>) -> Option<oneshot::Sender<()>> {
        let now = Utc::now();
        let commands = batch.len();
        let mut replies = Vec::with_capacity(batch.len());
        let mut to_print: Vec<Job> = Vec::new();
        let mut printed: Vec<(oneshot::Sender<Result<Admission, AdmitError>>, Admission)> = Vec::new();
        let mut stop = None;
        let result = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            let mut unsynced = self.unsynced()?;
            let mut in_batch: HashSet<String> = HashSet::new();
            for cmd in batch {
                // Each arm registers its reply before an error propagates, so a failed batch
                // answers every caller with the storage error instead of dropping the reply.
                match cmd {
                    Command::Admit(req, reply) => match self.admit_one(req, &mut in_batch, &mut unsynced, now) {
                        Ok(AdmitStep::Answer(answer)) => replies.push(Reply::Admit(reply, answer)),
                        Ok(AdmitStep::Print(id, receipt, doc)) => to_print.push(Job {
                            id,
                            receipt,
                            doc,
                            reply,
                        }),
                        Err(e) => {
                            replies.push(Reply::Admit(reply, Err(AdmitError::Storage(e.to_string()))));
                            return Err(e);
                        }
                    },
                    Command::Printed(list) => {
                        let mut stored = Ok(());
                        for p in list {
                            self.printing.remove(&p.id);
                            if stored.is_ok() {
                                stored = self.store_printed(&p);
                            }
                            // The row is durable since its first commit: the answer goes out even if
                            // storing it fails (a replay then rebuilds it from the row).
                            let admission = Admission {
                                receipt_id: p.id,
                                body: p.body,
                                replayed: false,
                            };
                            printed.push((p.reply, admission));
                        }
                        stored?;
                    }
                    Command::Claim {
                        limit,
                        now_ms,
                        lease_ms,
                        reply,
                    } => {
                        let claimed = self.claim(limit, now_ms, lease_ms);
                        settle(&mut replies, claimed, |v| Reply::Claim(reply, v))?;
                    }
                    Command::Record { results, now_ms, reply } => {
                        let applied = results.into_iter().try_for_each(|(id, d)| self.apply(&id, d, now_ms));
                        settle(&mut replies, applied, |()| Reply::Unit(reply))?;
                    }
                    Command::RecoverLeases { now_ms, reply } => {
                        let n = self.recover(now_ms, ms(now));
                        settle(&mut replies, n, |n| Reply::Count(reply, n))?;
                    }
                    Command::MakeDue { now_ms, reason, reply } => {
                        let n = self.make_due(now_ms, reason);
                        settle(&mut replies, n, |n| Reply::Count(reply, n))?;
                    }
                    Command::RetryDlq { receipt_id, reply } => {
                        let ids = self.retry_dlq(receipt_id.as_deref(), ms(now));
                        settle(&mut replies, ids, |ids| Reply::Ids(reply, ids))?;
                    }
                    Command::Log(events, reply) => {
                        let logged = events
                            .into_iter()
                            .try_for_each(|e| self.event(e.kind, e.receipt_id.as_deref(), e.details, ms(now)));
                        settle(&mut replies, logged, |()| Reply::Unit(reply))?;
                    }
                    Command::Purge {
                        cutoff_ms,
                        limit,
                        reply,
                    } => {
                        let purged = self.purge(cutoff_ms, limit);
                        settle(&mut replies, purged, |p| Reply::Purged(reply, p))?;
                    }
                    Command::Stop(reply) => stop = Some(reply),
                }
            }
            if !to_print.is_empty() {
                self.save_counters()?; // the KKT numbered receipts in this batch
            }
            self.conn.execute_batch("COMMIT")
        })();
        // New rows or print results: the batch stored receipts (if it commits).
        let stores_receipts = !to_print.is_empty() || !printed.is_empty();
        for (reply, admission) in printed {
            let _ = reply.send(Ok(admission));
        }
        if let Err(e) = result {
            // Nothing of this batch is durable: roll back, forget its numbers, acknowledge nothing.
            tracing::error!(error = %e, "buffer transaction failed; batch rolled back");
            let _ = self.conn.execute_batch("ROLLBACK");
            self.written.clear();
            match self.load_counters() {
                Ok(c) => self.counters = c,
                Err(e2) => tracing::error!(error = %e2, "cannot reload KKT counters"),
            }
            let text = e.to_string();
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            self.stats.set_failing(Some(text.clone()));
            for r in replies {
                r.fail(&text);
            }
            for job in to_print {
                let _ = job.reply.send(Err(AdmitError::Storage(text.clone())));
            }
            return stop;
        }
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        // Only a committed receipt write proves storage works again: a claim or an event may fit
        // in pages that already exist while a new receipt does not.
        if stores_receipts && self.stats.failed.load(Ordering::Relaxed) > 0 {
            self.stats.set_failing(None);
        }
        self.stats.commands.fetch_add(commands as u64, Ordering::Relaxed);
        self.stats.receipts.fetch_add(to_print.len() as u64, Ordering::Relaxed);
        self.publish_counts();
        self.hand_to_printer(to_print);
        for r in replies {
            r.send();
        }
        for e in self.written.drain(..) {
            let _ = self.broadcast.send(e);
        }
        stop
    }

    /// Sends durable receipts to the printer thread; if it is gone, answers `buffered` at once.
    fn hand_to_printer(&mut self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
        match self.printer.send(jobs) {
            Ok(()) => self.printing.extend(ids),
            Err(std::sync::mpsc::SendError(jobs)) => {
                tracing::error!("the printer thread is gone; receipts are stored but not printed");
                for job in jobs {
                    let body = admit_body(&job.id, &job.doc, Some("the printer is not running"));
                    let _ = job.reply.send(Ok(Admission {
                        receipt_id: job.id,
                        body,
                        replayed: false,
                    }));
                }
            }
        }
    }

    fn store_printed(&mut self, p: &Printed) -> rusqlite::Result<()> {
        let status = if p.print_error.is_none() {
            "printed"
        } else {
            "print_failed"
        };
        self.conn
            .prepare_cached(
                "UPDATE receipts SET print_status = ?2, print_error = ?3, response_body = coalesce(response_body, ?4)
                 WHERE id = ?1",
            )?
            .execute(params![p.id, status, p.print_error, p.body])?;
        Ok(())
    }

    fn admit_one(
        &mut self,
        req: AdmitRequest,
        in_batch: &mut HashSet<String>,
        unsynced: &mut u64,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<AdmitStep> {
        if in_batch.contains(&req.idempotency_key) {
            return Ok(AdmitStep::Answer(Err(AdmitError::InProgress)));
        }
        if let Some(answer) = self.replay(&req)? {
            return Ok(AdmitStep::Answer(answer));
        }
        if *unsynced >= self.capacity {
            let full = AdmitError::BufferFull {
                unsynced: *unsynced,
                capacity: self.capacity,
            };
            return Ok(AdmitStep::Answer(Err(full)));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let doc = self.kkt.fiscalize(&mut self.counters, &req.receipt, now);
        self.insert(&id, &req, &doc, ms(now))?;
        *unsynced += 1;
        in_batch.insert(req.idempotency_key);
        Ok(AdmitStep::Print(id, req.receipt, doc))
    }

    fn unsynced(&self) -> rusqlite::Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(sum(n), 0) FROM status_counts WHERE status <> 'synced'")?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    fn save_counters(&self) -> rusqlite::Result<()> {
        let c = self.counters;
        self.conn
            .prepare_cached(
                "UPDATE kkt_state SET last_fiscal_doc_number = ?1, shift_number = ?2, shift_opened_at = ?3,
                 receipts_in_shift = ?4 WHERE id = 1",
            )?
            .execute(params![
                c.last_fiscal_doc_number,
                c.shift_number,
                c.shift_opened_at_ms,
                c.receipts_in_shift
            ])?;
        Ok(())
    }

    /// The stored answer for a known key: the original bytes, or 422 when the body differs.
    fn replay(&mut self, req: &AdmitRequest) -> rusqlite::Result<Option<Result<Admission, AdmitError>>> {
        let row: Option<(String, String, Option<Vec<u8>>)> = self
            .conn
            .prepare_cached("SELECT id, body_hash, response_body FROM receipts WHERE idempotency_key = ?1")?
            .query_row([&req.idempotency_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((id, hash, body)) = row else {
            return Ok(None);
        };
        if hash != req.body_hash {
            return Ok(Some(Err(AdmitError::KeyReused)));
        }
        let body = match body {
            Some(b) => b,
            // Still being printed: the first request's answer is not decided yet.
            None if self.printing.contains(&id) => return Ok(Some(Err(AdmitError::InProgress))),
            None => {
                // Stored, but the process stopped before the answer was recorded (so it was never sent):
                // answer from the row, and keep that answer for every later replay.
                let (doc, print_status, print_error) = super::read::fiscal_doc(&self.conn, &id)?;
                let err = match print_status.as_str() {
                    "printed" => None,
                    "print_failed" => Some(print_error.unwrap_or_else(|| "printer error".into())),
                    _ => Some("the printer result is unknown after a restart".into()),
                };
                let body = admit_body(&id, &doc, err.as_deref());
                self.conn
                    .prepare_cached("UPDATE receipts SET response_body = ?2 WHERE id = ?1")?
                    .execute(params![id, body])?;
                body
            }
        };
        Ok(Some(Ok(Admission {
            receipt_id: id,
            body,
            replayed: true,
        })))
    }

    fn insert(&mut self, id: &str, req: &AdmitRequest, doc: &FiscalDoc, now_ms: i64) -> rusqlite::Result<()> {
        let r = &req.receipt;
        let request_json = serde_json::to_string(r).unwrap_or_default();
        self.conn
            .prepare_cached(
                "INSERT INTO receipts (id, idempotency_key, body_hash, pos_id, type, total_kopecks, request_json,
                 status, next_attempt_at, created_at, fiscal_doc_number, fiscal_sign, fiscal_datetime, fn_number,
                 kkt_number, shift_number, receipt_number, qr_code_data, print_status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 'printing')",
            )?
            .execute(params![
                id,
                req.idempotency_key,
                req.body_hash,
                r.pos_id,
                r.kind.as_str(),
                r.total.0,
                request_json,
                now_ms,
                doc.fiscal_doc_number,
                doc.fiscal_sign,
                doc.fiscal_datetime,
                doc.fn_number,
                doc.kkt_number,
                doc.shift_number,
                doc.receipt_number,
                doc.qr_code_data
            ])?;
        let details = json!({"fiscal_doc_number": doc.fiscal_doc_number, "pos_id": r.pos_id, "total": r.total.to_decimal_string()});
        self.event(EventKind::ReceiptAdded, Some(id), details, now_ms)
    }

    fn claim(&mut self, limit: usize, now_ms: i64, lease_ms: i64) -> rusqlite::Result<Vec<Claimed>> {
        let rows: Vec<ClaimRow> = self
            .conn
            .prepare_cached(
                "SELECT id, fiscal_doc_number, retry_count, pos_id, type, request_json, total_kopecks,
                        fiscal_sign, fiscal_datetime, fn_number, kkt_number, shift_number
                 FROM receipts INDEXED BY receipts_order
                 WHERE status = 'pending' AND next_attempt_at <= ?1
                 ORDER BY fiscal_doc_number LIMIT ?2",
            )?
            .query_map(params![now_ms, limit as i64], |r| {
                Ok(ClaimRow {
                    id: r.get(0)?,
                    retry_count: r.get(2)?,
                    pos_id: r.get(3)?,
                    kind: r.get(4)?,
                    request_json: r.get(5)?,
                    total: r.get(6)?,
                    fiscal: FiscalColumns {
                        fiscal_doc_number: r.get(1)?,
                        fiscal_sign: r.get(7)?,
                        fiscal_datetime: r.get(8)?,
                        fn_number: r.get(9)?,
                        kkt_number: r.get(10)?,
                        shift_number: r.get(11)?,
                    },
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let ClaimRow {
                id,
                retry_count,
                pos_id,
                kind,
                request_json,
                total,
                fiscal,
            } = row;
            let number = fiscal.fiscal_doc_number;
            let stored: StoredRequest = serde_json::from_str(&request_json)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let document = serde_json::to_string(&OfdDocument {
                receipt_id: &id,
                pos_id: &pos_id,
                kind: &kind,
                items: stored.items,
                payments: stored.payments,
                total: Kopecks(total),
                fiscal,
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            self.conn
                .prepare_cached("UPDATE receipts SET status = 'syncing', lease_until = ?2 WHERE id = ?1")?
                .execute(params![id, now_ms + lease_ms])?;
            self.event(
                EventKind::SyncStarted,
                Some(&id),
                json!({"attempt": retry_count + 1}),
                now_ms,
            )?;
            out.push(Claimed {
                receipt_id: id,
                fiscal_doc_number: number,
                retry_count,
                document,
            });
        }
        Ok(out)
    }

    fn apply(&mut self, id: &str, d: Disposition, now_ms: i64) -> rusqlite::Result<()> {
        // Only a receipt this worker holds (`syncing`) changes: a stale result is ignored.
        let held: Option<u32> = self
            .conn
            .prepare_cached("SELECT retry_count FROM receipts WHERE id = ?1 AND status = 'syncing'")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(retry_count) = held else {
            tracing::warn!(receipt_id = %id, "sync result for a receipt that is not syncing; ignored");
            return Ok(());
        };
        match d {
            Disposition::Synced {
                http_status,
                ofd_id,
                response,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = 'synced', synced_at = ?2, lease_until = NULL, ofd_status = ?3,
                         ofd_response = ?4, ofd_id = ?5, last_error = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, now_ms, http_status, response, ofd_id])?;
                self.last_synced_ms = Some(self.last_synced_ms.map_or(now_ms, |t| t.max(now_ms)));
                self.event(
                    EventKind::ReceiptSynced,
                    Some(id),
                    json!({"http_status": http_status, "ofd_id": ofd_id, "attempt": retry_count + 1}),
                    now_ms,
                )
            }
            Disposition::Retry {
                error,
                next_attempt_at_ms,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = 'pending', retry_count = retry_count + 1, last_error = ?2,
                         next_attempt_at = ?3, lease_until = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, error, next_attempt_at_ms])?;
                let details = json!({"attempt": retry_count + 1, "error": error, "next_attempt_at": crate::time::rfc3339(next_attempt_at_ms)});
                self.event(EventKind::ReceiptFailed, Some(id), details, now_ms)
            }
            Disposition::Dead {
                reason,
                error,
                http_status,
            } => {
                let attempts = retry_count + 1;
                self.conn
                    .prepare_cached(
                        "UPDATE receipts SET status = 'failed', retry_count = ?2, last_error = ?3, lease_until = NULL,
                         ofd_status = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, attempts, error, http_status])?;
                self.conn
                    .prepare_cached("INSERT OR REPLACE INTO dlq (receipt_id, moved_at, reason, retry_count, last_error) VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![id, now_ms, reason, attempts, error])?;
                self.event(
                    EventKind::ReceiptFailed,
                    Some(id),
                    json!({"attempt": attempts, "error": error, "final": true}),
                    now_ms,
                )?;
                self.event(
                    EventKind::ReceiptDlq,
                    Some(id),
                    json!({"reason": reason, "retry_count": attempts}),
                    now_ms,
                )
            }
            Disposition::Release => {
                self.conn
                    .prepare_cached("UPDATE receipts SET status = 'pending', lease_until = NULL WHERE id = ?1")?
                    .execute([id])?;
                self.event(EventKind::SyncReleased, Some(id), json!({}), now_ms)
            }
        }
    }

    fn recover(&mut self, expired_before: Option<i64>, now_ms: i64) -> rusqlite::Result<usize> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached("SELECT id FROM receipts WHERE status = 'syncing' AND (?1 IS NULL OR lease_until <= ?1)")?
            .query_map([expired_before], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            self.conn
                .prepare_cached("UPDATE receipts SET status = 'pending', lease_until = NULL WHERE id = ?1")?
                .execute([id])?;
            self.event(
                EventKind::LeaseRecovered,
                Some(id),
                json!({"at_start": expired_before.is_none()}),
                now_ms,
            )?;
        }
        Ok(ids.len())
    }

    fn make_due(&mut self, now_ms: i64, reason: &str) -> rusqlite::Result<usize> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE receipts SET next_attempt_at = 0 WHERE status = 'pending' AND next_attempt_at > ?1",
            )?
            .execute([now_ms])?;
        if n > 0 {
            self.event(
                EventKind::BackoffCleared,
                None,
                json!({"receipts": n, "reason": reason}),
                now_ms,
            )?;
        }
        Ok(n)
    }

    fn retry_dlq(&mut self, receipt_id: Option<&str>, now_ms: i64) -> rusqlite::Result<Vec<String>> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached("SELECT receipt_id FROM dlq WHERE (?1 IS NULL OR receipt_id = ?1) ORDER BY moved_at")?
            .query_map([receipt_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            self.conn
                .prepare_cached(
                    "UPDATE receipts SET status = 'pending', retry_count = 0, next_attempt_at = 0, lease_until = NULL
                     WHERE id = ?1 AND status = 'failed'",
                )?
                .execute([id])?;
            self.conn
                .prepare_cached("DELETE FROM dlq WHERE receipt_id = ?1")?
                .execute([id])?;
            self.event(EventKind::DlqRetried, Some(id), json!({}), now_ms)?;
        }
        Ok(ids)
    }

    fn purge(&mut self, cutoff_ms: i64, limit: usize) -> rusqlite::Result<Purged> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM receipts INDEXED BY receipts_synced_at
                 WHERE status = 'synced' AND synced_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM dlq WHERE dlq.receipt_id = receipts.id)
                 ORDER BY synced_at LIMIT ?2",
            )?
            .query_map(params![cutoff_ms, limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut events = 0;
        for id in &ids {
            events += self
                .conn
                .prepare_cached("DELETE FROM buffer_events WHERE receipt_id = ?1")?
                .execute([id])?;
            self.conn
                .prepare_cached("DELETE FROM receipts WHERE id = ?1 AND status = 'synced'")?
                .execute([id])?;
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
        Ok(Purged {
            receipts: ids.len(),
            events,
        })
    }
}
