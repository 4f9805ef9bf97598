//! Marking code checks in the buffer (docs/contract.md §12): kept as the checker made them
//! (JSON), found by id, by code and operation, by day; the buffer does not read them.

use super::Error;
use rusqlite::{Connection, OptionalExtension, params};

/// A check to keep.
#[derive(Debug, Clone)]
pub struct StoredCheck {
    pub check_id: String,
    /// SHA-256 of the whole code (the code itself is not a key anyone should read).
    pub code_hash: String,
    pub operation: String,
    pub verdict: String,
    pub checked_at_ms: i64,
    pub json: String,
}

pub(crate) fn store(c: &Connection, s: &StoredCheck) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO marking_checks (check_id, code_hash, operation, verdict, checked_at, check_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        s.check_id,
        s.code_hash,
        s.operation,
        s.verdict,
        s.checked_at_ms,
        s.json
    ])?;
    Ok(())
}

pub(crate) fn by_id(c: &Connection, id: &str) -> Result<Option<(String, String)>, Error> {
    Ok(
        c.prepare_cached("SELECT code_hash, check_json FROM marking_checks WHERE check_id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    )
}

pub(crate) fn recent(c: &Connection, code_hash: &str, operation: &str, since_ms: i64) -> Result<Option<String>, Error> {
    Ok(c.prepare_cached(
        "SELECT check_json FROM marking_checks WHERE code_hash = ?1 AND operation = ?2 AND checked_at >= ?3
             ORDER BY checked_at DESC LIMIT 1",
    )?
    .query_row(params![code_hash, operation, since_ms], |r| r.get(0))
    .optional()?)
}

pub(crate) fn between(c: &Connection, from_ms: i64, to_ms: i64) -> Result<Vec<String>, Error> {
    Ok(c.prepare_cached(
        "SELECT check_json FROM marking_checks INDEXED BY marking_checks_time
             WHERE checked_at >= ?1 AND checked_at < ?2 ORDER BY checked_at LIMIT 5000",
    )?
    .query_map(params![from_ms, to_ms], |r| r.get(0))?
    .collect::<Result<_, _>>()?)
}

pub(crate) fn knows_key(c: &Connection, key: &str) -> Result<bool, Error> {
    Ok(c.prepare_cached("SELECT 1 FROM receipts WHERE idempotency_key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}
