//! The request span: every line logged while a request is handled says which request it
//! belongs to (`request{method, path, key}`; `key` is the till's Idempotency-Key, when given).
//! The same layer stamps every answer's security headers (`headers.rs`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub async fn request_span(request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.chars().take(64).collect::<String>());
    let page = request.uri().path().starts_with("/ui");
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        key = key.as_deref().unwrap_or(""),
    );
    let mut response = next.run(request).instrument(span).await;
    super::headers::stamp(&mut response, page);
    response
}
