//! The data and config directories' own files: the instance lock (one program per data
//! directory) and the admin token file (made at first start, readable by the user only).

use crate::settings::Settings;
use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use std::fs::File;
use std::path::Path;

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

/// Checks the settings' data directory before anything (logs, lock, database) is written into
/// it: one that was given must exist.
pub fn check(settings: &Settings) -> anyhow::Result<()> {
    if settings.data_dir_explicit {
        require_existing(&settings.data_dir)?;
    }
    Ok(())
}

/// Creates the data directory (the default one only) and takes its lock, so two instances never
/// write one database. The lock is held as long as the returned file is open.
pub fn lock(dir: &Path, explicit: bool) -> anyhow::Result<File> {
    if explicit {
        require_existing(dir)?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let path = dir.join("kkt-adapter.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another KKT Adapter instance is already running with the data directory {} (lock {} is held)",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// The admin token: given in settings, or read from (or generated into) `admin_token` in the
/// config directory, created with mode 0600.
pub fn admin_token(settings: &Settings) -> anyhow::Result<String> {
    if let Some(t) = &settings.admin_token {
        return Ok(t.expose_secret().to_string());
    }
    let path = settings.config_dir.join("admin_token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let t = text.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    std::fs::create_dir_all(&settings.config_dir)
        .with_context(|| format!("cannot create the config directory {}", settings.config_dir.display()))?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the admin token");
    Ok(token)
}
