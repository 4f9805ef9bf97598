//! The buffer's counts, kept as the writer changes rows — never re-read after a commit (issue
//! 18): each status change of the open transaction is noted here ([`Tally::moved`]), applied
//! when it commits and dropped when it rolls back. The first receipt in delivery order (the
//! lowest fiscal number not yet synced, whose age is the FN's concern) is kept the same way while
//! receipts only join the waiting sets (intake); when one leaves them (delivered, to the DLQ) it
//! is looked up again after the commit — three index seeks, on delivery, not on intake. A full recount ([`recount`]) runs once at start, and a test proves the two equal
//! after every kind of change.

use crate::buffer::{Counts, Error, ReceiptState};
use rusqlite::{Connection, OptionalExtension, params};

/// Changes of the open transaction.
#[derive(Debug, Default, Clone)]
struct Delta {
    by_status: [i64; ReceiptState::ALL.len()],
    retrying: i64,
    /// The first in line ([`Place`]) of the receipts that joined pending/syncing, and the DLQ.
    joined_waiting: Option<Place>,
    joined_failed: Option<Place>,
    /// A receipt left the waiting sets or the DLQ: the oldest is looked up again.
    left: bool,
}

/// A receipt's place in the delivery order: its fiscal number, then when it was taken (ms).
/// Tuples order by number first, so the smaller place is the one delivered first.
pub(super) type Place = (i64, i64);

pub(super) struct Tally {
    committed: Counts,
    /// The first pending-or-syncing receipt and the first unsynced one (DLQ included).
    first_waiting: Option<Place>,
    first_unsynced: Option<Place>,
    open: Delta,
}

fn index(s: ReceiptState) -> usize {
    ReceiptState::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn slot(c: &mut Counts, s: ReceiptState) -> &mut u64 {
    match s {
        ReceiptState::Fiscalizing => &mut c.fiscalizing,
        ReceiptState::Pending => &mut c.pending,
        ReceiptState::Syncing => &mut c.syncing,
        ReceiptState::Synced => &mut c.synced,
        ReceiptState::Failed => &mut c.failed,
        ReceiptState::Refused => &mut c.refused,
        ReceiptState::NeedsReview => &mut c.needs_review,
        ReceiptState::Voided => &mut c.voided,
    }
}

fn waiting(s: ReceiptState) -> bool {
    matches!(s, ReceiptState::Pending | ReceiptState::Syncing)
}

fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.into_iter().chain(b).min()
}

impl Tally {
    /// Starts from a [`recount`].
    pub(super) fn new((counts, first_waiting, first_unsynced): (Counts, Option<Place>, Option<Place>)) -> Tally {
        Tally {
            committed: counts,
            first_waiting,
            first_unsynced,
            open: Delta::default(),
        }
    }

    /// A receipt (at `place` in the delivery order, if known) went from `from` to `to` (`None`:
    /// inserted / deleted). Joining the waiting sets without a place makes the commit look.
    pub(super) fn moved(&mut self, from: Option<ReceiptState>, to: Option<ReceiptState>, place: Option<Place>) {
        if let Some(f) = from {
            self.open.by_status[index(f)] -= 1;
        }
        if let Some(t) = to {
            self.open.by_status[index(t)] += 1;
        }
        let was_waiting = from.is_some_and(waiting);
        let is_waiting = to.is_some_and(waiting);
        let was_failed = from == Some(ReceiptState::Failed);
        let is_failed = to == Some(ReceiptState::Failed);
        if (was_waiting && !is_waiting) || (was_failed && !is_failed) {
            self.open.left = true;
        }
        if is_waiting && !was_waiting {
            match place {
                Some(p) => self.open.joined_waiting = min(self.open.joined_waiting, Some(p)),
                None => self.open.left = true,
            }
        }
        if is_failed && !was_failed {
            match place {
                Some(p) => self.open.joined_failed = min(self.open.joined_failed, Some(p)),
                None => self.open.left = true,
            }
        }
    }

    /// Receipts not yet confirmed by the OFD, as of the last commit.
    pub(super) fn unsynced(&self) -> u64 {
        self.committed.unsynced()
    }

    /// A pending receipt with failed attempts behind it was added (+1) or went (-1).
    pub(super) fn retrying(&mut self, by: i64) {
        self.open.retrying += by;
    }

    /// The open transaction committed: its changes count. Returns the counts now.
    pub(super) fn commit(&mut self, conn: &Connection, last_synced_ms: Option<i64>) -> Result<Counts, Error> {
        let d = std::mem::take(&mut self.open);
        let c = &mut self.committed;
        for (s, by) in ReceiptState::ALL.iter().zip(d.by_status) {
            let n = slot(c, *s);
            *n = (*n as i64 + by).max(0) as u64;
        }
        c.retrying = (c.retrying as i64 + d.retrying).max(0) as u64;
        if d.left {
            (self.first_waiting, self.first_unsynced) = first_in_line(conn)?;
        } else {
            self.first_waiting = min(self.first_waiting, d.joined_waiting);
            self.first_unsynced = min(min(self.first_unsynced, d.joined_waiting), d.joined_failed);
        }
        c.oldest_pending_ms = self.first_waiting.map(|p| p.1);
        c.oldest_unsynced_ms = self.first_unsynced.map(|p| p.1);
        c.last_synced_ms = last_synced_ms;
        Ok(*c)
    }

    /// The open transaction rolled back: nothing of it happened.
    pub(super) fn rollback(&mut self) {
        self.open = Delta::default();
    }
}

/// The first pending-or-syncing receipt in delivery order and the first unsynced one (DLQ
/// included): one seek in the (status, fiscal_doc_number) index per status. (Not the smallest
/// `created_at`: a receipt held back or settled in review is numbered after receipts taken later.)
fn first_in_line(conn: &Connection) -> rusqlite::Result<(Option<Place>, Option<Place>)> {
    let mut found: [Option<Place>; 3] = [None; 3];
    let statuses = [ReceiptState::Pending, ReceiptState::Syncing, ReceiptState::Failed];
    for (slot, status) in found.iter_mut().zip(statuses) {
        *slot = conn
            .prepare_cached(
                "SELECT fiscal_doc_number, created_at FROM receipts INDEXED BY receipts_order
                 WHERE status = ?1 ORDER BY fiscal_doc_number LIMIT 1",
            )?
            .query_row([status], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?;
    }
    let [pending, syncing, failed] = found;
    Ok((min(pending, syncing), min(min(pending, syncing), failed)))
}

/// Every count read from the rows themselves (at start, and in tests against the tally), with
/// the first receipts in line.
pub(super) fn recount(
    conn: &Connection,
    last_synced_ms: Option<i64>,
) -> Result<(Counts, Option<Place>, Option<Place>), Error> {
    let mut c = Counts::default();
    let mut stmt = conn.prepare_cached("SELECT status, count(*) FROM receipts GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, ReceiptState>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        *slot(&mut c, status) = n.max(0) as u64;
    }
    let (waiting, unsynced) = first_in_line(conn)?;
    c.oldest_pending_ms = waiting.map(|p| p.1);
    c.oldest_unsynced_ms = unsynced.map(|p| p.1);
    c.retrying = conn
        .prepare_cached("SELECT count(*) FROM receipts WHERE status = ?1 AND retry_count > 0")?
        .query_row(params![ReceiptState::Pending], |r| r.get::<_, i64>(0))? as u64;
    c.last_synced_ms = last_synced_ms;
    Ok((c, waiting, unsynced))
}
