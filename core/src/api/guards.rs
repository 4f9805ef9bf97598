//! Local-security guards, each a layer: the `Host` check against DNS rebinding, refusal of
//! foreign browser origins and who is calling (`identify`, wrong tokens throttled per address)
//! in one front layer on every route, then one guard per audience — public reads, the tills' intake,
//! personal-data reads (admin or read token), the operator's changes (admin token); and JSON
//! answers for unknown routes and methods. SECURITY.md "Who reads what" is the table.

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

/// The peer's address, put on every request by the accept loop (`serve.rs`). A request without
/// one (a test calling the router directly) counts as from loopback.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// Loopback, also as an IPv4-mapped IPv6 address (a listener on `[::]`).
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The calling address ([`Peer`]; loopback when none was set).
fn peer_ip(request: &Request) -> std::net::IpAddr {
    request
        .extensions()
        .get::<Peer>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.0.ip())
}

fn from_loopback(request: &Request) -> bool {
    is_loopback(peer_ip(request))
}

/// An `Origin` (`scheme://host[:port]`) split into its parts, the port defaulted by scheme.
fn origin_parts(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, authority) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if authority.contains(['/', '@', '?', '#']) {
        return None;
    }
    let host = normalize(host_name(authority));
    let port = match authority.rsplit_once(':') {
        Some((_, p)) if !authority.ends_with(']') => p.parse().ok()?,
        _ => default,
    };
    Some((scheme, host, port))
}

/// A page `Origin` allowed to call: exactly this server's own (`http`, this port), by a known
/// name or by the address the request was sent to. A page on another local port (another web
/// server on this PC) or over another scheme is foreign.
fn is_allowed_origin(state: &AppState, origin: &str, request_host: &str) -> bool {
    let Some((scheme, host, port)) = origin_parts(origin) else {
        return false;
    };
    scheme == "http"
        && port == state.local_addr.port()
        && (is_known_host(state, &host) || (normalize(request_host) == host && is_allowed_host(state, request_host)))
}

/// The front guard of every route: refuses requests addressed to a foreign host name (DNS
/// rebinding) or none at all, and those sent by a page of a foreign origin (scheme, host and
/// port compared; requests without an `Origin` — POS software, curl — pass; a web POS page named
/// in `[compat] allowed_origins` may call the fronts' routes only); then says who is
/// calling ([`identify`]). One layer for both: each layer is a boxed future on every receipt.
pub async fn local_only(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(host_name) else {
        return ApiError::Forbidden("requests must carry a Host header naming this adapter").into_response();
    };
    if !is_allowed_host(&state, host) {
        return ApiError::Forbidden("requests must be addressed to a loopback or configured host name").into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let front = super::is_front_path(request.uri().path());
        let ok = origin
            .to_str()
            .is_ok_and(|o| is_allowed_origin(&state, o, host) || (front && state.compat.allows_origin(o)));
        if !ok {
            if front {
                // The page's browser hides the answer: the shop's manager reads it here.
                tracing::warn!(
                    origin = origin.to_str().unwrap_or("(not text)"),
                    path = request.uri().path(),
                    "a web page of another site called a vendor front and was refused (403); if it is the shop's \
                     web POS, name its site in [compat] allowed_origins"
                );
            }
            return ApiError::Forbidden("cross-origin requests are not allowed").into_response();
        }
    }
    if let Err(refused) = identify(&state, &mut request) {
        return refused.into_response();
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

/// Who is calling, from the bearer token (SECURITY.md "Who reads what").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: everything.
    Admin,
    /// `[http] read_token`: every read, no change.
    Reader,
    /// A POS token: `Some(pos_id)` for a till's own token (`[http.pos_tokens]`), `None` for
    /// the shared `pos_token`, which cannot tell tills apart.
    Till(Option<String>),
    /// No token.
    Anonymous,
}

/// The tokens and what they open, and the count of wrong tokens per address.
pub struct Access {
    pub read: Option<secrecy::SecretString>,
    pub pos_shared: Option<secrecy::SecretString>,
    pub pos_tills: Vec<(String, secrecy::SecretString)>,
    /// Intake needs a POS token from loopback too (`[http] require_pos_token`, or any POS token
    /// configured: LAN mode).
    pub pos_token_required: bool,
    failures: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
}

/// Wrong tokens one address may send in [`THROTTLE_WINDOW`] before its token-bearing requests
/// are refused with 429 for the rest of the window.
pub const THROTTLE_AFTER: u32 = 10;
pub const THROTTLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl Access {
    pub fn new(
        read: Option<secrecy::SecretString>,
        pos_shared: Option<secrecy::SecretString>,
        pos_tills: Vec<(String, secrecy::SecretString)>,
        pos_token_required: bool,
    ) -> Access {
        let pos_token_required = pos_token_required || pos_shared.is_some() || !pos_tills.is_empty();
        Access {
            read,
            pos_shared,
            pos_tills,
            pos_token_required,
            failures: Default::default(),
        }
    }

    /// An address that sent too many wrong tokens lately: seconds until it may try again.
    /// Loopback is never throttled: every program on this PC shares 127.0.0.1, so one of them
    /// could otherwise lock the manager's window out; guessing a 32-character token from there
    /// is no more feasible than from anywhere (the attempts are logged).
    fn throttled(&self, ip: std::net::IpAddr) -> Option<u64> {
        if is_loopback(ip) {
            return None;
        }
        let map = self.failures.lock().ok()?;
        let (count, since) = map.get(&ip)?;
        let left = THROTTLE_WINDOW.checked_sub(since.elapsed())?;
        (*count >= THROTTLE_AFTER).then(|| left.as_secs().max(1))
    }

    fn failed(&self, ip: std::net::IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 10_000 {
                map.retain(|_, (_, since)| since.elapsed() < THROTTLE_WINDOW);
            }
            let entry = map.entry(ip).or_insert((0, std::time::Instant::now()));
            if entry.1.elapsed() >= THROTTLE_WINDOW {
                *entry = (0, std::time::Instant::now());
            }
            entry.0 += 1;
        }
    }

    /// Whose token `given` is, if any of ours (each compared in constant time).
    fn caller(&self, given: &str, admin: &secrecy::SecretString) -> Option<Caller> {
        let matches = |t: &secrecy::SecretString| same_token(given, t.expose_secret());
        if matches(admin) {
            Some(Caller::Admin)
        } else if self.read.as_ref().is_some_and(matches) {
            Some(Caller::Reader)
        } else if let Some((pos, _)) = self.pos_tills.iter().find(|(_, t)| matches(t)) {
            Some(Caller::Till(Some(pos.clone())))
        } else if self.pos_shared.as_ref().is_some_and(matches) {
            Some(Caller::Till(None))
        } else {
            None
        }
    }
}

/// Who is calling (a [`Caller`] extension on the request). A token that matches none counts
/// as no token, and as a failure against the address; past [`THROTTLE_AFTER`] in a minute,
/// that address's token-bearing requests get 429.
fn identify(state: &AppState, request: &mut Request) -> Result<(), ApiError> {
    let caller = match bearer(request.headers()) {
        None => Caller::Anonymous,
        Some(given) => {
            let ip = peer_ip(request);
            if let Some(wait) = state.access.throttled(ip) {
                return Err(ApiError::TooManyAuthFailures { retry_after_secs: wait });
            }
            state.access.caller(given, &state.admin_token).unwrap_or_else(|| {
                // Counted and logged; the request goes on as nobody's, so a route that needs a
                // token answers 401 and the public counts stay readable.
                state.access.failed(ip);
                tracing::warn!(peer = %ip, "a request with a token that matches none");
                Caller::Anonymous
            })
        }
    };
    request.extensions_mut().insert(caller);
    Ok(())
}

fn caller(request: &Request) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous)
}

/// The public reads (status, shift, the window's files): anyone on loopback; from the network
/// any token of ours (LAN mode: only health and metrics are open to the network).
pub async fn public(request: Request, next: Next) -> Response {
    if !from_loopback(&request) && caller(&request) == Caller::Anonymous {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// Whether a caller may post receipts (and see a receipt's till view) on this request.
fn may_use_intake(state: &AppState, request: &Request) -> bool {
    match caller(request) {
        Caller::Admin | Caller::Till(_) => true,
        Caller::Reader => false,
        Caller::Anonymous => from_loopback(request) && !state.access.pos_token_required,
    }
}

/// The tills' routes' layer: a POS token (or the admin token) unless intake is open here —
/// loopback with no POS token configured or required. The read token may look a receipt up but
/// not post one.
pub async fn pos_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let reading = request.method() == axum::http::Method::GET;
    let admitted = may_use_intake(&state, &request) || (reading && caller(&request) == Caller::Reader);
    if !admitted {
        return match caller(&request) {
            Caller::Reader => ApiError::Forbidden("the read token cannot post receipts").into_response(),
            _ => ApiError::PosUnauthorized.into_response(),
        };
    }
    next.run(request).await
}

/// HTTP Basic credentials (`Authorization: Basic base64(user:password)`).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The vendor fronts' layer (docs/contract.md §13, SECURITY.md): HTTP Basic as the vendors'
/// servers ask for it. With `[compat] user`/`password` set, those credentials (or any token of
/// a till as the password) are needed from everywhere; without them, the tills' rules: open on
/// loopback unless a POS token is required, and a POS token — as the Basic password, or as a
/// bearer token — from the LAN. A till's own token makes the receipts that till's.
pub async fn compat_only(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let refuse = || {
        let mut r = ApiError::PosUnauthorized.into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"KKT Adapter\""),
        );
        r
    };
    // Both or neither (checked at start: `settings::checks`).
    let configured = match (&state.compat.user, &state.compat.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        _ => None,
    };
    match basic(request.headers()) {
        Some((user, password)) => {
            let ip = peer_ip(&request);
            // Before the credentials are looked at, as `identify` does: a throttled address
            // cannot go on guessing.
            if let Some(wait) = state.access.throttled(ip) {
                return ApiError::TooManyAuthFailures { retry_after_secs: wait }.into_response();
            }
            let vendor = configured
                .as_ref()
                .is_some_and(|(u, p)| u.eq_ignore_ascii_case(&user) && same_token(&password, p.expose_secret()));
            let till = (!password.is_empty())
                .then(|| state.access.caller(&password, &state.admin_token))
                .flatten()
                .filter(|c| matches!(c, Caller::Admin | Caller::Till(_)));
            match (vendor, till) {
                (_, Some(c)) => {
                    request.extensions_mut().insert(c);
                }
                (true, None) => {
                    request.extensions_mut().insert(Caller::Till(None));
                }
                // Nothing configured: kkmserver's clients send its default login (`Admin` with
                // an empty password) unasked; such a request is judged as one without credentials.
                (false, None) if configured.is_none() && password.is_empty() => {
                    if !may_use_intake(&state, &request) {
                        return refuse();
                    }
                }
                (false, None) => {
                    state.access.failed(ip);
                    tracing::warn!(peer = %ip, "a vendor front's request with credentials that match none");
                    return refuse();
                }
            }
        }
        None => {
            let token = matches!(caller(&request), Caller::Admin | Caller::Till(_));
            if !token && (configured.is_some() || !may_use_intake(&state, &request)) {
                return refuse();
            }
        }
    }
    next.run(request).await
}

/// What names customers, cashiers and every till's sales (receipt search, slips, QR codes, the
/// CSVs, events, the DLQ and review lists): the admin or the read token.
pub async fn readers_only(request: Request, next: Next) -> Response {
    if !matches!(caller(&request), Caller::Admin | Caller::Reader) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// The admin routes' layer: the admin token.
pub async fn admin_only(request: Request, next: Next) -> Response {
    if caller(&request) != Caller::Admin {
        return ApiError::Unauthorized.into_response();
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
    use super::{host_name, origin_parts};

    #[test]
    fn origins_are_split_into_scheme_host_and_port() {
        assert_eq!(
            origin_parts("http://127.0.0.1:8000"),
            Some(("http".into(), "127.0.0.1".into(), 8000))
        );
        assert_eq!(
            origin_parts("http://LocalHost"),
            Some(("http".into(), "localhost".into(), 80))
        );
        assert_eq!(origin_parts("https://[::1]"), Some(("https".into(), "::1".into(), 443)));
        assert_eq!(origin_parts("http://[::1]:9"), Some(("http".into(), "::1".into(), 9)));
        assert_eq!(origin_parts("null"), None);
        assert_eq!(origin_parts("file://x"), None);
        assert_eq!(origin_parts("http://a@127.0.0.1:8000"), None);
    }

    #[test]
    fn host_names_are_cut_from_their_port() {
        assert_eq!(host_name("localhost:8000"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8000"), "::1");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }
}
