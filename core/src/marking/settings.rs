//! `[marking]` of the config file (docs/contract.md §12, README "Marked goods").

use serde::Deserialize;
use std::time::Duration;

/// How marked goods are checked before they are sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No check: codes go to the register as the till sent them (the default, as before).
    #[default]
    Off,
    /// The FN's own check only (tag 2106).
    Fn,
    /// The permissive mode (ТС ПИоТ online, the local module ЛМ ЧЗ offline) and the FN's check.
    Permissive,
}

/// `[marking]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarkingSettings {
    pub mode: Mode,
    /// A verdict younger than this is reused for the same code and operation.
    #[serde(rename = "reuse_secs", with = "crate::units::secs")]
    pub reuse: Duration,
    /// The online check's budget (ПП РФ № 1944 п. 17: 1.5 s); past it, the offline check.
    #[serde(rename = "online_budget_ms", with = "crate::units::ms")]
    pub online_budget: Duration,
    /// When neither service answers: sell (`true`, the verdict `unknown` kept with the receipt)
    /// or refuse (`false`, the default: a sale without a check is a violation ЧЗ records).
    pub sell_unchecked: bool,
    pub tspiot: TsPiotSettings,
    pub lm: LmSettings,
}

impl Default for MarkingSettings {
    fn default() -> Self {
        MarkingSettings {
            mode: Mode::Off,
            reuse: Duration::from_secs(300),
            online_budget: Duration::from_millis(1500),
            sell_unchecked: false,
            tspiot: TsPiotSettings::default(),
            lm: LmSettings::default(),
        }
    }
}

/// `[marking.tspiot]`: ТС ПИоТ.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsPiotSettings {
    /// e.g. `http://127.0.0.1:51401`; empty: not used.
    pub url: String,
    pub token: Option<String>,
}

/// `[marking.lm]`: the local module ЛМ ЧЗ.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmSettings {
    /// e.g. `http://127.0.0.1:5995`; empty: not used.
    pub url: String,
    pub user: String,
    pub password: String,
}

impl Default for LmSettings {
    fn default() -> Self {
        LmSettings {
            url: String::new(),
            // The module's own defaults (docs/research/marking.md §3.3).
            user: "admin".into(),
            password: "admin".into(),
        }
    }
}

impl MarkingSettings {
    /// The start-up check: the permissive mode needs a service to ask, unless the adapter is in
    /// demo mode (no OFD URL), where the built-in simulator answers the test codes.
    pub fn check(&self, demo: bool) -> Result<(), String> {
        for (name, url) in [
            ("marking.tspiot.url", &self.tspiot.url),
            ("marking.lm.url", &self.lm.url),
        ] {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("config: {name} {url:?} must start with http:// or https://"));
            }
        }
        if self.mode == Mode::Permissive && self.tspiot.url.is_empty() && self.lm.url.is_empty() && !demo {
            return Err(
                "config: [marking] mode = \"permissive\" needs [marking.tspiot] url (ТС ПИоТ) or \
                        [marking.lm] url (the local module ЛМ ЧЗ); without an OFD URL (demo) the built-in \
                        simulator answers the test codes instead"
                    .into(),
            );
        }
        if self.online_budget.is_zero() || self.online_budget > Duration::from_secs(10) {
            return Err("config: [marking] online_budget_ms must be 1–10000 (the rules say 1500)".into());
        }
        Ok(())
    }
}
