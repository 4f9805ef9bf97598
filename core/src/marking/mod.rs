//! Marked goods — Честный ЗНАК (docs/contract.md §12, docs/research/marking.md).
//!
//! A marked item may be sold only after its code is checked: in the permissive mode online
//! through ТС ПИоТ within the 1.5 s budget, else offline against the local module ЛМ ЧЗ
//! ([`services`]); and by the FN itself (tag 2106, [`crate::kkt::marks`]). What each answer means
//! is in [`rules`]; the test codes of the demo are in [`demo`]. A verdict is kept (the buffer's
//! `marking_checks`) and goes with the receipt: its 2106 to the register, and for the
//! permissive mode the requisite 1260 (ФОИВ 030, ПП № 1944 of 21.11.2023, `UUID=…&Time=…`).

pub mod demo;
pub mod rules;
pub mod services;
pub mod settings;

pub use crate::receipt::mark::Code;
pub use settings::{MarkingSettings, Mode};

use crate::kkt::Kkt;
use crate::kkt::marks::FnCheck;
use serde::{Deserialize, Serialize};
use services::{Answer, Failure, LocalModule, TsPiot};
use std::sync::Arc;
use std::time::Duration;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allowed,
    Refused,
    /// Nobody could check it (both services unreachable, ГИС МТ in emergency mode).
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Refused => "refused",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What the permissive mode said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissive {
    /// `tspiot`, `lm_chz`, `none` (`gis_mt` is reserved for a direct ГИС МТ check).
    pub source: String,
    /// 0 allowed; a refusal's code ([`rules::refusal`]); -1 no answer.
    pub code: i64,
    /// In Russian, for the cashier.
    pub reason: String,
    /// The check's UUID and time (ms) — the requisite 1265 `UUID=…&Time=…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_timestamp: Option<String>,
    /// Checked against the local module's database, not ГИС МТ.
    #[serde(default)]
    pub offline: bool,
    /// ГИС МТ in its emergency mode: no verdict, and the sale may go on (M1 `IsEmergencyMode`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emergency: bool,
}

/// What is checked: a code, for a sale or a refund.
#[derive(Debug, Clone)]
pub struct Query {
    pub code: Code,
    pub refund: bool,
}

/// One check, as answered and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub check_id: String,
    /// `sale` or `refund`.
    pub operation: String,
    /// The code's identifier (up to the first GS: no crypto tail), for the window.
    pub code: String,
    pub verdict: Verdict,
    /// Why, in Russian (the refusal's reason, or what was checked).
    pub reason: String,
    /// The FN's check (tag 2106), when the register made one.
    #[serde(rename = "fn", default, skip_serializing_if = "Option::is_none")]
    pub fn_check: Option<FnCheck>,
    pub permissive: Permissive,
    pub checked_at: String,
}

/// The checker: the settings, the services, the register.
#[derive(Clone)]
pub struct Checker {
    pub settings: Arc<MarkingSettings>,
    http: reqwest::Client,
    tspiot: Option<TsPiot>,
    lm: Option<LocalModule>,
    kkt: Arc<dyn Kkt>,
    /// The FN number the services are told (`X-ClientId`, `client_info.id`).
    fn_number: String,
    /// Why the last online check got no answer, while it lasts (an alarm: `watch.rs`).
    online_failing: Arc<std::sync::Mutex<Option<String>>>,
    clock: crate::time::Clock,
}

fn none(reason: &str) -> Permissive {
    Permissive {
        source: "none".into(),
        code: -1,
        reason: reason.into(),
        req_id: None,
        req_timestamp: None,
        offline: false,
        emergency: false,
    }
}

impl Checker {
    pub fn new(
        settings: MarkingSettings,
        kkt: Arc<dyn Kkt>,
        fn_number: String,
        clock: crate::time::Clock,
    ) -> anyhow::Result<Checker> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .user_agent(concat!("kkt-adapter/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let tspiot = (!settings.tspiot.url.is_empty()).then(|| TsPiot {
            url: settings.tspiot.url.clone(),
            token: settings.tspiot.token.clone(),
        });
        let lm = (!settings.lm.url.is_empty()).then(|| LocalModule {
            url: settings.lm.url.clone(),
            user: settings.lm.user.clone(),
            password: settings.lm.password.clone(),
        });
        Ok(Checker {
            settings: Arc::new(settings),
            http,
            tspiot,
            lm,
            kkt,
            fn_number,
            clock,
            online_failing: Arc::default(),
        })
    }

    pub fn enabled(&self) -> bool {
        self.settings.mode != Mode::Off
    }

    /// The local module, when one is configured.
    pub fn local_module(&self) -> Option<(&LocalModule, &reqwest::Client, &str)> {
        self.lm.as_ref().map(|lm| (lm, &self.http, self.fn_number.as_str()))
    }

    /// The permissive check: online first within the budget, then offline.
    async fn permissive(&self, q: &Query) -> Permissive {
        let now_ms = self.clock.now_ms();
        let budget = self.settings.online_budget;
        let simulated = self.tspiot.is_none() && self.lm.is_none();
        let online = match &self.tspiot {
            Some(t) => Some(t.check(&self.http, &q.code, &self.fn_number, budget).await),
            None if simulated => Some(demo::online(q.code.as_str(), now_ms)),
            None => None,
        };
        if let Some(result) = &online
            && self.tspiot.is_some()
            && let Ok(mut failing) = self.online_failing.lock()
        {
            *failing = match result {
                Err(Failure::Unreachable(why) | Failure::Error(why)) => Some(why.clone()),
                _ => None,
            };
        }
        let mut why_not = Vec::new();
        match online {
            Some(Ok(a)) => return self.judge("tspiot", a, q),
            Some(Err(Failure::Emergency(why))) => {
                return Permissive {
                    reason: format!("ГИС МТ в аварийном режиме ({why}): продажа без проверки разрешена"),
                    emergency: true,
                    ..none("")
                };
            }
            Some(Err(Failure::Unreachable(why) | Failure::Error(why) | Failure::NotReady(why))) => why_not.push(why),
            None => {}
        }
        let offline = match &self.lm {
            Some(lm) => Some(
                lm.check(&self.http, &q.code, &self.fn_number, Duration::from_secs(2))
                    .await,
            ),
            None if simulated => Some(demo::offline(q.code.as_str(), now_ms)),
            None => None,
        };
        match offline {
            Some(Ok(a)) => return self.judge("lm_chz", a, q),
            Some(Err(f)) => why_not.push(match f {
                Failure::Unreachable(w) | Failure::Error(w) | Failure::NotReady(w) | Failure::Emergency(w) => w,
            }),
            None => {}
        }
        none(&format!("код не удалось проверить: {}", why_not.join("; ")))
    }

    fn judge(&self, source: &str, a: Answer, q: &Query) -> Permissive {
        let offline = a.offline;
        let (code, reason) = match rules::refusal(&a.code, q.refund, offline, self.clock.utc()) {
            Some((code, why)) => (code, why),
            None if offline => (
                0,
                "проверен по локальному модулю ЧЗ (без интернета): запретов нет".into(),
            ),
            None => (0, "проверен в ГИС МТ: продажа разрешена".into()),
        };
        Permissive {
            source: if offline && source == "tspiot" {
                "lm_chz".into()
            } else {
                source.into()
            },
            code,
            reason,
            req_id: a.req_id,
            req_timestamp: a.req_timestamp,
            offline,
            emergency: false,
        }
    }

    /// Checks one code now: the permissive mode (if on), then the FN.
    pub async fn check(&self, q: &Query) -> Check {
        let permissive = if self.settings.mode == Mode::Permissive {
            self.permissive(q).await
        } else {
            none("проверка в разрешительном режиме выключена ([marking] mode)")
        };
        let (kkt, code, refund) = (self.kkt.clone(), q.code.as_str().to_string(), q.refund);
        let fn_check = match tokio::task::spawn_blocking(move || kkt.check_marking(&code, refund)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the FN did not check a marking code");
                None
            }
            Err(_) => None,
        };
        let (verdict, reason) = if let Some(why) = fn_check.and_then(FnCheck::refusal) {
            (Verdict::Refused, why)
        } else if permissive.code > 0 {
            (Verdict::Refused, permissive.reason.clone())
        } else if permissive.code == -1 && self.settings.mode == Mode::Permissive {
            (Verdict::Unknown, permissive.reason.clone())
        } else {
            (Verdict::Allowed, permissive.reason.clone())
        };
        Check {
            check_id: uuid::Uuid::new_v4().to_string(),
            operation: if q.refund { "refund" } else { "sale" }.into(),
            code: q.code.short(),
            verdict,
            reason,
            fn_check,
            permissive,
            checked_at: self.clock.utc().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        }
    }

    /// The permissive mode's services' alarms now (`watch.rs`): ТС ПИоТ not answering, the local
    /// module not ready or not synchronised for a day (it stops checking at 72 hours).
    pub async fn alarms(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<(&'static str, bool, String)> {
        let mut out = Vec::new();
        if self.settings.mode != Mode::Permissive {
            return out;
        }
        if let Some(why) = self.online_failing.lock().ok().and_then(|f| f.clone()) {
            out.push((
                "tspiot_unreachable",
                false,
                format!("ТС ПИоТ не отвечает ({why}): коды маркировки проверяются только по локальному модулю ЧЗ."),
            ));
        }
        if let Some(lm) = &self.lm {
            match lm.status(&self.http, &self.fn_number, Duration::from_secs(2)).await {
                Ok(s) if s.status != "ready" => out.push((
                    "lm_not_ready",
                    true,
                    format!(
                        "Локальный модуль ЧЗ не готов ({}): без интернета маркированный товар не продать. Проверьте его синхронизацию.",
                        s.status
                    ),
                )),
                Ok(s) => {
                    let synced = s.last_sync.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                    if let Some(at) = synced.filter(|at| now - at.to_utc() > chrono::TimeDelta::hours(24)) {
                        out.push((
                            "lm_stale",
                            false,
                            format!(
                                "Локальный модуль ЧЗ не синхронизировался с {}: через 72 часа без синхронизации он перестанет проверять коды.",
                                at.format("%d.%m.%Y %H:%M")
                            ),
                        ));
                    }
                }
                Err(Failure::Unreachable(why) | Failure::Error(why) | Failure::NotReady(why) | Failure::Emergency(why)) => {
                    out.push(("lm_unreachable", true, format!("Локальный модуль ЧЗ недоступен: {why}.")))
                }
            }
        }
        out
    }

    /// Whether a check lets the item be sold.
    pub fn may_sell(&self, c: &Check) -> bool {
        match c.verdict {
            Verdict::Allowed => true,
            Verdict::Refused => false,
            // ГИС МТ's emergency mode is no refusal; nobody answering is, unless configured.
            Verdict::Unknown => self.settings.sell_unchecked || c.permissive.emergency,
        }
    }
}
