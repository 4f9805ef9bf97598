//! `GET /metrics` in Prometheus text format: process-wide counters kept here, and gauges (counts
//! by status, breaker state, oldest pending age, writer statistics) read from the status snapshot
//! when rendered.

use crate::buffer::WriterStats;
use crate::status::Status;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the send-latency histogram buckets.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const OUTCOMES: [&str; 5] = ["delivered", "rejected", "misconfigured", "transient", "waiting"];
const INTAKE: [&str; 3] = ["created", "replayed", "refused"];

#[derive(Default)]
pub struct Metrics {
    sends: [AtomicU64; 5],
    intake: [AtomicU64; 3],
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// How an intake request ended, for `kkt_intake_total`.
#[derive(Debug, Clone, Copy)]
pub enum Intake {
    Created,
    Replayed,
    Refused,
}

impl Metrics {
    pub fn record_send(&self, outcome: &str, elapsed: Duration) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.sends[i].fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn record_intake(&self, what: Intake) {
        self.intake[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The whole `/metrics` page: the status snapshot's gauges, the writer's statistics, the
    /// database files' sizes (`(db, wal)` bytes) and this process's counters.
    pub fn render_all(&self, s: &Status, writer: &WriterStats, files: (u64, u64)) -> String {
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
            ["closed", "open", "half_open"].map(|name| (name, u8::from(s.breaker.state == name))),
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
        self.render(out);
        text
    }

    /// Appends the counters and the histogram in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        labelled(
            out,
            ("kkt_intake_total", "counter", "Receipt intake requests by result."),
            "result",
            INTAKE.iter().zip(self.intake.iter().map(load)),
        );
        labelled(
            out,
            ("kkt_ofd_sends_total", "counter", "OFD delivery attempts by outcome."),
            "outcome",
            OUTCOMES.iter().zip(self.sends.iter().map(load)),
        );
        family(out, ("kkt_ofd_send_duration_seconds", "histogram", "OFD call latency."));
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "kkt_ofd_send_duration_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "kkt_ofd_send_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "kkt_ofd_send_duration_seconds_sum {sum}\nkkt_ofd_send_duration_seconds_count {count}"
        );
    }
}

/// A metric's name, type (`counter`, `gauge`, `histogram`) and help text.
pub type Family<'a> = (&'a str, &'a str, &'a str);

/// Appends the `# HELP` and `# TYPE` lines of a metric family.
pub fn family(out: &mut String, (name, kind, help): Family<'_>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends a metric family with one unlabelled sample.
pub fn single(out: &mut String, f: Family<'_>, value: impl std::fmt::Display) {
    family(out, f);
    let _ = writeln!(out, "{} {value}", f.0);
}

/// Appends a metric family with one sample per value of `label`.
pub fn labelled<L: std::fmt::Display, V: std::fmt::Display>(
    out: &mut String,
    f: Family<'_>,
    label: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) {
    family(out, f);
    for (l, v) in samples {
        let _ = writeln!(out, "{}{{{label}=\"{l}\"}} {v}", f.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_land_in_their_outcome_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_send("delivered", Duration::from_millis(20));
        m.record_send("transient", Duration::from_secs(3));
        m.record_intake(Intake::Created);
        let mut s = String::new();
        m.render(&mut s);
        assert!(s.contains("kkt_ofd_sends_total{outcome=\"delivered\"} 1"), "{s}");
        assert!(s.contains("kkt_ofd_send_duration_seconds_bucket{le=\"0.025\"} 1"));
        assert!(s.contains("kkt_ofd_send_duration_seconds_bucket{le=\"5\"} 2"));
        assert!(s.contains("kkt_ofd_send_duration_seconds_count 2"));
        assert!(s.contains("kkt_intake_total{result=\"created\"} 1"));
    }
}
