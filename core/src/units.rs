//! The config file's units, read into [`Duration`]s (and MiB into bytes), with their ranges
//! checked: a leaf module, so every mechanism reads its own policy section with them (`#[serde(with
//! = "crate::units::secs")]`) and `settings` only puts the sections together.

use serde::{Deserialize, Deserializer, de::Error};
use std::time::Duration;

/// A day in seconds.
pub const DAY: u64 = 24 * 3600;

fn scaled<'de, D: Deserializer<'de>>(d: D, unit_secs: f64, unit: &str) -> Result<Duration, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..1e9).contains(&v) {
        return Err(D::Error::custom(format!("{v} is not a valid number of {unit}")));
    }
    Ok(Duration::from_secs_f64(v * unit_secs))
}

pub mod secs {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        super::scaled(d, 1.0, "seconds")
    }
}

pub mod ms {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        super::scaled(d, 0.001, "milliseconds")
    }
}

pub mod hours {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        super::scaled(d, 3600.0, "hours")
    }
}

pub mod days {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        super::scaled(d, super::DAY as f64, "days")
    }
}

pub mod mib {
    use serde::{Deserialize, Deserializer, de::Error};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let mb = u64::deserialize(d)?;
        if mb > 1 << 20 {
            return Err(D::Error::custom(format!("{mb} MiB is over 1 TiB; use 0 for no cap")));
        }
        Ok(mb << 20)
    }
}
