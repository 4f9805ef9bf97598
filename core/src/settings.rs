//! Settings: command-line flags > environment > TOML config file > defaults (docs/contract.md §4).
//!
//! One struct per section of the config file, the same struct in the resolved [`Settings`]:
//! serde reads the file onto the defaults (`#[serde(default)]`), so no value is copied by hand,
//! and unknown keys are an error (a typo is not silently ignored). Durations are written in the
//! file's units (`*_secs`, `*_ms`, `*_days`) and held as [`Duration`]s. Tokens are
//! [`SecretString`]s: their `Debug` prints a mask, so a logged `Settings` leaks nothing.

use anyhow::{Context, bail};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Command-line flags; each also reads its environment variable (flags win).
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "kkt-adapterd",
    version,
    about = "KKT Adapter: durable fiscal receipt buffer with a local HTTP API and OFD sync (headless)",
    long_about = "KKT Adapter: POS software posts receipts to the local HTTP API; each is stored durably \
in an SQLite buffer, printed on the fiscal register (mock driver) and answered at once, then delivered \
to the OFD in the background.\n\nPrecedence of settings: flags > environment > config file (TOML) > defaults. \
Every other policy value (capacity, retry, breaker, KKT numbers) lives in the config file; see the README."
)]
pub struct Flags {
    /// Config file (TOML). Default: config.toml in the user's config directory.
    #[arg(long, env = "KKT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: buffer.db, logs and printed receipt slips. Must exist when given. Default: the
    /// user's data directory (created at first start).
    #[arg(long, env = "KKT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the local HTTP API. Default: 127.0.0.1:8000 (port 0 picks a free port).
    #[arg(long, env = "KKT_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// OFD base URL (POST {url}/ofd/v1/receipt). Default: none, a built-in OFD simulator (DEMO mode).
    #[arg(long, env = "KKT_OFD_URL", value_name = "URL")]
    pub ofd_url: Option<String>,
    /// Admin bearer token for manual sync and DLQ changes. Default: generated at first start and
    /// stored with mode 0600 in the config directory.
    #[arg(long, env = "KKT_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Bearer token POS software must send with receipts (`Authorization: Bearer …`). Required when
    /// --listen is not a loopback address (LAN mode, several tills); optional otherwise.
    #[arg(long, env = "KKT_POS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub pos_token: Option<String>,
}

/// The config file's shape: top-level keys, then one section per table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    ofd_url: Option<String>,
    admin_token: Option<SecretString>,
    buffer: BufferSettings,
    kkt: KktSettings,
    fiscal: FiscalSettings,
    ofd: OfdSettings,
    sync: SyncPolicy,
    breaker: BreakerPolicy,
    alerts: AlertSettings,
    http: HttpSettings,
    desktop: DesktopSettings,
}

/// Everything the program needs, resolved once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// Given by flag, environment or config file. Such a directory must exist: a missing one
    /// (an unmounted drive, a typo) would otherwise get a new, empty buffer. The default
    /// per-user directory is created at first start.
    pub data_dir_explicit: bool,
    pub config_dir: PathBuf,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    pub listen: SocketAddr,
    /// `None`: the built-in OFD simulator (demo mode).
    pub ofd_url: Option<String>,
    /// `None`: load or generate `admin_token` in the config directory.
    pub admin_token: Option<SecretString>,
    pub buffer: BufferSettings,
    pub kkt: KktSettings,
    pub fiscal: FiscalSettings,
    pub ofd: OfdSettings,
    pub sync: SyncPolicy,
    pub breaker: BreakerPolicy,
    pub alerts: AlertSettings,
    pub http: HttpSettings,
    pub desktop: DesktopSettings,
}

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
    /// Readable text slips under `<data>/receipts/<date>/`.
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

/// `[sync]`: the sync worker's policy (docs/contract.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncPolicy {
    #[serde(rename = "interval_secs", with = "units::secs")]
    pub interval: Duration,
    pub batch_size: usize,
    /// Sends in flight at once (1 = strict one-by-one fiscal order).
    pub concurrency: usize,
    pub max_attempts: u32,
    #[serde(rename = "backoff_base_secs", with = "units::secs")]
    pub backoff_base: Duration,
    #[serde(rename = "backoff_max_secs", with = "units::secs")]
    pub backoff_max: Duration,
    /// How long a claimed (`syncing`) receipt is reserved before it may be claimed again.
    #[serde(rename = "lease_secs", with = "units::secs")]
    pub lease: Duration,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            interval: Duration::from_secs(5),
            batch_size: 50,
            concurrency: 8,
            max_attempts: 20,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            lease: Duration::from_secs(60),
        }
    }
}

/// `[breaker]`: the circuit breaker's policy (docs/contract.md §3, §1a).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    pub failure_threshold: u32,
    /// The shortest open period (the first, after the breaker trips); after a failed probe the
    /// next comes after half the outage so far.
    #[serde(rename = "open_initial_secs", with = "units::secs")]
    pub open_initial: Duration,
    /// The longest open period: the seed's 60 s, the upper bound of the adaptive one.
    #[serde(rename = "open_secs", with = "units::secs")]
    pub open_max: Duration,
    pub half_open_successes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            open_initial: Duration::from_secs(1),
            open_max: Duration::from_secs(60),
            half_open_successes: 2,
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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Host names accepted besides loopback names (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Required bearer token for receipt intake and lookup (LAN mode).
    pub pos_token: Option<SecretString>,
}

/// `[desktop]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopSettings {
    /// Start the desktop app on login (hidden, in the tray): `true` on, `false` off, unset: left
    /// as the installer or the user set it.
    pub autostart: Option<bool>,
}

const DAY: u64 = 24 * 3600;

/// The file's units, read into [`Duration`]s (and MiB into bytes), with their ranges checked.
mod units {
    use serde::{Deserialize, Deserializer, de::Error};
    use std::time::Duration;

    pub(super) fn scaled<'de, D: Deserializer<'de>>(d: D, unit_secs: f64, unit: &str) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..1e9).contains(&v) {
            return Err(D::Error::custom(format!("{v} is not a valid number of {unit}")));
        }
        Ok(Duration::from_secs_f64(v * unit_secs))
    }

    pub mod secs {
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
            super::scaled(d, 1.0, "seconds")
        }
    }
    pub mod ms {
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
            super::scaled(d, 0.001, "milliseconds")
        }
    }
    pub mod hours {
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
            super::scaled(d, 3600.0, "hours")
        }
    }
    pub mod days {
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
            super::scaled(d, super::super::DAY as f64, "days")
        }
    }
    pub mod mib {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
            let mb = u64::deserialize(d)?;
            if mb > 1 << 20 {
                return Err(D::Error::custom(format!("{mb} MiB is over 1 TiB; use 0 for no cap")));
            }
            Ok(mb << 20)
        }
    }
}

fn project_dirs() -> anyhow::Result<directories::ProjectDirs> {
    directories::ProjectDirs::from("ru", "KKT Adapter", "kkt-adapter")
        .context("cannot find the user's home directory; set --data-dir and --config explicitly")
}

/// A token from a flag or the file: blank is none.
fn secret(token: Option<String>) -> Option<SecretString> {
    token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .map(SecretString::from)
}

fn given(token: Option<SecretString>) -> Option<SecretString> {
    token.filter(|t| !t.expose_secret().trim().is_empty())
}

impl Settings {
    /// Resolves settings from flags (which already include the environment), the config file and defaults.
    pub fn resolve(flags: Flags) -> anyhow::Result<Settings> {
        let dirs = project_dirs();
        let (config_path, explicit) = match &flags.config {
            Some(p) => (Some(p.clone()), true),
            None => (dirs.as_ref().ok().map(|d| d.config_dir().join("config.toml")), false),
        };
        let (file, config_file) = match &config_path {
            Some(p) if p.exists() => (read_file(p)?, Some(p.clone())),
            Some(p) if explicit => bail!("config file {} does not exist", p.display()),
            _ => (File::default(), None),
        };
        let config_dir = match (&config_file, &dirs) {
            (Some(p), _) if explicit => p.parent().map(Path::to_path_buf).unwrap_or_default(),
            (_, Ok(d)) => d.config_dir().to_path_buf(),
            (_, Err(_)) => flags
                .data_dir
                .clone()
                .or(file.data_dir.clone())
                .context("cannot find a config directory; pass --data-dir")?,
        };
        let (data_dir, data_dir_explicit) = match flags.data_dir.or(file.data_dir) {
            Some(d) => (d, true),
            None => (dirs?.data_dir().to_path_buf(), false),
        };
        let ofd_url = flags
            .ofd_url
            .or(file.ofd_url)
            .map(|u| u.trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        if let Some(u) = &ofd_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("OFD URL {u:?} must start with http:// or https://");
        }
        let mut http = file.http;
        http.pos_token = secret(flags.pos_token).or(given(http.pos_token));
        let out = Settings {
            data_dir,
            data_dir_explicit,
            config_dir,
            config_file,
            listen: flags
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000))),
            ofd_url,
            admin_token: secret(flags.admin_token).or(given(file.admin_token)),
            buffer: file.buffer,
            kkt: file.kkt,
            fiscal: file.fiscal,
            ofd: OfdSettings {
                token: given(file.ofd.token.clone()),
                ..file.ofd
            },
            sync: file.sync,
            breaker: file.breaker,
            alerts: file.alerts,
            http,
            desktop: file.desktop,
        };
        out.checked()
    }

    /// Values out of range are refused with the key's name; the rest are brought into range.
    fn checked(mut self) -> anyhow::Result<Settings> {
        if self.buffer.retention < Duration::from_secs(DAY) {
            // A receipt's idempotency key goes with it: a till retrying after the purge would
            // get a second fiscal receipt.
            bail!(
                "config: buffer.retention_days must be at least 1 (idempotency keys are kept as long as their receipts)"
            );
        }
        self.buffer.capacity = self.buffer.capacity.max(1);
        self.buffer.purge_interval = self.buffer.purge_interval.max(Duration::from_millis(100));
        self.kkt.shift_length = self
            .kkt
            .shift_length
            .clamp(Duration::from_secs(3600), Duration::from_secs(DAY));
        self.kkt.answer_within = self.kkt.answer_within.max(Duration::from_millis(1));
        self.kkt.device_retry = self.kkt.device_retry.max(Duration::from_millis(10));
        if self.kkt.driver == KktDriver::Atol
            && !(self.kkt.atol.url.starts_with("http://") || self.kkt.atol.url.starts_with("https://"))
        {
            bail!(
                "config: kkt.atol.url {:?} must start with http:// or https://",
                self.kkt.atol.url
            );
        }
        self.kkt.atol.poll_every = self.kkt.atol.poll_every.max(Duration::from_millis(10));
        if self.kkt.driver == KktDriver::Atol {
            self.check_atol_credentials()?;
        }
        if let Err(e) = crate::time::Zone::parse(&self.fiscal.timezone) {
            bail!("config: fiscal.timezone: {e}");
        }
        if let Some(inn) = &self.fiscal.cashier_inn
            && !(inn.len() == 12 && inn.bytes().all(|b| b.is_ascii_digit()))
        {
            bail!("config: fiscal.cashier_inn must be 12 digits");
        }
        if self
            .fiscal
            .cashier_name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 64)
        {
            bail!("config: fiscal.cashier_name must be 1–64 characters");
        }
        let s = &mut self.sync;
        s.interval = s.interval.max(Duration::from_millis(10));
        s.batch_size = s.batch_size.max(1);
        s.concurrency = s.concurrency.max(1);
        s.max_attempts = s.max_attempts.max(1);
        let b = &mut self.breaker;
        b.failure_threshold = b.failure_threshold.max(1);
        b.half_open_successes = b.half_open_successes.max(1);
        self.check_lan_mode()?;
        Ok(self)
    }

    /// User and password come together, and never travel in clear text beyond this machine.
    fn check_atol_credentials(&self) -> anyhow::Result<()> {
        let a = &self.kkt.atol;
        match (&a.user, &a.password) {
            (Some(_), None) | (None, Some(_)) => {
                bail!("config: kkt.atol.user and kkt.atol.password go together (HTTP Basic authentication)")
            }
            (Some(u), Some(_)) if u.is_empty() || u.contains(':') => {
                bail!("config: kkt.atol.user must be non-empty and must not contain ':'")
            }
            (Some(_), Some(_)) if a.url.starts_with("http://") && !loopback_url(&a.url) => bail!(
                "config: kkt.atol.url {:?} is plain http:// to another machine: the password would cross the network \
                 in clear text. Use https:// (with kkt.atol.ca_file for the server's own certificate) or a web server \
                 on this machine",
                a.url
            ),
            _ => {}
        }
        if a.ca_file.is_some() && !a.url.starts_with("https://") {
            bail!("config: kkt.atol.ca_file is only used with an https:// kkt.atol.url");
        }
        Ok(())
    }

    /// Refuses a non-loopback address without a POS token: anyone on the network could post receipts.
    pub fn check_lan_mode(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && self.http.pos_token.is_none() {
            bail!(
                "--listen {} is not a loopback address: other machines could post receipts. LAN mode needs a POS \
                 token (--pos-token, KKT_POS_TOKEN or [http] pos_token in the config file) that every till sends \
                 as `Authorization: Bearer <token>`",
                self.listen
            );
        }
        Ok(())
    }

    /// Settings for tests and embedding: defaults, a given data directory, port 0; reads no file.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Settings {
        let mut s = Settings::defaults(data_dir.into());
        s.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        s
    }

    /// The built-in defaults of every value (docs/contract.md §3, §4).
    pub fn defaults(data_dir: PathBuf) -> Settings {
        Settings {
            config_dir: data_dir.join("config"),
            data_dir,
            data_dir_explicit: false,
            config_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            ofd_url: None,
            admin_token: None,
            buffer: BufferSettings::default(),
            kkt: KktSettings::default(),
            fiscal: FiscalSettings::default(),
            ofd: OfdSettings::default(),
            sync: SyncPolicy::default(),
            breaker: BreakerPolicy::default(),
            alerts: AlertSettings::default(),
            http: HttpSettings::default(),
            desktop: DesktopSettings::default(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("buffer.db")
    }
}

impl Settings {
    /// Checks the data directory before anything (logs, lock, database) is written into it.
    pub fn check_data_dir(&self) -> anyhow::Result<()> {
        if self.data_dir_explicit {
            crate::datadir::require_existing(&self.data_dir)?;
        }
        Ok(())
    }
}

/// Whether an `http(s)://host[:port]/…` URL names this machine.
pub fn loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn read_file(path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_config_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "listen = \"127.0.0.1:9001\"\nofd_url = \"http://127.0.0.1:7000/\"\n[buffer]\ncapacity = 7\n[sync]\nconcurrency = 1\n",
        )
        .unwrap();
        let s = Settings::resolve(Flags {
            config: Some(cfg.clone()),
            data_dir: Some(dir.path().into()),
            listen: Some("127.0.0.1:9002".parse().unwrap()),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(s.listen.port(), 9002);
        assert_eq!(s.ofd_url.as_deref(), Some("http://127.0.0.1:7000"));
        assert_eq!(s.buffer.capacity, 7);
        assert_eq!(s.sync.concurrency, 1);
        assert_eq!(s.sync.max_attempts, 20);
        assert_eq!(s.config_file, Some(cfg));
    }

    #[test]
    fn a_typo_in_the_config_file_is_an_error_that_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "[buffer]\ncapacty = 7\n").unwrap();
        let err = Settings::resolve(Flags {
            config: Some(cfg),
            ..Flags::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("c.toml"), "{err:#}");
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error() {
        let err = Settings::resolve(Flags {
            config: Some("/nonexistent/k.toml".into()),
            ..Flags::default()
        });
        assert!(err.is_err());
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::for_data_dir("/tmp/x");
        assert_eq!(s.buffer.capacity, 100_000);
        assert_eq!(s.sync, SyncPolicy::default());
        assert_eq!(s.sync.batch_size, 50);
        assert_eq!(s.breaker.failure_threshold, 5);
        assert_eq!(s.alerts.fn_warn_age, Duration::from_secs(3 * DAY));
        assert!(s.ofd_url.is_none());
        assert_eq!(s.buffer.retention, Duration::from_secs(30 * DAY));
        assert!(s.http.pos_token.is_none());
    }

    /// Every ```toml block of the README, the contract and the package's config file.
    fn documented_configs() -> Vec<(&'static str, String)> {
        let docs = [
            ("README.md", include_str!("../../README.md")),
            ("docs/contract.md", include_str!("../../docs/contract.md")),
        ];
        let mut blocks = vec![(
            "deploy/debian/config.toml",
            include_str!("../../deploy/debian/config.toml").to_string(),
        )];
        for (name, text) in docs {
            let mut rest = text;
            while let Some(start) = rest.find("```toml\n") {
                let body = &rest[start + 8..];
                let end = body.find("```").unwrap_or(body.len());
                blocks.push((name, body[..end].to_string()));
                rest = &body[end..];
            }
        }
        blocks
    }

    #[test]
    fn every_config_example_in_the_docs_is_one_the_program_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        let blocks = documented_configs();
        assert!(blocks.len() >= 4, "the examples were not found: {}", blocks.len());
        for (name, text) in blocks {
            std::fs::write(&cfg, &text).unwrap();
            let resolved = Settings::resolve(Flags {
                config: Some(cfg.clone()),
                data_dir: Some(dir.path().into()),
                ..Flags::default()
            });
            assert!(
                resolved.is_ok(),
                "{name}: {:#}\n{text}",
                resolved.err().map(|e| format!("{e:#}")).unwrap_or_default()
            );
        }
    }

    #[test]
    fn atol_credentials_go_together_and_never_in_clear_text_to_another_machine() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        for (url, user, password, ok) in [
            ("http://127.0.0.1:16732", Some("kassa"), Some("p"), true),
            ("http://localhost:16732", Some("kassa"), Some("p"), true),
            ("https://192.168.1.5:16732", Some("kassa"), Some("p"), true),
            ("http://192.168.1.5:16732", Some("kassa"), Some("p"), false),
            ("http://192.168.1.5:16732", None, None, true),
            ("http://127.0.0.1:16732", Some("kassa"), None, false),
            ("http://127.0.0.1:16732", None, Some("p"), false),
        ] {
            let mut text = format!("[kkt]\ndriver = \"atol\"\n[kkt.atol]\nurl = \"{url}\"\n");
            if let Some(u) = user {
                text.push_str(&format!("user = \"{u}\"\n"));
            }
            if let Some(p) = password {
                text.push_str(&format!("password = \"{p}\"\n"));
            }
            std::fs::write(&cfg, &text).unwrap();
            let r = Settings::resolve(Flags {
                config: Some(cfg.clone()),
                data_dir: Some(dir.path().into()),
                ..Flags::default()
            });
            assert_eq!(r.is_ok(), ok, "{text}: {:?}", r.err());
        }
        assert!(loopback_url("http://[::1]:16732/api") && !loopback_url("http://user@10.0.0.1"));
    }

    #[test]
    fn a_retention_under_a_day_and_an_absurd_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        for (text, needle) in [
            ("[buffer]\nretention_days = 0.01\n", "at least 1"),
            ("[buffer]\nmax_db_mb = 9999999999\n", "1 TiB"),
        ] {
            std::fs::write(&cfg, text).unwrap();
            let err = Settings::resolve(Flags {
                config: Some(cfg.clone()),
                data_dir: Some(dir.path().into()),
                ..Flags::default()
            })
            .unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{err:#}");
        }
    }

    #[test]
    fn a_non_loopback_address_needs_a_pos_token() {
        let dir = tempfile::tempdir().unwrap();
        let flags = |token: Option<&str>| Flags {
            config: Some(dir.path().join("c.toml")),
            data_dir: Some(dir.path().into()),
            listen: Some("0.0.0.0:8000".parse().unwrap()),
            pos_token: token.map(str::to_string),
            ..Flags::default()
        };
        std::fs::write(
            dir.path().join("c.toml"),
            "[buffer]\nretention_days = 1.5\nmax_db_mb = 3\n",
        )
        .unwrap();
        let err = Settings::resolve(flags(None)).unwrap_err();
        assert!(format!("{err:#}").contains("POS token"), "{err:#}");
        assert!(
            Settings::resolve(flags(Some("  "))).is_err(),
            "a blank token is no token"
        );
        let s = Settings::resolve(flags(Some("till-secret"))).unwrap();
        assert_eq!(
            s.http.pos_token.as_ref().map(|t| t.expose_secret()),
            Some("till-secret")
        );
        assert_eq!(s.buffer.retention, Duration::from_secs(DAY * 3 / 2));
        assert_eq!(s.buffer.max_db_bytes, 3 << 20);
    }

    #[test]
    fn every_section_of_the_file_is_read_onto_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "[kkt]\nprint_latency_ms = 250\nshift_hours = 12\nanswer_within_ms = 1500\n\
             [ofd]\ntimeout_secs = 2.5\n[breaker]\nopen_initial_secs = 1\nopen_secs = 30\n\
             [alerts]\nfn_warn_days = 2\n[desktop]\nautostart = true\n",
        )
        .unwrap();
        let s = Settings::resolve(Flags {
            config: Some(cfg),
            data_dir: Some(dir.path().into()),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(s.kkt.print_latency, Duration::from_millis(250));
        assert_eq!(s.kkt.shift_length, Duration::from_secs(12 * 3600));
        assert_eq!(s.kkt.answer_within, Duration::from_millis(1500));
        assert_eq!(
            s.kkt.fn_number, "9999999999999999",
            "untouched keys keep their defaults"
        );
        assert_eq!(s.ofd.timeout, Duration::from_millis(2500));
        assert_eq!(s.ofd.connect_timeout, Duration::from_secs(5));
        assert_eq!(
            (s.breaker.open_initial, s.breaker.open_max),
            (Duration::from_secs(1), Duration::from_secs(30))
        );
        assert_eq!(s.alerts.fn_warn_age, Duration::from_secs(2 * DAY));
        assert_eq!(s.desktop.autostart, Some(true));
    }

    #[test]
    fn the_fiscal_section_gives_defaults_and_its_values_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        let resolve = |text: &str| {
            std::fs::write(&cfg, text).unwrap();
            Settings::resolve(Flags {
                config: Some(cfg.clone()),
                data_dir: Some(dir.path().into()),
                ..Flags::default()
            })
        };
        let s = resolve(
            "[fiscal]\ntaxation = \"usn_income\"\ndefault_vat = \"vat22\"\ncashier_name = \"Петров\"\ntimezone = \"Europe/Moscow\"\n[kkt]\nauto_shift = false\n",
        )
        .unwrap();
        let d = s.fiscal.defaults();
        assert_eq!(
            (d.taxation, d.vat),
            (crate::receipt::Taxation::UsnIncome, crate::receipt::Vat::Vat22)
        );
        assert_eq!(d.cashier.unwrap().name, "Петров");
        assert!(!s.kkt.auto_shift);
        for (text, needle) in [
            ("[fiscal]\ntimezone = \"Moon/Base\"\n", "not a time zone"),
            ("[fiscal]\ndefault_vat = \"vat18\"\n", "vat18"),
            ("[fiscal]\ncashier_inn = \"12\"\n", "12 digits"),
        ] {
            let err = resolve(text).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{err:#}");
        }
    }

    #[test]
    fn a_negative_duration_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "[sync]\nbackoff_base_secs = -1\n").unwrap();
        let err = Settings::resolve(Flags {
            config: Some(cfg),
            data_dir: Some(dir.path().into()),
            ..Flags::default()
        })
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("backoff_base_secs") && text.contains("not a valid number of seconds"),
            "{text}"
        );
    }

    #[test]
    fn tokens_never_show_in_a_debug_print_of_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "admin_token = \"adm-secret-1\"\n[ofd]\ntoken = \"ofd-secret-2\"\n",
        )
        .unwrap();
        let s = Settings::resolve(Flags {
            config: Some(cfg),
            data_dir: Some(dir.path().into()),
            pos_token: Some("pos-secret-3".into()),
            ..Flags::default()
        })
        .unwrap();
        let printed = format!("{s:?}");
        for secret in ["adm-secret-1", "ofd-secret-2", "pos-secret-3"] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert_eq!(s.admin_token.as_ref().map(|t| t.expose_secret()), Some("adm-secret-1"));
        assert_eq!(s.ofd.token.as_ref().map(|t| t.expose_secret()), Some("ofd-secret-2"));
    }
}
