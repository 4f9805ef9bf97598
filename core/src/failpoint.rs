//! Named points where a test makes the process die at once, as a power cut or SIGKILL would,
//! so the kill-at-every-step test (RELIABILITY.md "Exactly once on a real register") lands
//! exactly on each step of a sale instead of hoping a random kill does.
//!
//! Off unless the environment variable `KKT_TEST_FAILPOINT` names a point (`atol.posted`, or
//! `atol.posted@2` for its second hit): one string comparison per step otherwise. Hand-written
//! rather than the `fail` crate: that crate's points exist only when a cargo feature is on,
//! which the daemon the tests start would not get without also compiling them into releases.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The points, in the order a sale passes them (each names what is durable when it fires).
pub const POINTS: &[&str] = &[
    // The attempt is in the ATOL journal; the job is not posted.
    "atol.journal_written",
    // The web server has queued the job; nothing is read back yet.
    "atol.posted",
    // The job's result has been read; nothing is stored in the buffer yet.
    "atol.result_read",
    // The register's result is committed in the buffer; the till is not answered yet.
    "buffer.result_committed",
];

struct Armed {
    point: String,
    at: u32,
    hits: AtomicU32,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("KKT_TEST_FAILPOINT").ok()?;
            let (point, at) = match spec.split_once('@') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some(Armed {
                point,
                at,
                hits: AtomicU32::new(0),
            })
        })
        .as_ref()
}

/// Dies here if the test armed this point (and this is its hit).
pub fn hit(point: &str) {
    if let Some(a) = armed()
        && a.point == point
        && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.at
    {
        eprintln!("KKT_TEST_FAILPOINT {point}: the process dies here");
        std::process::abort();
    }
}
