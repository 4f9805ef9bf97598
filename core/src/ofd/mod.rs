//! The OFD (fiscal data operator) side: `trait Ofd`, the classification of every answer into a
//! [`SendOutcome`] (docs/contract.md §2), the HTTP client and the built-in simulator used in demo mode.

pub mod document;
mod fn_delivery;
mod http;
mod simulator;

pub use fn_delivery::FnDelivery;
pub use http::HttpOfd;
pub use simulator::SimulatedOfd;

use futures::future::BoxFuture;
use std::time::Duration;

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx, or 409 (already accepted under this key): the receipt is delivered.
    Delivered {
        http_status: u16,
        ofd_id: Option<String>,
        body: String,
    },
    /// 400, 413, 422: the OFD refuses this document; retrying will not help.
    Rejected { http_status: u16, body: String },
    /// 401, 403, 404: the adapter is misconfigured (URL or token); retried, and the operator alerted.
    Misconfigured { http_status: u16, body: String },
    /// The FN (which sends documents itself) has not delivered it yet: look again later; not a
    /// failed attempt. `link_down`: the FN reports its link to the OFD failing.
    Waiting {
        reason: String,
        link_down: bool,
        retry_after: Duration,
    },
    /// 408, 429, 5xx, other statuses, timeouts, connection errors: retry later.
    Transient {
        error: String,
        http_status: Option<u16>,
        retry_after: Option<Duration>,
    },
}

impl SendOutcome {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            SendOutcome::Delivered { .. } => "delivered",
            SendOutcome::Rejected { .. } => "rejected",
            SendOutcome::Misconfigured { .. } => "misconfigured",
            SendOutcome::Transient { .. } => "transient",
            SendOutcome::Waiting { .. } => "waiting",
        }
    }
}

/// An OFD endpoint. `send` must be safe to repeat: the receipt id is the idempotency key.
pub trait Ofd: Send + Sync {
    fn send<'a>(&'a self, receipt_id: &'a str, document: &'a str) -> BoxFuture<'a, SendOutcome>;
    /// True for the built-in simulator (demo mode).
    fn is_simulator(&self) -> bool;
    /// Where receipts go, for status pages.
    fn describe(&self) -> String;
    /// The FN's exchange as last seen, when delivery is the FN's own (the ATOL register).
    fn fn_exchange(&self) -> Option<crate::kkt::FnExchange> {
        None
    }
}

/// At most this much of an OFD answer is kept (events, DLQ reasons).
pub const EXCERPT_CHARS: usize = 500;

pub fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(EXCERPT_CHARS).collect();
    if body.chars().count() > EXCERPT_CHARS {
        s.push('…');
    }
    s
}

/// The classification table of docs/contract.md §2 for an HTTP answer.
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> SendOutcome {
    let body = excerpt(body);
    match status {
        200..=299 | 409 => SendOutcome::Delivered {
            http_status: status,
            ofd_id: ofd_id(&body),
            body,
        },
        400 | 413 | 422 => SendOutcome::Rejected {
            http_status: status,
            body,
        },
        401 | 403 | 404 => SendOutcome::Misconfigured {
            http_status: status,
            body,
        },
        _ => SendOutcome::Transient {
            error: format!("OFD answered HTTP {status}: {body}"),
            http_status: Some(status),
            // Only 429 and 503 carry a meaningful Retry-After.
            retry_after: if status == 429 || status == 503 {
                retry_after
            } else {
                None
            },
        },
    }
}

fn ofd_id(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    match v.get("ofd_id")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date; capped at one hour.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_exactly_as_the_contract_table() {
        assert!(
            matches!(classify(200, r#"{"ofd_id":"X1"}"#, None), SendOutcome::Delivered { ofd_id: Some(ref i), .. } if i == "X1")
        );
        assert!(matches!(
            classify(201, "", None),
            SendOutcome::Delivered { ofd_id: None, .. }
        ));
        assert!(matches!(
            classify(409, "dup", None),
            SendOutcome::Delivered { http_status: 409, .. }
        ));
        for s in [400, 413, 422] {
            assert!(matches!(classify(s, "bad", None), SendOutcome::Rejected { .. }), "{s}");
        }
        for s in [401, 403, 404] {
            assert!(
                matches!(classify(s, "", None), SendOutcome::Misconfigured { .. }),
                "{s}"
            );
        }
        for s in [408, 429, 500, 502, 503, 504, 418] {
            assert!(matches!(classify(s, "", None), SendOutcome::Transient { .. }), "{s}");
        }
    }

    #[test]
    fn retry_after_is_kept_only_for_429_and_503() {
        let d = Some(Duration::from_secs(7));
        assert!(
            matches!(classify(429, "", d), SendOutcome::Transient { retry_after: Some(x), .. } if x == Duration::from_secs(7))
        );
        assert!(matches!(
            classify(503, "", d),
            SendOutcome::Transient {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(500, "", d),
            SendOutcome::Transient { retry_after: None, .. }
        ));
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("999999", now), Some(Duration::from_secs(3600)));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn long_bodies_are_cut_to_an_excerpt() {
        let long = "x".repeat(2000);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}
