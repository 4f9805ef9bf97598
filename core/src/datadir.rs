//! The data and config directories' own files: the instance lock (one program per data
//! directory), the admin token file (made at first start, readable by the user only), and the
//! protection of everything in them (SECURITY.md "Files"): on Unix a 077 umask, directories
//! 0700 and files 0600, existing ones tightened at start; on Windows a protected DACL (the user
//! and SYSTEM only) on the directories, inherited by their files (`protect_windows.rs`).

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

/// Makes every file and directory this process creates private to its user (Unix: umask 077).
/// Called first thing by both programs, before the log files are opened.
pub fn private_umask() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Tightens `dir` and what it holds (two levels: `receipts/`, `logs/`) to the user alone: on
/// Unix directories 0700 and files 0600 (files made by an older version were 0644); on Windows
/// a protected DACL for the user and SYSTEM on `dir`, which its files inherit. Errors are
/// logged, not fatal: a file we cannot tighten is still ours to use.
pub fn protect(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fn walk(path: &Path, depth: u8) {
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                return;
            };
            if meta.file_type().is_symlink() {
                return;
            }
            let want = if meta.is_dir() { 0o700 } else { 0o600 };
            if meta.permissions().mode() & 0o7777 != want
                && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot make this file private to the user");
            }
            if meta.is_dir()
                && depth > 0
                && let Ok(entries) = std::fs::read_dir(path)
            {
                for entry in entries.flatten() {
                    walk(&entry.path(), depth - 1);
                }
            }
        }
        walk(dir, 2);
    }
    #[cfg(windows)]
    if let Err(e) = crate::protect_windows::protect_dir(dir) {
        tracing::warn!(path = %dir.display(), error = %e, "cannot set the user-only access list");
    }
}

/// Creates the data directory (the default one only) and takes its lock, so two instances never
/// write one database. The lock is held as long as the returned file is open.
pub fn lock(dir: &Path, explicit: bool) -> anyhow::Result<File> {
    if explicit {
        require_existing(dir)?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    protect(dir);
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
    stored_token(settings, "admin_token", "the admin token")
}

/// The shared POS token: given in settings; or, when `[http] require_pos_token` asks for one and
/// none is given, read from (or generated into) `pos_token` in the config directory, 0600, so
/// the window can show it for the tills' set-up.
pub fn pos_token(settings: &Settings) -> anyhow::Result<Option<secrecy::SecretString>> {
    let h = &settings.http;
    if h.pos_token.is_some() || !h.require_pos_token || !h.pos_tokens.is_empty() {
        return Ok(h.pos_token.clone());
    }
    let token = stored_token(settings, "pos_token", "the POS token (http.require_pos_token)")?;
    Ok(Some(token.into()))
}

/// The token kept in `<config dir>/<file>`: read (its mode not trusted: tightened to the user
/// alone; its shape checked), or generated there at first start.
fn stored_token(settings: &Settings, file: &str, what: &str) -> anyhow::Result<String> {
    let path = settings.config_dir.join(file);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let t = text.trim().to_string();
        if !t.is_empty() {
            tighten_file(&path);
            crate::settings::token_shape(&t).map_err(|why| anyhow::anyhow!("{what} in {} {why}", path.display()))?;
            return Ok(t);
        }
    }
    let token = write_new_token(settings, &path)?;
    tracing::info!(path = %path.display(), "generated {what}");
    Ok(token)
}

/// A new random token (64 hex digits) written to `path`, readable by the user only.
fn write_new_token(settings: &Settings, path: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(&settings.config_dir)
        .with_context(|| format!("cannot create the config directory {}", settings.config_dir.display()))?;
    #[cfg(windows)]
    protect(&settings.config_dir);
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// An existing token file readable by others is made owner-only (Unix); a file another user
/// owns (the `.deb`'s root-owned `/etc/kkt-adapter/admin_token`, 0640 to the service's group)
/// is left as its installer made it (a shared config directory gets only this file tightened).
fn tighten_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let Ok(meta) = std::fs::metadata(path) else { return };
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() == me && meta.mode() & 0o077 != 0 {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), "the token file was readable by others: now 0600")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot make the token file private")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
