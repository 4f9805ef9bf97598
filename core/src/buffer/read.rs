//! Read side: a few WAL read connections, used from `spawn_blocking`, never blocked by the writer.

use super::{Error, ReceiptState};
use crate::events::{Event, EventKind};
use crate::kkt::FiscalDoc;
use crate::money::Kopecks;
use crate::time::rfc3339;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use serde_json::value::RawValue;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

/// A fixed set of read-only connections.
pub(crate) struct Pool {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl Pool {
    pub(crate) fn new(path: &Path, size: usize) -> Result<Pool, Error> {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            idle.push(super::open::open_connection(path, flags)?);
        }
        Ok(Pool {
            idle: Mutex::new(idle),
            freed: Condvar::new(),
        })
    }

    /// Runs `f` on a pooled connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = {
                let mut idle = pool.idle.lock().map_err(|_| Error::Closed)?;
                loop {
                    if let Some(c) = idle.pop() {
                        break c;
                    }
                    idle = pool.freed.wait(idle).map_err(|_| Error::Closed)?;
                }
            };
            let result = f(&conn);
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(conn);
            }
            pool.freed.notify_one();
            result
        })
        .await
        .map_err(|e| Error::Storage(format!("read task failed: {e}")))?
    }
}

/// `GET /v1/kkt/receipt/{id}`.
#[derive(Debug, Serialize)]
pub struct ReceiptView {
    pub receipt_id: String,
    pub status: ReceiptState,
    pub pos_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub total: Kopecks,
    pub retry_count: u32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub synced_at: Option<String>,
    /// `printed` or `print_failed`; absent until the register has registered the receipt.
    pub print_status: Option<String>,
    /// Absent while the register has not registered the receipt (`fiscalizing`) or refused it.
    pub fiscal_doc: Option<FiscalView>,
    pub ofd_response: Option<OfdAnswer>,
    pub dlq: Option<DlqEntry>,
    /// The document's operation in the FN, when it is not the receipt's own (a late sale
    /// registered as its correction, docs/contract.md §10.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_as: Option<String>,
    /// While the receipt waits for a person's decision: the FN documents that may be it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<crate::kkt::Candidate>>,
    pub request: Box<RawValue>,
    /// Which front it came through: `api` (ours), `atol` or `kkmserver` (§13).
    pub front: &'static str,
    pub events: Vec<Event>,
}

/// A receipt waiting for a person's decision (§10.5), with what they need to decide.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewEntry {
    pub receipt_id: String,
    pub pos_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub total: Kopecks,
    pub created_at: String,
    /// Why the register cannot tell, in Russian.
    pub reason: Option<String>,
    /// The FN documents that may be it.
    pub candidates: Vec<crate::kkt::Candidate>,
    /// The receipt as the till sent it (items, payments), to compare with the documents.
    pub request: Box<RawValue>,
}

/// The register's fiscal attributes with the receipt's VAT per rate, as in the intake answer.
#[derive(Debug, Serialize)]
pub struct FiscalView {
    #[serde(flatten)]
    pub doc: FiscalDoc,
    pub vat: Vec<crate::receipt::VatSum>,
}

#[derive(Debug, Serialize)]
pub struct OfdAnswer {
    pub http_status: Option<u16>,
    pub ofd_id: Option<String>,
    pub body: Option<String>,
}

/// One dead-letter entry.
#[derive(Debug, Clone, Serialize)]
pub struct DlqEntry {
    pub receipt_id: String,
    pub pos_id: String,
    /// The receipt's type (`sale`, `sale_refund`, …).
    #[serde(rename = "type")]
    pub kind: String,
    pub total: Kopecks,
    /// When the till took it.
    pub created_at: String,
    /// How it was paid.
    pub payments: Vec<crate::receipt::Payment>,
    /// Its VAT per rate.
    pub vat: Vec<crate::receipt::VatSum>,
    pub fiscal_doc_number: i64,
    pub moved_at: String,
    pub reason: String,
    pub retry_count: u32,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `after` to get the next page; equal to the request's `after` when nothing is new.
    pub next_after: i64,
}

/// The stored fiscal attributes of a receipt (none before the register registered it), with its
/// print status and error.
pub(crate) type StoredFiscal = (Option<FiscalDoc>, Option<String>, Option<String>);

/// Reads a receipt's fiscal attributes from nine columns starting at `at`, in this order:
/// `fiscal_doc_number, fiscal_sign, fiscal_datetime, fn_number, kkt_number, shift_number,
/// receipt_number, total_kopecks, qr_code_data`.
pub(crate) fn fiscal_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<FiscalDoc> {
    Ok(FiscalDoc {
        fiscal_doc_number: r.get(at)?,
        fiscal_sign: r.get(at + 1)?,
        fiscal_datetime: r.get(at + 2)?,
        fn_number: r.get(at + 3)?,
        kkt_number: r.get(at + 4)?,
        shift_number: r.get(at + 5)?,
        receipt_number: r.get(at + 6)?,
        total: Kopecks(r.get(at + 7)?),
        qr_code_data: r.get(at + 8)?,
    })
}

/// A receipt as the register would get it, and its status.
pub(crate) fn task(c: &Connection, id: &str) -> Result<Option<(crate::kkt::Task, ReceiptState)>, Error> {
    let row: Option<(String, i64, ReceiptState)> = c
        .prepare_cached("SELECT request_json, created_at, status FROM receipts WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((json, created, status)) = row else {
        return Ok(None);
    };
    let receipt = serde_json::from_str(&json).map_err(|e| Error::Storage(format!("stored receipt {id}: {e}")))?;
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(created).unwrap_or_default();
    Ok(Some((crate::kkt::Task::new(id.to_string(), receipt, at), status)))
}

pub(crate) fn fiscal_doc(c: &Connection, id: &str) -> rusqlite::Result<StoredFiscal> {
    c.prepare_cached(
        "SELECT fiscal_doc_number, fiscal_sign, fiscal_datetime, fn_number, kkt_number, shift_number,
                receipt_number, total_kopecks, qr_code_data, print_status, print_error
         FROM receipts WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let doc = match r.get::<_, Option<i64>>(0)? {
            None => None,
            Some(_) => Some(fiscal_from_row(r, 0)?),
        };
        Ok((doc, r.get(9)?, r.get(10)?))
    })
}

/// The event columns, with the receipt's fiscal document number and total (the window names
/// receipts by them, not by their ids).
const EVENT: &str =
    "SELECT e.id, e.receipt_id, e.event_type, e.created_at, e.details, r.fiscal_doc_number, r.total_kopecks
                     FROM buffer_events e LEFT JOIN receipts r ON r.id = e.receipt_id";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Event>> {
    let kind: String = r.get(2)?;
    let details: Option<String> = r.get(4)?;
    Ok(EventKind::from_name(&kind).map(|event_type| Event {
        id: r.get(0).unwrap_or_default(),
        receipt_id: r.get(1).unwrap_or_default(),
        event_type,
        created_at: rfc3339(r.get(3).unwrap_or_default()),
        details: details
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or(serde_json::Value::Null),
        fiscal_doc_number: r.get(5).unwrap_or_default(),
        total: r.get::<_, Option<i64>>(6).unwrap_or_default().map(Kopecks),
    }))
}

pub(crate) fn receipt(c: &Connection, id: &str) -> Result<Option<ReceiptView>, Error> {
    let Some((fiscal_doc, print_status, _)) = fiscal_doc(c, id).optional()? else {
        return Ok(None);
    };
    let dlq = dlq_entries(c, Some(id))?.into_iter().next();
    let events = c
        .prepare_cached(&format!("{EVENT} WHERE e.receipt_id = ?1 ORDER BY e.id"))?
        .query_map([id], event_row)?
        .filter_map(|e| e.transpose())
        .collect::<Result<_, _>>()?;
    let view = c
        .prepare_cached(
            "SELECT status, pos_id, type, total_kopecks, retry_count, last_error, created_at, next_attempt_at,
                    synced_at, ofd_status, ofd_id, ofd_response, request_json, registered_as, review_json,
                    idempotency_key
             FROM receipts WHERE id = ?1",
        )?
        .query_row([id], |r| {
            let status: ReceiptState = r.get(0)?;
            let request: String = r.get(12)?;
            let created: i64 = r.get(6)?;
            let next: i64 = r.get::<_, i64>(7)?.max(created);
            let (s, i, b): (Option<u16>, Option<String>, Option<String>) = (r.get(9)?, r.get(10)?, r.get(11)?);
            Ok(ReceiptView {
                receipt_id: id.to_string(),
                next_attempt_at: (status == ReceiptState::Pending).then(|| rfc3339(next)),
                status,
                pos_id: r.get(1)?,
                kind: r.get(2)?,
                total: Kopecks(r.get(3)?),
                retry_count: r.get(4)?,
                last_error: r.get(5)?,
                created_at: rfc3339(created),
                synced_at: r.get::<_, Option<i64>>(8)?.map(rfc3339),
                print_status,
                ofd_response: (s.is_some() || i.is_some() || b.is_some()).then_some(OfdAnswer {
                    http_status: s,
                    ofd_id: i,
                    body: b,
                }),
                fiscal_doc: fiscal_doc.map(|doc| FiscalView {
                    doc,
                    vat: serde_json::from_str::<crate::receipt::Receipt>(&request)
                        .map(|r| r.vat_sums())
                        .unwrap_or_default(),
                }),
                request: RawValue::from_string(request).unwrap_or_else(|_| empty_object()),
                registered_as: r.get(13)?,
                candidates: (status == ReceiptState::NeedsReview)
                    .then(|| r.get::<_, Option<String>>(14))
                    .transpose()?
                    .flatten()
                    .map(|j| serde_json::from_str(&j).unwrap_or_default()),
                dlq,
                front: super::jobs::front_of_key(&r.get::<_, String>(15)?),
                events,
            })
        })?;
    Ok(Some(view))
}

/// The receipts waiting for a person's decision, oldest first.
pub(crate) fn review(c: &Connection) -> Result<Vec<ReviewEntry>, Error> {
    Ok(c.prepare_cached(
        "SELECT id, pos_id, type, total_kopecks, created_at, last_error, review_json, request_json
         FROM receipts INDEXED BY receipts_review WHERE status = 'needs_review' ORDER BY created_at LIMIT 1000",
        // (the partial index is for this very text: a bound value would not use it)
    )?
    .query_map([], |r| {
        let candidates: Option<String> = r.get(6)?;
        Ok(ReviewEntry {
            receipt_id: r.get(0)?,
            pos_id: r.get(1)?,
            kind: r.get(2)?,
            total: Kopecks(r.get(3)?),
            created_at: rfc3339(r.get(4)?),
            reason: r.get(5)?,
            candidates: candidates
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            request: RawValue::from_string(r.get(7)?).unwrap_or_else(|_| empty_object()),
        })
    })?
    .collect::<Result<_, _>>()?)
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".into()).unwrap_or_else(|_| unreachable!("{{}} is valid JSON"))
}

pub(crate) fn events(c: &Connection, after: i64, limit: u32) -> Result<EventPage, Error> {
    let limit = limit.clamp(1, 1000);
    let events: Vec<Event> = c
        .prepare_cached(&format!("{EVENT} WHERE e.id > ?1 ORDER BY e.id LIMIT ?2"))?
        .query_map(params![after, limit], event_row)?
        .filter_map(|e| e.transpose())
        .collect::<Result<_, _>>()?;
    let next_after = events.last().map(|e| e.id).unwrap_or(after);
    Ok(EventPage { events, next_after })
}

pub(crate) fn latest_events(c: &Connection, n: u32) -> Result<EventPage, Error> {
    let mut events: Vec<Event> = c
        .prepare_cached(&format!("{EVENT} ORDER BY e.id DESC LIMIT ?1"))?
        .query_map([n.clamp(1, 1000)], event_row)?
        .filter_map(|e| e.transpose())
        .collect::<Result<_, _>>()?;
    events.reverse();
    let next_after = events.last().map(|e| e.id).unwrap_or(0);
    Ok(EventPage { events, next_after })
}

fn dlq_entries(c: &Connection, id: Option<&str>) -> Result<Vec<DlqEntry>, Error> {
    Ok(c.prepare_cached(
        "SELECT id, pos_id, total_kopecks, fiscal_doc_number, dlq_moved_at, dlq_reason, retry_count, last_error,
                type, created_at, request_json
         FROM receipts INDEXED BY receipts_dlq
         WHERE status = 'failed' AND (?1 IS NULL OR id = ?1) ORDER BY dlq_moved_at, fiscal_doc_number",
    )?
    .query_map([id], |r| {
        let stored: Option<crate::receipt::Receipt> = serde_json::from_str(&r.get::<_, String>(10)?).ok();
        Ok(DlqEntry {
            receipt_id: r.get(0)?,
            pos_id: r.get(1)?,
            kind: r.get(8)?,
            created_at: rfc3339(r.get(9)?),
            payments: stored.as_ref().map(|s| s.payments.clone()).unwrap_or_default(),
            vat: stored.as_ref().map(|s| s.vat_sums()).unwrap_or_default(),
            total: Kopecks(r.get(2)?),
            fiscal_doc_number: r.get(3)?,
            moved_at: rfc3339(r.get(4)?),
            reason: r.get(5)?,
            retry_count: r.get(6)?,
            last_error: r.get(7)?,
        })
    })?
    .collect::<Result<_, _>>()?)
}

pub(crate) fn dlq(c: &Connection) -> Result<Vec<DlqEntry>, Error> {
    dlq_entries(c, None)
}
