//! The checks of resolved settings: values out of range refused with their key's name, the rest
//! brought into range; LAN mode needs a POS token; ATOL credentials never in clear text.

use super::{KktDriver, Settings};
use crate::units::DAY;
use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

impl Settings {
    /// Values out of range are refused with the key's name; the rest are brought into range.
    pub(super) fn checked(mut self) -> anyhow::Result<Settings> {
        if self.buffer.retention < Duration::from_secs(DAY) {
            // A receipt's idempotency key goes with it: a till retrying after the purge would
            // get a second fiscal receipt.
            bail!(
                "config: buffer.retention_days must be at least 1 (idempotency keys are kept as long as their receipts)"
            );
        }
        self.buffer.capacity = self.buffer.capacity.max(1);
        self.buffer.purge_interval = self.buffer.purge_interval.max(Duration::from_millis(100));
        self.kkt.shift_length = self
            .kkt
            .shift_length
            .clamp(Duration::from_secs(3600), Duration::from_secs(DAY));
        self.kkt.answer_within = self.kkt.answer_within.max(Duration::from_millis(1));
        self.kkt.device_retry = self.kkt.device_retry.max(Duration::from_millis(10));
        if self.kkt.driver == KktDriver::Atol
            && !(self.kkt.atol.url.starts_with("http://") || self.kkt.atol.url.starts_with("https://"))
        {
            bail!(
                "config: kkt.atol.url {:?} must start with http:// or https://",
                self.kkt.atol.url
            );
        }
        self.kkt.atol.poll_every = self.kkt.atol.poll_every.max(Duration::from_millis(10));
        if self.kkt.driver == KktDriver::Atol {
            self.check_atol_credentials()?;
        }
        self.check_compat_credentials()?;
        if let Err(e) = crate::time::Zone::parse(&self.fiscal.timezone) {
            bail!("config: fiscal.timezone: {e}");
        }
        if let Some(inn) = &self.fiscal.cashier_inn
            && !(inn.len() == 12 && inn.bytes().all(|b| b.is_ascii_digit()))
        {
            bail!("config: fiscal.cashier_inn must be 12 digits");
        }
        if self
            .fiscal
            .cashier_name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 64)
        {
            bail!("config: fiscal.cashier_name must be 1–64 characters");
        }
        let h = &mut self.http;
        h.header_timeout = h.header_timeout.clamp(Duration::from_secs(1), Duration::from_secs(300));
        h.body_timeout = h.body_timeout.clamp(Duration::from_secs(1), Duration::from_secs(300));
        h.max_connections = h.max_connections.max(8);
        let s = &mut self.sync;
        s.interval = s.interval.max(Duration::from_millis(10));
        s.batch_size = s.batch_size.max(1);
        s.concurrency = s.concurrency.max(1);
        s.max_attempts = s.max_attempts.max(1);
        let b = &mut self.breaker;
        b.failure_threshold = b.failure_threshold.max(1);
        b.half_open_successes = b.half_open_successes.max(1);
        self.check_security()?;
        Ok(self)
    }

    /// What `App::build` checks of any settings, however they were made: LAN mode needs a POS
    /// token, every token is long enough to resist guessing, the OFD is not reached in clear
    /// text across the network (SECURITY.md "Tokens", "The OFD").
    pub fn check_security(&self) -> anyhow::Result<()> {
        self.check_lan_mode()?;
        let h = &self.http;
        let mut tokens: Vec<(String, &SecretString)> = Vec::new();
        if let Some(t) = &self.admin_token {
            tokens.push((
                "the admin token (--admin-token, KKT_ADMIN_TOKEN, admin_token)".into(),
                t,
            ));
        }
        if let Some(t) = &h.pos_token {
            tokens.push(("http.pos_token (--pos-token, KKT_POS_TOKEN)".into(), t));
        }
        if let Some(t) = &h.read_token {
            tokens.push(("http.read_token".into(), t));
        }
        for (pos, t) in &h.pos_tokens {
            if pos.is_empty() || pos.chars().count() > 64 {
                bail!("config: http.pos_tokens: the till {pos:?} is not a pos_id (1–64 characters)");
            }
            tokens.push((format!("http.pos_tokens.{pos:?}"), t));
        }
        for (name, t) in &tokens {
            token_shape(t.expose_secret()).map_err(|why| anyhow::anyhow!("config: {name} {why}"))?;
        }
        for (i, (a, ta)) in tokens.iter().enumerate() {
            for (b, tb) in &tokens[i + 1..] {
                if ta.expose_secret() == tb.expose_secret() {
                    bail!("config: {a} and {b} are the same token: each role needs its own");
                }
            }
        }
        if let Some(url) = &self.ofd_url
            && url.starts_with("http://")
            && !loopback_url(url)
        {
            bail!(
                "OFD URL {url:?} is plain http:// to another machine: receipts and the OFD token would cross the \
                 network in clear text. Use https://"
            );
        }
        Ok(())
    }

    /// User and password come together, and never travel in clear text beyond this machine.
    fn check_atol_credentials(&self) -> anyhow::Result<()> {
        let a = &self.kkt.atol;
        match (&a.user, &a.password) {
            (Some(_), None) | (None, Some(_)) => {
                bail!("config: kkt.atol.user and kkt.atol.password go together (HTTP Basic authentication)")
            }
            (Some(u), Some(_)) if u.is_empty() || u.contains(':') => {
                bail!("config: kkt.atol.user must be non-empty and must not contain ':'")
            }
            (Some(_), Some(_)) if a.url.starts_with("http://") && !loopback_url(&a.url) => bail!(
                "config: kkt.atol.url {:?} is plain http:// to another machine: the password would cross the network \
                 in clear text. Use https:// (with kkt.atol.ca_file for the server's own certificate) or a web server \
                 on this machine",
                a.url
            ),
            _ => {}
        }
        if a.ca_file.is_some() && !a.url.starts_with("https://") {
            bail!("config: kkt.atol.ca_file is only used with an https:// kkt.atol.url");
        }
        Ok(())
    }

    /// The vendor fronts' Basic login (`[compat]`): user and password together, the password not
    /// empty (kkmserver lets everyone in with an empty admin password; the adapter does not).
    fn check_compat_credentials(&self) -> anyhow::Result<()> {
        use secrecy::ExposeSecret;
        let c = &self.compat;
        match (&c.user, &c.password) {
            (Some(_), None) | (None, Some(_)) => {
                bail!("config: compat.user and compat.password go together (HTTP Basic authentication)")
            }
            (Some(u), Some(_)) if u.trim().is_empty() || u.contains(':') => {
                bail!("config: compat.user must be non-empty and must not contain ':'")
            }
            (Some(_), Some(p)) if p.expose_secret().is_empty() => bail!(
                "config: compat.password must not be empty (leave both compat.user and compat.password out to keep \
                 the fronts as open as the native intake: loopback only)"
            ),
            _ => Ok(()),
        }
    }

    /// Refuses a non-loopback address without a POS token: anyone on the network could post receipts.
    fn check_lan_mode(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && !self.http.has_pos_token() {
            bail!(
                "--listen {} is not a loopback address: other machines could post receipts. LAN mode needs a POS \
                 token (--pos-token, KKT_POS_TOKEN, [http] pos_token or one per till in [http.pos_tokens]) that every till sends \
                 as `Authorization: Bearer <token>`",
                self.listen
            );
        }
        Ok(())
    }
}

/// Whether an `http(s)://host[:port]/…` URL names this machine.
pub fn loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Shortest token accepted: 32 characters (the generated admin token has 64 hex digits).
pub const MIN_TOKEN_CHARS: usize = 32;

/// A bearer token's shape: 32–512 visible ASCII characters (what an `Authorization` header can
/// carry unchanged). The text says what is wrong, never the token.
pub fn token_shape(token: &str) -> Result<(), String> {
    if token.len() > 512 || !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("must be at most 512 visible ASCII characters (no spaces)".into());
    }
    if token.len() < MIN_TOKEN_CHARS {
        return Err(format!(
            "is {} characters long: tokens need at least {MIN_TOKEN_CHARS} (make one with `openssl rand -hex 32`)",
            token.len()
        ));
    }
    Ok(())
}
