//! The built-in OFD simulator used when no OFD URL is configured (demo mode): it accepts every
//! document after a short delay and de-duplicates by idempotency key, like `mock-ofd` does over HTTP.

use super::{Ofd, SendOutcome};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

pub struct SimulatedOfd {
    latency: Duration,
    accepted: Mutex<HashSet<String>>,
}

impl SimulatedOfd {
    pub fn new(latency: Duration) -> SimulatedOfd {
        SimulatedOfd {
            latency,
            accepted: Mutex::new(HashSet::new()),
        }
    }
}

impl Ofd for SimulatedOfd {
    fn send<'a>(&'a self, receipt_id: &'a str, _document: &'a str) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            tokio::time::sleep(self.latency).await;
            let (first, n) = match self.accepted.lock() {
                Ok(mut a) => (a.insert(receipt_id.to_string()), a.len()),
                Err(_) => (false, 0),
            };
            if first {
                SendOutcome::Delivered {
                    http_status: 200,
                    ofd_id: Some(format!("DEMO-{n}")),
                    body: format!(r#"{{"status":"accepted","ofd_id":"DEMO-{n}","demo":true}}"#),
                }
            } else {
                SendOutcome::Delivered {
                    http_status: 409,
                    ofd_id: None,
                    body: r#"{"status":"duplicate","demo":true}"#.into(),
                }
            }
        })
    }

    fn is_simulator(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "built-in OFD simulator (DEMO)".into()
    }
}
