//! The checks of resolved settings: values out of range refused with their key's name, the rest
//! brought into range; LAN mode needs a POS token; ATOL credentials never in clear text.

use super::{KktDriver, Settings};
use crate::units::DAY;
use anyhow::bail;
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
        let s = &mut self.sync;
        s.interval = s.interval.max(Duration::from_millis(10));
        s.batch_size = s.batch_size.max(1);
        s.concurrency = s.concurrency.max(1);
        s.max_attempts = s.max_attempts.max(1);
        let b = &mut self.breaker;
        b.failure_threshold = b.failure_threshold.max(1);
        b.half_open_successes = b.half_open_successes.max(1);
        self.check_lan_mode()?;
        Ok(self)
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

    /// Refuses a non-loopback address without a POS token: anyone on the network could post receipts.
    pub fn check_lan_mode(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && self.http.pos_token.is_none() {
            bail!(
                "--listen {} is not a loopback address: other machines could post receipts. LAN mode needs a POS \
                 token (--pos-token, KKT_POS_TOKEN or [http] pos_token in the config file) that every till sends \
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
