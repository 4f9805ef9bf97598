//! Settings: command-line flags > environment > TOML config file > defaults (docs/contract.md §4).
//!
//! One struct per section of the config file, the same struct in the resolved [`Settings`]:
//! serde reads the file onto the defaults (`#[serde(default)]`), so no value is copied by hand,
//! and unknown keys are an error (a typo is not silently ignored). Durations are written in the
//! file's units (`*_secs`, `*_ms`, `*_days`) and held as [`Duration`]s. Tokens are
//! [`SecretString`]s: their `Debug` prints a mask, so a logged `Settings` leaks nothing.

mod checks;
mod flags;
mod sections;
#[cfg(test)]
mod tests;

pub use crate::breaker::BreakerPolicy;
pub use crate::worker::SyncPolicy;
pub use checks::{loopback_url, token_shape};
pub use flags::Flags;
pub use sections::{
    AlertSettings, AtolSettings, BufferSettings, DesktopSettings, FiscalSettings, HttpSettings, KktDriver, KktSettings,
    OfdSettings,
};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    marking: crate::marking::MarkingSettings,
    compat: crate::compat::CompatSettings,
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
    pub marking: crate::marking::MarkingSettings,
    pub compat: crate::compat::CompatSettings,
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
            marking: file.marking,
            compat: file.compat,
        };
        out.checked()
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
            marking: Default::default(),
            compat: Default::default(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("buffer.db")
    }
}

fn read_file(path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}
