//! Local-security guards, each a layer: the `Host` check against DNS rebinding and refusal of
//! foreign browser origins (every route), the POS token (the tills' routes, LAN mode), the
//! admin bearer token (the operator's routes); and JSON answers for unknown routes and methods.

use super::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

/// The host part of a `Host` header or an origin's authority (`[::1]:8000` → `::1`).
fn host_name(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    a.rsplit_once(':')
        .map(|(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { a })
        .unwrap_or(a)
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Loopback names, the bound address and configured names.
fn is_known_host(state: &AppState, h: &str) -> bool {
    if h == "localhost" || h.ends_with(".localhost") || h == "::1" {
        return true;
    }
    if let Ok(ip) = h.parse::<std::net::IpAddr>()
        && (ip.is_loopback() || ip == state.local_addr.ip())
    {
        return true;
    }
    state.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(h))
}

/// A `Host` this server answers to. Bound to all interfaces (LAN mode), the tills reach this
/// machine by whichever of its addresses they know; an address literal cannot be re-pointed by
/// DNS, so any is accepted there.
fn is_allowed_host(state: &AppState, host: &str) -> bool {
    let h = normalize(host);
    is_known_host(state, &h) || (state.local_addr.ip().is_unspecified() && h.parse::<std::net::IpAddr>().is_ok())
}

/// A page `Origin` allowed to call: a known host, or exactly the host the request is addressed
/// to (the page this server itself served, opened by an address in LAN mode).
fn is_allowed_origin(state: &AppState, origin_host: &str, request_host: Option<&str>) -> bool {
    let o = normalize(origin_host);
    is_known_host(state, &o) || request_host.is_some_and(|h| normalize(h) == o && is_allowed_host(state, h))
}

/// Refuses requests addressed to a foreign host name (DNS rebinding) or sent by a page of a
/// foreign origin. Requests without an `Origin` (POS software, curl) pass the origin check.
pub async fn local_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Some(host) = headers.get(header::HOST) {
        let ok = host
            .to_str()
            .map(|h| is_allowed_host(&state, host_name(h)))
            .unwrap_or(false);
        if !ok {
            return ApiError::Forbidden("requests must be addressed to a loopback or configured host name")
                .into_response();
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let request_host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(host_name);
        let ok = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| is_allowed_origin(&state, host_name(authority), request_host))
            .unwrap_or(false);
        if !ok {
            return ApiError::Forbidden("cross-origin requests are not allowed").into_response();
        }
    }
    next.run(request).await
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Compares in time that depends only on the expected token's length.
fn same_token(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    let mut diff = u8::from(given.len() != expected.len());
    for (i, b) in expected.iter().enumerate() {
        diff |= b ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The admin routes' layer: `Authorization: Bearer <admin token>`, compared in constant time.
pub async fn admin_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let admitted = bearer(request.headers()).is_some_and(|given| same_token(given, state.admin_token.expose_secret()));
    if !admitted {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// The tills' routes' layer: with a POS token configured (LAN mode), `Authorization: Bearer
/// <POS token>` (or the admin token); on loopback without one, open.
pub async fn pos_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.pos_token {
        let admitted = bearer(request.headers()).is_some_and(|given| {
            same_token(given, expected.expose_secret()) || same_token(given, state.admin_token.expose_secret())
        });
        if !admitted {
            return ApiError::PosUnauthorized.into_response();
        }
    }
    next.run(request).await
}

pub async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_are_cut_from_their_port() {
        assert_eq!(host_name("localhost:8000"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8000"), "::1");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }
}
