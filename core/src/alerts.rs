//! Operator alerts: what deserves a desktop notification, decided from buffer events and the
//! status snapshot — edge-triggered (a condition is announced when it starts, not while it lasts)
//! and rate-limited per kind. [`Notifier`] is the small trait the desktop shell implements with
//! notify-rust; the headless daemon logs alerts instead; tests record them.

use crate::events::{Event, EventKind};
use crate::status::{FnAgeLevel, Status, StatusSource};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Something the operator should know now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// The breaker opened: receipts wait (the counter keeps working).
    OfdOffline,
    /// The breaker closed again after an outage.
    OfdBackOnline,
    /// Receipts moved to the DLQ since the last alert of this kind.
    DeadLettered { count: u64, last_reason: String },
    /// The DLQ grew past the threshold.
    DlqAboveThreshold { size: u64, threshold: u64 },
    /// The oldest unconfirmed receipt passed the warning age.
    FnAgeWarning { age_seconds: u64 },
    /// The oldest unconfirmed receipt passed the critical age (the FN blocks at 30 days).
    FnAgeCritical { age_seconds: u64 },
    /// 30 days: the fiscal drive blocks; the tills get 503 `fn_blocked`.
    FnBlocked { age_seconds: u64 },
    /// The OFD refuses the adapter (401/403/404): URL or token wrong.
    OfdMisconfigured { http_status: u16 },
    /// Receipts cannot be stored (disk full, I/O error): the tills get 503.
    StorageFailing { error: String },
    /// The fiscal register cannot take receipts (no paper, not connected …): the tills get 202.
    DeviceTrouble { problem: String },
    /// The register may hold a receipt and cannot tell: the manager decides (§10.5).
    NeedsReview { reason: String },
    /// The register's own state needs a person (`watch.rs`): no paper, the cover open, the
    /// shift over 24 h, the FN's validity running out, documents not handed to the OFD.
    DeviceAlarm {
        code: &'static str,
        text: String,
        critical: bool,
    },
}

/// Kinds, for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Offline,
    Online,
    DeadLettered,
    DlqThreshold,
    FnWarning,
    FnCritical,
    FnBlocked,
    Misconfigured,
    Storage,
    Device,
    Review,
    /// A register alarm, by its code and whether it is critical (growing critical is news).
    Watch(&'static str, bool),
}

impl Alert {
    fn kind(&self) -> Kind {
        match self {
            Alert::OfdOffline => Kind::Offline,
            Alert::OfdBackOnline => Kind::Online,
            Alert::DeadLettered { .. } => Kind::DeadLettered,
            Alert::DlqAboveThreshold { .. } => Kind::DlqThreshold,
            Alert::FnAgeWarning { .. } => Kind::FnWarning,
            Alert::FnAgeCritical { .. } => Kind::FnCritical,
            Alert::FnBlocked { .. } => Kind::FnBlocked,
            Alert::OfdMisconfigured { .. } => Kind::Misconfigured,
            Alert::StorageFailing { .. } => Kind::Storage,
            Alert::DeviceTrouble { .. } => Kind::Device,
            Alert::NeedsReview { .. } => Kind::Review,
            Alert::DeviceAlarm { code, critical, .. } => Kind::Watch(code, *critical),
        }
    }

    /// Whether it needs attention (shown as critical) or is information.
    pub fn is_critical(&self) -> bool {
        matches!(
            self,
            Alert::FnAgeCritical { .. }
                | Alert::FnBlocked { .. }
                | Alert::OfdMisconfigured { .. }
                | Alert::DlqAboveThreshold { .. }
                | Alert::StorageFailing { .. }
                | Alert::DeviceTrouble { .. }
                | Alert::NeedsReview { .. }
        ) || matches!(self, Alert::DeviceAlarm { critical: true, .. })
    }

    /// Title and body, in Russian (the shop staff's language) with the English in brackets.
    pub fn text(&self) -> (String, String) {
        let days = |s: &u64| s / 86_400;
        match self {
            Alert::OfdOffline => (
                "ОФД недоступен (OFD offline)".into(),
                "Чеки печатаются и копятся в буфере; отправим, когда связь вернётся.".into(),
            ),
            Alert::OfdBackOnline => (
                "Связь с ОФД восстановлена (OFD back online)".into(),
                "Отправка чеков возобновлена.".into(),
            ),
            Alert::DeadLettered { count, last_reason } => (
                format!("{count} чек(ов) не доставлено (moved to the DLQ)"),
                format!("Причина: {last_reason}. Откройте окно и повторите отправку."),
            ),
            Alert::DlqAboveThreshold { size, threshold } => (
                format!("В очереди недоставленных {size} чеков (DLQ above {threshold})"),
                "Проверьте связь с ОФД и настройки; повторите отправку в окне.".into(),
            ),
            Alert::FnAgeWarning { age_seconds } => (
                format!("Чек ждёт ОФД {} дн. (FN age warning)", days(age_seconds)),
                "ФН блокируется через 30 дней без подтверждения ОФД.".into(),
            ),
            Alert::FnAgeCritical { age_seconds } => (
                format!("КРИТИЧНО: чек ждёт ОФД {} дн. (FN age critical)", days(age_seconds)),
                "ФН заблокируется на 30-й день. Срочно восстановите связь с ОФД.".into(),
            ),
            Alert::FnBlocked { age_seconds } => (
                format!("ФН ЗАБЛОКИРОВАН: чек ждёт ОФД {} дн. (FN blocked)", days(age_seconds)),
                "Касса не принимает новые чеки. Восстановите связь с ОФД: после подтверждения ФН разблокируется."
                    .into(),
            ),
            Alert::OfdMisconfigured { http_status } => (
                format!("ОФД отклоняет подключение: HTTP {http_status} (OFD misconfigured)"),
                "Проверьте адрес ОФД и токен в настройках адаптера.".into(),
            ),
            Alert::DeviceTrouble { problem } => (
                format!("ККТ: {problem} (fiscal register not ready)"),
                "Чеки сохраняются и будут пробиты, как только ККТ будет готова.".into(),
            ),
            Alert::NeedsReview { reason } => (
                "Чек требует решения: ККТ не может сказать, пробит ли он (needs review)".into(),
                format!("{reason}. Откройте окно, раздел «Требуют решения»."),
            ),
            Alert::DeviceAlarm { code, text, .. } => (format!("ККТ: внимание ({code})"), text.clone()),
            Alert::StorageFailing { error } => (
                "Чеки не сохраняются: ошибка диска (storage failing)".into(),
                format!("Касса получает отказ. Освободите место на диске или проверьте папку данных ({error})."),
            ),
        }
    }
}

/// Shows alerts to a person.
pub trait Notifier: Send + Sync {
    fn notify(&self, alert: &Alert);
}

/// The headless daemon's notifier: a log line per alert.
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, alert: &Alert) {
        let (title, body) = alert.text();
        tracing::warn!(alert = ?alert, "{title}: {body}");
    }
}

/// Decides which alerts to raise. Pure: time is passed in.
pub struct Alerter {
    dlq_threshold: u64,
    min_interval: Duration,
    last_sent: HashMap<Kind, Instant>,
    announced_offline: bool,
    dlq_above: bool,
    fn_level: FnAgeLevel,
    misconfigured: Option<u16>,
    storage_failing: bool,
    device_problem: Option<String>,
    /// The register's alarms announced (by code and level), while they last.
    device_alarms: Vec<(&'static str, crate::watch::Level)>,
    /// Dead-lettered receipts not yet announced (rate limiting folds them into one alert).
    dead_pending: u64,
    dead_reason: String,
}

impl Alerter {
    pub fn new(dlq_threshold: u64, min_interval: Duration) -> Alerter {
        Alerter {
            dlq_threshold,
            min_interval,
            last_sent: HashMap::new(),
            announced_offline: false,
            dlq_above: false,
            fn_level: FnAgeLevel::Ok,
            misconfigured: None,
            storage_failing: false,
            device_problem: None,
            device_alarms: Vec::new(),
            dead_pending: 0,
            dead_reason: String::new(),
        }
    }

    /// Raises `alert` unless one of its kind went out less than `min_interval` ago.
    fn emit(&mut self, alert: Alert, now: Instant, out: &mut Vec<Alert>) -> bool {
        let kind = alert.kind();
        if self
            .last_sent
            .get(&kind)
            .is_some_and(|t| now.duration_since(*t) < self.min_interval)
        {
            return false;
        }
        self.last_sent.insert(kind, now);
        out.push(alert);
        true
    }

    pub fn on_event(&mut self, event: &Event, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        match event.event_type {
            EventKind::CircuitOpened if !self.announced_offline => {
                self.announced_offline = self.emit(Alert::OfdOffline, now, &mut out);
            }
            EventKind::CircuitClosed if self.announced_offline => {
                self.announced_offline = false;
                self.emit(Alert::OfdBackOnline, now, &mut out);
            }
            EventKind::ReceiptNeedsReview => {
                let reason = event.details["reason"].as_str().unwrap_or_default().to_string();
                self.emit(Alert::NeedsReview { reason }, now, &mut out);
            }
            EventKind::ReceiptDlq => {
                self.dead_pending += 1;
                self.dead_reason = event.details["reason"].as_str().unwrap_or("unknown").to_string();
                self.flush_dead(now, &mut out);
            }
            _ => {}
        }
        out
    }

    fn flush_dead(&mut self, now: Instant, out: &mut Vec<Alert>) {
        if self.dead_pending > 0 {
            let alert = Alert::DeadLettered {
                count: self.dead_pending,
                last_reason: self.dead_reason.clone(),
            };
            if self.emit(alert, now, out) {
                self.dead_pending = 0;
            }
        }
    }

    pub fn on_status(&mut self, s: &Status, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        self.flush_dead(now, &mut out);
        let above = s.dlq_size > self.dlq_threshold;
        if above && !self.dlq_above {
            self.emit(
                Alert::DlqAboveThreshold {
                    size: s.dlq_size,
                    threshold: self.dlq_threshold,
                },
                now,
                &mut out,
            );
        }
        self.dlq_above = above;
        let level = s.fn_age.level;
        if level > self.fn_level {
            let age_seconds = s.fn_age.oldest_unsynced_age_seconds.unwrap_or(0);
            let alert = match level {
                FnAgeLevel::Blocked => Alert::FnBlocked { age_seconds },
                FnAgeLevel::Critical => Alert::FnAgeCritical { age_seconds },
                _ => Alert::FnAgeWarning { age_seconds },
            };
            self.emit(alert, now, &mut out);
        }
        self.fn_level = level;
        if let Some(code) = s.ofd_misconfigured
            && self.misconfigured.is_none()
        {
            self.emit(Alert::OfdMisconfigured { http_status: code }, now, &mut out);
        }
        self.misconfigured = s.ofd_misconfigured;
        if let Some(error) = &s.storage_error
            && !self.storage_failing
        {
            self.emit(Alert::StorageFailing { error: error.clone() }, now, &mut out);
        }
        self.storage_failing = s.storage_error.is_some();
        if let Some(problem) = &s.device.problem
            && self.device_problem.is_none()
        {
            self.emit(
                Alert::DeviceTrouble {
                    problem: problem.clone(),
                },
                now,
                &mut out,
            );
        }
        self.device_problem = s.device.problem.clone();
        // Each alarm once when it starts (or grows critical); again only after it cleared.
        let now_alarms: Vec<_> = s.device.watch.alarms.iter().map(|a| (a.code, a.level)).collect();
        for a in &s.device.watch.alarms {
            if !self.device_alarms.contains(&(a.code, a.level)) {
                let alert = Alert::DeviceAlarm {
                    code: a.code,
                    text: a.text.clone(),
                    critical: a.level == crate::watch::Level::Critical,
                };
                self.emit(alert, now, &mut out);
            }
        }
        self.device_alarms = now_alarms;
        out
    }
}

/// Feeds events and a status tick into an [`Alerter`] and hands its alerts to `notifier`,
/// until `cancel` fires.
pub async fn run(source: StatusSource, notifier: Arc<dyn Notifier>, mut alerter: Alerter, cancel: CancellationToken) {
    let mut events = source.buffer.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let alerts = tokio::select! {
            _ = cancel.cancelled() => break,
            e = events.recv() => match e {
                Ok(e) => alerter.on_event(&e, Instant::now()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "alerts lagged behind events");
                    Vec::new()
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => alerter.on_status(&source.snapshot(), Instant::now()),
        };
        for a in alerts {
            notifier.notify(&a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, details: serde_json::Value) -> Event {
        Event {
            id: 1,
            receipt_id: None,
            event_type: kind,
            created_at: String::new(),
            details,
            fiscal_doc_number: None,
            total: None,
        }
    }

    #[test]
    fn a_receipt_in_review_is_a_critical_alert_with_its_reason_in_russian() {
        let mut a = Alerter::new(10, Duration::from_secs(300));
        let t = Instant::now();
        let e = event(
            EventKind::ReceiptNeedsReview,
            serde_json::json!({"reason": "в ФН есть документы, которые могут быть этим чеком (№ 2, 3)"}),
        );
        let alerts = a.on_event(&e, t);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].is_critical());
        let (title, body) = alerts[0].text();
        assert!(
            title.contains("требует решения") && body.contains("№ 2, 3"),
            "{title} / {body}"
        );
    }

    #[test]
    fn an_outage_is_announced_once_and_its_end_once() {
        let mut a = Alerter::new(50, Duration::from_secs(300));
        let t = Instant::now();
        assert_eq!(
            a.on_event(&event(EventKind::CircuitOpened, serde_json::json!({})), t),
            vec![Alert::OfdOffline]
        );
        // Half-open probes fail and re-open: no repeat.
        assert!(
            a.on_event(
                &event(EventKind::CircuitOpened, serde_json::json!({})),
                t + Duration::from_secs(60)
            )
            .is_empty()
        );
        assert_eq!(
            a.on_event(&event(EventKind::CircuitClosed, serde_json::json!({})), t),
            vec![Alert::OfdBackOnline]
        );
        assert!(
            a.on_event(&event(EventKind::CircuitClosed, serde_json::json!({})), t)
                .is_empty()
        );
    }

    #[test]
    fn a_storage_failure_is_announced_once_while_it_lasts_and_again_after_recovery() {
        let mut a = Alerter::new(50, Duration::ZERO);
        let now = Instant::now();
        let mut s = crate::status::tests::status();
        assert!(a.on_status(&s, now).is_empty());
        s.storage_error = Some("database or disk is full".into());
        let alerts = a.on_status(&s, now);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].is_critical());
        assert!(alerts[0].text().1.contains("database or disk is full"));
        assert!(a.on_status(&s, now).is_empty(), "no repeat while it lasts");
        s.storage_error = None;
        assert!(a.on_status(&s, now).is_empty());
        s.storage_error = Some("disk I/O error".into());
        assert_eq!(a.on_status(&s, now).len(), 1, "a new failure is a new alert");
    }

    #[test]
    fn a_flapping_ofd_is_rate_limited() {
        let mut a = Alerter::new(50, Duration::from_secs(300));
        let t = Instant::now();
        let open = event(EventKind::CircuitOpened, serde_json::json!({}));
        let closed = event(EventKind::CircuitClosed, serde_json::json!({}));
        assert_eq!(a.on_event(&open, t).len(), 1);
        assert_eq!(a.on_event(&closed, t).len(), 1);
        assert!(
            a.on_event(&open, t + Duration::from_secs(10)).is_empty(),
            "within the rate limit"
        );
        assert_eq!(a.on_event(&open, t + Duration::from_secs(301)), vec![Alert::OfdOffline]);
    }

    #[test]
    fn dead_letters_are_folded_into_one_alert_per_interval() {
        let mut a = Alerter::new(50, Duration::from_secs(60));
        let t = Instant::now();
        let dlq = event(EventKind::ReceiptDlq, serde_json::json!({"reason": "rejected_by_ofd"}));
        assert_eq!(
            a.on_event(&dlq, t),
            vec![Alert::DeadLettered {
                count: 1,
                last_reason: "rejected_by_ofd".into()
            }]
        );
        assert!(a.on_event(&dlq, t + Duration::from_secs(1)).is_empty());
        assert!(a.on_event(&dlq, t + Duration::from_secs(2)).is_empty());
        let later = a.on_event(&dlq, t + Duration::from_secs(61));
        assert_eq!(
            later,
            vec![Alert::DeadLettered {
                count: 3,
                last_reason: "rejected_by_ofd".into()
            }]
        );
    }
}
