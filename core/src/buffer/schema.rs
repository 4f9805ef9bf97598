//! The SQLite schema, versioned with `PRAGMA user_version`, and the connection set-up.

use rusqlite::Connection;

/// Each entry moves the schema from version `index` to `index + 1`, in one transaction.
const MIGRATIONS: &[&str] = &[
    // 1: receipts, dead letters, events, the KKT counters and per-status counts kept by triggers.
    r#"
    CREATE TABLE receipts (
        id                TEXT PRIMARY KEY,
        idempotency_key   TEXT NOT NULL UNIQUE,
        body_hash         TEXT NOT NULL,
        pos_id            TEXT NOT NULL,
        type              TEXT NOT NULL,
        total_kopecks     INTEGER NOT NULL,
        request_json      TEXT NOT NULL,
        status            TEXT NOT NULL CHECK (status IN ('pending','syncing','synced','failed')),
        retry_count       INTEGER NOT NULL DEFAULT 0,
        next_attempt_at   INTEGER NOT NULL, -- unix ms; 0 = due at once
        lease_until       INTEGER,
        last_error        TEXT,
        created_at        INTEGER NOT NULL,
        synced_at         INTEGER,
        fiscal_doc_number INTEGER NOT NULL UNIQUE,
        fiscal_sign       TEXT NOT NULL,
        fiscal_datetime   TEXT NOT NULL,
        fn_number         TEXT NOT NULL,
        kkt_number        TEXT NOT NULL,
        shift_number      INTEGER NOT NULL,
        receipt_number    INTEGER NOT NULL,
        qr_code_data      TEXT NOT NULL,
        print_status      TEXT NOT NULL CHECK (print_status IN ('printing','printed','print_failed')),
        print_error       TEXT,
        response_body     BLOB,
        ofd_status        INTEGER,
        ofd_response      TEXT,
        ofd_id            TEXT
    );
    CREATE INDEX receipts_order ON receipts (status, fiscal_doc_number);
    CREATE INDEX receipts_retrying ON receipts (status) WHERE retry_count > 0;

    CREATE TABLE dlq (
        receipt_id  TEXT PRIMARY KEY REFERENCES receipts (id),
        moved_at    INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        retry_count INTEGER NOT NULL,
        last_error  TEXT
    );

    CREATE TABLE buffer_events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        receipt_id TEXT,
        event_type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        details    TEXT
    );
    CREATE INDEX buffer_events_receipt ON buffer_events (receipt_id);

    CREATE TABLE kkt_state (
        id                     INTEGER PRIMARY KEY CHECK (id = 1),
        last_fiscal_doc_number INTEGER NOT NULL,
        shift_number           INTEGER NOT NULL,
        shift_opened_at        INTEGER NOT NULL,
        receipts_in_shift      INTEGER NOT NULL
    );
    INSERT INTO kkt_state VALUES (1, 0, 0, 0, 0);

    CREATE TABLE status_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO status_counts VALUES ('pending', 0), ('syncing', 0), ('synced', 0), ('failed', 0);
    CREATE TRIGGER receipts_count_insert AFTER INSERT ON receipts BEGIN
        UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER receipts_count_update AFTER UPDATE OF status ON receipts
        WHEN OLD.status <> NEW.status BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
        UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER receipts_count_delete AFTER DELETE ON receipts BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
    END;
    "#,
    // 2: retention: find synced receipts by age and old events by time without scanning.
    r#"
    CREATE INDEX receipts_synced_at ON receipts (synced_at) WHERE status = 'synced';
    CREATE INDEX buffer_events_created ON buffer_events (created_at);
    "#,
    // 3: the device seam and one place for the DLQ. An intake first stores an intent row
    // (`fiscalizing`, no fiscal attributes yet: the register assigns them); a receipt the
    // register refuses is `refused`, its 422 answer stored like any other (`response_status`).
    // Numbers are unique per FN, since a replaced FN starts again at 1. A dead letter is a
    // receipt in status `failed` with its reason and time on the row: the `dlq` table that had
    // to agree with it is gone.
    r#"
    CREATE TABLE receipts_v3 (
        id                TEXT PRIMARY KEY,
        idempotency_key   TEXT NOT NULL UNIQUE,
        body_hash         TEXT NOT NULL,
        pos_id            TEXT NOT NULL,
        type              TEXT NOT NULL,
        total_kopecks     INTEGER NOT NULL,
        request_json      TEXT NOT NULL,
        status            TEXT NOT NULL
                          CHECK (status IN ('fiscalizing','pending','syncing','synced','failed','refused')),
        retry_count       INTEGER NOT NULL DEFAULT 0,
        next_attempt_at   INTEGER NOT NULL, -- unix ms; 0 = due at once
        lease_until       INTEGER,
        last_error        TEXT,
        created_at        INTEGER NOT NULL,
        synced_at         INTEGER,
        fiscal_doc_number INTEGER,
        fiscal_sign       TEXT,
        fiscal_datetime   TEXT,
        fn_number         TEXT,
        kkt_number        TEXT,
        shift_number      INTEGER,
        receipt_number    INTEGER,
        qr_code_data      TEXT,
        print_status      TEXT CHECK (print_status IN ('printed','print_failed')),
        print_error       TEXT,
        response_status   INTEGER,
        response_body     BLOB,
        ofd_status        INTEGER,
        ofd_response      TEXT,
        ofd_id            TEXT,
        dlq_reason        TEXT,
        dlq_moved_at      INTEGER,
        UNIQUE (fn_number, fiscal_doc_number)
    );
    INSERT INTO receipts_v3
    SELECT r.id, r.idempotency_key, r.body_hash, r.pos_id, r.type, r.total_kopecks, r.request_json, r.status,
           r.retry_count, r.next_attempt_at, r.lease_until, r.last_error, r.created_at, r.synced_at,
           r.fiscal_doc_number, r.fiscal_sign, r.fiscal_datetime, r.fn_number, r.kkt_number, r.shift_number,
           r.receipt_number, r.qr_code_data,
           CASE r.print_status WHEN 'printing' THEN 'print_failed' ELSE r.print_status END,
           CASE r.print_status WHEN 'printing' THEN 'the printer result is unknown after a restart'
                ELSE r.print_error END,
           CASE WHEN r.response_body IS NULL THEN NULL ELSE 200 END, r.response_body,
           r.ofd_status, r.ofd_response, r.ofd_id,
           CASE WHEN r.status = 'failed' THEN coalesce(d.reason, 'max_retries_exceeded') END,
           CASE WHEN r.status = 'failed' THEN coalesce(d.moved_at, r.created_at) END
    FROM receipts r LEFT JOIN dlq d ON d.receipt_id = r.id;
    DROP TABLE dlq;
    DROP TABLE receipts;
    ALTER TABLE receipts_v3 RENAME TO receipts;
    CREATE INDEX receipts_order ON receipts (status, fiscal_doc_number);
    CREATE INDEX receipts_retrying ON receipts (status) WHERE retry_count > 0;
    CREATE INDEX receipts_synced_at ON receipts (synced_at) WHERE status = 'synced';
    CREATE INDEX receipts_dlq ON receipts (dlq_moved_at) WHERE status = 'failed';
    CREATE INDEX receipts_fiscalizing ON receipts (created_at) WHERE status = 'fiscalizing';

    DELETE FROM status_counts;
    INSERT INTO status_counts
    SELECT s.status, (SELECT count(*) FROM receipts r WHERE r.status = s.status)
    FROM (SELECT 'fiscalizing' AS status UNION ALL SELECT 'pending' UNION ALL SELECT 'syncing'
          UNION ALL SELECT 'synced' UNION ALL SELECT 'failed' UNION ALL SELECT 'refused') s;
    CREATE TRIGGER receipts_count_insert AFTER INSERT ON receipts BEGIN
        UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER receipts_count_update AFTER UPDATE OF status ON receipts
        WHEN OLD.status <> NEW.status BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
        UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER receipts_count_delete AFTER DELETE ON receipts BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
    END;
    "#,
    // 4: exactly once on a real register (docs/contract.md §10). `needs_review`: the register
    // may or may not hold the receipt and a person decides (`review_json` lists the candidate
    // documents); `voided`: a person decided it is not to be registered. `fiscalized_at` is when
    // the register's result was stored (our clock): an FN exchange reading counts for a receipt
    // only if it was taken after that (§10.8). `registered_as`: the FN document's operation
    // when it is not the receipt's own (a late sale registered as a correction, §10.7). A dead
    // letter's reason and time exist exactly when the receipt is in the DLQ.
    r#"
    CREATE TABLE receipts_v4 (
        id                TEXT PRIMARY KEY,
        idempotency_key   TEXT NOT NULL UNIQUE,
        body_hash         TEXT NOT NULL,
        pos_id            TEXT NOT NULL,
        type              TEXT NOT NULL,
        total_kopecks     INTEGER NOT NULL,
        request_json      TEXT NOT NULL,
        status            TEXT NOT NULL
                          CHECK (status IN ('fiscalizing','pending','syncing','synced','failed','refused',
                                            'needs_review','voided')),
        retry_count       INTEGER NOT NULL DEFAULT 0,
        next_attempt_at   INTEGER NOT NULL, -- unix ms; 0 = due at once
        lease_until       INTEGER,
        last_error        TEXT,
        created_at        INTEGER NOT NULL,
        synced_at         INTEGER,
        fiscal_doc_number INTEGER,
        fiscal_sign       TEXT,
        fiscal_datetime   TEXT,
        fn_number         TEXT,
        kkt_number        TEXT,
        shift_number      INTEGER,
        receipt_number    INTEGER,
        qr_code_data      TEXT,
        print_status      TEXT CHECK (print_status IN ('printed','print_failed')),
        print_error       TEXT,
        response_status   INTEGER,
        response_body     BLOB,
        ofd_status        INTEGER,
        ofd_response      TEXT,
        ofd_id            TEXT,
        dlq_reason        TEXT,
        dlq_moved_at      INTEGER,
        review_json       TEXT,
        fiscalized_at     INTEGER,
        registered_as     TEXT,
        UNIQUE (fn_number, fiscal_doc_number),
        CHECK ((status = 'failed') = (dlq_reason IS NOT NULL AND dlq_moved_at IS NOT NULL))
    );
    INSERT INTO receipts_v4
    SELECT id, idempotency_key, body_hash, pos_id, type, total_kopecks, request_json, status, retry_count,
           next_attempt_at, lease_until, last_error, created_at, synced_at, fiscal_doc_number, fiscal_sign,
           fiscal_datetime, fn_number, kkt_number, shift_number, receipt_number, qr_code_data, print_status,
           print_error, response_status, response_body, ofd_status, ofd_response, ofd_id,
           CASE WHEN status = 'failed' THEN coalesce(dlq_reason, 'max_retries_exceeded') END,
           CASE WHEN status = 'failed' THEN coalesce(dlq_moved_at, created_at) END,
           NULL, CASE WHEN fiscal_doc_number IS NOT NULL THEN created_at END, NULL
    FROM receipts;
    DROP TABLE receipts;
    ALTER TABLE receipts_v4 RENAME TO receipts;
    CREATE INDEX receipts_order ON receipts (status, fiscal_doc_number);
    CREATE INDEX receipts_retrying ON receipts (status) WHERE retry_count > 0;
    CREATE INDEX receipts_synced_at ON receipts (synced_at) WHERE status = 'synced';
    CREATE INDEX receipts_dlq ON receipts (dlq_moved_at) WHERE status = 'failed';
    CREATE INDEX receipts_fiscalizing ON receipts (created_at) WHERE status = 'fiscalizing';
    CREATE INDEX receipts_review ON receipts (created_at) WHERE status = 'needs_review';

    INSERT OR IGNORE INTO status_counts VALUES ('needs_review', 0), ('voided', 0);
    CREATE TRIGGER receipts_count_insert AFTER INSERT ON receipts BEGIN
        UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER receipts_count_update AFTER UPDATE OF status ON receipts
        WHEN OLD.status <> NEW.status BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
        UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER receipts_count_delete AFTER DELETE ON receipts BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
    END;
    "#,
    // 5: the writer keeps the counts itself as it changes rows (buffer/writer/tally.rs; a
    // full recount at start): the trigger-kept table, one more page in every commit, goes.
    r#"
    DROP TRIGGER receipts_count_insert;
    DROP TRIGGER receipts_count_update;
    DROP TRIGGER receipts_count_delete;
    DROP TABLE status_counts;
    "#,
    // 6: counter operations (docs/contract.md §11): one intent row per Idempotency-Key, as a
    // receipt has; `pending` until the register's result is stored with the exact answer
    // bytes (`done`, or `refused` for a final refusal; `review` when the register cannot tell).
    r#"
    CREATE TABLE operations (
        id              TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        body_hash       TEXT NOT NULL,
        kind            TEXT NOT NULL,
        request_json    TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending','done','refused','review')),
        created_at      INTEGER NOT NULL,
        done_at         INTEGER,
        last_error      TEXT,
        response_status INTEGER,
        response_body   BLOB
    );
    CREATE INDEX operations_pending ON operations (created_at) WHERE status = 'pending';
    CREATE INDEX operations_recent ON operations (created_at);
    "#,
    // 7: marking code checks (docs/contract.md §12): each verdict, found again by its id (the
    // till's `marking_check_id`) or by its code (SHA-256) and operation while it may be reused,
    // and listed per day for the window.
    r#"
    CREATE TABLE marking_checks (
        check_id   TEXT PRIMARY KEY,
        code_hash  TEXT NOT NULL,
        operation  TEXT NOT NULL,
        verdict    TEXT NOT NULL,
        checked_at INTEGER NOT NULL,
        check_json TEXT NOT NULL
    );
    CREATE INDEX marking_checks_code ON marking_checks (code_hash, operation, checked_at);
    CREATE INDEX marking_checks_time ON marking_checks (checked_at);
    "#,
    // 8: the vendor fronts' jobs (docs/contract.md §13): an ATOL Web Requests job by its uuid, a
    // kkmserver command by its IdCommand, with the request as sent (so a GET or GetRezult after a
    // restart can finish and answer it) and each task's result in the vendor's shape.
    r#"
    CREATE TABLE compat_jobs (
        front        TEXT NOT NULL,
        job_id       TEXT NOT NULL,
        body_hash    TEXT NOT NULL,
        request_json TEXT NOT NULL,
        results_json TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (front, job_id)
    ) WITHOUT ROWID;
    CREATE INDEX compat_jobs_created ON compat_jobs (created_at);
    "#,
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database schema version {found} is newer than this program understands ({VERSION}); refusing to touch it")]
    TooNew { found: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Durability first: WAL with `synchronous=FULL`, so an acknowledged receipt survives power loss.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows (purged receipts, removed personal data) are overwritten with zeros, not left
    // readable in free pages of the file (SECURITY.md "Personal data").
    conn.pragma_update(None, "secure_delete", "ON")?;
    // 8 MiB of page cache: the indexes of a busy day stay in memory instead of being re-read.
    conn.pragma_update(None, "cache_size", -8192)?;
    // After a checkpoint has copied the WAL back, the file is cut to this size instead of
    // keeping its high-water mark after a burst.
    conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)?;
    Ok(())
}

/// Brings the schema up to [`VERSION`]; returns the version found before.
pub fn migrate(conn: &mut Connection) -> Result<i64, Error> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(Error::TooNew { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_migrated_to_the_current_version_and_migrating_again_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("b.db")).unwrap();
        configure(&conn).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), VERSION);
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn a_database_from_a_newer_program_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("b.db")).unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
        assert!(matches!(migrate(&mut conn), Err(Error::TooNew { .. })));
    }

    #[test]
    fn version_five_drops_the_trigger_kept_counts_and_keeps_every_receipt() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 4);
        let insert = |conn: &Connection, id: &str, n: i64| {
            conn.execute(
                "INSERT INTO receipts (id, idempotency_key, body_hash, pos_id, type, total_kopecks, request_json,
                 status, next_attempt_at, created_at, fiscal_doc_number, fiscal_sign, fiscal_datetime, fn_number,
                 kkt_number, shift_number, receipt_number, qr_code_data, print_status)
                 VALUES (?1, ?1, 'h', 'P', 'sale', 100, '{}', 'pending', 0, 0, ?2, 's', 'd', 'f', 'k', 1, 1, 'q', 'printed')",
                rusqlite::params![id, n],
            )
            .unwrap();
        };
        insert(&conn, "a", 1);
        insert(&conn, "b", 2);
        assert_eq!(migrate(&mut conn).unwrap(), 4);
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'status_counts' OR name LIKE 'receipts_count_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "no trigger-kept counts after version 5");
        // Rows change as before, with nothing else to update.
        insert(&conn, "c", 3);
        conn.execute("UPDATE receipts SET status = 'synced' WHERE id = 'a'", [])
            .unwrap();
        conn.execute("DELETE FROM receipts WHERE id = 'b'", []).unwrap();
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT id, status FROM receipts ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![("a".into(), "synced".into()), ("c".into(), "pending".into())]
        );
    }

    /// Brings a database only to `version`, as an older program left it.
    fn migrate_to(conn: &mut Connection, version: usize) {
        for (i, sql) in MIGRATIONS.iter().enumerate().take(version) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
        }
    }

    #[test]
    fn version_two_moves_its_dlq_onto_the_rows_and_keeps_every_receipt_and_answer() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        migrate_to(&mut conn, 2);
        let insert = |id: &str, n: i64, status: &str, print: &str, answer: Option<&[u8]>| {
            conn.execute(
                "INSERT INTO receipts (id, idempotency_key, body_hash, pos_id, type, total_kopecks, request_json,
                 status, next_attempt_at, created_at, fiscal_doc_number, fiscal_sign, fiscal_datetime, fn_number,
                 kkt_number, shift_number, receipt_number, qr_code_data, print_status, response_body, retry_count)
                 VALUES (?1, 'k' || ?1, 'h', 'P', 'sale', 100, '{}', ?3, 0, 7, ?2, 's', 'd', 'f', 'k', 1, 1, 'q', ?4, ?5, 20)",
                rusqlite::params![id, n, status, print, answer],
            )
            .unwrap();
        };
        insert("a", 1, "synced", "printed", Some(b"{\"a\":1}"));
        insert("b", 2, "failed", "printed", Some(b"{}"));
        insert("c", 3, "pending", "printing", None);
        conn.execute(
            "INSERT INTO dlq VALUES ('b', 1234, 'rejected_by_ofd', 20, 'HTTP 422')",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 2);
        type Row = (String, String, Option<String>, Option<i64>, Option<i64>, Option<String>);
        let rows: Vec<Row> = conn
            .prepare(
                "SELECT id, status, dlq_reason, dlq_moved_at, response_status, print_status FROM receipts ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (
                    "a".into(),
                    "synced".into(),
                    None,
                    None,
                    Some(200),
                    Some("printed".into())
                ),
                (
                    "b".into(),
                    "failed".into(),
                    Some("rejected_by_ofd".into()),
                    Some(1234),
                    Some(200),
                    Some("printed".into())
                ),
                (
                    "c".into(),
                    "pending".into(),
                    None,
                    None,
                    None,
                    Some("print_failed".into())
                ),
            ]
        );
        let dlq_table: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'dlq'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(dlq_table, 0, "the DLQ is kept in one place");
        let counts: i64 = conn
            .query_row("SELECT count(*) FROM receipts WHERE status = 'failed'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(counts, 1);
    }
}
