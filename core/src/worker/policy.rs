//! The worker's policy (`[sync]` of the config file, docs/contract.md §3): the worker owns it,
//! `settings` reads it.

use crate::units;
use serde::Deserialize;
use std::time::Duration;

/// `[sync]`: the sync worker's policy (docs/contract.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncPolicy {
    #[serde(rename = "interval_secs", with = "units::secs")]
    pub interval: Duration,
    pub batch_size: usize,
    /// Sends in flight at once (1 = strict one-by-one fiscal order).
    pub concurrency: usize,
    pub max_attempts: u32,
    #[serde(rename = "backoff_base_secs", with = "units::secs")]
    pub backoff_base: Duration,
    #[serde(rename = "backoff_max_secs", with = "units::secs")]
    pub backoff_max: Duration,
    /// How long a claimed (`syncing`) receipt is reserved before it may be claimed again.
    #[serde(rename = "lease_secs", with = "units::secs")]
    pub lease: Duration,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            interval: Duration::from_secs(5),
            batch_size: 50,
            concurrency: 8,
            max_attempts: 20,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            lease: Duration::from_secs(60),
        }
    }
}

/// Exponential backoff with ±20 % jitter: base, 2×base, 4×base … capped at `max`.
pub fn backoff(policy: &SyncPolicy, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = policy.backoff_base.as_secs_f64() * 2f64.powi(exp as i32);
    let capped = raw.min(policy.backoff_max.as_secs_f64());
    Duration::from_secs_f64((capped * (1.0 + jitter.clamp(-0.2, 0.2))).min(policy.backoff_max.as_secs_f64()))
}
