//! One status snapshot — counts, breaker, worker heartbeat, the age of the oldest unsynced receipt —
//! read by the HTTP status and health endpoints, the metrics, the web UI and the desktop tray alike.

use crate::buffer::{Buffer, Counts};
use crate::time::rfc3339;
use crate::worker::WorkerHandle;
use serde::Serialize;
use std::time::Duration;

/// The 54-FZ limit: the fiscal drive blocks after this long without OFD confirmation.
pub const FN_BLOCK_DAYS: u64 = 30;

#[derive(Clone)]
pub struct StatusSource {
    pub buffer: Buffer,
    pub worker: WorkerHandle,
    pub capacity: u64,
    pub fn_warn_age: Duration,
    pub fn_critical_age: Duration,
    /// A heartbeat older than this makes the worker (and health) unhealthy.
    pub heartbeat_stale_after: Duration,
    /// The register's own state, polled (`watch.rs`).
    pub device_watch: crate::watch::DeviceWatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkStatus {
    Online,
    Degraded,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FnAgeLevel {
    Ok,
    Warning,
    Critical,
    /// 30 days: the fiscal drive takes no receipts until the OFD confirms (54-FZ).
    Blocked,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakerView {
    pub state: crate::breaker::State,
    pub consecutive_failures: u32,
    pub opened_at: Option<String>,
    pub next_probe_at: Option<String>,
    pub next_probe_in_seconds: Option<f64>,
    pub successes: u64,
    pub failures: u64,
    pub short_circuited: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub running: bool,
    pub last_cycle_at: Option<String>,
    pub heartbeat_at: Option<String>,
    pub heartbeat_stale: bool,
    pub in_flight: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FnAge {
    pub level: FnAgeLevel,
    /// Age of the oldest receipt the OFD has not confirmed (DLQ entries included).
    pub oldest_unsynced_age_seconds: Option<u64>,
    pub warn_after_days: f64,
    pub critical_after_days: f64,
    pub blocks_after_days: u64,
}

/// Where delivered receipts go: the built-in OFD simulator (`demo`) or a real OFD (`live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Demo,
    Live,
}

/// The body of `GET /v1/kkt/buffer/status` (a superset of the original adapter's).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub total_capacity: u64,
    pub current_queued: u64,
    pub percent_full: f64,
    pub network_status: NetworkStatus,
    pub total_receipts: u64,
    pub pending: u64,
    pub synced: u64,
    pub failed: u64,
    pub dlq_size: u64,
    pub syncing: u64,
    /// Stored, waiting for the fiscal register to register them (answered `202 awaiting_device`
    /// when that took too long).
    pub fiscalizing: u64,
    /// Refused by the fiscal register (answered 422; never fiscal, never sent).
    pub refused: u64,
    /// The register may hold them and cannot tell: a person decides (docs/contract.md §10.5).
    pub needs_review: u64,
    /// Voided by a person (never registered).
    pub voided: u64,
    pub retrying: u64,
    pub oldest_pending_at: Option<String>,
    pub oldest_pending_age_seconds: Option<u64>,
    pub last_sync_at: Option<String>,
    pub breaker: BreakerView,
    pub worker: WorkerView,
    /// `demo` with the built-in OFD simulator, `live` with a configured OFD URL.
    pub mode: Mode,
    pub ofd: String,
    pub ofd_misconfigured: Option<u16>,
    pub fn_age: FnAge,
    /// The storage error while receipts cannot be stored (disk full, I/O error); intake answers
    /// 503 `storage_unavailable` meanwhile.
    pub storage_error: Option<String>,
    /// The fiscal register: ready, or its trouble in Russian (no paper, not connected …).
    pub device: DeviceView,
    /// With a register whose FN delivers to the OFD itself: its unconfirmed documents.
    pub fn_exchange: Option<crate::kkt::FnExchange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    pub ready: bool,
    pub problem: Option<String>,
    /// The register's last reading and its alarms (docs/contract.md §11).
    pub watch: crate::watch::Watched,
}

/// A health verdict: of one component, and of the whole (the worst component's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Degraded,
    Unhealthy,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub status: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn component(status: Verdict, message: Option<String>) -> Component {
    Component { status, message }
}

#[derive(Debug, Clone, Serialize)]
pub struct Components {
    pub buffer: Component,
    pub circuit_breaker: Component,
    pub database: Component,
    pub worker: Component,
}

/// The body of `GET /v1/health`.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub status: Verdict,
    pub mode: Mode,
    /// True past the critical FN-age threshold (the fiscal drive blocks at 30 days).
    pub fn_age_critical: bool,
    pub components: Components,
    pub version: &'static str,
}

impl Status {
    /// The health verdict of this snapshot, given whether the database answers a read.
    pub fn health(&self, database: Result<(), String>) -> Health {
        use Verdict::*;
        let s = self;
        let database = match (database, &s.storage_error) {
            (Err(e), _) => component(Unhealthy, Some(e)),
            (Ok(()), Some(e)) => component(
                Unhealthy,
                Some(format!(
                    "the last write failed ({e}); receipts are refused until storage works"
                )),
            ),
            (Ok(()), None) => component(Healthy, None),
        };
        let worker = if s.worker.heartbeat_stale {
            component(Unhealthy, Some("the sync worker's heartbeat is stale".into()))
        } else if let Some(code) = s.ofd_misconfigured {
            component(
                Degraded,
                Some(format!("the OFD answers HTTP {code}: check the OFD URL and token")),
            )
        } else {
            component(Healthy, None)
        };
        let circuit_breaker = match s.breaker.state {
            crate::breaker::State::Closed => component(Healthy, None),
            other => component(
                Degraded,
                Some(format!("circuit breaker {}: the OFD is unreachable", other.as_str())),
            ),
        };
        let age = s.fn_age.oldest_unsynced_age_seconds.unwrap_or(0);
        let buffer = match s.fn_age.level {
            FnAgeLevel::Blocked => component(
                Unhealthy,
                Some(format!(
                    "the fiscal drive is blocked: a receipt has waited {age} s (30 days) for the OFD; receipts are refused"
                )),
            ),
            FnAgeLevel::Critical => component(
                Degraded,
                Some(format!(
                    "critical: a receipt has waited {age} s for the OFD; the fiscal drive blocks at 30 days"
                )),
            ),
            FnAgeLevel::Warning => component(
                Degraded,
                Some(format!("warning: the oldest unsynced receipt is {age} s old")),
            ),
            FnAgeLevel::Ok if s.needs_review > 0 => component(
                Degraded,
                Some(format!(
                    "{} receipts need the manager's decision: the register may hold them (window, «Требуют решения»)",
                    s.needs_review
                )),
            ),
            FnAgeLevel::Ok if s.percent_full >= 80.0 => {
                component(Degraded, Some(format!("buffer {}% full", s.percent_full)))
            }
            FnAgeLevel::Ok if s.dlq_size > 0 => {
                component(Degraded, Some(format!("{} receipts in the DLQ", s.dlq_size)))
            }
            FnAgeLevel::Ok => component(Healthy, None),
        };
        let status = [&buffer, &circuit_breaker, &database, &worker]
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Healthy);
        Health {
            status,
            mode: s.mode,
            fn_age_critical: s.fn_age.level >= FnAgeLevel::Critical,
            components: Components {
                buffer,
                circuit_breaker,
                database,
                worker,
            },
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

fn age_secs(now_ms: i64, then_ms: Option<i64>) -> Option<u64> {
    then_ms.map(|t| ((now_ms - t).max(0) / 1000) as u64)
}

impl StatusSource {
    pub fn snapshot(&self) -> Status {
        let c: Counts = self.buffer.counts();
        let clock = self.worker.clock();
        let now_ms = clock.now_ms();
        let now = clock.instant();
        let to_ms = |i: tokio::time::Instant| {
            if i >= now {
                now_ms + (i - now).as_millis() as i64
            } else {
                now_ms - (now - i).as_millis() as i64
            }
        };
        let b = self.worker.breaker();
        let w = self.worker.status();
        let heartbeat_stale = !w.running
            || w.heartbeat_ms
                .is_none_or(|h| now_ms - h > self.heartbeat_stale_after.as_millis() as i64);
        let network_status = match b.state {
            crate::breaker::State::Open => NetworkStatus::Offline,
            crate::breaker::State::HalfOpen => NetworkStatus::Degraded,
            crate::breaker::State::Closed if c.retrying > 0 => NetworkStatus::Degraded,
            crate::breaker::State::Closed => NetworkStatus::Online,
        };
        let unsynced_age = age_secs(now_ms, c.oldest_unsynced_ms);
        let level = match unsynced_age {
            Some(a) if a >= FN_BLOCK_DAYS * 86_400 => FnAgeLevel::Blocked,
            Some(a) if a >= self.fn_critical_age.as_secs() => FnAgeLevel::Critical,
            Some(a) if a >= self.fn_warn_age.as_secs() => FnAgeLevel::Warning,
            _ => FnAgeLevel::Ok,
        };
        let queued = c.unsynced();
        Status {
            total_capacity: self.capacity,
            current_queued: queued,
            percent_full: ((queued as f64 / self.capacity.max(1) as f64) * 10000.0).round() / 100.0,
            network_status,
            total_receipts: c.total(),
            pending: c.pending,
            synced: c.synced,
            failed: c.failed,
            dlq_size: c.failed,
            syncing: c.syncing,
            fiscalizing: c.fiscalizing,
            refused: c.refused,
            needs_review: c.needs_review,
            voided: c.voided,
            retrying: c.retrying,
            oldest_pending_at: c.oldest_pending_ms.map(rfc3339),
            oldest_pending_age_seconds: age_secs(now_ms, c.oldest_pending_ms),
            last_sync_at: c.last_synced_ms.map(rfc3339),
            breaker: BreakerView {
                state: b.state,
                consecutive_failures: b.consecutive_failures,
                opened_at: b.opened_at.map(|i| rfc3339(to_ms(i))),
                next_probe_at: b.next_probe_at.map(|i| rfc3339(to_ms(i))),
                next_probe_in_seconds: b.next_probe_at.map(|i| i.saturating_duration_since(now).as_secs_f64()),
                successes: b.totals.successes,
                failures: b.totals.failures,
                short_circuited: b.totals.short_circuited,
            },
            worker: WorkerView {
                running: w.running,
                last_cycle_at: w.last_cycle_at_ms.map(rfc3339),
                heartbeat_at: w.heartbeat_ms.map(rfc3339),
                heartbeat_stale,
                in_flight: w.in_flight,
            },
            mode: if w.demo { Mode::Demo } else { Mode::Live },
            ofd: w.ofd,
            ofd_misconfigured: w.misconfigured.map(|(s, _)| s),
            fn_age: FnAge {
                level,
                oldest_unsynced_age_seconds: unsynced_age,
                warn_after_days: self.fn_warn_age.as_secs_f64() / 86400.0,
                critical_after_days: self.fn_critical_age.as_secs_f64() / 86400.0,
                blocks_after_days: FN_BLOCK_DAYS,
            },
            storage_error: self.buffer.writer_stats().failing(),
            fn_exchange: self.worker.fn_exchange(),
            device: {
                let problem = self.buffer.device_problem();
                DeviceView {
                    ready: problem.is_none(),
                    problem,
                    watch: self.device_watch.snapshot(),
                }
            },
        }
    }
}

/// What the tray icon shows; the worst condition wins. Demo mode is not an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayState {
    /// Everything delivered.
    Ok,
    /// Receipts wait to be sent (normal between cycles).
    Waiting,
    /// The OFD is unreachable (breaker open); receipts are kept.
    Offline,
    /// Someone should look: DLQ not empty, FN age warning, OFD misconfigured, worker stalled,
    /// receipts cannot be stored.
    Attention,
}

fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} с"),
        s if s < 3600 => format!("{} мин", s / 60),
        s if s < 86_400 => format!("{} ч {} мин", s / 3600, (s % 3600) / 60),
        s => format!("{} дн {} ч", s / 86_400, (s % 86_400) / 3600),
    }
}

impl Status {
    pub fn tray_state(&self) -> TrayState {
        if self.dlq_size > 0
            || self.needs_review > 0
            || self.fn_age.level != FnAgeLevel::Ok
            || self.ofd_misconfigured.is_some()
            || self.worker.heartbeat_stale
            || self.storage_error.is_some()
            || !self.device.ready
        {
            TrayState::Attention
        } else if self.breaker.state == crate::breaker::State::Open {
            TrayState::Offline
        } else if self.pending + self.syncing > 0 {
            TrayState::Waiting
        } else {
            TrayState::Ok
        }
    }

    /// One line for the tray menu (Linux ignores tooltips): "3 ждут · ОФД на связи · старейший 2 мин".
    pub fn status_line(&self) -> String {
        let waiting = self.pending + self.syncing;
        let mut parts = Vec::new();
        if self.storage_error.is_some() {
            parts.push("ЧЕКИ НЕ СОХРАНЯЮТСЯ (диск)".to_string());
        }
        if let Some(problem) = &self.device.problem {
            parts.push(format!("ККТ: {problem}"));
        }
        if self.needs_review > 0 {
            parts.insert(0, format!("ТРЕБУЮТ РЕШЕНИЯ: {}", self.needs_review));
        }
        parts.push(if waiting == 0 {
            "всё отправлено".to_string()
        } else {
            format!("{waiting} ждут")
        });
        parts.push(
            match self.network_status {
                NetworkStatus::Online => "ОФД на связи",
                NetworkStatus::Degraded => "ОФД с перебоями",
                NetworkStatus::Offline => "ОФД недоступен",
            }
            .to_string(),
        );
        if let Some(age) = self.oldest_pending_age_seconds.filter(|_| waiting > 0) {
            parts.push(format!("старейший {}", human_age(age)));
        }
        if self.dlq_size > 0 {
            parts.push(format!("DLQ {}", self.dlq_size));
        }
        match self.fn_age.level {
            FnAgeLevel::Ok => {}
            FnAgeLevel::Blocked => parts.insert(0, "ФН ЗАБЛОКИРОВАН (30 дней без ОФД)".to_string()),
            FnAgeLevel::Warning | FnAgeLevel::Critical => parts.push("ФН: срок!".to_string()),
        }
        if self.mode == Mode::Demo {
            parts.push("ДЕМО".to_string());
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A quiet status: all delivered, breaker closed, live mode.
    pub(crate) fn status() -> Status {
        Status {
            total_capacity: 100,
            current_queued: 0,
            percent_full: 0.0,
            network_status: NetworkStatus::Online,
            total_receipts: 0,
            pending: 0,
            synced: 0,
            failed: 0,
            dlq_size: 0,
            syncing: 0,
            fiscalizing: 0,
            refused: 0,
            needs_review: 0,
            voided: 0,
            retrying: 0,
            oldest_pending_at: None,
            oldest_pending_age_seconds: None,
            last_sync_at: None,
            breaker: BreakerView {
                state: crate::breaker::State::Closed,
                consecutive_failures: 0,
                opened_at: None,
                next_probe_at: None,
                next_probe_in_seconds: None,
                successes: 0,
                failures: 0,
                short_circuited: 0,
            },
            worker: WorkerView {
                running: true,
                last_cycle_at: None,
                heartbeat_at: None,
                heartbeat_stale: false,
                in_flight: 0,
            },
            mode: Mode::Live,
            ofd: String::new(),
            ofd_misconfigured: None,
            storage_error: None,
            fn_exchange: None,
            device: DeviceView {
                ready: true,
                problem: None,
                watch: Default::default(),
            },
            fn_age: FnAge {
                level: FnAgeLevel::Ok,
                oldest_unsynced_age_seconds: None,
                warn_after_days: 3.0,
                critical_after_days: 25.0,
                blocks_after_days: 30,
            },
        }
    }

    #[test]
    fn the_worst_condition_wins_the_tray_icon() {
        let mut s = status();
        assert_eq!(s.tray_state(), TrayState::Ok);
        s.pending = 3;
        assert_eq!(s.tray_state(), TrayState::Waiting);
        s.breaker.state = crate::breaker::State::Open;
        s.network_status = NetworkStatus::Offline;
        assert_eq!(s.tray_state(), TrayState::Offline);
        s.dlq_size = 1;
        assert_eq!(s.tray_state(), TrayState::Attention);
        let mut fn_old = status();
        fn_old.fn_age.level = FnAgeLevel::Warning;
        assert_eq!(fn_old.tray_state(), TrayState::Attention);
        let mut disk = status();
        disk.storage_error = Some("database or disk is full".into());
        assert_eq!(disk.tray_state(), TrayState::Attention);
        assert!(
            disk.status_line().starts_with("ЧЕКИ НЕ СОХРАНЯЮТСЯ"),
            "{}",
            disk.status_line()
        );
    }

    #[test]
    fn health_is_the_worst_component_and_names_each_cause() {
        let mut s = status();
        assert_eq!(s.health(Ok(())).status, Verdict::Healthy);
        s.dlq_size = 2;
        let h = s.health(Ok(()));
        assert_eq!(h.status, Verdict::Degraded);
        assert_eq!(h.components.buffer.message.as_deref(), Some("2 receipts in the DLQ"));
        s.worker.heartbeat_stale = true;
        assert_eq!(s.health(Ok(())).status, Verdict::Unhealthy);
        let h = status().health(Err("disk I/O error".into()));
        assert_eq!(
            (h.status, h.components.database.message.as_deref()),
            (Verdict::Unhealthy, Some("disk I/O error"))
        );
        let mut critical = status();
        critical.fn_age.level = FnAgeLevel::Critical;
        assert!(critical.health(Ok(())).fn_age_critical);
        critical.fn_age.level = FnAgeLevel::Blocked;
        let h = critical.health(Ok(()));
        assert_eq!((h.status, h.fn_age_critical), (Verdict::Unhealthy, true));
        assert_eq!(critical.tray_state(), TrayState::Attention);
        assert!(
            critical.status_line().starts_with("ФН ЗАБЛОКИРОВАН"),
            "{}",
            critical.status_line()
        );
    }

    #[test]
    fn demo_mode_is_visible_but_not_an_alarm() {
        let mut s = status();
        s.mode = Mode::Demo;
        assert_eq!(s.tray_state(), TrayState::Ok);
        assert_eq!(s.status_line(), "всё отправлено · ОФД на связи · ДЕМО");
    }

    #[test]
    fn the_status_line_says_what_waits_and_for_how_long() {
        let mut s = status();
        s.pending = 2;
        s.syncing = 1;
        s.oldest_pending_age_seconds = Some(125);
        assert_eq!(s.status_line(), "3 ждут · ОФД на связи · старейший 2 мин");
        s.network_status = NetworkStatus::Offline;
        s.dlq_size = 4;
        s.oldest_pending_age_seconds = Some(90_000);
        assert_eq!(s.status_line(), "3 ждут · ОФД недоступен · старейший 1 дн 1 ч · DLQ 4");
    }
}
