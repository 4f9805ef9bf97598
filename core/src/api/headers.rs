//! Security headers on every answer (SECURITY.md "The page and the window"): `nosniff`, no
//! referrer, no framing (`X-Frame-Options` for old engines, `frame-ancestors` for new ones);
//! data answers also `Cache-Control: no-store` (receipts and tokens stay out of caches) and a
//! CSP that lets an answer opened as a page run nothing. The window's own files keep their CSP
//! (`ui.rs`), which already refuses framing. Stamped by the request span's layer
//! (`telemetry.rs`), which wraps every request anyway: one boxed layer fewer per receipt.

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The CSP of an answer that is data, not a page.
pub const DATA_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Stamps the headers on `response`; `page`: the window's own files (`/ui…`).
pub fn stamp(response: &mut Response, page: bool) {
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !page {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(DATA_CSP));
    }
}
