//! The application: builds the core inside Tauri's runtime, the window, the tray and the
//! status loop, and shuts everything down in order on Quit, SIGTERM or SIGINT.

use crate::notifier::DesktopNotifier;
use crate::tray::{self, Tray};
use crate::window::{self, WindowProcess};
use anyhow::Context;
use kkt_core::{App, Settings};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime};

/// What the event handlers need.
struct Shell {
    core: Mutex<Option<App>>,
    url: String,
    token: String,
    worker: kkt_core::worker::WorkerHandle,
    /// The window's own process (window.rs), unless `--window-in-process`.
    window: Option<WindowProcess>,
}

/// The app's Tauri context (one place: the tray process and the window process both use it).
pub fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!("../tauri.conf.json")
}

/// How the shell starts.
pub struct Options {
    /// Start in the tray without opening the window (autostart).
    pub hidden: bool,
    /// The window inside this process (WebDriver), not a window process of its own.
    pub window_in_process: bool,
    /// Show the tray icon (off only where no tray can exist: tests on the mock runtime).
    pub tray: bool,
}

/// Opens the manager's window, or brings it forward if it is open.
fn show_window<R: Runtime>(app: &AppHandle<R>) {
    let Some(shell) = app.try_state::<Shell>() else { return };
    match &shell.window {
        Some(process) => process.show(&shell.url, &shell.token),
        None => {
            if !window::focus(app)
                && let Err(e) = window::build(app, &shell.url, &shell.token)
            {
                tracing::error!(error = %e, "cannot open the window");
            }
        }
    }
}

/// Closes the window process and stops the core (no receipt left half-sent, the database and
/// its lock released). Once: a second call finds nothing to stop.
async fn stop_core<R: Runtime>(app: &AppHandle<R>) {
    // The window process sees the end of its input and closes.
    if let Some(shell) = app.try_state::<Shell>()
        && let Some(w) = &shell.window
    {
        w.close();
    }
    let core = app
        .try_state::<Shell>()
        .and_then(|s| s.core.lock().ok().and_then(|mut c| c.take()));
    if let Some(core) = core {
        core.shutdown().await;
    }
}

/// Stops the core, then ends the program with exit code 0.
fn quit<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        stop_core(&app).await;
        kkt_core::signals::stopped();
        app.exit(0);
    });
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    match id {
        tray::OPEN => show_window(app),
        tray::SYNC => {
            if let Some(shell) = app.try_state::<Shell>() {
                let worker = shell.worker.clone();
                tauri::async_runtime::spawn(async move {
                    if let Some(r) = worker.sync_now().await {
                        tracing::info!(
                            synced = r.synced,
                            failed = r.failed,
                            skipped = r.skipped,
                            "sync from the tray"
                        );
                    }
                });
            }
        }
        tray::QUIT => quit(app),
        _ => {}
    }
}

/// The Run value as the installer writes it: the program's path in quotes, then `--hidden`.
#[cfg_attr(not(windows), allow(dead_code))] // used by run_key on Windows and by the tests
pub fn run_value(exe: &std::path::Path) -> String {
    format!("\"{}\" --hidden", exe.display())
}

/// Writes (or deletes) `HKCU\Software\Microsoft\Windows\CurrentVersion\Run` value `KKT Adapter`.
#[cfg(windows)]
fn run_key(enabled: bool) -> std::io::Result<()> {
    use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS};
    use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, REG_SZ, RegDeleteKeyValueW, RegSetKeyValueW};
    let wide = |s: &str| s.encode_utf16().chain(std::iter::once(0)).collect::<Vec<u16>>();
    let key = wide("Software\\Microsoft\\Windows\\CurrentVersion\\Run");
    let name = wide("KKT Adapter");
    // SAFETY: the key, name and data are NUL-terminated UTF-16 buffers that outlive the calls.
    let status = unsafe {
        if enabled {
            let data = wide(&run_value(&std::env::current_exe()?));
            RegSetKeyValueW(
                HKEY_CURRENT_USER,
                key.as_ptr(),
                name.as_ptr(),
                REG_SZ,
                data.as_ptr().cast(),
                (data.len() * 2) as u32,
            )
        } else {
            match RegDeleteKeyValueW(HKEY_CURRENT_USER, key.as_ptr(), name.as_ptr()) {
                ERROR_FILE_NOT_FOUND => ERROR_SUCCESS,
                other => other,
            }
        }
    };
    if status == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(status as i32))
    }
}

/// Makes start-on-login match `[desktop] autostart`: `true` turns it on, `false` off, unset
/// leaves it as it is (as the Windows installer's "start with Windows" box or the user left it).
/// Linux desktops: an XDG autostart entry. Windows: the user's `Run` registry key, value
/// `KKT Adapter` = [`run_value`] (quoted, as the installer writes it).
fn apply_autostart<R: Runtime>(app: &AppHandle<R>, wanted: Option<bool>) {
    let Some(enabled) = wanted else { return };
    #[cfg(target_os = "linux")]
    {
        let _ = app;
        let Some(dir) = std::env::var_os("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config")))
        else {
            return;
        };
        let file = dir.join("autostart").join("kkt-adapter.desktop");
        let result = if enabled {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "kkt-adapter".into());
            std::fs::create_dir_all(dir.join("autostart")).and_then(|_| {
                std::fs::write(
                    &file,
                    format!("[Desktop Entry]\nType=Application\nName=KKT Adapter\nExec={exe} --hidden\nX-GNOME-Autostart-enabled=true\n"),
                )
            })
        } else if file.exists() {
            std::fs::remove_file(&file)
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, file = %file.display(), "cannot update the autostart entry");
        }
    }
    #[cfg(windows)]
    {
        let _ = app;
        if let Err(e) = run_key(enabled) {
            tracing::warn!(error = %e, enabled, "cannot update the Windows autostart (Run) entry");
        }
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    if enabled {
        let _ = app;
        tracing::warn!("autostart on login is not implemented on this system");
    }
}

/// The desktop app on the real runtime: one instance per user, then [`run_app`], then its loop.
pub fn run(settings: Settings, options: Options) -> anyhow::Result<u8> {
    let builder = tauri::Builder::default().plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
        // A second launch: show this instance's window instead of fighting for the port and database.
        tracing::info!("second launch: showing the existing window");
        show_window(app);
    }));
    let app = run_app(builder, context(), settings, options)?;
    app.run(|_app, event| {
        if let RunEvent::ExitRequested { code: None, api, .. } = event {
            // The last window was closed: the tray keeps the app (and the counter) running.
            api.prevent_exit();
        }
    });
    Ok(0)
}

/// Builds the app on any runtime (tests drive it on `tauri::test::mock_builder()`): starts the
/// core, the tray and its status loop, the window unless `hidden`, and the signal handlers.
pub fn run_app<R: Runtime>(
    builder: Builder<R>,
    context: tauri::Context<R>,
    settings: Settings,
    options: Options,
) -> anyhow::Result<tauri::App<R>> {
    let Options {
        hidden,
        window_in_process,
        tray: with_tray,
    } = options;
    let autostart = settings.desktop.autostart;
    let settings = Mutex::new(Some(settings));
    // Before anything else starts: a SIGTERM during start-up must still mean an orderly stop.
    let signals = tauri::async_runtime::block_on(async { kkt_core::app::ShutdownSignals::install() })
        .context("cannot install the signal handlers")?;
    let signals = Mutex::new(Some(signals));
    builder
        .setup(move |app| {
            let signals = signals
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .context("signal handlers")?;
            let settings = settings.lock().ok().and_then(|mut s| s.take()).context("settings")?;
            let mut core = tauri::async_runtime::block_on(App::build(settings))?;
            core.spawn_alerts(Arc::new(DesktopNotifier::default()));
            let url = format!("http://{}/ui/", core.local_addr());
            let status = core.state().status.clone();
            let shell = Shell {
                url,
                token: core.admin_token().to_string(),
                worker: core.worker().clone(),
                core: Mutex::new(Some(core)),
                window: (!window_in_process).then(WindowProcess::default),
            };
            app.manage(shell);
            apply_autostart(app.handle(), autostart);
            if with_tray {
                let mut tray = Tray::create(app.handle(), on_menu)?;
                tray.update(&status.snapshot())?;
                let handle = app.handle().clone();
                // The tray follows the status snapshot; it runs on the main thread, as GTK wants.
                tauri::async_runtime::spawn(async move {
                    let tray = Arc::new(Mutex::new(tray));
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let s = status.snapshot();
                        let tray = tray.clone();
                        let _ = handle.run_on_main_thread(move || {
                            if let Ok(mut t) = tray.lock()
                                && let Err(e) = t.update(&s)
                            {
                                tracing::warn!(error = %e, "cannot update the tray");
                            }
                        });
                    }
                });
            }
            if !hidden {
                show_window(app.handle());
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                signals.recv().await;
                tracing::info!("signal received");
                quit(&handle);
            });
            Ok(())
        })
        .build(context)
        .context("cannot start the desktop app")
}

#[cfg(test)]
mod tests;
