//! The vendor fronts' jobs in the buffer (docs/contract.md §13): an ATOL Web Requests job by its
//! uuid, a kkmserver command by its `IdCommand`, kept with the request as sent and its results
//! so far (JSON in the vendor's shape; the buffer does not read them). The receipts and counter
//! operations a job makes are stored as any other, under keys the front derives from the job.

use super::Error;

/// The ATOL Web Requests front's name; its receipts' keys start `atol:`.
pub const ATOL: &str = "atol";
/// The kkmserver front's name; its receipts' keys start `kkmserver:`.
pub const KKMSERVER: &str = "kkmserver";

/// The front a receipt came through, by its key: `atol`, `kkmserver` or `api` (ours).
pub fn front_of_key(key: &str) -> &'static str {
    match key.split_once(':') {
        Some((ATOL, _)) => ATOL,
        Some((KKMSERVER, _)) => KKMSERVER,
        _ => "api",
    }
}
use rusqlite::{Connection, OptionalExtension, params};

/// A job to keep.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// `atol` or `kkmserver`.
    pub front: &'static str,
    pub id: String,
    /// SHA-256 of the request as the front reads it: the same id with another body is another job.
    pub body_hash: String,
    pub request_json: String,
}

/// A kept job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    pub body_hash: String,
    pub request_json: String,
    /// `None` until its first task has run.
    pub results_json: Option<String>,
    pub created_at_ms: i64,
}

/// Keeps the job unless its id is taken: 1 if it was new, 0 if not.
pub(crate) fn store(c: &Connection, job: &NewJob, now_ms: i64) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO compat_jobs (front, job_id, body_hash, request_json, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![job.front, job.id, job.body_hash, job.request_json, now_ms])
}

pub(crate) fn set_results(c: &Connection, front: &str, id: &str, results: &str, now_ms: i64) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE compat_jobs SET results_json = ?3, updated_at = ?4 WHERE front = ?1 AND job_id = ?2")?
        .execute(params![front, id, results, now_ms])?;
    Ok(())
}

pub(crate) fn by_id(c: &Connection, front: &str, id: &str) -> Result<Option<StoredJob>, Error> {
    Ok(c.prepare_cached(
        "SELECT body_hash, request_json, results_json, created_at FROM compat_jobs WHERE front = ?1 AND job_id = ?2",
    )?
    .query_row(params![front, id], |r| {
        Ok(StoredJob {
            body_hash: r.get(0)?,
            request_json: r.get(1)?,
            results_json: r.get(2)?,
            created_at_ms: r.get(3)?,
        })
    })
    .optional()?)
}

/// Deletes up to `limit` jobs made before `cutoff_ms` whose receipt the buffer no longer holds
/// (a job whose receipt still waits stays findable: a POS that got "not found" would send it
/// again under a new id).
pub(crate) fn purge(c: &Connection, cutoff_ms: i64, limit: usize) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "DELETE FROM compat_jobs WHERE (front, job_id) IN
             (SELECT j.front, j.job_id FROM compat_jobs j INDEXED BY compat_jobs_created
              WHERE j.created_at < ?1
                AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.idempotency_key = j.front || ':' || j.job_id)
              LIMIT ?2)",
    )?
    .execute(params![cutoff_ms, limit as i64])
}
