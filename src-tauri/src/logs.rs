//! Logs: daily-rotated files in `<data dir>/logs` (14 kept) and stderr.

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Keep the guard alive for the life of the program: dropping it flushes the file.
pub fn init(data_dir: &Path) -> Option<WorkerGuard> {
    let filter = || EnvFilter::try_from_env("KKT_LOG").unwrap_or_else(|_| "info,hyper=warn".into());
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter());
    let dir = data_dir.join("logs");
    let appender = std::fs::create_dir_all(&dir).ok().and_then(|_| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("kkt-adapter")
            .filename_suffix("log")
            .max_log_files(14)
            .build(&dir)
            .ok()
    });
    match appender {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file = fmt::layer().with_writer(writer).with_ansi(false).with_filter(filter());
            tracing_subscriber::registry().with(stderr).with(file).init();
            Some(guard)
        }
        None => {
            tracing_subscriber::registry().with(stderr).init();
            tracing::warn!(dir = %dir.display(), "cannot write log files; logging to stderr only");
            None
        }
    }
}
