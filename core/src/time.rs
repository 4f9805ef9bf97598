//! Time in one place: unix milliseconds in the database, RFC 3339 (UTC, `Z`) on the wire, and a
//! clock that follows tokio's (pausable) time so tests can advance it instead of sleeping.

use chrono::{DateTime, SecondsFormat, Utc};

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
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_at_start_ms: i64,
    start: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            wall_at_start_ms: now_ms(),
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.wall_at_start_ms + self.start.elapsed().as_millis() as i64
    }

    pub fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
