//! Phase 2 with a register whose FN sends documents to the OFD itself (docs/contract.md §7): a
//! receipt counts as delivered once the FN reports it confirmed — its number is below the first
//! document the OFD has not confirmed, or nothing is unconfirmed (`ofdExchangeStatus`) — in a
//! reading that began after the document existed (§10.8: the reading carries the FN's last
//! document, and a reading from before proves nothing about a later one). Until
//! then it waits, which is not a failed attempt; a failing FN link counts against the breaker,
//! so "OFD offline" means the FN cannot reach it. An OFD URL, when set, still gets the §2 copy,
//! and a receipt is done only when that copy is accepted too.

use super::{Ofd, SendOutcome};
use crate::kkt::{FnExchange, Kkt};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one look at the FN's exchange serves a batch of receipts.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// How soon a receipt the FN has not delivered yet is looked at again.
const LOOK_AGAIN: Duration = Duration::from_secs(10);

pub struct FnDelivery {
    kkt: Arc<dyn Kkt>,
    copy: Option<Arc<dyn Ofd>>,
    last: Mutex<Option<(Instant, FnExchange)>>,
}

impl FnDelivery {
    pub fn new(kkt: Arc<dyn Kkt>, copy: Option<Arc<dyn Ofd>>) -> FnDelivery {
        FnDelivery {
            kkt,
            copy,
            last: Mutex::new(None),
        }
    }

    /// A reading that can speak for document `number`: the last one if it is fresh and began
    /// after that document existed, else a new one.
    async fn exchange(&self, number: i64) -> Result<FnExchange, String> {
        if let Some((at, ex)) = self.last.lock().ok().and_then(|l| l.clone())
            && at.elapsed() < FRESH_FOR
            && ex.last_document.is_some_and(|last| last >= number)
        {
            return Ok(ex);
        }
        let kkt = self.kkt.clone();
        let fresh = tokio::task::spawn_blocking(move || kkt.ofd_exchange())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "this register does not report its OFD exchange".to_string())?
            .map_err(|e| e.to_string())?;
        if let Ok(mut l) = self.last.lock() {
            *l = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }
}

impl Ofd for FnDelivery {
    fn send<'a>(&'a self, receipt_id: &'a str, document: &'a str) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let number = serde_json::from_str::<serde_json::Value>(document)
                .ok()
                .and_then(|d| d["fiscal_doc_number"].as_i64())
                .unwrap_or(i64::MAX);
            let ex = match self.exchange(number).await {
                Ok(ex) => ex,
                Err(e) => {
                    return SendOutcome::Transient {
                        error: format!("cannot read the FN's OFD exchange: {e}"),
                        http_status: None,
                        retry_after: None,
                    };
                }
            };
            if !ex.confirms(number) {
                let reason = format!(
                    "the FN has not delivered it to the OFD yet ({} unconfirmed since {}){}",
                    ex.not_sent,
                    ex.first_not_sent_at.as_deref().unwrap_or("?"),
                    ex.link_error
                        .as_deref()
                        .map(|e| format!("; FN link: {e}"))
                        .unwrap_or_default()
                );
                return SendOutcome::Waiting {
                    reason,
                    link_down: ex.link_error.is_some(),
                    retry_after: LOOK_AGAIN,
                };
            }
            match &self.copy {
                Some(copy) => copy.send(receipt_id, document).await,
                None => SendOutcome::Delivered {
                    http_status: 200,
                    ofd_id: Some(format!("FN document {number}")),
                    body: "confirmed by the FN's exchange with the OFD".into(),
                },
            }
        })
    }

    fn is_simulator(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        match &self.copy {
            Some(c) => format!(
                "the FN's own exchange ({}), copy to {}",
                self.kkt.describe(),
                c.describe()
            ),
            None => format!("the FN's own exchange ({})", self.kkt.describe()),
        }
    }

    fn fn_exchange(&self) -> Option<FnExchange> {
        self.last.lock().ok().and_then(|l| l.as_ref().map(|(_, ex)| ex.clone()))
    }
}
