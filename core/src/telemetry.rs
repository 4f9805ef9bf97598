//! Logging and tracing in one place, for both programs (zero-to-production's `telemetry.rs`):
//! one subscriber with the `KKT_LOG` filter (default `info,hyper=warn`), to stderr and, for the
//! desktop app, to daily files in `<data dir>/logs` (14 kept). Spans say what a line belongs to:
//! `request{method, path, key}` around every API call, `cycle{n, manual}` around every sync cycle,
//! `register{receipt_id}` around the register's work on a receipt.

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Keep it for the life of the program: dropping it flushes the log file.
pub struct Telemetry {
    _file: Option<WorkerGuard>,
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("KKT_LOG").unwrap_or_else(|_| "info,hyper=warn".into())
}

/// Sets up the one subscriber: stderr (coloured on a terminal), and files in `log_dir` when
/// given. A second call does nothing (tests start several apps in one process).
pub fn init(log_dir: Option<&Path>) -> Telemetry {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter(filter());
    let appender = log_dir.and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("kkt-adapter")
            .filename_suffix("log")
            .max_log_files(14)
            .build(dir)
            .ok()
    });
    match appender {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file = fmt::layer().with_writer(writer).with_ansi(false).with_filter(filter());
            let _ = tracing_subscriber::registry().with(stderr).with(file).try_init();
            Telemetry { _file: Some(guard) }
        }
        None => {
            let _ = tracing_subscriber::registry().with(stderr).try_init();
            if let Some(dir) = log_dir {
                tracing::warn!(dir = %dir.display(), "cannot write log files; logging to stderr only");
            }
            Telemetry { _file: None }
        }
    }
}
