//! `[compat]` of the config file (docs/contract.md §13, README "Use your existing POS").

use serde::Deserialize;
use std::net::SocketAddr;

/// `[compat]`: the vendor fronts. Both are always on the main listener; these add listeners on
/// the vendors' own ports and their HTTP Basic credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompatSettings {
    /// ATOL's web server's port, for a POS that cannot change the address: e.g.
    /// `127.0.0.1:16732`. None by default.
    pub atol_listen: Option<SocketAddr>,
    /// kkmserver's: e.g. `127.0.0.1:5893`. None by default.
    pub kkmserver_listen: Option<SocketAddr>,
    /// HTTP Basic credentials both fronts ask for when set (the vendors' own servers' login).
    /// Unset: loopback callers need none, as for the native intake; LAN callers send a POS
    /// token as the Basic password (README "Use your existing POS").
    pub user: Option<String>,
    pub password: Option<secrecy::SecretString>,
    /// The `pos_id` a front's receipts carry when the caller's token does not name its till.
    pub atol_pos_id: String,
    pub kkmserver_pos_id: String,
    /// How long `POST /api/v2/requests` waits for its job before answering `201` (the POS then
    /// polls `GET`); a finished job is `ready` at once.
    #[serde(rename = "atol_wait_ms", with = "crate::units::ms")]
    pub atol_wait: std::time::Duration,
}

impl Default for CompatSettings {
    fn default() -> Self {
        CompatSettings {
            atol_listen: None,
            kkmserver_listen: None,
            user: None,
            password: None,
            atol_pos_id: "atol-web".into(),
            kkmserver_pos_id: "kkmserver".into(),
            atol_wait: std::time::Duration::from_secs(10),
        }
    }
}
