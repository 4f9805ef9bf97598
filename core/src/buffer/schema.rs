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
    fn status_counts_follow_inserts_updates_and_deletes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let insert = |id: &str, n: i64| {
            conn.execute(
                "INSERT INTO receipts (id, idempotency_key, body_hash, pos_id, type, total_kopecks, request_json,
                 status, next_attempt_at, created_at, fiscal_doc_number, fiscal_sign, fiscal_datetime, fn_number,
                 kkt_number, shift_number, receipt_number, qr_code_data, print_status)
                 VALUES (?1, ?1, 'h', 'P', 'sale', 100, '{}', 'pending', 0, 0, ?2, 's', 'd', 'f', 'k', 1, 1, 'q', 'printed')",
                rusqlite::params![id, n],
            )
            .unwrap();
        };
        insert("a", 1);
        insert("b", 2);
        conn.execute("UPDATE receipts SET status = 'synced' WHERE id = 'a'", [])
            .unwrap();
        conn.execute("DELETE FROM receipts WHERE id = 'b'", []).unwrap();
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT status, n FROM status_counts ORDER BY status")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            counts,
            vec![
                ("failed".into(), 0),
                ("pending".into(), 0),
                ("synced".into(), 1),
                ("syncing".into(), 0)
            ]
        );
    }
}
