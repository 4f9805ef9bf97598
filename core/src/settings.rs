//! Settings: command-line flags > environment > TOML config file > defaults (docs/contract.md §4).

use anyhow::{Context, bail};
use clap::Parser;
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

/// The config file's shape. Unknown keys are an error, so a typo is not silently ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    ofd_url: Option<String>,
    admin_token: Option<String>,
    buffer: BufferFile,
    kkt: KktFile,
    ofd: OfdFile,
    sync: SyncFile,
    breaker: BreakerFile,
    alerts: AlertsFile,
    http: HttpFile,
    desktop: DesktopFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DesktopFile {
    autostart: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BufferFile {
    capacity: Option<u64>,
    retention_days: Option<f64>,
    purge_interval_secs: Option<f64>,
    max_db_mb: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct KktFile {
    fn_number: Option<String>,
    kkt_number: Option<String>,
    print_latency_ms: Option<u64>,
    shift_hours: Option<u64>,
    write_slips: Option<bool>,
    answer_within_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OfdFile {
    token: Option<String>,
    connect_timeout_secs: Option<f64>,
    timeout_secs: Option<f64>,
    simulator_latency_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SyncFile {
    interval_secs: Option<f64>,
    batch_size: Option<usize>,
    concurrency: Option<usize>,
    max_attempts: Option<u32>,
    backoff_base_secs: Option<f64>,
    backoff_max_secs: Option<f64>,
    lease_secs: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BreakerFile {
    failure_threshold: Option<u32>,
    open_secs: Option<f64>,
    open_initial_secs: Option<f64>,
    half_open_successes: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AlertsFile {
    fn_warn_days: Option<f64>,
    fn_critical_days: Option<f64>,
    dlq_threshold: Option<u64>,
    min_interval_secs: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpFile {
    allowed_hosts: Option<Vec<String>>,
    pos_token: Option<String>,
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
    pub admin_token: Option<String>,
    /// Maximum unsynced receipts (pending, syncing, failed) before intake answers 503 `buffer_full`.
    pub capacity: u64,
    /// Synced receipts, their events and old events of no receipt are deleted after this long
    /// (DLQ entries and unsynced receipts are kept until resolved).
    pub retention: Duration,
    /// How often the retention purge runs.
    pub purge_interval: Duration,
    /// Upper bound of the database file (0: none, only the disk's size).
    pub max_db_bytes: u64,
    /// Required bearer token for receipt intake and lookup (LAN mode).
    pub pos_token: Option<String>,
    pub fn_number: String,
    pub kkt_number: String,
    pub print_latency: Duration,
    pub shift_length: Duration,
    pub write_slips: bool,
    /// The longest a till waits for the register before it gets `202 awaiting_device`.
    pub answer_within: Duration,
    pub ofd_token: Option<String>,
    pub ofd_connect_timeout: Duration,
    pub ofd_timeout: Duration,
    pub simulator_latency: Duration,
    pub sync: SyncPolicy,
    pub breaker: BreakerPolicy,
    pub fn_warn_age: Duration,
    pub fn_critical_age: Duration,
    /// Host names accepted besides loopback names (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// An alert is raised when the DLQ grows past this size.
    pub alert_dlq_threshold: u64,
    /// The same kind of alert is not repeated within this interval.
    pub alert_min_interval: Duration,
    /// Desktop shell: start on login.
    pub autostart: bool,
}

/// The sync worker's policy (docs/contract.md §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncPolicy {
    pub interval: Duration,
    pub batch_size: usize,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a claimed (`syncing`) receipt is reserved before it may be claimed again.
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

/// The circuit breaker's policy (docs/contract.md §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    pub failure_threshold: u32,
    /// The first open period after the breaker trips (`[breaker] open_initial_secs`).
    pub open_initial: Duration,
    /// The longest open period: failed probes double the period up to this (`[breaker] open_secs`).
    pub open_max: Duration,
    pub half_open_successes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            open_initial: Duration::from_secs(5),
            open_max: Duration::from_secs(60),
            half_open_successes: 2,
        }
    }
}

const DAY: u64 = 24 * 3600;

fn secs(v: Option<f64>, default: Duration, name: &str) -> anyhow::Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) if (0.0..1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Some(s) => bail!("config: {name} = {s} is not a valid number of seconds"),
    }
}

fn project_dirs() -> anyhow::Result<directories::ProjectDirs> {
    directories::ProjectDirs::from("ru", "KKT Adapter", "kkt-adapter")
        .context("cannot find the user's home directory; set --data-dir and --config explicitly")
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
        let (data_dir, data_dir_explicit) = match flags.data_dir.or(file.data_dir.clone()) {
            Some(d) => (d, true),
            None => (dirs?.data_dir().to_path_buf(), false),
        };
        let listen = flags
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
        let ofd_url = flags
            .ofd_url
            .or(file.ofd_url.clone())
            .map(|u| u.trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        if let Some(u) = &ofd_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("OFD URL {u:?} must start with http:// or https://");
        }
        let mut out = Settings::defaults(data_dir);
        out.data_dir_explicit = data_dir_explicit;
        out.config_dir = config_dir;
        out.config_file = config_file;
        out.listen = listen;
        out.ofd_url = ofd_url;
        out.admin_token = flags.admin_token.or(file.admin_token.clone()).filter(|t| !t.is_empty());
        if let Some(c) = file.buffer.capacity {
            out.capacity = c.max(1);
        }
        out.retention = secs(
            file.buffer.retention_days.map(|d| d * DAY as f64),
            out.retention,
            "buffer.retention_days",
        )?;
        if out.retention < Duration::from_secs(DAY) {
            // A receipt's idempotency key goes with it: a till retrying after the purge would
            // get a second fiscal receipt.
            bail!(
                "config: buffer.retention_days must be at least 1 (idempotency keys are kept as long as their receipts)"
            );
        }
        out.purge_interval = secs(
            file.buffer.purge_interval_secs,
            out.purge_interval,
            "buffer.purge_interval_secs",
        )?
        .max(Duration::from_millis(100));
        if let Some(mb) = file.buffer.max_db_mb {
            if mb > 1 << 20 {
                bail!("config: buffer.max_db_mb = {mb} is over 1 TiB; use 0 for no cap");
            }
            out.max_db_bytes = mb << 20;
        }
        out.pos_token = flags
            .pos_token
            .or(file.http.pos_token.clone())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        out.check_lan_mode()?;
        let k = &file.kkt;
        if let Some(v) = &k.fn_number {
            out.fn_number = v.clone();
        }
        if let Some(v) = &k.kkt_number {
            out.kkt_number = v.clone();
        }
        if let Some(v) = k.print_latency_ms {
            out.print_latency = Duration::from_millis(v);
        }
        if let Some(v) = k.shift_hours {
            out.shift_length = Duration::from_secs(v.clamp(1, 24) * 3600);
        }
        if let Some(v) = k.write_slips {
            out.write_slips = v;
        }
        if let Some(v) = k.answer_within_ms {
            out.answer_within = Duration::from_millis(v.max(1));
        }
        let o = &file.ofd;
        out.ofd_token = o.token.clone().filter(|t| !t.is_empty());
        out.ofd_connect_timeout = secs(
            o.connect_timeout_secs,
            out.ofd_connect_timeout,
            "ofd.connect_timeout_secs",
        )?;
        out.ofd_timeout = secs(o.timeout_secs, out.ofd_timeout, "ofd.timeout_secs")?;
        if let Some(v) = o.simulator_latency_ms {
            out.simulator_latency = Duration::from_millis(v);
        }
        let (s, d) = (&file.sync, out.sync);
        out.sync = SyncPolicy {
            interval: secs(s.interval_secs, d.interval, "sync.interval_secs")?.max(Duration::from_millis(10)),
            batch_size: s.batch_size.unwrap_or(d.batch_size).max(1),
            concurrency: s.concurrency.unwrap_or(d.concurrency).max(1),
            max_attempts: s.max_attempts.unwrap_or(d.max_attempts).max(1),
            backoff_base: secs(s.backoff_base_secs, d.backoff_base, "sync.backoff_base_secs")?,
            backoff_max: secs(s.backoff_max_secs, d.backoff_max, "sync.backoff_max_secs")?,
            lease: secs(s.lease_secs, d.lease, "sync.lease_secs")?,
        };
        let (b, d) = (&file.breaker, out.breaker);
        out.breaker = BreakerPolicy {
            failure_threshold: b.failure_threshold.unwrap_or(d.failure_threshold).max(1),
            open_initial: secs(b.open_initial_secs, d.open_initial, "breaker.open_initial_secs")?,
            open_max: secs(b.open_secs, d.open_max, "breaker.open_secs")?,
            half_open_successes: b.half_open_successes.unwrap_or(d.half_open_successes).max(1),
        };
        let days = |v: Option<f64>, default: Duration, name: &str| secs(v.map(|d| d * DAY as f64), default, name);
        out.fn_warn_age = days(file.alerts.fn_warn_days, out.fn_warn_age, "alerts.fn_warn_days")?;
        out.fn_critical_age = days(
            file.alerts.fn_critical_days,
            out.fn_critical_age,
            "alerts.fn_critical_days",
        )?;
        if let Some(t) = file.alerts.dlq_threshold {
            out.alert_dlq_threshold = t;
        }
        out.alert_min_interval = secs(
            file.alerts.min_interval_secs,
            out.alert_min_interval,
            "alerts.min_interval_secs",
        )?;
        if let Some(a) = file.desktop.autostart {
            out.autostart = a;
        }
        if let Some(h) = &file.http.allowed_hosts {
            out.allowed_hosts = h.clone();
        }
        Ok(out)
    }

    /// Refuses a non-loopback address without a POS token: anyone on the network could post receipts.
    pub fn check_lan_mode(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && self.pos_token.is_none() {
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
            capacity: 100_000,
            retention: Duration::from_secs(30 * DAY),
            purge_interval: Duration::from_secs(3600),
            max_db_bytes: 0,
            pos_token: None,
            fn_number: "9999999999999999".into(),
            kkt_number: "0000000000001234".into(),
            print_latency: Duration::ZERO,
            shift_length: Duration::from_secs(DAY),
            write_slips: true,
            answer_within: Duration::from_secs(10),
            ofd_token: None,
            ofd_connect_timeout: Duration::from_secs(5),
            ofd_timeout: Duration::from_secs(10),
            simulator_latency: Duration::from_millis(20),
            sync: SyncPolicy::default(),
            breaker: BreakerPolicy::default(),
            fn_warn_age: Duration::from_secs(3 * DAY),
            fn_critical_age: Duration::from_secs(25 * DAY),
            allowed_hosts: Vec::new(),
            alert_dlq_threshold: 50,
            alert_min_interval: Duration::from_secs(300),
            autostart: false,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("buffer.db")
    }
}

/// A data directory that was given must exist: it is not created, because a new, empty buffer in
/// the wrong place (an unmounted drive, a typo) would hide the receipts waiting in the real one.
pub fn require_existing(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!(
            "the data directory {} does not exist: create it (mkdir -p) or check that its drive is mounted. \
             It is not created here, because a new, empty buffer in the wrong place would hide the receipts \
             that are waiting in the real one",
            dir.display()
        );
    }
    Ok(())
}

impl Settings {
    /// Checks the data directory before anything (logs, lock, database) is written into it.
    pub fn check_data_dir(&self) -> anyhow::Result<()> {
        if self.data_dir_explicit {
            require_existing(&self.data_dir)?;
        }
        Ok(())
    }
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
        assert_eq!(s.capacity, 7);
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
        assert_eq!(s.capacity, 100_000);
        assert_eq!(s.sync, SyncPolicy::default());
        assert_eq!(s.sync.batch_size, 50);
        assert_eq!(s.breaker.failure_threshold, 5);
        assert_eq!(s.fn_warn_age, Duration::from_secs(3 * DAY));
        assert!(s.ofd_url.is_none());
        assert_eq!(s.retention, Duration::from_secs(30 * DAY));
        assert!(s.pos_token.is_none());
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
        assert_eq!(s.pos_token.as_deref(), Some("till-secret"));
        assert_eq!(s.retention, Duration::from_secs(DAY * 3 / 2));
        assert_eq!(s.max_db_bytes, 3 << 20);
    }
}
