//! The process's own counters for `GET /metrics` (sends by outcome, their latency, intake by
//! result) and the Prometheus text format's helpers: a leaf module, so whoever counts (the worker,
//! the intake handler) depends on nothing that reads them ([`crate::metrics`] renders the page).

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
