//! Bounded growth: synced receipts, their events, old events of no receipt and old printed
//! slips are deleted after the retention period (default 30 days). Receipts that are not
//! synced — waiting, in flight or in the DLQ — are never purged. Deleted pages are reused by
//! SQLite, so a shop's database levels off at about `retention × receipts per day`.

use crate::buffer::{Buffer, Purged};
use crate::events::{EventKind, NewEvent};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows deleted per transaction: small enough that intake never waits long behind a purge.
const STEP: usize = 500;
/// The first purge runs this long after start (not in the middle of start-up).
const FIRST_RUN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Retention {
    pub keep: Duration,
    pub every: Duration,
    /// Where the mock register writes its slip rolls (`<data dir>/receipts/YYYY-MM-DD.txt`), if it does.
    pub slip_dir: Option<PathBuf>,
}

/// What one purge run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub receipts: usize,
    pub events: usize,
    pub slip_days: usize,
    /// DLQ entries whose personal data was removed (they stay in the DLQ).
    pub scrubbed: usize,
}

/// Purges everything older than `now_ms - keep`, in short steps.
pub async fn purge_once(buffer: &Buffer, r: &Retention, now_ms: i64) -> Result<Summary, crate::buffer::Error> {
    let cutoff_ms = now_ms.saturating_sub(r.keep.as_millis() as i64);
    let mut sum = Summary::default();
    loop {
        let Purged {
            receipts,
            events,
            scrubbed,
        } = buffer.purge(cutoff_ms, STEP).await?;
        sum.receipts += receipts;
        sum.events += events;
        sum.scrubbed += scrubbed;
        if receipts < STEP && events < STEP && scrubbed < STEP {
            break;
        }
        tokio::task::yield_now().await;
    }
    if let Some(dir) = r.slip_dir.clone() {
        let cutoff = DateTime::<Utc>::from_timestamp_millis(cutoff_ms).map(|t| t.date_naive());
        if let Some(cutoff) = cutoff {
            sum.slip_days = tokio::task::spawn_blocking(move || purge_slips(&dir, cutoff))
                .await
                .unwrap_or(0);
        }
    }
    if sum != Summary::default() {
        tracing::info!(
            receipts = sum.receipts,
            events = sum.events,
            slip_days = sum.slip_days,
            "retention: purged old synced receipts and events"
        );
        let details = serde_json::json!({
            "receipts": sum.receipts,
            "events": sum.events,
            "slip_days": sum.slip_days,
            "personal_data_removed": sum.scrubbed,
            "older_than": crate::time::rfc3339(cutoff_ms),
        });
        buffer
            .log(vec![NewEvent::new(EventKind::BufferPurged, None, details)])
            .await?;
    }
    Ok(sum)
}

/// Removes the slip rolls (`YYYY-MM-DD.txt`; earlier versions' `YYYY-MM-DD` folders) of days
/// before `cutoff`; returns how many days.
fn purge_slips(dir: &Path, cutoff: NaiveDate) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let path = entry.path();
        let Some(name) = name.to_str() else { continue };
        // A roll is a file `YYYY-MM-DD.txt`; an earlier version's day is a folder `YYYY-MM-DD`.
        let (day, roll) = match name.strip_suffix(".txt") {
            Some(day) => (day, true),
            None => (name, false),
        };
        let Ok(day) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
            continue;
        };
        if day < cutoff && roll == path.is_file() && (roll || path.is_dir()) {
            let gone = if roll {
                std::fs::remove_file(&path)
            } else {
                std::fs::remove_dir_all(&path)
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove old slips"),
            }
        }
    }
    removed
}

/// Runs the purge at start (after a short delay) and then every `r.every`, until cancelled.
pub async fn run(buffer: Buffer, r: Retention, cancel: CancellationToken) {
    let mut wait = FIRST_RUN.min(r.every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = r.every;
        if let Err(e) = purge_once(&buffer, &r, crate::time::now_ms()).await {
            tracing::warn!(error = %e, "retention purge failed; it runs again later");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dated_slip_folders_before_the_cutoff_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["2026-10-01", "2026-10-28", "2026-10-29", "notes"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("00000001.txt"), "slip").unwrap();
        }
        std::fs::write(dir.path().join("2026-01-01"), "a file, not a folder").unwrap();
        for roll in ["2026-10-27.txt", "2026-10-29.txt", "2026-10-30.txt.bak"] {
            std::fs::write(dir.path().join(roll), "slip\n").unwrap();
        }
        let cutoff = NaiveDate::from_ymd_opt(2026, 10, 29).unwrap();
        assert_eq!(purge_slips(dir.path(), cutoff), 3, "two old folders and one old roll");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "2026-01-01",
                "2026-10-29",
                "2026-10-29.txt",
                "2026-10-30.txt.bak",
                "notes"
            ]
        );
        assert_eq!(purge_slips(&dir.path().join("missing"), cutoff), 0);
    }
}
