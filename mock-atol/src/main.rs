//! `mock-atol` command: serve the mock ATOL web server until SIGINT/SIGTERM.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mock-atol",
    version,
    about = "A mock of ATOL's Driver KKT v10 web server (JSON tasks) with device faults (POST /mock/control)"
)]
struct Args {
    /// Address of the web server (ATOL's default port is 16732).
    #[arg(long, default_value = "127.0.0.1:16732")]
    listen: SocketAddr,
    /// Where the fiscal drive is kept between runs (JSON); in memory without it.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The FN's serial number for a new fiscal drive.
    #[arg(long, default_value = "7380440700000001")]
    fn_number: String,
    /// Require HTTP Basic with this user (and --password), as Web Requests does once it has users.
    #[arg(long, requires = "password")]
    user: Option<String>,
    #[arg(long, requires = "user")]
    password: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let a = Args::parse();
    let atol = mock_atol::spawn(a.listen, a.state, &a.fn_number).await?;
    if let (Some(user), Some(password)) = (&a.user, &a.password) {
        atol.require_credentials(user, password);
    }
    println!("mock-atol listening on http://{}", atol.addr);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    Ok(())
}
