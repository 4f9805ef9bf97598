//! The config file's sections, one struct each (`[buffer]`, `[kkt]`, `[kkt.atol]`, `[fiscal]`,
//! `[ofd]`, `[alerts]`, `[http]`, `[desktop]`); `[sync]` and `[breaker]` are the worker's and
//! the breaker's own policy types.

use crate::api::serve::Limits;
use crate::units::{self, DAY};
use secrecy::SecretString;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[buffer]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferSettings {
    /// Maximum unsynced receipts before intake answers 503 `buffer_full`.
    pub capacity: u64,
    /// Synced receipts, their events and old events of no receipt are deleted after this long
    /// (DLQ entries and unsynced receipts are kept until resolved). At least a day.
    #[serde(rename = "retention_days", with = "units::days")]
    pub retention: Duration,
    /// How often the retention purge runs.
    #[serde(rename = "purge_interval_secs", with = "units::secs")]
    pub purge_interval: Duration,
    /// Upper bound of the database file (0: none, only the disk's size).
    #[serde(rename = "max_db_mb", with = "units::mib")]
    pub max_db_bytes: u64,
}

impl Default for BufferSettings {
    fn default() -> Self {
        BufferSettings {
            capacity: 100_000,
            retention: Duration::from_secs(30 * DAY),
            purge_interval: Duration::from_secs(3600),
            max_db_bytes: 0,
        }
    }
}

/// `[kkt]`: the fiscal register: the mock driver or ATOL's (`driver`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KktSettings {
    pub fn_number: String,
    pub kkt_number: String,
    /// Simulated print time of the mock register.
    #[serde(rename = "print_latency_ms", with = "units::ms")]
    pub print_latency: Duration,
    /// A shift lasts this long (1–24 h).
    #[serde(rename = "shift_hours", with = "units::hours")]
    pub shift_length: Duration,
    /// Readable text slips, one roll a day: `<data>/receipts/<date>.txt`.
    pub write_slips: bool,
    /// The longest a till waits for the register before it gets `202 awaiting_device`.
    #[serde(rename = "answer_within_ms", with = "units::ms")]
    pub answer_within: Duration,
    /// Close an expired shift and open the next one before a receipt; `false`: the receipt
    /// gets `409 shift_expired` until the shift is closed.
    pub auto_shift: bool,
    /// How often a receipt the register could not take is tried again (looked up first).
    #[serde(rename = "retry_ms", with = "units::ms")]
    pub device_retry: Duration,
    /// How often the register's own state is read for its alarms (paper, cover, shift, FN
    /// validity, unsent documents: `watch.rs`); `0`: never.
    #[serde(rename = "watch_ms", with = "units::ms")]
    pub watch_every: Duration,
    /// A sale the register takes more than this many minutes after the till posted it is
    /// registered as the self-initiated correction of that settlement (docs/contract.md §10.7,
    /// README "Late sales"); `0`: never, every sale is registered as a sale.
    pub late_sale_after_minutes: u64,
    /// `mock` (a software register, the default) or `atol` (a real register through ATOL's
    /// driver web server, `[kkt.atol]`).
    pub driver: KktDriver,
    pub atol: AtolSettings,
}

/// Which register the adapter talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KktDriver {
    #[default]
    Mock,
    Atol,
}

/// `[kkt.atol]`: ATOL's "Driver KKT v10" web server (docs/contract.md §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AtolSettings {
    pub url: String,
    /// One device of several on that server; empty: the server's default device.
    pub device_id: String,
    /// The longest one job is polled before the device counts as busy (the receipt is then
    /// followed up by looking its job up, never resent).
    #[serde(rename = "job_bound_ms", with = "units::ms")]
    pub job_bound: Duration,
    #[serde(rename = "poll_ms", with = "units::ms")]
    pub poll_every: Duration,
    /// HTTP Basic credentials, when the web server asks for them (ATOL Web Requests).
    pub user: Option<String>,
    pub password: Option<secrecy::SecretString>,
    /// A PEM file with the certificate(s) to trust for an `https://` web server (its own
    /// self-signed one, typically); without it the public roots are trusted.
    pub ca_file: Option<PathBuf>,
}

impl Default for AtolSettings {
    fn default() -> Self {
        AtolSettings {
            url: "http://127.0.0.1:16732".into(),
            device_id: String::new(),
            job_bound: Duration::from_secs(30),
            poll_every: Duration::from_millis(100),
            user: None,
            password: None,
            ca_file: None,
        }
    }
}

impl KktSettings {
    /// `late_sale_after_minutes` as a duration (`None`: the rule is off).
    pub fn late_sale_after(&self) -> Option<Duration> {
        (self.late_sale_after_minutes > 0).then(|| Duration::from_secs(self.late_sale_after_minutes * 60))
    }
}

impl Default for KktSettings {
    fn default() -> Self {
        KktSettings {
            fn_number: "9999999999999999".into(),
            kkt_number: "0000000000001234".into(),
            print_latency: Duration::ZERO,
            shift_length: Duration::from_secs(DAY),
            write_slips: true,
            answer_within: Duration::from_secs(10),
            auto_shift: true,
            late_sale_after_minutes: 5,
            device_retry: Duration::from_secs(2),
            watch_every: Duration::from_secs(60),
            driver: KktDriver::Mock,
            atol: AtolSettings::default(),
        }
    }
}

/// `[fiscal]`: the seller, and what a receipt that does not say gets (docs/contract.md §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiscalSettings {
    /// Tag 1055 for receipts without `taxation`.
    pub taxation: crate::receipt::Taxation,
    /// Tag 1199 for items without `vat` (`none`, so the seed's curl keeps working).
    pub default_vat: crate::receipt::Vat,
    /// The cashier (1021/1203) for receipts without `cashier`.
    pub cashier_name: Option<String>,
    pub cashier_inn: Option<String>,
    /// The slip's header.
    pub seller_name: String,
    pub seller_inn: String,
    pub seller_address: String,
    /// Where the settlement happens (1187).
    pub place: String,
    /// The register's time zone (QR code, slip): `local` (the machine's), `UTC`, or an IANA
    /// name such as `Europe/Moscow`.
    pub timezone: String,
}

impl Default for FiscalSettings {
    fn default() -> Self {
        FiscalSettings {
            taxation: crate::receipt::Taxation::Osn,
            default_vat: crate::receipt::Vat::None,
            cashier_name: None,
            cashier_inn: None,
            seller_name: String::new(),
            seller_inn: String::new(),
            seller_address: String::new(),
            place: String::new(),
            timezone: "local".into(),
        }
    }
}

impl FiscalSettings {
    /// What a receipt that does not say gets.
    pub fn defaults(&self) -> crate::receipt::Defaults {
        crate::receipt::Defaults {
            taxation: self.taxation,
            cashier: self.cashier_name.clone().map(|name| crate::receipt::Cashier {
                name,
                inn: self.cashier_inn.clone(),
            }),
            vat: self.default_vat,
        }
    }

    /// The register's time zone (checked when the settings are resolved).
    pub fn zone(&self) -> crate::time::Zone {
        crate::time::Zone::parse(&self.timezone).unwrap_or(crate::time::Zone::Local)
    }

    /// The slip's header.
    pub fn seller(&self) -> crate::kkt::slip::Seller {
        crate::kkt::slip::Seller {
            name: self.seller_name.clone(),
            inn: self.seller_inn.clone(),
            address: self.seller_address.clone(),
            place: self.place.clone(),
        }
    }
}

/// `[ofd]` (the URL itself is the top-level `ofd_url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfdSettings {
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<SecretString>,
    #[serde(rename = "connect_timeout_secs", with = "units::secs")]
    pub connect_timeout: Duration,
    #[serde(rename = "timeout_secs", with = "units::secs")]
    pub timeout: Duration,
    /// The built-in simulator's answer time (demo mode only).
    #[serde(rename = "simulator_latency_ms", with = "units::ms")]
    pub simulator_latency: Duration,
}

impl Default for OfdSettings {
    fn default() -> Self {
        OfdSettings {
            token: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            simulator_latency: Duration::from_millis(20),
        }
    }
}

/// `[alerts]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// The oldest unconfirmed receipt's age that raises a warning (the FN blocks at 30 days).
    #[serde(rename = "fn_warn_days", with = "units::days")]
    pub fn_warn_age: Duration,
    #[serde(rename = "fn_critical_days", with = "units::days")]
    pub fn_critical_age: Duration,
    /// An alert is raised when the DLQ grows past this size.
    pub dlq_threshold: u64,
    /// The same kind of alert is not repeated within this interval.
    #[serde(rename = "min_interval_secs", with = "units::secs")]
    pub min_interval: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            fn_warn_age: Duration::from_secs(3 * DAY),
            fn_critical_age: Duration::from_secs(25 * DAY),
            dlq_threshold: 50,
            min_interval: Duration::from_secs(300),
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Host names accepted besides loopback names (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// The tills' shared bearer token (LAN mode): intake, and each receipt's till view. At least
    /// 32 characters.
    pub pos_token: Option<SecretString>,
    /// One token per till, `"POS-001" = "…"`: it may post only its own `pos_id`'s receipts and
    /// read only those (docs/contract.md §1 "Who reads what").
    pub pos_tokens: std::collections::BTreeMap<String, SecretString>,
    /// A token that reads everything the window reads (receipts, slips, CSVs, events, DLQ) and
    /// changes nothing: for an accountant's or a back office's scripts.
    pub read_token: Option<SecretString>,
    /// Intake needs a POS token on loopback too (without it a program on this PC may post).
    pub require_pos_token: bool,
    /// A request head must arrive within this (also how long an idle connection is kept).
    #[serde(rename = "header_timeout_secs", with = "units::secs")]
    pub header_timeout: Duration,
    /// A request body must arrive within this after its head (else 408).
    #[serde(rename = "body_timeout_secs", with = "units::secs")]
    pub body_timeout: Duration,
    /// Open connections at most; at the cap a new one closes the oldest idle one.
    pub max_connections: usize,
    /// Connections one non-loopback address may hold (0: no cap).
    pub max_connections_per_peer: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let limits = Limits::default();
        HttpSettings {
            allowed_hosts: Vec::new(),
            pos_token: None,
            pos_tokens: Default::default(),
            read_token: None,
            require_pos_token: false,
            header_timeout: limits.header_timeout,
            body_timeout: limits.body_timeout,
            max_connections: limits.max_connections,
            max_connections_per_peer: limits.max_per_peer,
        }
    }
}

impl HttpSettings {
    /// Any POS token configured (shared or per till).
    pub fn has_pos_token(&self) -> bool {
        self.pos_token.is_some() || !self.pos_tokens.is_empty()
    }

    /// The accept loop's policy (api/serve.rs owns the type).
    pub fn limits(&self) -> Limits {
        Limits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections,
            max_per_peer: self.max_connections_per_peer,
        }
    }
}

/// `[desktop]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopSettings {
    /// Start the desktop app on login (hidden, in the tray): `true` on, `false` off, unset: left
    /// as the installer or the user set it.
    pub autostart: Option<bool>,
}
