//! What the manager's window asks of the buffer (docs/contract.md §9): find receipts, a day's
//! receipts and the DLQ as table rows (CSV), and the last hours in intervals — all aggregated
//! and filtered in SQL on a read connection.

use super::Error;
use super::ReceiptState;
use crate::money::Kopecks;
use crate::time::rfc3339;
use rusqlite::{Connection, params};
use serde::Serialize;

/// How to find receipts. Every field narrows the result; none given: the newest receipts.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// A fiscal document number, a receipt id (or its first 8+ characters) or an idempotency key.
    pub q: Option<String>,
    /// Taken at or after (unix ms).
    pub from_ms: Option<i64>,
    /// Taken before (unix ms).
    pub to_ms: Option<i64>,
    pub pos_id: Option<String>,
    pub total: Option<Kopecks>,
    pub limit: u32,
}

/// One receipt as a row of a list.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptRow {
    pub receipt_id: String,
    pub fiscal_doc_number: Option<i64>,
    pub fiscal_datetime: Option<String>,
    /// When the till took it.
    pub created_at: String,
    pub pos_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub total: Kopecks,
    pub status: ReceiptState,
    pub synced_at: Option<String>,
    pub idempotency_key: String,
    /// Which front it came through: `api` (ours), `atol` or `kkmserver` (§13).
    pub front: &'static str,
    pub dlq_reason: Option<String>,
    pub last_error: Option<String>,
}

const ROW: &str = "SELECT id, fiscal_doc_number, fiscal_datetime, created_at, pos_id, type, total_kopecks, status,
                          synced_at, idempotency_key, dlq_reason, last_error FROM receipts";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReceiptRow> {
    Ok(ReceiptRow {
        receipt_id: r.get(0)?,
        fiscal_doc_number: r.get(1)?,
        fiscal_datetime: r.get(2)?,
        created_at: rfc3339(r.get(3)?),
        pos_id: r.get(4)?,
        kind: r.get(5)?,
        total: Kopecks(r.get(6)?),
        status: r.get(7)?,
        synced_at: r.get::<_, Option<i64>>(8)?.map(rfc3339),
        front: super::jobs::front_of_key(&r.get::<_, String>(9)?),
        idempotency_key: r.get(9)?,
        dlq_reason: r.get(10)?,
        last_error: r.get(11)?,
    })
}

pub(crate) fn search(c: &Connection, s: &Search) -> Result<Vec<ReceiptRow>, Error> {
    let q = s.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let number = q.and_then(|q| q.parse::<i64>().ok());
    // An id prefix as the window shows it ("4a729b3d"): hex digits and dashes only, so LIKE's
    // wildcards never come from the user.
    let prefix = q
        .filter(|q| q.len() >= 8 && q.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-'))
        .map(|q| format!("{}%", q.to_ascii_lowercase()));
    let sql = format!(
        "{ROW} WHERE (?1 IS NULL OR id = ?1 OR idempotency_key = ?1 OR fiscal_doc_number = ?2 OR id LIKE ?3)
           AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5)
           AND (?6 IS NULL OR pos_id = ?6) AND (?7 IS NULL OR total_kopecks = ?7)
         ORDER BY created_at DESC, id LIMIT ?8"
    );
    Ok(c.prepare_cached(&sql)?
        .query_map(
            params![
                q,
                number,
                prefix,
                s.from_ms,
                s.to_ms,
                s.pos_id,
                s.total.map(|t| t.0),
                s.limit.clamp(1, 1000)
            ],
            row,
        )?
        .collect::<Result<_, _>>()?)
}

/// Every receipt taken in `[from_ms, to_ms)`, oldest first (a day's receipts for the accountant).
pub(crate) fn taken_between(c: &Connection, from_ms: i64, to_ms: i64) -> Result<Vec<ReceiptRow>, Error> {
    Ok(c.prepare_cached(&format!(
        "{ROW} WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at, id"
    ))?
    .query_map(params![from_ms, to_ms], row)?
    .collect::<Result<_, _>>()?)
}

/// One interval of the activity chart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Interval {
    pub start: String,
    /// Receipts the tills handed in.
    pub taken: u32,
    /// Receipts the OFD confirmed.
    pub delivered: u32,
    /// Receipts moved to the DLQ or refused by the register.
    pub failed: u32,
}

/// A time the OFD was unreachable (breaker open or half-open), cut to the chart's window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outage {
    pub from: String,
    pub to: String,
    /// The outage is still going on at the end of the window.
    pub ongoing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    pub from: String,
    pub to: String,
    pub interval_minutes: u32,
    pub intervals: Vec<Interval>,
    pub outages: Vec<Outage>,
}

/// The window `[to_ms - hours, to_ms)` in intervals of `minutes`, counted from the event log
/// (indexed by time) in one grouped query; outages from the breaker's events.
pub(crate) fn activity(c: &Connection, to_ms: i64, hours: u32, minutes: u32) -> Result<Activity, Error> {
    let step = i64::from(minutes.max(1)) * 60_000;
    let n = (i64::from(hours) * 3_600_000 + step - 1) / step;
    let from_ms = to_ms - n * step;
    let mut intervals: Vec<Interval> = (0..n)
        .map(|i| Interval {
            start: rfc3339(from_ms + i * step),
            taken: 0,
            delivered: 0,
            failed: 0,
        })
        .collect();
    let mut stmt = c.prepare_cached(
        "SELECT (created_at - ?1) / ?2 AS slot, event_type, count(*) FROM buffer_events
         WHERE created_at >= ?1 AND created_at < ?3
           AND event_type IN ('receipt_added', 'receipt_synced', 'receipt_dlq', 'receipt_refused')
         GROUP BY slot, event_type",
    )?;
    let counts = stmt.query_map(params![from_ms, step, to_ms], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?))
    })?;
    for item in counts {
        let (slot, kind, count) = item?;
        let Some(i) = usize::try_from(slot).ok().and_then(|s| intervals.get_mut(s)) else {
            continue;
        };
        match kind.as_str() {
            "receipt_added" => i.taken += count,
            "receipt_synced" => i.delivered += count,
            _ => i.failed += count,
        }
    }
    // Was the breaker open when the window began? Then the outage starts with the window.
    let open_at_start: bool = c
        .query_row(
            "SELECT event_type FROM buffer_events WHERE created_at < ?1
               AND event_type IN ('circuit_opened', 'circuit_half_open', 'circuit_closed')
             ORDER BY created_at DESC, id DESC LIMIT 1",
            [from_ms],
            |r| r.get::<_, String>(0),
        )
        .map(|kind| kind != "circuit_closed")
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(false),
            e => Err(e),
        })?;
    let mut outages = Vec::new();
    let mut open_since = open_at_start.then_some(from_ms);
    let mut stmt = c.prepare_cached(
        "SELECT created_at, event_type FROM buffer_events
         WHERE created_at >= ?1 AND created_at < ?2 AND event_type IN ('circuit_opened', 'circuit_closed')
         ORDER BY created_at, id",
    )?;
    for item in stmt.query_map(params![from_ms, to_ms], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })? {
        let (at, kind) = item?;
        match (kind.as_str(), open_since) {
            ("circuit_opened", None) => open_since = Some(at),
            ("circuit_closed", Some(since)) => {
                outages.push(Outage {
                    from: rfc3339(since),
                    to: rfc3339(at),
                    ongoing: false,
                });
                open_since = None;
            }
            _ => {}
        }
    }
    if let Some(since) = open_since {
        outages.push(Outage {
            from: rfc3339(since),
            to: rfc3339(to_ms),
            ongoing: true,
        });
    }
    Ok(Activity {
        from: rfc3339(from_ms),
        to: rfc3339(to_ms),
        interval_minutes: minutes,
        intervals,
        outages,
    })
}
