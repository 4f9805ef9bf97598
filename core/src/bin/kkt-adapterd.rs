//! `kkt-adapterd`: the KKT Adapter core without any GUI library (servers, CI, tests).

use clap::Parser;
use kkt_core::settings::{Flags, Settings};
use kkt_core::{App, app};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    kkt_core::datadir::private_umask();
    let _telemetry = kkt_core::telemetry::init(None);
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
