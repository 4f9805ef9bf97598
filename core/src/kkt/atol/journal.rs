//! The attempts journal (`atol-journal.db` beside the buffer): for every receipt sent to the
//! register, which FN and device it went to, the job of its current attempt, the FN's last
//! document before that attempt (the mark a result must be above, §10.3), how far the FN has
//! been searched for it (documents up to there are proven not to be it, and are never read
//! again), the documents that may be it, and its document once known. Written before the job
//! exists, so a crash at any point is resolved from it (docs/contract.md §10.1, §10.9).

use crate::kkt::{Candidate, DeviceError};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Each entry moves the journal from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: what the first driver kept.
    "CREATE TABLE IF NOT EXISTS attempts (
         receipt_id      TEXT PRIMARY KEY,
         attempt         INTEGER NOT NULL,
         last_doc_before INTEGER
     );",
    // 2: keyed by FN and device, with the search window and the documents found.
    "CREATE TABLE attempts_v2 (
         receipt_id  TEXT PRIMARY KEY,
         fn_number   TEXT NOT NULL,
         device_id   TEXT NOT NULL,
         attempt     INTEGER NOT NULL,
         state       TEXT NOT NULL CHECK (state IN ('posted', 'failed', 'done')),
         operation   TEXT NOT NULL,
         mark        INTEGER NOT NULL,
         searched_to INTEGER NOT NULL,
         candidates  TEXT NOT NULL DEFAULT '[]',
         doc_number  INTEGER,
         updated_at  INTEGER NOT NULL
     );
     INSERT INTO attempts_v2
     SELECT receipt_id, '', '', attempt, CASE WHEN last_doc_before IS NULL THEN 'failed' ELSE 'posted' END,
            '', coalesce(last_doc_before, 0), coalesce(last_doc_before, 0), '[]', NULL,
            CAST(strftime('%s', 'now') AS INTEGER) * 1000
     FROM attempts;
     DROP TABLE attempts;
     ALTER TABLE attempts_v2 RENAME TO attempts;
     CREATE INDEX attempts_doc ON attempts (fn_number, doc_number) WHERE doc_number IS NOT NULL;
     CREATE INDEX attempts_done ON attempts (updated_at) WHERE state = 'done';
     -- Whether an FN gives our receipt tag (1192) back when a document is read: then a
     -- document without it is another program's, not one of ours that lost its tag.
     CREATE TABLE fns (fn_number TEXT PRIMARY KEY, tag_echo INTEGER NOT NULL);",
    // 3: keyed by the FN and device as well (§10.9): an attempt on a replaced FN or another
    // register is a line of its own, and the earlier one is kept for the person who settles it.
    "CREATE TABLE attempts_v3 (
         receipt_id  TEXT NOT NULL,
         fn_number   TEXT NOT NULL,
         device_id   TEXT NOT NULL,
         attempt     INTEGER NOT NULL,
         state       TEXT NOT NULL CHECK (state IN ('posted', 'failed', 'done')),
         operation   TEXT NOT NULL,
         mark        INTEGER NOT NULL,
         searched_to INTEGER NOT NULL,
         candidates  TEXT NOT NULL DEFAULT '[]',
         doc_number  INTEGER,
         updated_at  INTEGER NOT NULL,
         PRIMARY KEY (fn_number, device_id, receipt_id)
     );
     INSERT INTO attempts_v3 SELECT receipt_id, fn_number, device_id, attempt, state, operation, mark,
            searched_to, candidates, doc_number, updated_at FROM attempts;
     DROP TABLE attempts;
     ALTER TABLE attempts_v3 RENAME TO attempts;
     CREATE INDEX attempts_receipt ON attempts (receipt_id, updated_at);
     CREATE INDEX attempts_doc ON attempts (fn_number, doc_number) WHERE doc_number IS NOT NULL;
     CREATE INDEX attempts_settled ON attempts (updated_at) WHERE state <> 'posted';",
    // 4: counter operations (§11): the job of each attempt and what the register showed just
    // before it (`before`: the shift and its totals), to judge an attempt whose job was lost.
    "CREATE TABLE operations (
         operation_id TEXT PRIMARY KEY,
         attempt      INTEGER NOT NULL,
         before       TEXT NOT NULL,
         updated_at   INTEGER NOT NULL
     );
     CREATE INDEX operations_age ON operations (updated_at);",
];

/// How often a long-running adapter prunes the journal (it is pruned at start as well).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Settled lines (done, or failed with nothing in the FN) are kept this long: as long as the web
/// server keeps a job (30 days by default, docs/research/atol-web-server.md §1.3), so a late
/// lookup still finds it. A `posted` line — an outcome not known yet — is never pruned.
const KEEP_DONE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where a receipt's current attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Its job may exist on the server (posted, or its answer lost): looked up before anything.
    Posted,
    /// Its job ended in an error and the FN was searched: nothing of it is there. The next
    /// attempt gets a new uuid (the server keeps the old one).
    Failed,
    /// Registered: `doc_number` is its document.
    Done,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Posted => "posted",
            State::Failed => "failed",
            State::Done => "done",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "done" => State::Done,
            "failed" => State::Failed,
            _ => State::Posted,
        }
    }
}

/// One receipt's line.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub fn_number: String,
    pub device_id: String,
    pub attempt: i64,
    pub state: State,
    /// The task type of the current attempt (`sell`, `sellCorrection`, …).
    pub operation: String,
    /// The FN's last document before the current attempt.
    pub mark: i64,
    /// Documents after the first attempt's mark up to this one were read and are not it.
    pub searched_to: i64,
    /// Documents in that window that may be it (their content matches and they carry no tag).
    pub candidates: Vec<Candidate>,
    pub doc_number: Option<i64>,
}

impl Entry {
    /// The job uuid of the current attempt: the receipt id, then `<id>.2`, `<id>.3` …
    pub fn uuid(&self, receipt_id: &str) -> String {
        uuid_of(receipt_id, self.attempt)
    }

    pub fn device(&self) -> Option<&str> {
        Some(self.device_id.as_str()).filter(|d| !d.is_empty())
    }
}

pub(super) fn uuid_of(receipt_id: &str, attempt: i64) -> String {
    if attempt <= 1 {
        receipt_id.to_string()
    } else {
        format!("{receipt_id}.{attempt}")
    }
}

pub(super) struct Journal {
    conn: Mutex<Connection>,
    /// When the journal was last pruned (ms).
    pruned_at: std::sync::atomic::AtomicI64,
}

fn failed(e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Unavailable(format!("журнал заданий ККТ недоступен: {e}"))
}

fn now_ms() -> i64 {
    crate::time::now_ms()
}

/// Drops the lines settled longer ago than [`KEEP_DONE`].
fn prune(conn: &Connection) -> rusqlite::Result<usize> {
    let cutoff = now_ms() - KEEP_DONE.as_millis() as i64;
    // An operation's outcome is stored in the buffer once known; its line only serves a lookup
    // while the server keeps the job.
    conn.execute("DELETE FROM operations WHERE updated_at < ?1", [cutoff])?;
    conn.execute(
        "DELETE FROM attempts WHERE state <> 'posted' AND updated_at < ?1",
        [cutoff],
    )
}

impl Journal {
    pub(super) fn open(path: Option<&Path>) -> Result<Journal, String> {
        let mut conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(|e| format!("cannot open the ATOL journal: {e}"))?;
        let prepared = (|| -> rusqlite::Result<()> {
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            // The first driver wrote version 1's table without setting a version: its
            // `CREATE TABLE IF NOT EXISTS` is then a no-op and version 2 carries it over.
            let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
                let tx = conn.transaction()?;
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
                tx.commit()?;
            }
            prune(&conn)?;
            Ok(())
        })();
        prepared.map_err(|e| format!("cannot prepare the ATOL journal: {e}"))?;
        Ok(Journal {
            conn: Mutex::new(conn),
            pruned_at: now_ms().into(),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, DeviceError> {
        self.conn.lock().map_err(|_| failed("poisoned"))
    }

    /// The receipt's current line: its latest attempt, on whichever FN and device.
    pub(super) fn get(&self, receipt_id: &str) -> Result<Option<Entry>, DeviceError> {
        self.conn()?
            .prepare_cached(
                "SELECT fn_number, device_id, attempt, state, operation, mark, searched_to, candidates, doc_number
                 FROM attempts WHERE receipt_id = ?1 ORDER BY updated_at DESC, rowid DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([receipt_id], |r| {
                    let candidates: String = r.get(7)?;
                    Ok(Entry {
                        fn_number: r.get(0)?,
                        device_id: r.get(1)?,
                        attempt: r.get(2)?,
                        state: State::parse(&r.get::<_, String>(3)?),
                        operation: r.get(4)?,
                        mark: r.get(5)?,
                        searched_to: r.get(6)?,
                        candidates: serde_json::from_str(&candidates).unwrap_or_default(),
                        doc_number: r.get(8)?,
                    })
                })
                .optional()
            })
            .map_err(failed)
    }

    /// Writes a receipt's line on its FN and device whole (before its job is posted, and after
    /// each step); the first line of an attempt on another FN or device is a new line.
    pub(super) fn put(&self, receipt_id: &str, e: &Entry) -> Result<(), DeviceError> {
        let candidates = serde_json::to_string(&e.candidates).map_err(failed)?;
        let now = now_ms();
        let conn = self.conn()?;
        if now - self.pruned_at.load(std::sync::atomic::Ordering::Relaxed) > PRUNE_EVERY.as_millis() as i64 {
            self.pruned_at.store(now, std::sync::atomic::Ordering::Relaxed);
            prune(&conn).map_err(failed)?;
        }
        if !e.fn_number.is_empty() {
            // The first driver's line did not name its FN; now that it is known, it is this one.
            conn.prepare_cached("DELETE FROM attempts WHERE receipt_id = ?1 AND fn_number = ''")
                .and_then(|mut s| s.execute([receipt_id]))
                .map_err(failed)?;
        }
        conn.prepare_cached(
            "INSERT INTO attempts (receipt_id, fn_number, device_id, attempt, state, operation, mark, searched_to,
                                   candidates, doc_number, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (fn_number, device_id, receipt_id) DO UPDATE SET attempt = ?4, state = ?5,
                 operation = ?6, mark = ?7, searched_to = ?8, candidates = ?9, doc_number = ?10, updated_at = ?11",
        )
        .and_then(|mut s| {
            s.execute(params![
                receipt_id,
                e.fn_number,
                e.device_id,
                e.attempt,
                e.state.as_str(),
                e.operation,
                e.mark,
                e.searched_to,
                candidates,
                e.doc_number,
                now
            ])
        })
        .map(|_| ())
        .map_err(failed)
    }

    /// The receipt whose document `number` of this FN is, if one of ours is.
    pub(super) fn owner(&self, fn_number: &str, number: i64) -> Result<Option<String>, DeviceError> {
        self.conn()?
            .prepare_cached("SELECT receipt_id FROM attempts WHERE fn_number = ?1 AND doc_number = ?2")
            .and_then(|mut s| s.query_row(params![fn_number, number], |r| r.get(0)).optional())
            .map_err(failed)
    }

    /// A counter operation's latest attempt and what the register showed before it.
    pub(super) fn operation(&self, operation_id: &str) -> Result<Option<(i64, String)>, DeviceError> {
        self.conn()?
            .prepare_cached("SELECT attempt, before FROM operations WHERE operation_id = ?1")
            .and_then(|mut s| s.query_row([operation_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(failed)
    }

    /// Records an operation's attempt before its job is posted.
    pub(super) fn put_operation(&self, operation_id: &str, attempt: i64, before: &str) -> Result<(), DeviceError> {
        self.conn()?
            .prepare_cached(
                "INSERT INTO operations (operation_id, attempt, before, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (operation_id) DO UPDATE SET attempt = ?2, before = ?3, updated_at = ?4",
            )
            .and_then(|mut s| s.execute(params![operation_id, attempt, before, now_ms()]))
            .map(|_| ())
            .map_err(failed)
    }

    /// Whether this FN gives our tag back (`None`: not known yet).
    pub(super) fn tag_echo(&self, fn_number: &str) -> Result<Option<bool>, DeviceError> {
        self.conn()?
            .prepare_cached("SELECT tag_echo FROM fns WHERE fn_number = ?1")
            .and_then(|mut s| s.query_row([fn_number], |r| r.get(0)).optional())
            .map_err(failed)
    }

    pub(super) fn set_tag_echo(&self, fn_number: &str, echo: bool) -> Result<(), DeviceError> {
        self.conn()?
            .prepare_cached(
                "INSERT INTO fns (fn_number, tag_echo) VALUES (?1, ?2)
                 ON CONFLICT (fn_number) DO UPDATE SET tag_echo = ?2",
            )
            .and_then(|mut s| s.execute(params![fn_number, echo]))
            .map(|_| ())
            .map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            fn_number: "7380440700000001".into(),
            device_id: String::new(),
            attempt: 1,
            state: State::Posted,
            operation: "sell".into(),
            mark: 7,
            searched_to: 7,
            candidates: Vec::new(),
            doc_number: None,
        }
    }

    #[test]
    fn a_line_is_kept_whole_and_documents_are_found_by_their_fn_and_number() {
        let j = Journal::open(None).unwrap();
        assert_eq!(j.get("r1").unwrap(), None);
        let mut e = entry();
        j.put("r1", &e).unwrap();
        assert_eq!(j.get("r1").unwrap(), Some(e.clone()));
        e.state = State::Done;
        e.doc_number = Some(9);
        j.put("r1", &e).unwrap();
        assert_eq!(j.owner("7380440700000001", 9).unwrap().as_deref(), Some("r1"));
        assert_eq!(
            j.owner("7380440700000002", 9).unwrap(),
            None,
            "another FN's 9 is not ours"
        );
        assert_eq!(e.uuid("r1"), "r1");
        assert_eq!(uuid_of("r1", 3), "r1.3");
    }

    #[test]
    fn the_first_drivers_journal_is_carried_over_and_old_done_lines_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atol-journal.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute("INSERT INTO attempts VALUES ('a', 2, 14), ('b', 3, NULL)", [])
                .unwrap();
        }
        let j = Journal::open(Some(&path)).unwrap();
        let a = j.get("a").unwrap().unwrap();
        assert_eq!((a.attempt, a.state, a.mark, a.searched_to), (2, State::Posted, 14, 14));
        assert_eq!(j.get("b").unwrap().unwrap().state, State::Failed);
        let mut done = entry();
        done.state = State::Done;
        j.put("old", &done).unwrap();
        j.conn()
            .unwrap()
            .execute("UPDATE attempts SET updated_at = 0 WHERE receipt_id = 'old'", [])
            .unwrap();
        drop(j);
        let j = Journal::open(Some(&path)).unwrap();
        assert_eq!(j.get("old").unwrap(), None, "done 30 days ago: pruned");
        assert!(j.get("a").unwrap().is_some(), "not done: kept");
    }

    #[test]
    fn an_attempt_on_another_fn_is_a_line_of_its_own_and_settled_lines_are_pruned_never_posted_ones() {
        let j = Journal::open(None).unwrap();
        let mut old_fn = entry();
        old_fn.state = State::Failed;
        j.put("r1", &old_fn).unwrap();
        let mut new_fn = entry();
        new_fn.fn_number = "7380440700000002".into();
        new_fn.mark = 0;
        j.put("r1", &new_fn).unwrap();
        assert_eq!(
            j.get("r1").unwrap(),
            Some(new_fn.clone()),
            "the latest attempt is the current line"
        );
        let lines: i64 = j
            .conn()
            .unwrap()
            .query_row("SELECT count(*) FROM attempts WHERE receipt_id = 'r1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(lines, 2, "the attempt on the replaced FN is kept");
        j.put("posted", &entry()).unwrap();
        let mut done = entry();
        done.state = State::Done;
        done.doc_number = Some(8);
        j.put("done", &done).unwrap();
        j.conn()
            .unwrap()
            .execute("UPDATE attempts SET updated_at = 0", [])
            .unwrap();
        // A long-running adapter prunes from `put` once an hour.
        j.pruned_at.store(0, std::sync::atomic::Ordering::Relaxed);
        j.put("fresh", &entry()).unwrap();
        assert_eq!(j.get("done").unwrap(), None, "settled 30 days ago: pruned");
        assert!(j.get("posted").unwrap().is_some(), "an unknown outcome is never pruned");
        assert_eq!(
            j.get("r1").unwrap().map(|e| e.fn_number),
            Some("7380440700000002".into())
        );
        assert!(j.get("fresh").unwrap().is_some());
    }

    #[test]
    fn a_version_2_journal_is_carried_over_to_lines_keyed_by_fn_and_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atol-journal.db");
        {
            let mut c = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS[..2].iter().enumerate() {
                let tx = c.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
                tx.commit().unwrap();
            }
            c.execute(
                "INSERT INTO attempts VALUES ('a', '7380440700000001', 'dev1', 2, 'done', 'sell', 4, 5, '[]', 5, ?1)",
                [now_ms()],
            )
            .unwrap();
        }
        let j = Journal::open(Some(&path)).unwrap();
        let a = j.get("a").unwrap().unwrap();
        assert_eq!((a.device_id.as_str(), a.attempt, a.doc_number), ("dev1", 2, Some(5)));
        assert_eq!(j.owner("7380440700000001", 5).unwrap().as_deref(), Some("a"));
    }
}
