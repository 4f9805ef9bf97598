//! `GET /metrics` in Prometheus text format: the gauges of the status snapshot (counts by status,
//! breaker state, oldest pending age, the FN's exchange), the writer's statistics, the database
//! files' sizes, and the process's counters ([`crate::counters`]).

use crate::buffer::WriterStats;
use crate::counters::{Metrics, labelled, single};
use crate::status::Status;

/// The whole `/metrics` page: the status snapshot's gauges, the writer's statistics, the
/// database files' sizes (`(db, wal)` bytes) and this process's counters.
pub fn render_all(counters: &Metrics, s: &Status, writer: &WriterStats, files: (u64, u64)) -> String {
    let mut text = String::with_capacity(4096);
    let out = &mut text;
    let counts = [
        ("fiscalizing", s.fiscalizing),
        ("pending", s.pending),
        ("syncing", s.syncing),
        ("synced", s.synced),
        ("failed", s.failed),
        ("refused", s.refused),
        ("needs_review", s.needs_review),
        ("voided", s.voided),
    ];
    labelled(
        out,
        ("kkt_receipts", "gauge", "Receipts in the buffer by status."),
        "status",
        counts,
    );
    single(
        out,
        ("kkt_dlq_size", "gauge", "Receipts in the dead-letter queue."),
        s.dlq_size,
    );
    single(
        out,
        ("kkt_buffer_capacity", "gauge", "Maximum unsynced receipts."),
        s.total_capacity,
    );
    labelled(
        out,
        (
            "kkt_breaker_state",
            "gauge",
            "OFD circuit breaker state (1 for the current one).",
        ),
        "state",
        crate::breaker::State::ALL.map(|st| (st.as_str(), u8::from(s.breaker.state == st))),
    );
    single(
        out,
        (
            "kkt_breaker_short_circuited_total",
            "counter",
            "Calls refused by the open breaker.",
        ),
        s.breaker.short_circuited,
    );
    single(
        out,
        (
            "kkt_oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest pending receipt.",
        ),
        s.oldest_pending_age_seconds.unwrap_or(0),
    );
    single(
        out,
        (
            "kkt_oldest_unsynced_age_seconds",
            "gauge",
            "Age of the oldest receipt the OFD has not confirmed.",
        ),
        s.fn_age.oldest_unsynced_age_seconds.unwrap_or(0),
    );
    single(
        out,
        (
            "kkt_worker_up",
            "gauge",
            "1 while the sync worker's heartbeat is fresh.",
        ),
        u8::from(!s.worker.heartbeat_stale),
    );
    let w = writer;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    single(
        out,
        (
            "kkt_buffer_commits_total",
            "counter",
            "SQLite transactions committed by the writer (one WAL fsync each).",
        ),
        load(&w.commits),
    );
    single(
        out,
        (
            "kkt_buffer_commands_total",
            "counter",
            "Commands applied by the writer.",
        ),
        load(&w.commands),
    );
    single(
        out,
        ("kkt_buffer_receipts_stored_total", "counter", "New receipts stored."),
        load(&w.receipts),
    );
    single(
        out,
        (
            "kkt_buffer_write_failures_total",
            "counter",
            "Writer transactions rolled back because storage failed.",
        ),
        load(&w.failed),
    );
    let (db, wal) = files;
    labelled(
        out,
        ("kkt_database_bytes", "gauge", "Size of the buffer database files."),
        "file",
        [("db", db), ("wal", wal)],
    );
    single(
        out,
        (
            "kkt_storage_ok",
            "gauge",
            "0 while receipts cannot be stored (disk full, I/O error): the tills are refused.",
        ),
        u8::from(s.storage_error.is_none()),
    );
    single(
        out,
        (
            "kkt_device_ready",
            "gauge",
            "1 while the fiscal register takes receipts (0: no paper, not connected, …).",
        ),
        u8::from(s.device.ready),
    );
    single(
        out,
        (
            "kkt_fn_blocked",
            "gauge",
            "1 once a receipt has waited 30 days for the OFD: the FN takes no receipts.",
        ),
        u8::from(s.fn_age.level == crate::status::FnAgeLevel::Blocked),
    );
    if let Some(ex) = &s.fn_exchange {
        single(
            out,
            (
                "kkt_fn_unsent_documents",
                "gauge",
                "Documents the FN has not had confirmed by the OFD.",
            ),
            ex.not_sent,
        );
        single(
            out,
            (
                "kkt_fn_link_up",
                "gauge",
                "1 while the FN reports no error in its exchange with the OFD.",
            ),
            u8::from(ex.link_error.is_none()),
        );
    }
    counters.render(out);
    text
}
