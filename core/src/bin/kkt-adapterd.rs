//! `kkt-adapterd`: the KKT Adapter core without any GUI library (servers, CI, tests).

use clap::Parser;
use kkt_core::settings::{Flags, Settings};
use kkt_core::{App, app};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KKT_LOG").unwrap_or_else(|_| "info,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let run = async {
        let signals = app::ShutdownSignals::install()?;
        let settings = Settings::resolve(Flags::parse())?;
        let mut app = App::build(settings).await?;
        app.spawn_alerts(std::sync::Arc::new(kkt_core::alerts::LogNotifier));
        signals.recv().await;
        app.shutdown().await;
        kkt_core::signals::stopped();
        anyhow::Ok(())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("kkt-adapterd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
