//! The mock register's fiscal memory: one SQLite file (`<data>/mock-kkt.db`; in memory for
//! unit tests) with each FN's counters and every fiscal document it holds, in WAL mode with
//! `synchronous=NORMAL` — it survives the process being killed at any point, which is what a
//! crash test needs of it; an FN's survival of power loss is not modelled.

use super::super::FiscalDoc;
use super::report::Summary;
use crate::receipt::ReceiptType;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Each entry moves the memory's schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE fn_state (
        fn_number         TEXT PRIMARY KEY,
        last_doc_number   INTEGER NOT NULL,
        shift_number      INTEGER NOT NULL,
        shift_open        INTEGER NOT NULL,
        shift_opened_at   INTEGER NOT NULL,
        receipts_in_shift INTEGER NOT NULL
    );
    -- Every fiscal document: receipts (with their task id), shift openings and closings.
    CREATE TABLE documents (
        fn_number    TEXT NOT NULL,
        doc_number   INTEGER NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('receipt', 'open_shift', 'close_shift')),
        task_id      TEXT UNIQUE,
        shift_number INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        doc          TEXT NOT NULL,
        summary      TEXT,
        confirmed    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (fn_number, doc_number)
    );
    CREATE INDEX documents_unconfirmed ON documents (fn_number, created_at) WHERE kind = 'receipt' AND confirmed = 0;
    ",
    // 2: receipts a fault registered without their task id (a device that lost the tag):
    // found by a lookup only as candidates a person must settle.
    "CREATE INDEX documents_untagged ON documents (fn_number, doc_number) WHERE kind = 'receipt' AND task_id IS NULL;",
    // 3: the FN's last document when a task first came (its mark): a lookup considers only the
    // documents after it, as a real driver's journal does.
    "CREATE TABLE marks (task_id TEXT PRIMARY KEY, fn_number TEXT NOT NULL, last_doc INTEGER NOT NULL);",
    // 4: counter operations (docs/contract.md §11) by their task id, with their result: cash in
    // and out move the drawer's counter (no FN document, as on an ATOL register); shift
    // openings and closings are documents too (`documents`).
    "
    CREATE TABLE operations (
        task_id      TEXT PRIMARY KEY,
        fn_number    TEXT NOT NULL,
        shift_number INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        amount       INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL,
        result       TEXT NOT NULL
    );
    CREATE INDEX operations_cash ON operations (fn_number, shift_number) WHERE kind IN ('cash_in', 'cash_out');
    ",
];

/// Opens (or creates) the memory and brings its schema up to date.
pub(super) fn open(path: Option<&Path>) -> rusqlite::Result<Connection> {
    let mut conn = match path {
        Some(path) => Connection::open(path)?,
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(conn)
}

/// The state of one FN, as stored.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FnState {
    pub last_doc_number: i64,
    pub shift_number: i64,
    pub shift_open: bool,
    pub shift_opened_at_ms: i64,
    pub receipts_in_shift: i64,
}

pub(super) fn load(conn: &Connection, fn_number: &str) -> rusqlite::Result<FnState> {
    conn.prepare_cached(
        "SELECT last_doc_number, shift_number, shift_open, shift_opened_at, receipts_in_shift
         FROM fn_state WHERE fn_number = ?1",
    )?
    .query_row([fn_number], |r| {
        Ok(FnState {
            last_doc_number: r.get(0)?,
            shift_number: r.get(1)?,
            shift_open: r.get(2)?,
            shift_opened_at_ms: r.get(3)?,
            receipts_in_shift: r.get(4)?,
        })
    })
}

pub(super) fn save(conn: &Connection, fn_number: &str, s: &FnState) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE fn_state SET last_doc_number = ?2, shift_number = ?3, shift_open = ?4, shift_opened_at = ?5,
         receipts_in_shift = ?6 WHERE fn_number = ?1",
    )?
    .execute(params![
        fn_number,
        s.last_doc_number,
        s.shift_number,
        s.shift_open,
        s.shift_opened_at_ms,
        s.receipts_in_shift
    ])?;
    Ok(())
}

/// A receipt document as stored: its fiscal attributes and what a report needs of it.
pub(super) struct Stored {
    pub doc: FiscalDoc,
    pub summary: Summary,
    pub task_id: Option<String>,
}

impl Stored {
    pub fn operation(&self) -> ReceiptType {
        self.summary.kind
    }
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Option<String>, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn parse(row: (String, Option<String>, Option<String>)) -> rusqlite::Result<Stored> {
    let (doc, summary, task_id) = row;
    Ok(Stored {
        doc: from_json(&doc)?,
        summary: from_json(summary.as_deref().unwrap_or("null"))?,
        task_id,
    })
}

/// The receipt registered for `task_id`, if any.
pub(super) fn find(conn: &Connection, task_id: &str) -> rusqlite::Result<Option<Stored>> {
    conn.prepare_cached("SELECT doc, summary, task_id FROM documents WHERE task_id = ?1")?
        .query_row([task_id], stored)
        .optional()?
        .map(parse)
        .transpose()
}

/// Receipt document `number` of the FN, if it is one.
pub(super) fn receipt(conn: &Connection, fn_number: &str, number: i64) -> rusqlite::Result<Option<Stored>> {
    conn.prepare_cached(
        "SELECT doc, summary, task_id FROM documents WHERE fn_number = ?1 AND doc_number = ?2 AND kind = 'receipt'",
    )?
    .query_row(params![fn_number, number], stored)
    .optional()?
    .map(parse)
    .transpose()
}

/// Remembers the FN's last document when a task first comes (kept if it came before).
pub(super) fn mark(conn: &Connection, task_id: &str, fn_number: &str, last_doc: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO marks (task_id, fn_number, last_doc) VALUES (?1, ?2, ?3)")?
        .execute(params![task_id, fn_number, last_doc])?;
    Ok(())
}

/// Receipts the FN holds without a task id after the task's mark: they belong to nobody the
/// memory knows, and may be the task's.
pub(super) fn untagged_since_mark(conn: &Connection, fn_number: &str, task_id: &str) -> rusqlite::Result<Vec<Stored>> {
    conn.prepare_cached(
        "SELECT doc, summary, task_id FROM documents INDEXED BY documents_untagged
         WHERE fn_number = ?1 AND kind = 'receipt' AND task_id IS NULL
           AND doc_number > (SELECT last_doc FROM marks WHERE task_id = ?2 AND fn_number = ?1)
         ORDER BY doc_number",
    )?
    .query_map([fn_number, task_id], stored)?
    .map(|row| row.and_then(parse))
    .collect()
}

/// Gives a receipt document the task it belongs to (a person attached it).
pub(super) fn tag(conn: &Connection, fn_number: &str, number: i64, task_id: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE documents SET task_id = ?3 WHERE fn_number = ?1 AND doc_number = ?2 AND task_id IS NULL",
    )?
    .execute(params![fn_number, number, task_id])
}

pub(super) fn to_json<T: Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

pub(super) fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}
