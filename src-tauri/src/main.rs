//! `kkt-adapter`: the desktop shell. It hosts `kkt_core::App` (same settings, flags and data
//! directory as `kkt-adapterd`), shows the core's web window, turns the status snapshot into a
//! tray icon and menu, and the core's alerts into desktop notifications. It never writes to the
//! database: every command goes through the core.

// A release build on Windows is a GUI program: no console window opens beside the tray. Its
// output goes to the log files (kkt_core::telemetry); debug builds keep the console for development.
#![cfg_attr(all(windows, not(debug_assertions)), windows_subsystem = "windows")]

mod notifier;
mod shell;
mod tray;
mod window;

use clap::Parser;
use kkt_core::settings::{Flags, Settings};
use std::process::ExitCode;

/// Same flags as `kkt-adapterd`.
#[derive(Parser)]
#[command(
    name = "kkt-adapter",
    version,
    about = "KKT Adapter desktop app (tray + window). For servers use kkt-adapterd."
)]
struct Args {
    #[command(flatten)]
    flags: Flags,
    /// Start in the tray without opening the window (used by autostart).
    #[arg(long)]
    hidden: bool,
    /// Keep the window inside this process instead of a window process of its own (for WebDriver
    /// automation, which drives the webview of the process it started).
    #[arg(long)]
    window_in_process: bool,
    /// Internal: run as the window process of a running tray app, showing this page.
    #[arg(long, hide = true, value_name = "URL")]
    window_url: Option<String>,
}

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
        || cfg!(any(target_os = "windows", target_os = "macos"))
}

/// The command line with token values masked, for messages (a shared terminal, a log).
fn redacted(args: impl Iterator<Item = String>) -> Vec<String> {
    const SECRET: [&str; 2] = ["--admin-token", "--pos-token"];
    let mut out = Vec::new();
    let mut mask_next = false;
    for a in args {
        if std::mem::take(&mut mask_next) {
            out.push("***".into());
        } else if let Some((flag, _)) = a.split_once('=').filter(|(f, _)| SECRET.contains(f)) {
            out.push(format!("{flag}=***"));
        } else {
            mask_next = SECRET.contains(&a.as_str());
            out.push(a);
        }
    }
    out
}

fn main() -> ExitCode {
    kkt_core::datadir::private_umask();
    let args = Args::parse();
    if !has_display() {
        eprintln!(
            "kkt-adapter: no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set).\n\
             On a server or without a desktop, run the headless daemon with the same flags:\n  kkt-adapterd {}",
            redacted(std::env::args().skip(1)).join(" ")
        );
        return ExitCode::from(2);
    }
    if let Some(url) = args.window_url {
        return match window::run(shell::context(), url) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("kkt-adapter (window): {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::resolve(args.flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kkt-adapter: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // Before the log files: they would otherwise create a data directory that must exist.
    if let Err(e) = kkt_core::datadir::check(&settings) {
        eprintln!("kkt-adapter: {e:#}");
        return ExitCode::FAILURE;
    }
    let _telemetry = kkt_core::telemetry::init(Some(&settings.data_dir.join("logs")));
    let options = shell::Options {
        hidden: args.hidden,
        window_in_process: args.window_in_process,
        tray: true,
    };
    match shell::run(settings, options) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("kkt-adapter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod redaction {
    #[test]
    fn tokens_on_the_command_line_are_masked_in_messages() {
        let args = [
            "--admin-token",
            "s3cret-one",
            "--listen",
            "0.0.0.0:8000",
            "--pos-token=s3cret-two",
            "--hidden",
        ];
        let shown = super::redacted(args.iter().map(|s| s.to_string())).join(" ");
        assert_eq!(
            shown,
            "--admin-token *** --listen 0.0.0.0:8000 --pos-token=*** --hidden"
        );
    }
}
