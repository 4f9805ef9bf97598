//! `mock-ofd` command: serve the mock OFD until SIGINT/SIGTERM.

use clap::Parser;
use mock_ofd::Faults;
use std::net::SocketAddr;

#[derive(Parser)]
#[command(
    name = "mock-ofd",
    version,
    about = "A mock OFD server with run-time fault injection (see POST /ofd/v1/_control)"
)]
struct Args {
    /// Address of the OFD endpoint.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// An extra, always-up address for /ofd/v1/_control and /ofd/v1/_stats (useful while `down`).
    #[arg(long)]
    control_listen: Option<SocketAddr>,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of calls (0.0-1.0) answered with --failure-status.
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    #[arg(long, default_value_t = 503)]
    failure_status: u16,
    /// Require this bearer token (401 otherwise).
    #[arg(long)]
    token: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let a = Args::parse();
    let faults = Faults {
        latency_ms: a.latency_ms,
        failure_rate: a.failure_rate,
        failure_status: a.failure_status,
        token: a.token,
        ..Faults::default()
    };
    let ofd = mock_ofd::spawn(a.listen, a.control_listen, faults).await?;
    println!("mock-ofd listening on http://{}", ofd.addr);
    if let Some(c) = ofd.control_addr {
        println!("mock-ofd control on http://{c}");
    }
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
