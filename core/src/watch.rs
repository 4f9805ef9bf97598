//! The register's own state, polled (docs/contract.md §11, issue 20): every `[kkt] watch_ms`
//! the register is asked for its state ([`Kkt::device_info`]) — not only learned from what
//! tasks answer — and its alarms are worked out here, in Russian for the tray and the window:
//! no paper, the cover open, the shift over 24 hours, the FN's validity running out (30 days
//! and 3 days before), documents the FN has not handed to the OFD for a day.
//!
//! The last reading and its alarms are in the status snapshot (`device.watch`); each alarm is
//! announced once when it starts (`alerts`).

use crate::kkt::{DeviceInfo, Kkt, ShiftState};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The FN's validity: a warning this long before it runs out, critical at [`FN_VALID_CRITICAL_DAYS`].
pub const FN_VALID_WARN_DAYS: i64 = 30;
pub const FN_VALID_CRITICAL_DAYS: i64 = 3;
/// Documents the FN has not handed to the OFD for this long are an alarm (it blocks at 30 days).
pub const FN_UNSENT_WARN: chrono::TimeDelta = chrono::TimeDelta::hours(24);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Warning,
    Critical,
}

/// One alarm of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceAlarm {
    /// `paper_out`, `cover_open`, `shift_expired`, `fn_expiring`, `fn_expired`, `fn_unsent`.
    pub code: &'static str,
    pub level: Level,
    /// What it is and what to do, in Russian.
    pub text: String,
}

/// The last reading.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Watched {
    /// When the register was last read (RFC 3339); `None` before the first reading.
    pub read_at: Option<String>,
    pub info: Option<DeviceInfo>,
    /// Why the last reading failed, if it did (the register is not reachable).
    pub error: Option<String>,
    pub alarms: Vec<DeviceAlarm>,
}

/// The shared last reading.
#[derive(Clone, Default)]
pub struct DeviceWatch(Arc<Mutex<Watched>>);

impl DeviceWatch {
    pub fn snapshot(&self) -> Watched {
        self.0.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn set(&self, w: Watched) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = w;
        }
    }
}

/// A validity date as registers give it: RFC 3339 (ATOL: the device's local time) or a day.
fn day_of(text: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.date_naive())
        .ok()
        .or_else(|| NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok())
}

/// The alarms of one reading at `now`.
pub fn alarms(info: &DeviceInfo, now: DateTime<Utc>) -> Vec<DeviceAlarm> {
    let mut out = Vec::new();
    let mut alarm = |code, level, text: String| out.push(DeviceAlarm { code, level, text });
    if info.paper_present == Some(false) {
        alarm(
            "paper_out",
            Level::Critical,
            "В ККТ нет бумаги: вставьте новый рулон.".into(),
        );
    }
    if info.cover_open == Some(true) {
        alarm("cover_open", Level::Critical, "Открыта крышка ККТ: закройте её.".into());
    }
    if info.shift == ShiftState::Expired {
        alarm(
            "shift_expired",
            Level::Critical,
            format!(
                "Смена № {} открыта более 24 часов: закройте её (Z-отчёт), иначе чеки не пробиваются.",
                info.shift_number
            ),
        );
    }
    if let Some(until) = info.fn_valid_until.as_deref().and_then(day_of) {
        let days = (until - now.date_naive()).num_days();
        let date = until.format("%d.%m.%Y");
        if days < 0 {
            alarm(
                "fn_expired",
                Level::Critical,
                format!("Срок действия ФН истёк {date}: касса не может пробивать чеки. Замените ФН."),
            );
        } else if days <= FN_VALID_CRITICAL_DAYS {
            alarm(
                "fn_expiring",
                Level::Critical,
                format!("Срок действия ФН истекает {date} (через {days} дн.): срочно замените ФН."),
            );
        } else if days <= FN_VALID_WARN_DAYS {
            alarm(
                "fn_expiring",
                Level::Warning,
                format!("Срок действия ФН истекает {date} (через {days} дн.): закажите замену ФН."),
            );
        }
    }
    if info.fn_unsent > 0
        && let Some(first) = info.fn_unsent_first_at.as_deref()
        && let Ok(at) = DateTime::parse_from_rfc3339(first)
        && now - at.to_utc() >= FN_UNSENT_WARN
    {
        alarm(
            "fn_unsent",
            Level::Warning,
            format!(
                "ФН не передал в ОФД {} док. с {}: проверьте связь ККТ с ОФД (через 30 дней ФН заблокируется).",
                info.fn_unsent,
                at.format("%d.%m.%Y %H:%M")
            ),
        );
    }
    out
}

/// Reads the register now (and the marking services' state) and keeps the reading.
pub async fn read_once(
    kkt: &Arc<dyn Kkt>,
    clock: &crate::time::Clock,
    watch: &DeviceWatch,
    marking: Option<&crate::marking::Checker>,
) {
    let now = clock.utc();
    let k = kkt.clone();
    let read = tokio::task::spawn_blocking(move || k.device_info(now)).await;
    let mut w = watch.snapshot();
    w.read_at = Some(now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    match read {
        Ok(Ok(info)) => {
            w.alarms = alarms(&info, now);
            w.info = Some(info);
            w.error = None;
        }
        Ok(Err(e)) => w.error = Some(e.to_string()),
        Err(_) => w.error = Some("сбой драйвера ККТ при чтении её состояния".into()),
    }
    if let Some(m) = marking {
        for (code, critical, text) in m.alarms(now).await {
            let level = if critical { Level::Critical } else { Level::Warning };
            w.alarms.push(DeviceAlarm { code, level, text });
        }
    }
    watch.set(w);
}

/// Polls the register every `every` until `cancel` fires (`every` zero: never).
pub async fn run(
    kkt: Arc<dyn Kkt>,
    clock: crate::time::Clock,
    every: Duration,
    watch: DeviceWatch,
    marking: Option<crate::marking::Checker>,
    cancel: CancellationToken,
) {
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => read_once(&kkt, &clock, &watch, marking.as_ref()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DeviceInfo {
        DeviceInfo {
            model: "m".into(),
            serial: "s".into(),
            firmware: None,
            ffd_version: None,
            fn_number: "f".into(),
            fn_valid_until: None,
            fn_phase: None,
            shift: ShiftState::Open,
            shift_number: 7,
            paper_present: Some(true),
            cover_open: Some(false),
            drawer_open: None,
            fn_unsent: 0,
            fn_unsent_first: None,
            fn_unsent_first_at: None,
            cash_in_drawer: None,
        }
    }

    fn codes(a: &[DeviceAlarm]) -> Vec<(&str, Level)> {
        a.iter().map(|a| (a.code, a.level)).collect()
    }

    #[test]
    fn the_fn_validity_warns_thirty_days_before_and_is_critical_three_days_before() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z").unwrap().to_utc();
        let valid = |until: &str| {
            let mut i = info();
            i.fn_valid_until = Some(until.into());
            alarms(&i, now)
        };
        assert!(valid("2027-01-06T00:00:00+03:00").is_empty(), "31 days: nothing yet");
        assert_eq!(
            codes(&valid("2027-01-05T00:00:00+03:00")),
            [("fn_expiring", Level::Warning)]
        );
        assert_eq!(codes(&valid("2026-12-09")), [("fn_expiring", Level::Critical)]);
        assert_eq!(codes(&valid("2026-12-05")), [("fn_expired", Level::Critical)]);
        assert!(
            valid("2027-01-05")
                .first()
                .unwrap()
                .text
                .contains("05.01.2027 (через 30 дн.)")
        );
    }

    #[test]
    fn paper_cover_an_expired_shift_and_old_unsent_documents_are_alarms() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z").unwrap().to_utc();
        let mut i = info();
        assert!(alarms(&i, now).is_empty());
        i.paper_present = Some(false);
        i.cover_open = Some(true);
        i.shift = ShiftState::Expired;
        i.fn_unsent = 3;
        i.fn_unsent_first_at = Some("2026-12-05T11:00:00+00:00".into());
        assert_eq!(
            codes(&alarms(&i, now)),
            [
                ("paper_out", Level::Critical),
                ("cover_open", Level::Critical),
                ("shift_expired", Level::Critical),
                ("fn_unsent", Level::Warning)
            ]
        );
        i.fn_unsent_first_at = Some("2026-12-06T11:00:00+00:00".into());
        assert!(
            !codes(&alarms(&i, now)).contains(&("fn_unsent", Level::Warning)),
            "an hour is normal"
        );
    }
}
