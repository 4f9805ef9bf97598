//! The manager's window in a short-lived process of its own (`kkt-adapter --window-url URL`).
//!
//! Why: a webview loads WebKit's libraries and starts its web and network processes; closing the
//! window destroys the web process, but the rest stays in a process for as long as it lives —
//! measured, the tray app kept ~240 MB RSS after the window had been open once, against ~96 MB
//! when it never was (BENCHMARKS.md). Shop PCs are small. So the tray process never makes a
//! webview: "Open window" starts this program again in window mode, and that process exits
//! when its window closes, taking all of it along.
//!
//! The tray process talks to it over the child's stdin: the first line is the admin token (never
//! on the command line or in the environment, where other processes of the user — WebKit's own
//! children among them — could read it); then a line `focus` brings the window forward (a
//! second "Open window"); end of input (the tray quit or died) closes it.
//!
//! The page gets the token from an initialization script that sets it only on the adapter's own
//! origin (init scripts run on every navigation), and the window refuses to navigate anywhere
//! else: no URL fragment, no web storage (SECURITY.md "The page and the window").
//!
//! `--window-in-process` keeps the old arrangement (the window inside the tray process) for
//! WebDriver automation, which drives the webview of the process it launched.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

pub const LABEL: &str = "main";

/// The script that hands the token to the page: on the adapter's own origin only, as a
/// read-only property (nothing else the window might show gets it).
pub fn token_script(origin: &str, token: &str) -> anyhow::Result<String> {
    Ok(format!(
        "if (window.location.origin === {origin}) {{ Object.defineProperty(window, \"__KKT_ADMIN_TOKEN__\", \
         {{ value: {token}, writable: false, configurable: false }}); }}",
        origin = serde_json::to_string(origin)?,
        token = serde_json::to_string(token)?,
    ))
}

/// Builds the window at `url` (the API's `/ui/`), handing the admin token to the page before it
/// loads, so nobody has to type it. Navigation away from the adapter's origin is refused.
pub fn build<R: Runtime>(app: &AppHandle<R>, url: &str, token: &str) -> anyhow::Result<()> {
    let url: tauri::Url = url.parse()?;
    let origin = url.origin();
    let script = token_script(&origin.ascii_serialization(), token)?;
    WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(url))
        .title("KKT Adapter")
        .inner_size(1100.0, 860.0)
        .initialization_script(script)
        .on_navigation(move |to| {
            let ok = to.origin() == origin;
            if !ok {
                tracing::warn!(url = %to, "the window refused to leave the adapter's page");
            }
            ok
        })
        .build()?;
    Ok(())
}

/// Brings an existing window forward.
pub fn focus<R: Runtime>(app: &AppHandle<R>) -> bool {
    match app.get_webview_window(LABEL) {
        Some(w) => {
            let _ = w.show();
            let _ = w.unminimize();
            let _ = w.set_focus();
            true
        }
        None => false,
    }
}

/// Window mode: one window, no tray, no core; exits when the window closes or the tray goes.
pub fn run(context: tauri::Context<tauri::Wry>, url: String) -> anyhow::Result<u8> {
    let mut token = String::new();
    std::io::stdin().lock().read_line(&mut token)?;
    let token = token.trim().to_string();
    let app = tauri::Builder::default()
        .setup(move |app| {
            build(app.handle(), &url, &token)?;
            let handle = app.handle().clone();
            std::thread::Builder::new().name("tray-link".into()).spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    match line {
                        Ok(l) if l.trim() == "focus" => {
                            let h = handle.clone();
                            let _ = handle.run_on_main_thread(move || {
                                focus(&h);
                            });
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                // The tray process is gone (or quit): so is its window.
                handle.exit(0);
            })?;
            Ok(())
        })
        .build(context)?;
    // The last window closing ends the process: that is the point of this mode.
    app.run(|_, _| {});
    Ok(0)
}

/// The tray process's handle on its window process.
#[derive(Default)]
pub struct WindowProcess {
    running: Mutex<Option<(ChildStdin, std::sync::Arc<std::sync::atomic::AtomicBool>)>>,
}

impl WindowProcess {
    /// Shows the window: brings the running one forward, or starts a window process.
    pub fn show(&self, url: &str, token: &str) {
        let Ok(mut running) = self.running.lock() else { return };
        if let Some((stdin, alive)) = running.as_mut()
            && alive.load(std::sync::atomic::Ordering::SeqCst)
            && writeln!(stdin, "focus").and_then(|_| stdin.flush()).is_ok()
        {
            return;
        }
        *running = None;
        match spawn(url, token) {
            Ok(mut child) => {
                let Some(stdin) = child.stdin.take() else { return };
                let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
                let flag = alive.clone();
                // Reaps the child when its window closes, so no zombie is left behind.
                let _ = std::thread::Builder::new().name("window-wait".into()).spawn(move || {
                    let status = child.wait();
                    flag.store(false, std::sync::atomic::Ordering::SeqCst);
                    tracing::info!(?status, "the window process ended");
                });
                *running = Some((stdin, alive));
            }
            Err(e) => tracing::error!(error = %e, "cannot start the window process"),
        }
    }

    /// Closes the window (its process sees the end of its input and exits).
    pub fn close(&self) {
        if let Ok(mut running) = self.running.lock() {
            running.take();
        }
    }
}

fn spawn(url: &str, token: &str) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    tracing::info!(exe = %exe.display(), "starting the window process");
    let mut child = Command::new(exe)
        .arg("--window-url")
        .arg(url)
        .stdin(Stdio::piped())
        .spawn()?;
    if let Some(stdin) = child.stdin.as_mut() {
        writeln!(stdin, "{token}")?;
        stdin.flush()?;
    }
    Ok(child)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_token_script_gives_the_token_to_the_adapters_own_origin_only() {
        let script = super::token_script("http://127.0.0.1:8000", "t\"ok").unwrap();
        assert!(
            script.starts_with(r#"if (window.location.origin === "http://127.0.0.1:8000") {"#),
            "{script}"
        );
        assert!(
            script.contains(r#"value: "t\"ok""#) && script.contains("writable: false"),
            "{script}"
        );
    }
}
