//! Time in one place: unix milliseconds in the database, RFC 3339 (UTC, `Z`) on the wire, the
//! register's local time zone ([`Zone`]), and a clock that follows tokio's (pausable) time and
//! can be moved forward, so tests reach the 24-hour shift and the 30-day FN rule without waiting.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// `2026-11-28T10:15:00.123Z` for unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Wall-clock unix milliseconds now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A clock anchored at the wall time of its creation that advances with `tokio::time`.
/// Under `#[tokio::test(start_paused = true)]` it moves only when the test advances time.
/// Copies share one offset: [`Clock::advance`] moves every part of the program at once.
#[derive(Debug, Clone)]
pub struct Clock {
    wall_at_start_ms: i64,
    start: tokio::time::Instant,
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            wall_at_start_ms: now_ms(),
            start: tokio::time::Instant::now(),
            offset_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Unix milliseconds now, following tokio's clock (the worker, the status).
    pub fn now_ms(&self) -> i64 {
        self.wall_at_start_ms + self.start.elapsed().as_millis() as i64 + self.offset()
    }

    /// Unix milliseconds now by the wall clock, for threads outside the async runtime (the
    /// buffer's writer): the same as [`Clock::now_ms`] in production.
    pub fn wall_ms(&self) -> i64 {
        now_ms() + self.offset()
    }

    /// [`Clock::wall_ms`] as a date and time.
    pub fn utc(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(self.wall_ms()).unwrap_or_default()
    }

    pub fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }

    /// Moves this clock and every copy of it forward by `by` (tests: a day, a month).
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }

    fn offset(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

/// The fiscal register's time zone: the local date and time its QR code and slip carry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Utc,
    /// The machine's own.
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `local` (the machine's), `UTC`, or an IANA name such as `Europe/Moscow`.
    pub fn parse(name: &str) -> Result<Zone, String> {
        match name.trim() {
            "" | "local" => Ok(Zone::Local),
            "UTC" | "utc" => Ok(Zone::Utc),
            other => other.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
                format!("{other:?} is not a time zone name (e.g. Europe/Moscow, Asia/Yekaterinburg, local)")
            }),
        }
    }

    /// The unix-ms bounds `[start, end)` of `day` in this zone (a shop's business day).
    pub fn day_bounds(&self, day: chrono::NaiveDate) -> (i64, i64) {
        use chrono::TimeZone as _;
        let start = |d: chrono::NaiveDate| -> i64 {
            let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
            let utc = match self {
                Zone::Utc => Some(midnight.and_utc()),
                Zone::Local => chrono::Local
                    .from_local_datetime(&midnight)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc)),
                Zone::Named(tz) => tz
                    .from_local_datetime(&midnight)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc)),
            };
            utc.unwrap_or_else(|| midnight.and_utc()).timestamp_millis()
        };
        (start(day), start(day.succ_opt().unwrap_or(day)))
    }

    /// Unix ms as the register's local date and time, `2026-12-01 18:04:22` (tables, CSV).
    pub fn local_text(&self, ms: i64) -> String {
        self.local(DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// A time of our wire (RFC 3339) in this zone with its offset, `2026-11-28T13:15:00+03:00`:
    /// how ATOL's web server gives a document's time. Text that is no such time is kept as is.
    pub fn with_offset(&self, rfc3339: &str) -> String {
        match DateTime::parse_from_rfc3339(rfc3339) {
            Ok(t) => self
                .at(t.with_timezone(&Utc))
                .to_rfc3339_opts(SecondsFormat::Secs, false),
            Err(_) => rfc3339.to_string(),
        }
    }

    /// A time of our wire (RFC 3339) as the register's local date and time without an offset,
    /// `2026-11-28T13:15:00` (kkmserver's form); text that is no such time, cut to that length.
    pub fn local_iso(&self, rfc3339: &str) -> String {
        match DateTime::parse_from_rfc3339(rfc3339) {
            Ok(t) => self.local(t.with_timezone(&Utc)).format(LOCAL_ISO).to_string(),
            Err(_) => rfc3339.get(..19).unwrap_or(rfc3339).to_string(),
        }
    }

    /// `t` as the register's local date and time.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        self.at(t).naive_local()
    }

    /// `t` in this zone, with the offset it has there at that moment.
    fn at(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Zone::Utc => t.fixed_offset(),
            Zone::Local => t.with_timezone(&chrono::Local).fixed_offset(),
            Zone::Named(tz) => t.with_timezone(tz).fixed_offset(),
        }
    }
}

/// A local date and time without an offset, as the vendors' fronts write it.
pub const LOCAL_ISO: &str = "%Y-%m-%dT%H:%M:%S";

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_register_reads_the_time_in_its_zone() {
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 21, 30, 0).unwrap();
        let moscow = Zone::parse("Europe/Moscow").unwrap();
        assert_eq!(moscow.local(t).format("%Y%m%dT%H%M").to_string(), "20261129T0030");
        assert_eq!(Zone::parse("UTC").unwrap().local(t).format("%H%M").to_string(), "2130");
        assert!(Zone::parse("Mars/Olympus").unwrap_err().contains("not a time zone"));
    }

    #[test]
    fn a_wire_time_is_given_in_the_registers_zone_as_the_vendors_write_it() {
        let moscow = Zone::parse("Europe/Moscow").unwrap();
        // ATOL: with the offset; kkmserver: local, without one. The same instant either way.
        assert_eq!(
            moscow.with_offset("2026-11-28T21:30:00.250Z"),
            "2026-11-29T00:30:00+03:00"
        );
        assert_eq!(moscow.local_iso("2026-11-28T21:30:00Z"), "2026-11-29T00:30:00");
        // A time the register gave with its own offset stays that instant.
        assert_eq!(moscow.local_iso("2026-11-29T02:30:00+05:00"), "2026-11-29T00:30:00");
        assert_eq!(
            Zone::Utc.with_offset("2026-11-28T21:30:00Z"),
            "2026-11-28T21:30:00+00:00"
        );
        // Not a time: kept (cut to a local time's length for kkmserver).
        assert_eq!(moscow.with_offset("позже"), "позже");
        assert_eq!(moscow.local_iso("2027-06-01T00:00:00 MSK"), "2027-06-01T00:00:00");
    }

    #[test]
    fn a_shop_day_is_cut_at_its_own_midnight() {
        let moscow = Zone::parse("Europe/Moscow").unwrap();
        let (from, to) = moscow.day_bounds(chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(rfc3339(from), "2026-11-30T21:00:00.000Z");
        assert_eq!(to - from, 86_400_000);
        assert_eq!(moscow.local_text(from), "2026-12-01 00:00:00");
    }

    #[test]
    fn an_advanced_clock_moves_every_copy() {
        let c = Clock::new();
        let copy = c.clone();
        let before = copy.wall_ms();
        c.advance(std::time::Duration::from_secs(86_400));
        assert!(copy.wall_ms() - before >= 86_400_000);
    }
}
