//! Background WAL checkpoints. SQLite's auto-checkpoint (every 1000 WAL pages) still runs inside
//! the writer's commit and bounds the WAL, but this thread copies WAL pages into the database
//! ahead of it with PASSIVE checkpoints on its own connection (never blocking the writer), so
//! the checkpoint a receipt's commit pays for finds little or nothing left to copy.

use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(100);

/// Runs until `stop` is set.
pub(crate) fn spawn(conn: Connection, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EVERY);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "background checkpoint skipped");
                }
            }
        })
}
