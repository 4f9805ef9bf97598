//! The default OFD client: `POST {ofd_url}/ofd/v1/receipt` over reqwest (rustls).

use super::{Ofd, SendOutcome, classify, parse_retry_after};
use futures::future::BoxFuture;
use std::time::Duration;

pub struct HttpOfd {
    client: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the OFD HTTP client: {0}")]
pub struct Error(String);

impl HttpOfd {
    pub fn new(
        base_url: &str,
        token: Option<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<HttpOfd, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("kkt-adapter/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error(e.to_string()))?;
        Ok(HttpOfd {
            client,
            endpoint: format!("{}/ofd/v1/receipt", base_url.trim_end_matches('/')),
            token,
        })
    }

    async fn post(&self, receipt_id: &str, document: &str) -> SendOutcome {
        let mut request = self
            .client
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", receipt_id)
            .body(document.to_string());
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transient(&e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        match capped_body(response).await {
            Ok(body) => classify(status, &body, retry_after),
            // The status arrived but the body broke off: a 2xx is still an acceptance by the OFD.
            Err(_) if (200..300).contains(&status) || status == 409 => classify(status, "", retry_after),
            Err(e) => transient(&e),
        }
    }
}

/// The most of an OFD answer read (SECURITY.md "The OFD"): what we keep of it is an excerpt
/// for the DLQ and an `ofd_id`; an answer that never ends cannot grow the adapter's memory.
pub const MAX_ANSWER: usize = 64 * 1024;

/// The answer's body, cut at [`MAX_ANSWER`] bytes (the rest is not read; the connection is
/// dropped with it).
async fn capped_body(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn transient(e: &reqwest::Error) -> SendOutcome {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display omits the cause chain; the root cause (refused, reset) is what an operator needs.
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    SendOutcome::Transient {
        error: format!("{kind}: {cause}"),
        http_status: None,
        retry_after: None,
    }
}

impl Ofd for HttpOfd {
    fn send<'a>(&'a self, receipt_id: &'a str, document: &'a str) -> BoxFuture<'a, SendOutcome> {
        Box::pin(self.post(receipt_id, document))
    }

    fn is_simulator(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.endpoint.clone()
    }
}
