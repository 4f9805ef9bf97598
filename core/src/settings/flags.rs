//! The command line: each flag also reads its environment variable (flags win over the
//! environment, which wins over the file, which wins over the defaults).

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command-line flags; each also reads its environment variable (flags win).
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "kkt-adapterd",
    version,
    about = "KKT Adapter: durable fiscal receipt buffer with a local HTTP API and OFD sync (headless)",
    long_about = "KKT Adapter: POS software posts receipts to the local HTTP API; each is stored durably \
in an SQLite buffer, printed on the fiscal register (mock driver) and answered at once, then delivered \
to the OFD in the background.\n\nPrecedence of settings: flags > environment > config file (TOML) > defaults. \
Every other policy value (capacity, retry, breaker, KKT numbers) lives in the config file; see the README."
)]
pub struct Flags {
    /// Config file (TOML). Default: config.toml in the user's config directory.
    #[arg(long, env = "KKT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: buffer.db, logs and printed receipt slips. Must exist when given. Default: the
    /// user's data directory (created at first start).
    #[arg(long, env = "KKT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the local HTTP API. Default: 127.0.0.1:8000 (port 0 picks a free port).
    #[arg(long, env = "KKT_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// OFD base URL (POST {url}/ofd/v1/receipt). Default: none, a built-in OFD simulator (DEMO mode).
    #[arg(long, env = "KKT_OFD_URL", value_name = "URL")]
    pub ofd_url: Option<String>,
    /// Admin bearer token for manual sync and DLQ changes. Default: generated at first start and
    /// stored with mode 0600 in the config directory.
    #[arg(long, env = "KKT_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Bearer token POS software must send with receipts (`Authorization: Bearer …`). Required when
    /// --listen is not a loopback address (LAN mode, several tills); optional otherwise.
    #[arg(long, env = "KKT_POS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub pos_token: Option<String>,
}
