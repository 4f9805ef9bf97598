//! What a send's outcome does to its receipt: delivered, retried with backoff, dead-lettered,
//! released, or postponed (docs/contract.md §2, §3).

use super::{Worker, backoff, lock};
use crate::buffer::{Claimed, DeadReason, Disposition};
use crate::events::{EventKind, NewEvent};
use crate::ofd::SendOutcome;
use rand::Rng;
use serde_json::json;
use std::time::Duration;

impl Worker {
    pub(super) async fn dispose(&self, c: &Claimed, outcome: SendOutcome) -> Disposition {
        let attempt = c.retry_count + 1;
        let now = self.clock.now_ms();
        let retry = |error: String, retry_after: Option<Duration>| {
            if attempt >= self.policy.max_attempts {
                tracing::error!(receipt_id = %c.receipt_id, attempts = attempt, %error, "receipt moved to the DLQ");
                return Disposition::Dead {
                    reason: DeadReason::MaxRetriesExceeded,
                    error,
                    http_status: None,
                };
            }
            let jitter = rand::rng().random_range(-0.2..=0.2);
            let delay = backoff(&self.policy, attempt, jitter).max(retry_after.unwrap_or_default());
            Disposition::Retry {
                error,
                next_attempt_at_ms: now + delay.as_millis() as i64,
            }
        };
        match outcome {
            SendOutcome::Delivered {
                http_status,
                ofd_id,
                body,
            } => {
                self.set(|s| {
                    s.misconfigured = None;
                    s.last_error = None;
                });
                Disposition::Synced {
                    http_status,
                    ofd_id,
                    response: body,
                }
            }
            SendOutcome::Rejected { http_status, body } => {
                let error = format!("HTTP {http_status}: {body}");
                tracing::error!(receipt_id = %c.receipt_id, %error, "OFD rejected the receipt; moved to the DLQ");
                Disposition::Dead {
                    reason: DeadReason::RejectedByOfd,
                    error,
                    http_status: Some(http_status),
                }
            }
            SendOutcome::Misconfigured { http_status, body } => {
                let error = format!("HTTP {http_status} (check the OFD URL and token): {body}");
                let first = {
                    let mut s = lock(&self.shared.state);
                    s.last_error = Some(error.clone());
                    let first = s.misconfigured.is_none();
                    if first {
                        s.misconfigured = Some((http_status, now));
                    }
                    first
                };
                if first {
                    tracing::error!(http_status, "OFD refuses the adapter: misconfigured URL or token");
                    let details = json!({"http_status": http_status, "body": body});
                    self.log(vec![NewEvent::new(EventKind::OfdMisconfigured, None, details)])
                        .await;
                }
                retry(error, None)
            }
            SendOutcome::Waiting {
                reason, retry_after, ..
            } => Disposition::Postpone {
                reason,
                next_attempt_at_ms: now + retry_after.as_millis() as i64,
            },
            SendOutcome::Transient { error, retry_after, .. } => {
                self.set(|s| s.last_error = Some(error.clone()));
                retry(error, retry_after)
            }
        }
    }
}
